//! `Args` (the rest of the positional arguments) followed by another positional parameter.

#[asyncffi::export]
async fn call(args: asyncffi::Args, n: u32) -> u32 {
    let _ = args;
    n
}

fn main() {}
