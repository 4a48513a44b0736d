//! What closing a port does to the features bound to it: each feature that binds work to a port
//! (tasks, local tasks, calls into Python, Python iterators read by Rust, ...) registers a
//! [`CloseHook`] in [`CLOSE_HOOKS`], a link-time registry, next to its own code; `Port::close`
//! runs every hook with the port's id. The port names no feature, and a feature added later
//! needs no change to it. Registering costs nothing at run time.
//!
//! Hooks run in two phases: first those that drop the work bound to the port (its tasks: they
//! must not see what the second phase does), then those that fail what other work waits for
//! from it (calls and streams whose answers can no longer come). Within a phase, hooks must not
//! depend on each other's order (the linker's).
//!
//! ```ignore
//! #[linkme::distributed_slice(close_hooks::CLOSE_HOOKS)]
//! static CLOSE_HOOK: CloseHook = CloseHook { phase: Phase::Drop, run: cancel_port };
//! ```

/// When a close hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Drops the work bound to the closing port.
    Drop,
    /// Fails what waits for an answer from the closing port.
    Fail,
}

/// A feature's part in closing a port.
#[derive(Debug)]
pub struct CloseHook {
    /// When it runs.
    pub phase: Phase,
    /// Called with the id of the port being closed, outside every port lock; a hook of a
    /// feature that never bound anything to that port does nothing.
    pub run: fn(u64),
}

/// Every feature's close hook.
#[linkme::distributed_slice]
pub static CLOSE_HOOKS: [CloseHook];

/// Runs every hook for port `port`, phase by phase (called by `Port::close`).
pub(crate) fn run(port: u64) {
    for phase in [Phase::Drop, Phase::Fail] {
        for hook in CLOSE_HOOKS.iter().filter(|hook| hook.phase == phase) {
            (hook.run)(port);
        }
    }
}
