//! Completion ports: where finished Rust tasks leave their outcomes for one Python event loop.
//!
//! The protocol, step by step:
//! 1. **Open.** Python opens one port per running event loop (`affi_port_open`), choosing a
//!    wake strategy: `threadsafe` (the notifier thread calls the registered C callback) or `fd`
//!    (an eventfd the loop watches). A call made from synchronous code (no loop) opens a
//!    `wait` port of its own: its thread blocks in `affi_port_wait` (a condition variable,
//!    with the GIL released) until the queue has items, and drains it as a loop would.
//! 2. **Push.** A task that finishes pushes `(token, status, payload)` onto the port's queue, on
//!    whatever runtime thread it ran. The payload is prepared there (containers encoded, text
//!    copied), so the loop thread only copies bytes out.
//! 3. **Wake.** Only the push that takes the queue from empty to non-empty wakes Python; pushes
//!    that find items already queued ride along with that wake (coalescing), and so do pushes
//!    made while Python is draining (from the drain that returned items to the one that returns
//!    none, Python keeps draining). Waking is an eventfd write or a hand-off to the notifier
//!    thread: a runtime worker never touches Python.
//! 4. **Drain.** On the loop thread, Python copies up to `cap` completions into a per-port C
//!    array with one call (`affi_port_drain`). Heap payloads stay owned by the port (`held`)
//!    so the pointers stay valid while Python converts them.
//! 5. **Release.** Python calls `affi_port_release` after converting a batch; the held payloads
//!    are freed there, exactly once. The eager path (`deliver_inline`) holds each inline
//!    outcome's payload apart, by token, until `affi_port_release_inline` for that token: a
//!    finalizer that runs while Python decodes one inline outcome may take (and release)
//!    another.
//! 6. **Close.** Closing the port (loop closed, or interpreter exit) frees queued payloads,
//!    makes later pushes free their payload on arrival and runs the close hooks of every
//!    feature (see [`crate::close_hooks`]): its tasks are cancelled, what waits on it fails. The
//!    eventfd is closed only when the last task holding the port is gone, so a late write never
//!    hits a reused descriptor. Payloads Python may still be reading (a drained batch, inline
//!    outcomes) are not freed by the close: they *linger*, kept by id, until Python releases
//!    them (`affi_port_release` and `affi_port_release_inline` still work on a closed port's
//!    id). A port closed at interpreter exit under a thread that is still reading its batch
//!    keeps them until the process ends.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

pub use crate::abi::{AffiCompletion, AffiOutcome, AffiRequest, AffiTag, AffiWake};
use crate::boundary::{AffiStatus, Failure};
use crate::close_hooks;
use crate::codec;
use crate::handle_table::{self, HandleTable};
use crate::notifier;
use crate::object;
use crate::pyref::PyRef;
use crate::stats::{LIVE_PORTS, LIVE_VALUES, WAKES};
use crate::value::{Object, Value};

/// A heap payload; counted in `live_values` from creation to drop.
pub struct Buffer(Vec<u8>);

impl Buffer {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        LIVE_VALUES.inc();
        Buffer(bytes)
    }
}

impl Buffer {
    /// The bytes held.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        LIVE_VALUES.dec();
    }
}

/// A completion's value, prepared on the thread that produced it.
pub enum Payload {
    /// A scalar: no allocation.
    Scalar {
        /// The `AffiTag`.
        tag: AffiTag,
        /// `int_value`.
        int: i64,
        /// `float_value`.
        float: f64,
    },
    /// Bytes, text or an encoded container.
    Heap(AffiTag, Buffer),
    /// An object; registered in the object table when Python drains it.
    Object(Object),
    /// Encoded stream items after an `OPEN_LIST` header, and how many there are; handed over
    /// as a packed list.
    Batch(Buffer, u32),
}

/// What a task hands its port when it ends.
pub enum Outcome {
    /// The future's value or error.
    Done(crate::value::Result<Value>),
    /// The future panicked with this message.
    Panic(String),
    /// The future was dropped without finishing (runtime shutdown).
    Cancelled,
}

const NONE: Payload = Payload::Scalar {
    tag: AffiTag::None,
    int: 0,
    float: 0.0,
};

