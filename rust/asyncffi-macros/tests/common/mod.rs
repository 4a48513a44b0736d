//! Driving generated shims through the C ABI the way Python does: open a port, call, take the
//! inline outcome or drain the completion, decode, release.

#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use asyncffi::ffi::{
    affi_port_close, affi_port_drain, affi_port_open, affi_port_release, affi_port_release_inline,
    affi_port_take_inline, affi_result_free, affi_stats, affi_task_poll, AffiStats,
};
use asyncffi::port::{AffiCompletion, AffiOutcome, AffiRequest, AffiTag, AffiWake};
use asyncffi::{codec, Value};

/// One test at a time: the live counters are global to the process, so a test that compares
/// them before and after needs every other test of its binary to hold this lock too.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn stats() -> AffiStats {
    let mut out = AffiStats::default();
    // SAFETY: `out` is a valid, writable AffiStats.
    assert_eq!(unsafe { affi_stats(&mut out) }, 0);
    out
}

/// How a call ended, decoded.
#[derive(Debug, PartialEq)]
pub enum Ended {
    Ok(Value),
    /// An object handle.
    Object(u64),
    Error(String, String),
    Panic(String),
    Cancelled,
}

/// The value of a completion (copied; the caller releases).
pub fn decode(c: &AffiCompletion) -> Value {
    let bytes = || {
        if c.len == 0 {
            Vec::new()
        } else {
            // SAFETY: the payload is held until the caller releases it.
            unsafe { std::slice::from_raw_parts(c.data, c.len) }.to_vec()
        }
    };
    match c.tag {
        t if t == AffiTag::None as u32 => Value::None,
        t if t == AffiTag::Bool as u32 => Value::Bool(c.int_value != 0),
        t if t == AffiTag::Int as u32 => Value::Int(c.int_value),
        t if t == AffiTag::Float as u32 => Value::Float(c.float_value),
        t if t == AffiTag::Bytes as u32 => Value::Bytes(bytes()),
        t if t == AffiTag::Str as u32 => Value::Str(String::from_utf8(bytes()).unwrap()),
        t if t == AffiTag::Packed as u32 => codec::decode(&bytes()).unwrap(),
        t => panic!("unexpected tag {t}"),
    }
}

pub fn ended(c: &AffiCompletion) -> Ended {
    match c.status {
        s if s == AffiOutcome::Ok as i32 && c.tag == AffiTag::Object as u32 => {
            Ended::Object(c.int_value as u64)
        }
        s if s == AffiOutcome::Ok as i32 => Ended::Ok(decode(c)),
        s if s == AffiOutcome::Error as i32 => match decode(c) {
            Value::List(items) => match &items[..] {
                [Value::Str(k), Value::Str(m), ..] => Ended::Error(k.clone(), m.clone()),
                other => panic!("bad error payload {other:?}"),
            },
            other => panic!("bad error payload {other:?}"),
        },
        s if s == AffiOutcome::Panic as i32 => match decode(c) {
            Value::Str(m) => Ended::Panic(m),
            other => panic!("bad panic payload {other:?}"),
        },
        s if s == AffiOutcome::Cancelled as i32 => Ended::Cancelled,
        s => panic!("unexpected status {s}"),
    }
}

/// A port for one test, closed on drop.
pub struct Port(pub u64);

impl Port {
    pub fn open() -> Port {
        let id = affi_port_open(AffiWake::Fd as u32);
        assert!(id > 0, "port open failed: {id}");
        Port(id as u64)
    }

    /// The next completions for `token`, until its outcome (items first), within 10 s.
    pub fn wait(&self, token: u64) -> (Vec<Value>, Ended) {
        self.wait_answering(token, &mut |c| panic!("unexpected request {c:?}"))
    }

