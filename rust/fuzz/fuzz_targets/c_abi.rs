//! Fuzz target: the C ABI driven as a careless or hostile caller would drive it.
//!
//! The input is read as a program: each step picks one `affi_*` entry point (port open, drain,
//! take/release inline, release, close; task cancel and poll; object free; call complete;
//! stream grant; Python-stream items and end; stats) or spawns real work (tasks that finish,
//! tasks that never finish, tasks that call an adopted Python callable, streams, readers of
//! an adopted Python iterator, objects), with ids taken from what earlier steps returned, the
//! same ids with a wrong generation, or raw numbers, and with arbitrary statuses, tags,
//! lengths and payload bytes (always pointing at memory that holds that many bytes: the
//! ABI's contract). Every call must return a status, never crash or hang. Each run closes the
//! ports it opened, so that work does not pile up from one input to the next.
#![no_main]

use asyncffi::ffi::{
    affi_call_complete, affi_object_free, affi_port_close, affi_port_drain, affi_port_open,
    affi_port_release, affi_port_release_inline, affi_port_take_inline, affi_pystream_end,
    affi_pystream_items, affi_stats, affi_stream_grant, affi_task_cancel, affi_task_poll,
    AffiStats,
};
use asyncffi::port::AffiCompletion;

use asyncffi::{object, spawn, spawn_stream, stream, PyCallable, PyStream, Runtime, Value};
use libfuzzer_sys::fuzz_target;

/// Reads the fuzz input as a sequence of numbers; an exhausted input reads as zeros.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn done(&self) -> bool {
        self.data.is_empty()
    }

    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        let n = self.data.len().min(8);
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        let mut raw = [0u8; 8];
        raw[..n].copy_from_slice(head);
        u64::from_le_bytes(raw)
    }

    /// A payload: the next `len` bytes of the input (a length byte first).
    fn bytes(&mut self) -> &'a [u8] {
        let len = (self.u8() as usize).min(self.data.len());
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        head
    }
}

/// Ids seen so far, by kind.
#[derive(Default)]
struct Ids {
    ports: Vec<u64>,
    tasks: Vec<u64>,
    objects: Vec<u64>,
    /// Tokens and Python object ids of drained completions (call ids, iterator ids).
    drained: Vec<u64>,
}

/// An id for a call: a known one, a known one with its high (generation) bits changed, or raw.
fn pick(input: &mut Input, known: &[u64]) -> u64 {
    let mode = input.u8();
    let index = input.u8() as usize;
    match (mode % 4, known.is_empty()) {
        (0 | 1, false) => known[index % known.len()],
        (2, false) => known[index % known.len()] ^ (u64::from(mode) << 32),
        _ => input.u64(),
    }
}

fn runtime(input: &mut Input) -> Runtime {
    match input.u8() % 3 {
        0 => Runtime::Tokio,
        1 => Runtime::AsyncStd,
        _ => Runtime::Loop,
    }
}

/// A future that is pending once (waking itself), then ready: it goes through the runtime.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