fn scalar(tag: AffiTag, int: i64, float: f64) -> Payload {
    Payload::Scalar { tag, int, float }
}

/// `[kind, message]`, or `[kind, message, id]` when the error is a Python exception object that
/// Python (the same port) can raise again as it is.
fn error_payload(kind: &str, message: &str, origin: Option<u64>) -> Payload {
    let mut items = vec![Value::Str(kind.into()), Value::Str(message.into())];
    if let Some(id) = origin {
        items.push(Value::Int(id as i64));
    }
    let bytes = codec::encode(&Value::List(items)).expect("strings and an int always encode");
    Payload::Heap(AffiTag::Packed, Buffer::new(bytes))
}

/// The payload of a successful value, or the error it becomes if it cannot travel (a container
/// the codec refuses).
fn value_payload(value: Value) -> Result<Payload, crate::value::Error> {
    Ok(match value {
        Value::None => NONE,
        Value::Bool(b) => scalar(AffiTag::Bool, i64::from(b), 0.0),
        Value::Int(i) => scalar(AffiTag::Int, i, 0.0),
        Value::Float(x) => scalar(AffiTag::Float, 0, x),
        Value::Bytes(b) => Payload::Heap(AffiTag::Bytes, Buffer::new(b)),
        Value::Str(s) => Payload::Heap(AffiTag::Str, Buffer::new(s.into_bytes())),
        Value::Object(o) => Payload::Object(o),
        container => {
            let bytes = codec::encode(&container)
                .map_err(|e| crate::value::Error::new("encode", e.to_string()))?;
            Payload::Heap(AffiTag::Packed, Buffer::new(bytes))
        }
    })
}

impl Outcome {
    /// Status and payload of this outcome for port `port`, and the Python object the payload
    /// names (an original exception), which must stay alive until Python has read it.
    fn into_parts(self, port: u64) -> (AffiOutcome, Payload, Option<PyRef>) {
        let error = match self {
            Outcome::Done(Ok(value)) => match value_payload(value) {
                Ok(payload) => return (AffiOutcome::Ok, payload, None),
                Err(e) => e,
            },
            Outcome::Done(Err(e)) => e,
            Outcome::Panic(message) => {
                return (
                    AffiOutcome::Panic,
                    Payload::Heap(AffiTag::Str, Buffer::new(message.into_bytes())),
                    None,
                )
            }
            Outcome::Cancelled => return (AffiOutcome::Cancelled, NONE, None),
        };
        let (kind, message) = (error.kind.clone(), error.message.clone());
        let origin = error.unchanged_origin().filter(|r| r.port_id() == port);
        let payload = error_payload(&kind, &message, origin.as_ref().map(PyRef::id));
        (AffiOutcome::Error, payload, origin)
    }
}

struct Queued {
    token: u64,
    /// An `AffiOutcome` or an `AffiRequest`.
    status: i32,
    int_value: i64,
    payload: Payload,
    /// A Python object the payload names; kept alive until Python released the batch.
    keep: Option<PyRef>,
}

#[derive(Default)]
struct PortState {
    /// Completions not yet drained.
    queue: VecDeque<Queued>,
    /// Payloads of the last drained batch, freed by `release`.
    held: Vec<Buffer>,
    /// Python objects named by the last drained batch, dropped by `release`.
    held_refs: Vec<PyRef>,
    /// The payloads of inline outcomes by token, each freed by `release_inline` for its token:
    /// apart from `held`, because an inline call can finish while Python is still reading a
    /// drained batch, and per token, because one can finish while Python reads another.
    inline_held: Vec<(u64, Buffer)>,
    /// Python objects named by inline outcomes, by token.
    inline_refs: Vec<(u64, PyRef)>,
    /// Set once by `close`; never unset. Pushes after it free their payload at once.
    closed: bool,
    /// Python is draining: its last drain returned items, so it will drain again (until a
    /// drain returns none), and pushes need not wake it.
    draining: bool,
    /// Drain calls so far: the watchdog re-wakes a port that expects a drain and gets none.
    drains: u64,
}

