//! A method on `&mut self`: objects are shared.

struct Counter(u32);

#[asyncffi::object]
impl Counter {
    fn bump(&mut self) {
        self.0 += 1;
    }
}

fn main() {}
