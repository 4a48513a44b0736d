//! A borrowed parameter: exported functions take owned values.

#[asyncffi::export]
async fn shout(text: &str) -> String {
    text.to_uppercase()
}

fn main() {}
