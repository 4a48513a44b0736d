//! Fuzz target: the container decoder on arbitrary bytes.
//!
//! Any input must decode or fail with a `CodecError`, never panic, overflow the stack or
//! allocate beyond the input's size; whatever decodes must encode again and decode back to
//! the same value (the encoder accepts everything the decoder produces). The same bytes are
//! also read as a carrier list (`decode_items`, as call arguments and stream batches are).
#![no_main]

use asyncffi::codec;
use asyncffi::Value;
use libfuzzer_sys::fuzz_target;

fn check_round_trip(value: &Value) {
    let bytes = codec::encode(value).expect("a decoded value always encodes");
    assert_eq!(&codec::decode(&bytes).expect("re-decodes"), value);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = codec::decode(data) {
        check_round_trip(&value);
    }
    if let Ok(items) = codec::decode_items(data) {
        let bytes = codec::encode_items(&items).expect("decoded items always encode");
        assert_eq!(codec::decode_items(&bytes).expect("re-decodes"), items);
        for item in &items {
            // An item may be one level deeper than a value on its own can be.
            if let Ok(bytes) = codec::encode(item) {
                assert_eq!(&codec::decode(&bytes).expect("re-decodes"), item);
            }
        }
    }
});
