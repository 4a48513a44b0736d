//! Exports the program's symbols, so that the Python it runs can load the program itself.
fn main() {
    println!("cargo:rustc-link-arg-bins=-rdynamic");
    println!("cargo:rustc-link-arg-tests=-rdynamic");
}