/// A completion port.
pub struct Port {
    id: AtomicU64,
    wake: AffiWake,
    /// The eventfd for `AffiWake::Fd`, else -1. Closed on drop.
    fd: i32,
    state: Mutex<PortState>,
    /// Signalled by the wake of an `AffiWake::Wait` port (see [`Port::wait`]).
    ready: Condvar,
}

/// Items and bytes per batch of stream items, at most.
const MAX_BATCH_ITEMS: u32 = 4096;
const MAX_BATCH_BYTES: usize = 1 << 20;

thread_local! {
    /// The port whose wake-ups this thread holds, and whether one was needed.
    static HELD_WAKE: Cell<(u64, bool)> = const { Cell::new((0, false)) };
}

/// Runs `f`, a C call Python makes on the loop thread of port `port`, holding that port's
/// wake-ups: a push that would wake the loop does not, and the second value returned says
/// whether one did, so that the caller drains after the call instead. This saves the loop
/// from waking itself through the notifier thread or the eventfd, for instance when answering
/// a call resumes a `loop`-runtime task.
///
/// If `f` panics, the thread's previous state is restored as the panic unwinds, and a wake-up
/// held meanwhile is sent (the caller, unwinding, will not drain).
pub fn holding_wakes<R>(port: u64, f: impl FnOnce() -> R) -> (R, bool) {
    let restore = RestoreHeldWake {
        previous: HELD_WAKE.with(|held| held.replace((port, false))),
    };
    let result = f();
    let (_, needed) = HELD_WAKE.with(Cell::get);
    drop(restore);
    (result, needed)
}

/// Puts back the thread's held-wake state when dropped, on return or on unwind.
struct RestoreHeldWake {
    previous: (u64, bool),
}

impl Drop for RestoreHeldWake {
    fn drop(&mut self) {
        let (port, needed) = HELD_WAKE.with(|held| held.replace(self.previous));
        if needed && std::thread::panicking() {
            if let Ok(port) = Port::get(port) {
                WAKES.inc();
                port.wake();
            }
        }
    }
}

/// Payloads of closed ports that Python may still be reading, by port id (see step 6).
#[derive(Default)]
struct Lingering {
    held: Vec<Buffer>,
    inline_held: Vec<(u64, Buffer)>,
}

static LINGERING: Mutex<Vec<(u64, Lingering)>> = Mutex::new(Vec::new());

fn lingering() -> MutexGuard<'static, Vec<(u64, Lingering)>> {
    LINGERING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes from closed port `id` what `take` picks from its lingering payloads (dropping the
/// entry once empty); returns whether the port had lingering payloads.
fn take_lingering(id: u64, take: impl FnOnce(&mut Lingering) -> Vec<Buffer>) -> bool {
    let freed = {
        let mut table = lingering();
        let Some(at) = table.iter().position(|(port, _)| *port == id) else {
            return false;
        };
        let freed = take(&mut table[at].1);
        let entry = &table[at].1;
        if entry.held.is_empty() && entry.inline_held.is_empty() {
            table.swap_remove(at);
        }
        freed
    };
    drop(freed); // outside the lock
    true
}

/// Removes the buffers held for inline outcome `token` from `held`.
fn take_token<T>(held: &mut Vec<(u64, T)>, token: u64) -> Vec<T> {
    let mut taken = Vec::new();
    let mut i = 0;
    while i < held.len() {
        if held[i].0 == token {
            taken.push(held.swap_remove(i).1);
        } else {
            i += 1;
        }
    }
    taken
}

static PORTS: Mutex<HandleTable<Arc<Port>>> = Mutex::new(HandleTable::new());

fn ports() -> MutexGuard<'static, HandleTable<Arc<Port>>> {
    PORTS.lock().unwrap_or_else(|e| e.into_inner())
}

impl Port {
    /// Opens a port and returns its id.
    pub fn open(wake: AffiWake) -> Result<u64, Failure> {
        let fd = match wake {
            AffiWake::Threadsafe | AffiWake::Wait => -1,
            AffiWake::Fd => new_eventfd()?,
        };
        let port = Arc::new(Port {
            id: AtomicU64::new(0),
            wake,
            fd,
            state: Mutex::new(PortState::default()),
            ready: Condvar::new(),
        });
        LIVE_PORTS.inc();
        let mut table = ports();
        let id = table.insert(port.clone());
        port.id.store(id, Ordering::Relaxed);
        drop(table);
        crate::watchdog::port_opened();
        Ok(id)
    }

