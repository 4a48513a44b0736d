"""Loop close, interpreter exit and configuration: nothing leaks, crashes, hangs or logs."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading

import asyncffi
import pytest
from asyncffi import demo
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


def test_calls_after_shutdown_never_complete_and_print_nothing() -> None:
    # What a daemon thread sees after the exit hook ran: its calls wait forever, like the rest
    # of the thread, instead of raising tracebacks into the exiting interpreter.
    proc = run_python(
        """
        import asyncio, asyncffi
        from asyncffi import demo, _runtime
        asyncio.run(demo.sleep(0))
        _runtime._shutdown()
        for call in (demo.sleep(0), demo.call_python(print)):
            try:
                asyncio.run(asyncio.wait_for(call, 0.2))
            except asyncio.TimeoutError:
                print("still waiting")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "still waiting\nstill waiting\n"
    assert proc.stderr == ""


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
    gc.collect()
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
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "quiet please\n"
    assert proc.stderr == ""
