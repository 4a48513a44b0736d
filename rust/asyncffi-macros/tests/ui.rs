//! Compile errors: a type that cannot cross, a borrowed parameter, a Python callable or a
//! runtime in a sync function, an unknown runtime, a bad receiver, an unsupported return,
//! `Args` before another positional parameter, a default before a required parameter, `min`
//! on a non-integer, an unknown parameter option, a parameter named as an added keyword.

#[test]
fn compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
