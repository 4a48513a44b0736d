"""Loop close, interpreter exit and configuration: nothing leaks, crashes, hangs or logs."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading

import asyncffi
import pytest
from asyncffi import demo
from asyncffi.pytest_plugin import assert_clean_exit
from conftest import LOOPS, run_python, wait_until_idle


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_closing_a_loop_cancels_its_rust_work_silently(
    loop_name: str,
    runtime: str,
    wake: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    loop = LOOPS[loop_name]()
    before = asyncffi.stats()["cancelled"]

    tasks = []

    async def start() -> None:
        for _ in range(500):
            tasks.append(asyncio.ensure_future(demo.pending(runtime=runtime)))
            tasks.append(asyncio.ensure_future(demo.sleep(30, runtime=runtime)))
        await asyncio.sleep(0.05)

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop.run_until_complete(start())
        assert asyncffi.stats()["live_tasks"] == 1_000
        loop.close()  # tasks still pending: their Rust work must be cancelled
        del loop
        live = wait_until_idle()
    assert not any(live.values()), live
    assert asyncffi.stats()["cancelled"] == before + 1_000
    assert not [
        r for r in caplog.records if r.levelno >= logging.ERROR and "asyncffi" in r.getMessage()
    ]
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_a_task_awaiting_a_call_collected_after_its_loop_closed_prints_nothing(
    loop_name: str,
) -> None:
    # Only asyncio's own warning about the user's pending task; no error from the call.
    proc = run_python(
        f"""
        import asyncio, gc
        import {loop_name}
        from asyncffi import demo

        async def waiter():
            await demo.pending()

        loop = {loop_name}.new_event_loop()
        task = loop.create_task(waiter())
        loop.run_until_complete(asyncio.sleep(0.05))
        loop.close()
        del task
        gc.collect()
        print("done")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"
    assert "Error" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr


def test_asyncio_run_cancels_leftover_rust_work(runtime: str) -> None:
    async def main() -> None:
        tasks = [asyncio.ensure_future(demo.pending(runtime=runtime)) for _ in range(100)]
        await asyncio.sleep(0.02)
        assert not any(t.done() for t in tasks)

    asyncio.run(main())
    assert not any(wait_until_idle().values())


@pytest.mark.filterwarnings("ignore:unclosed event loop:ResourceWarning")
def test_a_loop_collected_without_close_releases_its_port() -> None:
    # asyncio only: an unclosed uvloop loop is kept alive by its own libuv handles, with or
    # without asyncffi, so it is never collected.
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(demo.add(1, 2)) == 3
    loop.run_until_complete(asyncio.sleep(0))
    asyncio.set_event_loop(None)
    del loop
    gc.collect()
    assert not any(wait_until_idle().values())


def test_loops_in_many_threads_each_get_their_own_results(runtime: str) -> None:
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        async def main() -> None:
            got = await asyncio.gather(
                *(demo.echo(offset + i, runtime=runtime) for i in range(1_000))
            )
            assert got == [offset + i for i in range(1_000)]

        try:
            asyncio.run(main())
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k * 10_000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


EXIT_SCRIPT = """
import asyncio, sys, asyncffi
from asyncffi import demo
asyncffi.configure(wake={wake!r})

async def main():
    for _ in range(5_000):
        asyncio.ensure_future(demo.pending(runtime={runtime!r}))
        asyncio.ensure_future(demo.sleep(0.001 * (_ % 50), runtime={runtime!r}))
    asyncio.ensure_future(demo.cpu(3_000_000_000))  # blocking-pool work that outlives the exit
    await asyncio.sleep(0.02)
    {ending}

async def forever():
    await asyncio.gather(main(), demo.pending(runtime={runtime!r}))

{runner}
print("done", flush=True)
"""


