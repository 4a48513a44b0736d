//! An unknown runtime name.

#[asyncffi::export(runtime = "smol")]
async fn f() {}

fn main() {}
