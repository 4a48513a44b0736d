//! An unknown parameter option.

#[asyncffi::export]
async fn f(#[asyncffi(optional)] x: u32) -> u32 {
    x
}

fn main() {}
