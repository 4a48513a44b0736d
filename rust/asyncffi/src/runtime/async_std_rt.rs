//! async-std: its global executor starts its own threads on the first spawn.

use std::future::Future;

/// Runs `future` on async-std's global executor, detached (dropping the handle detaches).
pub fn spawn<F>(future: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    drop(async_std::task::spawn(future));
}