    /// The open port with this id.
    pub fn get(id: u64) -> Result<Arc<Port>, Failure> {
        ports()
            .get(id)
            .cloned()
            .ok_or_else(|| handle_table::miss(id, "port", closed))
    }

    /// Closes the port with this id: later pushes are dropped, queued payloads freed, and the
    /// tasks bound to it cancelled.
    pub fn close(id: u64) -> Result<(), Failure> {
        let port = ports()
            .remove(id)
            .ok_or_else(|| handle_table::miss(id, "port", closed))?;
        let (queued, refs, inline_refs) = {
            let mut state = port.lock();
            state.closed = true;
            // Python may still be reading the drained batch and the inline outcomes (on the
            // loop thread, while another thread closes the port): their payloads linger until
            // released. Taken under the port's lock, so no drain adds to them afterwards.
            let reading = Lingering {
                held: std::mem::take(&mut state.held),
                inline_held: std::mem::take(&mut state.inline_held),
            };
            if !reading.held.is_empty() || !reading.inline_held.is_empty() {
                lingering().push((id, reading));
            }
            // Held references point back at this port: dropping them here breaks the cycle
            // (Python has forgotten their objects already; their releases go nowhere).
            (
                std::mem::take(&mut state.queue),
                std::mem::take(&mut state.held_refs),
                std::mem::take(&mut state.inline_refs),
            )
        };
        drop(queued);
        drop(refs);
        drop(inline_refs);
        close_hooks::run(id);
        Ok(())
    }

    /// Closes every open port (interpreter exit).
    pub fn close_all() {
        let ids: Vec<u64> = ports().iter().map(|(id, _)| id).collect();
        for id in ids {
            let _ = Port::close(id);
        }
    }

    /// This port's id.
    pub fn id(&self) -> u64 {
        self.id.load(Ordering::Relaxed)
    }

    /// The eventfd of an `fd` port.
    pub fn fd(&self) -> Result<i32, Failure> {
        if self.fd < 0 {
            return Err(Failure::new(
                AffiStatus::ErrValue,
                "the completion port does not use the fd wake strategy",
            ));
        }
        Ok(self.fd)
    }

    fn lock(&self) -> MutexGuard<'_, PortState> {
        // No user code runs under this lock, so a poisoned lock still guards valid state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Step 2 and 3: queues an outcome for `token`, waking Python if the queue was empty.
    pub fn push(&self, token: u64, outcome: Outcome) {
        let (status, payload, keep) = outcome.into_parts(self.id());
        self.enqueue(Queued {
            token,
            status: status as i32,
            int_value: 0,
            payload,
            keep,
        });
    }