@pytest.mark.parametrize("wake", ["threadsafe", "fd"])
@pytest.mark.parametrize("runtime", ["tokio", "async-std"])
@pytest.mark.parametrize(
    "ending, runner",
    [
        ("pass", "asyncio.run(main())"),
        ("sys.exit(0)", "asyncio.run(main())"),
        # The loop is never closed: the exit hook alone must stop everything.
        ("pass", "loop = asyncio.new_event_loop(); loop.run_until_complete(main())"),
        # A daemon thread's loop is still running when the interpreter exits.
        (
            "pass",
            "import threading, time\n"
            "threading.Thread(target=lambda: asyncio.run(forever()), daemon=True).start()\n"
            "time.sleep(0.3)",
        ),
    ],
    ids=["asyncio.run", "sys.exit", "loop-left-open", "daemon-thread"],
)
def test_exit_with_thousands_of_tasks_in_flight(
    wake: str, runtime: str, ending: str, runner: str
) -> None:
    code = EXIT_SCRIPT.format(wake=wake, runtime=runtime, ending=ending, runner=runner)
    proc = run_python(code, timeout=60)
    assert proc.returncode == 0, proc.stderr
    stderr = proc.stderr
    if "asyncio.run(main())" not in runner:
        # asyncio itself reports the tasks of a loop that was never closed; only those lines.
        stderr = "".join(
            line
            for line in stderr.splitlines(True)
            if not line.startswith(("Task was destroyed but it is pending!", "task: <Task pending"))
        )
    assert stderr == ""
    if ending == "pass":
        assert proc.stdout == "done\n"


#: Exits with asyncffi's own tasks in flight on an unclosed loop: iterator pumps (one waiting
#: for its iterator, one always busy), and Python calls run for Rust (tokio and loop runtimes).
OWN_TASKS_SCRIPT = """
import asyncio, threading, time
import {loop_module}
from asyncffi import demo

async def slow_numbers():
    i = 0
    while True:
        yield i
        i += 1
        await asyncio.sleep(0.001)

async def busy_numbers():
    i = 0
    while True:
        yield i
        i += 1

async def handler():
    await asyncio.sleep(100)

async def main():
    busy = busy_numbers()
    await busy.__anext__()
    asyncio.gather(  # futures, no user Task that asyncio itself would report
        demo.sum_stream(slow_numbers(), prefetch=4),
        demo.take(busy, 10**9, prefetch=8),
        demo.call_python(handler),
        demo.call_python(handler, runtime="loop"),
    )
    await asyncio.sleep(0.1)

def run():
    loop = {loop_module}.new_event_loop()
    loop.run_until_complete(main())
    {then}

{runner}
print("done", flush=True)
"""


@pytest.mark.parametrize("loop_module", list(LOOPS))
@pytest.mark.parametrize(
    "runner, then",
    [
        ("run()", "pass"),
        (
            "threading.Thread(target=run, daemon=True).start()\ntime.sleep(0.4)",
            "loop.run_forever()",
        ),
    ],
    ids=["main-thread", "daemon-thread"],
)
def test_exit_with_asyncffis_own_tasks_on_an_unclosed_loop_prints_nothing(
    loop_module: str, runner: str, then: str
) -> None:
    code = OWN_TASKS_SCRIPT.format(loop_module=loop_module, runner=runner, then=then)
    for _ in range(4):  # the daemon-thread case used to print in about 2 runs in 3
        proc = run_python(code)
        assert_clean_exit(proc)
        assert proc.stdout == "done\n"


