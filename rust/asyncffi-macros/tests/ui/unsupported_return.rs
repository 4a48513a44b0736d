//! A result type with no conversion: the error names the type.

struct Opaque;

#[asyncffi::export]
fn gives() -> Opaque {
    Opaque
}

fn main() {}