    /// Queues one item of the stream Python reads as call `token`. An item that cannot travel
    /// (a container the codec refuses) is not queued: its error is returned, to end the stream.
    ///
    /// Items are encoded into the batch at the tail of the queue when that batch belongs to the
    /// same stream (one completion and one decode in Python for many items); objects travel
    /// alone, as handles.
    pub fn push_item(&self, token: u64, item: Value) -> crate::value::Result<()> {
        let encode_error = |e: codec::CodecError| crate::value::Error::new("encode", e.to_string());
        if let Value::Object(_) = item {
            self.enqueue(Queued {
                token,
                status: AffiOutcome::Item as i32,
                int_value: 0,
                payload: value_payload(item)?,
                keep: None,
            });
            return Ok(());
        }
        // Scalars are encoded under the lock (a few bytes); anything larger before taking it.
        let scalar = matches!(
            item,
            Value::None | Value::Bool(_) | Value::Int(_) | Value::Float(_)
        );
        let mut encoded = Vec::new();
        if !scalar {
            codec::encode_into(&item, &mut encoded).map_err(encode_error)?;
        }
        let wake = {
            let mut state = self.lock();
            if state.closed {
                return Ok(()); // dropped; the task is being cancelled
            }
            let wake = state.queue.is_empty() && !state.draining;
            let open = match state.queue.back_mut() {
                Some(Queued {
                    token: t,
                    payload: Payload::Batch(buffer, count),
                    ..
                }) if *t == token
                    && *count < MAX_BATCH_ITEMS
                    && buffer.0.len() + encoded.len() <= MAX_BATCH_BYTES =>
                {
                    Some((buffer, count))
                }
                _ => None,
            };
            let (buffer, count) = match open {
                Some(batch) => batch,
                None => {
                    let mut bytes = Vec::with_capacity(64 + encoded.len());
                    bytes.extend_from_slice(&codec::OPEN_LIST);
                    state.queue.push_back(Queued {
                        token,
                        status: AffiOutcome::Items as i32,
                        int_value: 0,
                        payload: Payload::Batch(Buffer::new(bytes), 0),
                        keep: None,
                    });
                    match state.queue.back_mut() {
                        Some(Queued {
                            payload: Payload::Batch(buffer, count),
                            ..
                        }) => (buffer, count),
                        _ => unreachable!("a batch was just queued"),
                    }
                }
            };
            if scalar {
                codec::encode_into(&item, &mut buffer.0).map_err(encode_error)?;
            } else {
                buffer.0.extend_from_slice(&encoded);
            }
            *count += 1;
            wake
        };
        if wake && !self.wake_held() {
            WAKES.inc();
            self.wake();
        }
        Ok(())
    }

    /// Queues a request for Python (same queue and wake as completions). Returns false if the
    /// port is closed: the request was dropped.
    pub fn push_request(
        &self,
        request: AffiRequest,
        token: u64,
        int_value: i64,
        args: Option<Buffer>,
    ) -> bool {
        let payload = match args {
            Some(buffer) => Payload::Heap(AffiTag::Packed, buffer),
            None => scalar(AffiTag::None, int_value, 0.0),
        };
        self.enqueue(Queued {
            token,
            status: request as i32,
            int_value,
            payload,
            keep: None,
        })
    }

    fn enqueue(&self, item: Queued) -> bool {
        let wake = {
            let mut state = self.lock();
            if state.closed {
                drop(state);
                drop(item);
                return false;
            }
            let wake = state.queue.is_empty() && !state.draining;
            state.queue.push_back(item);
            wake
        };
        if wake && !self.wake_held() {
            WAKES.inc();
            self.wake();
        }
        true
    }

    /// Whether the port is closed.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Whether this thread holds this port's wake-ups (see [`holding_wakes`]); if so, notes
    /// that one was needed.
    fn wake_held(&self) -> bool {
        HELD_WAKE.with(|held| {
            let (port, _) = held.get();
            let mine = port == self.id();
            if mine {
                held.set((port, true));
            }
            mine
        })
    }

    /// Every open port (for the watchdog).
    pub(crate) fn all_open() -> Vec<Arc<Port>> {
        ports().iter().map(|(_, port)| port.clone()).collect()
    }

    /// If this port expects a drain (items are queued, or the last drain returned some, so
    /// Python owes another): its drain count so far, and whether it wakes through the notifier.
    pub(crate) fn drain_expected(&self) -> Option<(u64, bool)> {
        let state = self.lock();
        let expects = !state.closed && (state.draining || !state.queue.is_empty());
        expects.then_some((state.drains, self.wake == AffiWake::Threadsafe))
    }

    /// Wakes the loop again, as a push would (the watchdog, when an expected drain is late).
    pub(crate) fn rewake(&self) {
        self.wake();
    }

    fn wake(&self) {
        match self.wake {
            AffiWake::Threadsafe => {
                notifier::notify(self.id());
            }
            AffiWake::Wait => {
                // The waiter checks the queue under the lock before it sleeps, and the push
                // that took the queue from empty happened under it: no wake-up is lost.
                self.ready.notify_all();
            }
            AffiWake::Fd => {
                let one: u64 = 1;
                // SAFETY: `fd` is our eventfd, open until this port is dropped (we hold `&self`);
                // the buffer is 8 readable bytes. A full counter (EAGAIN) still leaves the fd
                // readable, which is all a wake needs, so the result is ignored.
                unsafe {
                    libc::write(self.fd, (&one as *const u64).cast(), 8);
                }
            }
        }
    }

