//! A Python callable in a sync function, which has no event loop to call it on.

#[asyncffi::export]
fn call_back(handler: asyncffi::PyCallable) -> u32 {
    let _ = handler;
    1
}

fn main() {}
