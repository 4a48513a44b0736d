//! What a generated shim costs next to a hand-written one: `add(a: i64, b: i64)` against a
//! copy of the hand-written `affi_demo_add` the built-ins had, both finishing inline, taken and
//! released as Python does. Run with `cargo test --release -p asyncffi-macros --test cost -- --ignored
//! --nocapture`.

use std::time::Instant;

use asyncffi::ffi::{affi_port_open, affi_port_release_inline, affi_port_take_inline};
use asyncffi::port::{AffiCompletion, AffiWake};
use asyncffi::{guard, spawn, Error, Runtime, Value};

#[asyncffi::export]
async fn add(a: i64, b: i64) -> Result<i64, Error> {
    a.checked_add(b)
        .ok_or_else(|| Error::new("overflow", format!("{a} + {b} does not fit in 64 bits")))
}

/// The built-in, as written by hand.
#[no_mangle]
pub extern "C" fn hand_add(port: u64, token: u64, a: i64, b: i64) -> i64 {
    guard(|| {
        let task = spawn(Runtime::Tokio, port, token, async move {
            a.checked_add(b)
                .map(Value::Int)
                .ok_or_else(|| Error::new("overflow", format!("{a} + {b} does not fit in 64 bits")))
        })?;
        Ok(task as i64)
    })
}

fn per_call(port: u64, f: extern "C" fn(u64, u64, i64, i64) -> i64) -> f64 {
    const N: u64 = 1_000_000;
    let mut c = AffiCompletion::default();
    let start = Instant::now();
    for token in 1..=N {
        assert_eq!(f(port, token, token as i64, 1), 0);
        // SAFETY: `c` is a writable completion.
        unsafe { affi_port_take_inline(port, token, &mut c) };
        affi_port_release_inline(port, token);
    }
    start.elapsed().as_nanos() as f64 / N as f64
}

#[test]
#[ignore = "a measurement: run it alone, in release"]
fn generated_add_costs_what_the_hand_written_one_does() {
    let port = affi_port_open(AffiWake::Fd as u32) as u64;
    per_call(port, hand_add); // warm up the runtime
    for round in 0..3 {
        let hand = per_call(port, hand_add);
        let generated = per_call(port, cost_add);
        println!("round {round}: hand-written {hand:.1} ns/call, generated {generated:.1} ns/call");
    }
}

#[derive(serde::Serialize, serde::Deserialize, Clone)]
struct Event {
    id: u64,
    name: String,
    tags: Vec<String>,
}

fn by_hand(e: Event) -> Value {
    Value::Dict(vec![
        ("id".into(), Value::Int(e.id as i64)),
        ("name".into(), Value::Str(e.name)),
        (
            "tags".into(),
            Value::List(e.tags.into_iter().map(Value::Str).collect()),
        ),
    ])
}

fn ns_per<R>(n: u32, mut f: impl FnMut() -> R) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(f());
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

#[test]
#[ignore = "a measurement: run it alone, in release"]
fn serde_adapter_next_to_hand_written_conversions() {
    let event = Event {
        id: 7,
        name: "an event".into(),
        tags: vec!["a".into(), "bb".into(), "ccc".into()],
    };
    let packed = asyncffi::codec::encode(&by_hand(event.clone())).unwrap();
    for round in 0..3 {
        let hand_out = ns_per(200_000, || by_hand(event.clone()));
        let serde_out = ns_per(200_000, || {
            asyncffi::serde_value::to_value(&event.clone()).unwrap()
        });
        // The alternative weighed: through rmp-serde's encoding and the codec's decoder.
        let rmp_out = ns_per(200_000, || {
            let bytes = rmp_serde::to_vec_named(&event.clone()).unwrap();
            asyncffi::codec::decode(&bytes).unwrap()
        });
        let hand_in = ns_per(200_000, || {
            let v = asyncffi::codec::decode(&packed).unwrap();
            let Value::Dict(mut d) = v else { panic!() };
            d.pop()
        });
        let serde_in = ns_per(200_000, || {
            asyncffi::serde_value::from_bytes::<Event>(&packed).unwrap()
        });
        println!(
            "round {round}: result hand {hand_out:.0} ns, serde {serde_out:.0} ns, \
             via rmp-serde {rmp_out:.0} ns; \
             parameter decode-to-Value {hand_in:.0} ns, serde from bytes {serde_in:.0} ns"
        );
    }
}