fn step(input: &mut Input, ids: &mut Ids) {
    let mut drain = [AffiCompletion::default(); 8];
    match input.u8() % 20 {
        0 => {
            let id = affi_port_open(u32::from(input.u8() % 4));
            if id > 0 {
                ids.ports.push(id as u64);
            }
        }
        1 => {
            let port = pick(input, &ids.ports);
            let cap = (input.u8() as usize) % (drain.len() + 1);
            // SAFETY: `drain` holds `cap` writable completions.
            let n = unsafe { affi_port_drain(port, drain.as_mut_ptr(), cap) };
            for c in drain.iter().take(n.max(0) as usize) {
                ids.drained.push(c.token);
                ids.drained.push(c.int_value as u64);
            }
        }
        2 => {
            affi_port_release(pick(input, &ids.ports));
        }
        3 => {
            let (port, token) = (pick(input, &ids.ports), pick(input, &ids.drained));
            // SAFETY: `drain[0]` is a writable completion.
            if unsafe { affi_port_take_inline(port, token, drain.as_mut_ptr()) } == 1 {
                affi_port_release_inline(port, token);
            }
        }
        4 => {
            // Any token, taken or not: a stray release must be refused, never free another's.
            affi_port_release_inline(pick(input, &ids.ports), pick(input, &ids.drained));
        }
        5 => {
            affi_port_close(pick(input, &ids.ports));
        }
        6 => {
            affi_task_cancel(pick(input, &ids.tasks));
        }
        7 => {
            affi_task_poll(pick(input, &ids.tasks));
        }
        8 => {
            affi_object_free(pick(input, &ids.objects));
        }
        9 => {
            let (port, call) = (pick(input, &ids.ports), pick(input, &ids.drained));
            let (status, tag) = (i32::from(input.u8() % 8) - 2, u32::from(input.u8() % 10));
            let (int_value, float_value) = (input.u64() as i64, f64::from_bits(input.u64()));
            let data = input.bytes();
            // SAFETY: `data` is readable for its length.
            unsafe {
                affi_call_complete(
                    port,
                    call,
                    status,
                    tag,
                    int_value,
                    float_value,
                    data.as_ptr(),
                    data.len(),
                )
            };
        }
        10 => {
            affi_stream_grant(pick(input, &ids.tasks), input.u64());
        }
        11 => {
            let object = pick(input, &ids.drained);
            let data = input.bytes();
            // SAFETY: `data` is readable for its length.
            unsafe { affi_pystream_items(object, data.as_ptr(), data.len()) };
        }
        12 => {
            let object = pick(input, &ids.drained);
            let status = i32::from(input.u8() % 8) - 2;
            let exception = input.u64();
            let data = input.bytes();
            // SAFETY: `data` is readable for its length.
            unsafe { affi_pystream_end(object, status, data.as_ptr(), data.len(), exception) };
        }
        13 => {
            let mut out = AffiStats::default();
            // SAFETY: `out` is a writable AffiStats.
            unsafe { affi_stats(&mut out) };
        }
        14 => {
            // A task that finishes with a value decoded from the input (or an error).
            let (rt, port, token) = (runtime(input), pick(input, &ids.ports), input.u64());
            let value = asyncffi::codec::decode(input.bytes())
                .map_err(|e| asyncffi::Error::new("decode", e.to_string()));
            let eager = input.u8() % 2 == 0;
            if let Ok(task) = spawn(rt, port, token, async move {
                if !eager {
                    yield_once().await;
                }
                value
            }) {
                ids.tasks.push(task);
            }
        }
        15 => {
            // A task that never finishes: only cancel or close ends it.
            let (rt, port, token) = (runtime(input), pick(input, &ids.ports), input.u64());
            if let Ok(task) = spawn(rt, port, token, std::future::pending()) {
                ids.tasks.push(task);
            }
        }
        16 => {
            // A task calling a Python callable it adopted (an id the fuzzer makes up).
            let (rt, port, token) = (runtime(input), pick(input, &ids.ports), input.u64());
            let args = vec![Value::Int(input.u64() as i64)];
            if let Ok(f) = PyCallable::adopt(port, input.u64()) {
                if let Ok(task) = spawn(rt, port, token, async move {
                    let a = f.call(args).await?;
                    Ok(f.call(vec![a]).await?)
                }) {
                    ids.tasks.push(task);
                }
            }
        }
        17 => {
            // A task reading a Python iterator it adopted.
            let (rt, port, token) = (runtime(input), pick(input, &ids.ports), input.u64());
            let prefetch = input.u64() % 300;
            if let Ok(mut items) = PyStream::adopt(port, input.u64()) {
                items = items.with_prefetch(prefetch);
                if let Ok(task) = spawn(rt, port, token, async move {
                    let mut n = 0i64;
                    while let Some(item) = stream::next(&mut items).await {
                        item?;
                        n += 1;
                    }
                    Ok(Value::Int(n))
                }) {
                    ids.tasks.push(task);
                }
            }
        }
        18 => {
            // A Rust stream Python reads, with a small buffer.
            let (rt, port, token) = (runtime(input), pick(input, &ids.ports), input.u64());
            let (count, buffer) = (input.u8(), input.u64());
            let items = stream::iter((0..i64::from(count)).map(|i| Ok(Value::Int(i))));
            if let Ok(task) = spawn_stream(rt, port, token, items, buffer) {
                ids.tasks.push(task);
            }
        }
        _ => {
            ids.objects
                .push(object::register(std::sync::Arc::new(input.u64())));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input { data };
    let mut ids = Ids::default();
    for _ in 0..256 {
        if input.done() {
            break;
        }
        step(&mut input, &mut ids);
    }
    for port in ids.ports {
        affi_port_close(port);
    }
    for object in ids.objects {
        affi_object_free(object);
    }
});