    /// Blocks the calling thread until the queue holds items or the port is closed, for at most
    /// `timeout`; returns whether items are queued. Only for `AffiWake::Wait` ports, whose
    /// wake signals this wait; the caller must drain until a drain returns none before it
    /// waits again (as after any wake). Never called on a runtime thread: it is how a thread
    /// without an event loop (Python's, with the GIL released) waits for its own call.
    pub fn wait(&self, timeout: Duration) -> Result<bool, Failure> {
        if self.wake != AffiWake::Wait {
            return Err(Failure::new(
                AffiStatus::ErrValue,
                "only a port opened with the wait strategy can be waited on",
            ));
        }
        let state = self.lock();
        let (state, _) = self
            .ready
            .wait_timeout_while(state, timeout, |s| s.queue.is_empty() && !s.closed)
            .unwrap_or_else(|e| e.into_inner());
        Ok(!state.queue.is_empty())
    }

    /// Step 4: moves up to `out.len()` completions into `out`; returns how many. After a drain
    /// that returned items, the caller must drain again until one returns none (pushes made
    /// meanwhile do not wake it).
    pub fn drain(&self, out: &mut [AffiCompletion]) -> usize {
        if self.fd >= 0 {
            let mut counter: u64 = 0;
            // SAFETY: as in `wake`; reading resets the eventfd so the loop stops seeing it
            // readable. Non-blocking: EAGAIN just means no wake was pending.
            unsafe {
                libc::read(self.fd, (&mut counter as *mut u64).cast(), 8);
            }
        }
        let mut state = self.lock();
        if state.closed {
            return 0; // its queue was freed; nothing may be added to what lingers
        }
        let n = out.len().min(state.queue.len());
        state.draining = n > 0;
        state.drains = state.drains.wrapping_add(1);
        let PortState {
            queue,
            held,
            held_refs,
            ..
        } = &mut *state;
        for (slot, item) in out.iter_mut().zip(queue.drain(..n)) {
            let (completion, buffer, keep) = hand_over(item);
            held.extend(buffer);
            held_refs.extend(keep);
            *slot = completion;
        }
        n
    }

    /// The eager path: hands Python the outcome of call `token`, whose future was ready on its
    /// first poll, without queueing or waking. Its payload is held until `release_inline` for
    /// `token`. Fails with `ErrClosed` (the outcome is dropped) if the port is closed.
    pub fn deliver_inline(&self, token: u64, outcome: Outcome) -> Result<AffiCompletion, Failure> {
        let (status, payload, keep) = outcome.into_parts(self.id());
        let item = Queued {
            token,
            status: status as i32,
            int_value: 0,
            payload,
            keep,
        };
        let mut state = self.lock();
        if state.closed {
            drop(state);
            drop(item);
            return Err(closed());
        }
        let (completion, buffer, keep) = hand_over(item);
        if let Some(buffer) = buffer {
            state.inline_held.push((token, buffer));
        }
        if let Some(keep) = keep {
            state.inline_refs.push((token, keep));
        }
        Ok(completion)
    }

    /// Frees the payload of inline outcome `token` (and lets go of the Python object it named);
    /// other inline outcomes are untouched.
    pub fn release_inline(&self, token: u64) {
        let (held, refs) = {
            let mut state = self.lock();
            if state.closed {
                drop(state);
                take_lingering(self.id(), |l| take_token(&mut l.inline_held, token));
                return;
            }
            (
                take_token(&mut state.inline_held, token),
                take_token(&mut state.inline_refs, token),
            )
        };
        drop(held);
        drop(refs);
    }

    /// Step 5: frees the payloads of the drained batches (and lets go of the Python objects
    /// they named, which queues their release requests).
    pub fn release(&self) {
        let (held, refs) = {
            let mut state = self.lock();
            if state.closed {
                drop(state);
                take_lingering(self.id(), |l| std::mem::take(&mut l.held));
                return;
            }
            (
                std::mem::take(&mut state.held),
                std::mem::take(&mut state.held_refs),
            )
        };
        drop(held);
        drop(refs);
    }