@pytest.mark.skipif("uvloop" not in LOOPS, reason="uvloop is not installed")
@pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="the check that nothing else refers to the loop counts references as 3.11+ holds them",
)
def test_an_unclosed_uvloop_dropped_on_the_main_thread_releases_its_rust_work() -> None:
    # uvloop never collects such a loop; a full collection finds it held only by itself.
    proc = run_python(
        """
        import asyncio, gc, time
        import uvloop, asyncffi
        from asyncffi import demo

        def live():
            time.sleep(0.1)
            return {k: v for k, v in asyncffi.stats().items() if k.startswith("live_") and v}

        def start():
            loop = uvloop.new_event_loop()

            async def main():
                asyncio.gather(demo.pending(), demo.sleep(100))
                await asyncio.sleep(0.01)

            loop.run_until_complete(main())
            return loop

        def kept_in_a_local():
            loop = start()
            gc.collect()
            print("local", live())
            assert loop.run_until_complete(demo.sleep(0.01)) is None  # still works
            loop.close()

        kept_in_a_local()
        kept = start()
        gc.collect()
        print("global", live())
        kept.close()
        del kept
        start()  # dropped unclosed
        gc.collect()
        print("dropped", live())
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "local {'live_tasks': 2, 'live_ports': 1}",
        "global {'live_tasks': 2, 'live_ports': 1}",
        "dropped {}",
    ]
    assert proc.stderr == ""


def test_configure_before_first_use_and_conflicts_after() -> None:
    proc = run_python(
        """
        import asyncio, asyncffi
        from asyncffi import demo
        asyncffi.configure(worker_threads=1, flavor="current_thread", wake="fd")
        asyncffi.configure(worker_threads=1, flavor="current_thread", wake="fd")  # same: fine
        async def many():
            await asyncio.gather(*(demo.sleep(0.05) for _ in range(1000)))
        asyncio.run(many())
        assert asyncio.run(demo.cpu(1000)) == sum(range(1000))
        for kwargs in [dict(worker_threads=2, flavor="current_thread", wake="fd"),
                       dict(worker_threads=1, flavor="multi_thread", wake="fd"),
                       dict(worker_threads=1, flavor="current_thread", wake="threadsafe")]:
            try:
                asyncffi.configure(**kwargs)
            except RuntimeError as e:
                print("refused:", e)
            else:
                print("accepted", kwargs)
        """
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("refused:") for line in lines), proc.stdout
    assert "already started with worker_threads=1" in lines[0]
    assert "before the first call" in lines[0]
    assert "wake='fd'" in lines[2]


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(flavor="single"), ValueError),
        (dict(wake="poll"), ValueError),
        (dict(worker_threads=0), ValueError),
        (dict(worker_threads=1.5), TypeError),
    ],
)
def test_configure_rejects_bad_values(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        asyncffi.configure(**kwargs)


def test_multi_thread_worker_count_is_configurable() -> None:
    proc = run_python(
        """
        import asyncio, os, asyncffi
        from asyncffi import demo
        asyncffi.configure(worker_threads=3)
        asyncio.run(demo.sleep(0.01))
        tasks = os.listdir("/proc/self/task")
        names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in tasks]
        print(names.count("asyncffi-tokio"))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "3"


def test_calls_after_shutdown_fail_at_once_with_a_closed_error() -> None:
    # What a daemon thread sees after the exit hook ran: every call, stream and lent callable
    # fails at once with ShutDownError (a ClosedError), as a call or as a future.
    proc = run_python(
        """
        import asyncio, asyncffi
        from asyncffi import demo, _runtime
        asyncio.run(demo.sleep(0))
        _runtime._shutdown()

        async def read(stream):
            return [x async for x in stream]

        async def as_future():
            return await asyncio.ensure_future(demo.sleep(0))

        for call in (demo.sleep(0), demo.call_python(print), read(demo.count(3)), as_future()):
            try:
                asyncio.run(asyncio.wait_for(call, 10))
            except asyncffi.ClosedError as e:
                print(type(e).__name__, e)
        """
    )
    assert_clean_exit(proc)
    assert proc.stdout == ("ShutDownError asyncffi has shut down: the interpreter is exiting\n" * 4)
    assert issubclass(asyncffi.ShutDownError, asyncffi.ClosedError)


