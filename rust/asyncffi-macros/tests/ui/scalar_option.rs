//! `scalar = "..."` names a parameter the function does not have, or one whose type is not a
//! scalar: both are compile errors.

type Id = u64;

#[asyncffi::export(scalar = "ident")]
fn typo(id: Id) -> Id {
    id
}

#[asyncffi::export(scalar = "name")]
fn not_a_scalar(name: String) -> String {
    name
}

fn main() {}