    /// `release` for port `id`, also once it is closed (its batch lingers until then). Fails
    /// with `ErrClosed` if the port is closed and held nothing.
    pub fn release_id(id: u64) -> Result<(), Failure> {
        match Port::get(id) {
            Ok(port) => port.release(),
            Err(e) => {
                if !take_lingering(id, |l| std::mem::take(&mut l.held)) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// `release_inline` for port `id` and call `token`, also once the port is closed. Fails
    /// with `ErrClosed` if the port is closed and held nothing.
    pub fn release_inline_id(id: u64, token: u64) -> Result<(), Failure> {
        match Port::get(id) {
            Ok(port) => port.release_inline(token),
            Err(e) => {
                if !take_lingering(id, |l| take_token(&mut l.inline_held, token)) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

fn closed() -> Failure {
    Failure::new(AffiStatus::ErrClosed, "the completion port is closed")
}

/// Turns a queued item into the C struct Python reads, registering objects in the object
/// table. Also returns the buffer its pointer refers to and the Python object it names, which
/// the caller holds until Python releases them.
/// The completion of an outcome handed to Python without a port (a sync call), and the buffer
/// its `data` points into, which the caller holds until Python frees it. An object result is
/// registered in the object table, as a drain would.
pub(crate) fn detached_completion(outcome: Outcome) -> (AffiCompletion, Option<Buffer>) {
    // No port id is 0, so an error never names a Python exception object here.
    let (status, payload, keep) = outcome.into_parts(0);
    debug_assert!(keep.is_none());
    let item = Queued {
        token: 0,
        status: status as i32,
        int_value: 0,
        payload,
        keep,
    };
    let (completion, buffer, _) = hand_over(item);
    (completion, buffer)
}

fn hand_over(item: Queued) -> (AffiCompletion, Option<Buffer>, Option<PyRef>) {
    let mut held = None;
    let (tag, int_value, float_value, data, len) = match item.payload {
        Payload::Scalar { tag, int, float } => (tag, int, float, std::ptr::null(), 0),
        Payload::Heap(tag, buffer) => {
            let (ptr, len) = (buffer.0.as_ptr(), buffer.0.len());
            // Moving the Buffer moves only the Vec header; its heap block, which `ptr` points
            // to, stays where it is until the holder drops it.
            held = Some(buffer);
            (tag, item.int_value, 0.0, ptr, len)
        }
        Payload::Batch(mut buffer, count) => {
            codec::finish_list(&mut buffer.0, count);
            let (ptr, len) = (buffer.0.as_ptr(), buffer.0.len());
            held = Some(buffer); // as for `Heap`: the heap block stays put
            (AffiTag::Packed, 0, 0.0, ptr, len)
        }
        Payload::Object(o) => {
            // `*o`: the object's own type, not the `Arc`'s.
            let index = crate::manifest::object_index(std::any::Any::type_id(&*o));
            (
                AffiTag::Object,
                object::register(o) as i64,
                0.0,
                std::ptr::null(),
                index,
            )
        }
    };
    let completion = AffiCompletion {
        token: item.token,
        status: item.status,
        tag: tag as u32,
        int_value,
        float_value,
        data,
        len,
    };
    (completion, held, item.keep)
}

impl Drop for Port {
    fn drop(&mut self) {
        if self.fd >= 0 {
            // SAFETY: we own the descriptor and nothing else can use it: every user holds an
            // `Arc<Port>`, and this is the last one.
            unsafe {
                libc::close(self.fd);
            }
        }
        LIVE_PORTS.dec();
    }
}

#[cfg(target_os = "linux")]
fn new_eventfd() -> Result<i32, Failure> {
    // SAFETY: plain syscall wrapper; the returned descriptor is owned by the new port.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(Failure::new(
            AffiStatus::ErrRuntime,
            format!("eventfd failed: {}", std::io::Error::last_os_error()),
        ));
    }
    Ok(fd)
}

#[cfg(not(target_os = "linux"))]
fn new_eventfd() -> Result<i32, Failure> {
    Err(Failure::new(
        AffiStatus::ErrRuntime,
        "the fd wake strategy needs eventfd (Linux); use wake=\"threadsafe\"",
    ))
}