def test_requests_handled_after_the_exit_hook_forgot_their_port_get_no_error_answer() -> None:
    # The exit hook runs on the main thread while another thread's loop may be in the middle
    # of a batch. The call and pull requests that loop handles after the hook forgot its port
    # must not be answered with errors: a call whose start straddled the hook (registered just
    # after it) would get one, and raise it in a daemon thread while the interpreter exits.
    # Rust's close, which follows, cancels them instead: the calls never finish, as every call
    # of a daemon thread after the exit hook.
    proc = run_python(
        """
        import asyncio, time, asyncffi
        from asyncffi import demo
        from asyncffi._loader import lib

        async def main():
            port = demo.library.current_port()
            calls = [demo.call_python(len, "abc"), demo.sum_stream(range(10))]
            for call in calls:
                call.get_loop()  # started: Rust has queued a call and a pull request
            demo.library.forget_ports()  # the exit hook's first step
            for call in calls:  # registered after it, as by a start that straddled it
                port.pending[call._token] = call
            port.drain()  # the batch this loop was in the middle of
            await asyncio.sleep(0.2)
            port.drain()  # and the next (an fd wake still runs it)
            print([call.exception() if call.done() else "running" for call in calls])
            lib.affi_port_close(port.id)  # the exit hook's next step
            await asyncio.sleep(0.2)
            print([call.done() for call in calls], asyncffi.stats()["live_tasks"])

        asyncio.run(main())
        """
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == "['running', 'running']\n[False, False] 0\n"


@pytest.mark.parametrize("as_future", [False, True], ids=["awaited", "as-future"])
def test_a_call_whose_outcome_the_exit_hook_beat_waits_in_a_daemon_thread(as_future: bool) -> None:
    # A call that finished on its first poll in a daemon thread, whose port the exit hook
    # closed (on the main thread) before the thread took the outcome: the call waits, as every
    # call of that thread after the exit hook, and raises nothing there.
    proc = run_python(
        f"""
        import asyncio, threading
        from asyncffi import demo, _port, _runtime

        take_inline = _port.Port.take_inline

        def take_inline_after_the_exit_hook(self, token):
            _runtime._shutdown()  # what the main thread does at exit, at this very moment
            return take_inline(self, token)

        _port.Port.take_inline = take_inline_after_the_exit_hook

        async def direct():
            return await demo.echo(1)

        async def main():
            call = demo.echo(1) if {as_future!r} else direct()
            try:
                print(await asyncio.wait_for(call, 0.5))
            except asyncio.TimeoutError:
                print("waits")
            except Exception as exc:
                print(repr(exc))

        thread = threading.Thread(target=lambda: asyncio.run(main()))
        thread.start()
        thread.join()
        """
    )
    assert (proc.returncode, proc.stderr, proc.stdout) == (0, "", "waits\n")


def test_a_call_in_an_atexit_handler_that_runs_after_the_exit_hook_fails_at_once() -> None:
    # An atexit handler registered before `import asyncffi` runs after asyncffi's exit hook.
    proc = run_python(
        """
        import atexit, asyncio, time

        def late():
            import asyncffi
            from asyncffi import demo
            start = time.monotonic()
            for make in (lambda: demo.sleep(0), lambda: demo.sleep(1), lambda: demo.add(1, 2)):
                try:
                    asyncio.run(make())
                except asyncffi.ClosedError as e:
                    print(type(e).__name__, e, flush=True)
            assert time.monotonic() - start < 5

        atexit.register(late)
        import asyncffi
        from asyncffi import demo
        asyncio.run(demo.sleep(0))
        """,
        timeout=30,
    )
    assert_clean_exit(proc)
    assert proc.stdout == ("ShutDownError asyncffi has shut down: the interpreter is exiting\n" * 3)


def test_a_forked_child_gets_a_clear_error_and_the_parent_carries_on() -> None:
    proc = run_python(
        """
        import asyncio, os, asyncffi
        from asyncffi import demo
        assert asyncio.run(demo.add(1, 2)) == 3
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(demo.add(2, 3))
            except RuntimeError as e:
                print("child:", e, flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        print("parent:", asyncio.run(demo.add(3, 4)), flush=True)
        """
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("child: asyncffi cannot run in a process forked"), lines
    assert lines[1] == "parent: 7"


@pytest.mark.filterwarnings("ignore:unclosed event loop:ResourceWarning")
def test_an_unclosed_loop_with_work_in_flight_is_collected_and_cancels_it() -> None:
    loop = asyncio.new_event_loop()

    async def start() -> list:
        tasks = [asyncio.ensure_future(demo.pending()) for _ in range(10)]
        await asyncio.sleep(0.02)
        return tasks

    tasks = loop.run_until_complete(start())
    assert asyncffi.stats()["live_tasks"] == 10
    del tasks, loop
    # On PyPy what a finalizer releases is freed by a later collection: collect until idle.
    for _ in range(5):
        gc.collect()
        if not any(wait_until_idle(1.0).values()):
            break
    assert not any(wait_until_idle().values())


def test_caught_panics_are_not_printed() -> None:
    proc = run_python(
        """
        import asyncio, asyncffi
        from asyncffi import demo
        try:
            asyncio.run(demo.panic("quiet please"))
        except asyncffi.RustPanic as e:
            print(e)
        """
    )
    assert_clean_exit(proc)
    assert proc.stdout == "quiet please\n"
