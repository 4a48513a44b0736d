//! A `Runtime` parameter in a sync function, which runs on no runtime.

#[asyncffi::export]
fn where_am_i(runtime: asyncffi::Runtime) -> u32 {
    let _ = runtime;
    1
}

fn main() {}
