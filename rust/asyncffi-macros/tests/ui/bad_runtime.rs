//! A runtime name that no library can register (a runtime's name has no spaces).

#[asyncffi::export(runtime = "my runtime")]
async fn f() {}

fn main() {}
