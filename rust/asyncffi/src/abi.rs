//! The C ABI's types and constants, in one place: every `#[repr(C)]` type and constant of the
//! C header (`rust/include/asyncffi.h`, generated from this module by cbindgen), the ABI
//! version, the wake callback's type and the layout of the ids the ABI hands out.
//!
//! The modules that use them re-export them where they belong (`boundary::AffiStatus`,
//! `port::AffiCompletion`, `ffi::AffiStats`, ...); their values are the protocol and never
//! change within an `ABI_VERSION`.

/// The version of this C ABI. Python refuses a library whose version it does not know.
/// Version 4: ids carry the tag of the library that issued them (see `handle_table`).
/// Version 5: the runtimes' names and flavours come from `affi_runtimes`, not the header.
/// Version 6: the log bridge (`affi_log_*`), and wait ports (`AFFI_WAKE_WAIT`,
/// `affi_port_wait`) for calls made without a loop.
pub const ABI_VERSION: u32 = 6;

/// Counters for tests and monitoring; see `stats.rs` for what each one counts.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AffiStats {
    /// Tasks spawned and not yet dropped.
    pub live_tasks: i64,
    /// Heap payloads not yet freed.
    pub live_values: i64,
    /// Ports not yet dropped.
    pub live_ports: i64,
    /// Objects held by Python.
    pub live_objects: i64,
    /// Python callables held by Rust.
    pub live_callables: i64,
    /// Calls from Rust to Python waiting for their answer.
    pub live_calls: i64,
    /// Python exception objects held by Rust.
    pub live_py_errors: i64,
    /// Python iterators held by Rust.
    pub live_py_streams: i64,
    /// Tasks ever spawned.
    pub spawned: i64,
    /// Tasks that reached an outcome.
    pub completed: i64,
    /// Tasks dropped before an outcome.
    pub cancelled: i64,
    /// Tasks that panicked.
    pub panicked: i64,
    /// Wake-ups sent to Python.
    pub wakes: i64,
}

/// The log bridge's counters (see `logging`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AffiLogStats {
    /// Records queued for Python since the library loaded.
    pub crossed: u64,
    /// Records dropped because the queue was full (or the bridge closed).
    pub dropped: u64,
    /// Records queued now.
    pub queued: u64,
    /// How many records the queue holds before it drops.
    pub capacity: u64,
}

/// Failure codes returned (negated into `i32`/`i64`) by C ABI functions.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffiStatus {
    /// Success.
    Ok = 0,
    /// An argument has the wrong type or shape.
    ErrType = -1,
    /// An argument has the right type but a bad value.
    ErrValue = -2,
    /// An integer does not fit.
    ErrOverflow = -3,
    /// The port, task or object handle is stale, forged or closed.
    ErrClosed = -4,
    /// The runtime cannot take work: shut down, failed to start, or configured in conflict.
    ErrRuntime = -5,
    /// Rust code panicked inside the call.
    ErrPanic = -6,
}

/// How a port wakes its event loop.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffiWake {
    /// The notifier thread calls the registered wake callback with the port id.
    Threadsafe = 0,
    /// The port writes to an eventfd that the loop watches.
    Fd = 1,
    /// No event loop: a thread blocks in `affi_port_wait` until the queue has items (a
    /// blocking call from synchronous code).
    Wait = 2,
}

/// The kind of value in a completion.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffiTag {
    /// `None`.
    None = 0,
    /// `bool` in `int_value` (0 or 1).
    Bool = 1,
    /// `int` in `int_value`.
    Int = 2,
    /// `float` in `float_value`.
    Float = 3,
    /// `bytes` at `data`/`len`.
    Bytes = 4,
    /// UTF-8 `str` at `data`/`len`.
    Str = 5,
    /// A MessagePack-encoded container at `data`/`len`.
    Packed = 6,
    /// An opaque Rust object: its handle in `int_value`, now owned by Python.
    Object = 7,
}

/// How a task ended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffiOutcome {
    /// The value is the result.
    Ok = 0,
    /// The value is a packed `[kind, message]` pair.
    Error = 1,
    /// The value is the panic message (`str`).
    Panic = 2,
    /// The task was dropped without an outcome (its runtime shut down).
    Cancelled = 3,
    /// One item of a stream (the task goes on): the value is the item. The stream's end comes
    /// as the task's outcome, after its last item.
    Item = 4,
    /// Several items of a stream, in order: the value is a packed list of them.
    Items = 5,
}

/// A request from Rust to Python, carried in a completion's `status` (values disjoint from
/// `AffiOutcome`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffiRequest {
    /// Call Python object `int_value` (a callable) with the packed argument list at `data`;
    /// `token` is the call id to answer with `affi_call_complete`.
    Call = 16,
    /// Cancel the Python task of call `token`; Rust no longer waits for its answer.
    Cancel = 17,
    /// Rust dropped its last reference to Python object `int_value`: forget it.
    Release = 18,
    /// Send up to `token` more items of Python iterator `int_value` (`affi_pystream_items`).
    Pull = 19,
    /// Poll local task `token` (a `loop`-runtime task) on the loop thread: `affi_task_poll`.
    Poll = 20,
}

/// One completion as Python reads it from the drain array.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AffiCompletion {
    /// The token Python gave when it started the call.
    pub token: u64,
    /// An `AffiOutcome`, or an `AffiRequest` for requests from Rust to Python.
    pub status: i32,
    /// An `AffiTag`.
    pub tag: u32,
    /// Payload of `Bool`, `Int` and `Object`; the Python object id of a request.
    pub int_value: i64,
    /// Payload of `Float`.
    pub float_value: f64,
    /// Payload of `Bytes`, `Str` and `Packed`; valid until the next `affi_port_release` (a
    /// drained completion) or `affi_port_release_inline` for its token (an inline one).
    pub data: *const u8,
    /// Length of `data` in bytes; for an `Object` (whose `data` is NULL), which exported
    /// object type it is: its 1-based position in the manifest's objects, 0 if none.
    pub len: usize,
}

impl Default for AffiCompletion {
    /// A blank completion, to fill a drain buffer with.
    fn default() -> Self {
        AffiCompletion {
            token: 0,
            status: -1,
            tag: 0,
            int_value: 0,
            float_value: 0.0,
            data: std::ptr::null(),
            len: 0,
        }
    }
}

/// The wake callback's C type: called with the id of a port whose queue became non-empty.
pub type AffiWakeFn = extern "C" fn(port: u64);

/// The layout of an id (a task, port, object or call id; see `handle_table`): a `u64` of three
/// fields, bit 63 always clear. The library tag is in bits `0..HANDLE_TAG_BITS`, the
/// generation in the next `HANDLE_GENERATION_BITS`, the slot index in the top
/// `HANDLE_INDEX_BITS`.
pub const HANDLE_TAG_BITS: u32 = 20;
/// Bits of an id's generation (see [`HANDLE_TAG_BITS`]).
pub const HANDLE_GENERATION_BITS: u32 = 21;
/// Bits of an id's slot index (see [`HANDLE_TAG_BITS`]): at most 2^22 live values per table.
pub const HANDLE_INDEX_BITS: u32 = 22;
