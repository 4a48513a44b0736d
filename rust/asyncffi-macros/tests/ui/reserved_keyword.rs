//! A stream function's parameter named `buffer`, the keyword asyncffi adds.

#[asyncffi::export]
fn numbers(buffer: u32) -> impl asyncffi::Stream<Item = u32> {
    asyncffi::stream::iter(0..buffer)
}

fn main() {}
