//! A positional parameter with a default followed by one without, as Python refuses.

#[asyncffi::export]
async fn greet(#[asyncffi(default = "hi")] word: String, name: String) -> String {
    format!("{word} {name}")
}

fn main() {}
