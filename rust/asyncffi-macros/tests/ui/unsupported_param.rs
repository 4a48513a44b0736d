//! A parameter type with no conversion: the error names the parameter and the type.

struct Opaque;

#[asyncffi::export]
async fn takes(count: u32, thing: Opaque) -> u32 {
    let _ = thing;
    count
}

fn main() {}