    /// `wait`, answering Python-call requests with `answer` and polling `loop` tasks.
    pub fn wait_answering(
        &self,
        token: u64,
        answer: &mut dyn FnMut(&AffiCompletion),
    ) -> (Vec<Value>, Ended) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [AffiCompletion::default(); 16];
        let mut items = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "no outcome for token {token}");
            // SAFETY: `buf` holds 16 writable completions.
            let n = unsafe { affi_port_drain(self.0, buf.as_mut_ptr(), buf.len()) };
            assert!(n >= 0, "drain failed: {n}");
            let mut end = None;
            for c in &buf[..n as usize] {
                match c.status {
                    s if s == AffiRequest::Call as i32 => {
                        answer(c);
                        continue;
                    }
                    s if s == AffiRequest::Poll as i32 => {
                        affi_task_poll(c.token);
                        continue;
                    }
                    s if s == AffiRequest::Release as i32 || s == AffiRequest::Cancel as i32 => {
                        continue
                    }
                    _ => {}
                }
                assert_eq!(c.token, token, "a completion for another call");
                match c.status {
                    s if s == AffiOutcome::Item as i32 => items.push(decode(c)),
                    s if s == AffiOutcome::Items as i32 => match decode(c) {
                        Value::List(batch) => items.extend(batch),
                        other => panic!("bad batch {other:?}"),
                    },
                    _ => end = Some(ended(c)),
                }
            }
            assert_eq!(affi_port_release(self.0), 0);
            if let Some(end) = end {
                return (items, end);
            }
            if n == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Calls an async shim with a fresh token and waits for its outcome (inline or drained).
    /// A negative status from the call itself is returned as `Err`.
    pub fn call(&self, f: impl FnOnce(u64, u64) -> i64) -> Result<Ended, i64> {
        self.call_answering(f, &mut |c| panic!("unexpected request {c:?}"))
    }

    /// `call`, answering Python-call requests with `answer`.
    pub fn call_answering(
        &self,
        f: impl FnOnce(u64, u64) -> i64,
        answer: &mut dyn FnMut(&AffiCompletion),
    ) -> Result<Ended, i64> {
        static TOKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let token = TOKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let task = f(self.0, token);
        if task < 0 {
            return Err(task);
        }
        if task > 0 {
            return Ok(self.wait_answering(token, answer).1);
        }
        let mut c = AffiCompletion::default();
        // SAFETY: `c` is a writable completion.
        assert_eq!(unsafe { affi_port_take_inline(self.0, token, &mut c) }, 0);
        let end = ended(&c);
        assert_eq!(affi_port_release_inline(self.0, token), 0);
        Ok(end)
    }

    /// Calls a stream shim and collects its items and end.
    pub fn stream(&self, f: impl FnOnce(u64, u64) -> i64) -> (Vec<Value>, Ended) {
        let token = 1_000_000 + self.0;
        let task = f(self.0, token);
        assert!(task > 0, "stream call failed: {task}");
        self.wait(token)
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        affi_port_close(self.0);
    }
}

/// Calls a sync shim, decodes its outcome and frees its payload.
pub fn call_sync(f: impl FnOnce(*mut AffiCompletion) -> i32) -> Result<Ended, i32> {
    let mut c = AffiCompletion::default();
    let status = f(&mut c);
    if status != 0 {
        return Err(status);
    }
    let end = ended(&c);
    if !c.data.is_null() {
        assert_eq!(affi_result_free(c.data), 0);
        assert_ne!(affi_result_free(c.data), 0, "a payload is freed once");
    }
    Ok(end)
}

/// The encoding of `value`, as Python's msgpack would pack it.
pub fn pack(value: &Value) -> Vec<u8> {
    codec::encode(value).unwrap()
}

/// The text of this thread's last error.
pub fn last_error() -> String {
    let mut len = 0;
    // SAFETY: `len` is writable; the message is copied before any other call.
    let ptr = unsafe { asyncffi::ffi::affi_last_error(&mut len) };
    // SAFETY: `affi_last_error` points at `len` bytes.
    String::from_utf8(unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()).unwrap()
}

pub fn s(x: &str) -> Value {
    Value::Str(x.into())
}
