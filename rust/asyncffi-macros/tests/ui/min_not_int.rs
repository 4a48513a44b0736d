//! `#[asyncffi(min = ...)]` on a parameter that is not an integer.

#[asyncffi::export]
async fn scale(#[asyncffi(min = 0)] x: f64) -> f64 {
    x
}

fn main() {}
