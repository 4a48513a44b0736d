//! Identity functions, sync and async, for every type the macros carry: the property tests
//! (`tests/test_properties.py`) send hypothesis-made values through each and expect them back
//! exactly.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use asyncffi::Value;

use crate::exported::Notebook;

/// A struct, as serde makes it: a dict by field name.
#[derive(serde::Serialize, serde::Deserialize, asyncffi::Record)]
pub struct Point {
    x: i32,
    y: f64,
    label: String,
    tags: Vec<String>,
    note: Option<String>,
}

/// An enum, as serde makes it: a unit variant is its name, the others `{variant: data}`.
#[derive(serde::Serialize, serde::Deserialize, asyncffi::Record)]
pub enum Shape {
    /// A unit variant.
    Empty,
    /// A newtype variant.
    Circle(f64),
    /// A tuple variant.
    Segment(i32, i32),
    /// A struct variant.
    Rect {
        /// Width.
        w: u32,
        /// Height.
        h: u32,
    },
}

macro_rules! round_trips {
    ($($sync:ident, $later:ident: $t:ty;)*) => {$(
        /// Returns `x` (sync).
        #[asyncffi::export]
        fn $sync(x: $t) -> $t {
            x
        }

        /// Returns `x` (async).
        #[asyncffi::export]
        async fn $later(x: $t) -> $t {
            x
        }
    )*};
}

round_trips! {
    rt_i8, rt_i8_later: i8;
    rt_i16, rt_i16_later: i16;
    rt_i32, rt_i32_later: i32;
    rt_i64, rt_i64_later: i64;
    rt_isize, rt_isize_later: isize;
    rt_u8, rt_u8_later: u8;
    rt_u16, rt_u16_later: u16;
    rt_u32, rt_u32_later: u32;
    rt_u64, rt_u64_later: u64;
    rt_usize, rt_usize_later: usize;
    rt_f32, rt_f32_later: f32;
    rt_f64, rt_f64_later: f64;
    rt_bool, rt_bool_later: bool;
    rt_str, rt_str_later: String;
    rt_bytes, rt_bytes_later: Vec<u8>;
    rt_opt_i64, rt_opt_i64_later: Option<i64>;
    rt_opt_str, rt_opt_str_later: Option<String>;
    rt_vec_u64, rt_vec_u64_later: Vec<u64>;
    rt_vec_i8, rt_vec_i8_later: Vec<i8>;
    rt_vec_str, rt_vec_str_later: Vec<String>;
    rt_vec_opt_f64, rt_vec_opt_f64_later: Vec<Option<f64>>;
    rt_hashmap, rt_hashmap_later: HashMap<String, i64>;
    rt_btreemap, rt_btreemap_later: BTreeMap<String, Vec<u16>>;
    rt_tuple, rt_tuple_later: (i64, String, bool);
    rt_value, rt_value_later: Value;
    rt_unit, rt_unit_later: ();
    rt_point, rt_point_later: Point;
    rt_shape, rt_shape_later: Shape;
    rt_object, rt_object_later: Arc<Notebook>;
}

/// A scalar under another name: without `scalar = "id"` it would travel as a buffer.
pub type NoteId = u64;

/// Returns `id` (an alias of u64, passed as one C scalar).
#[asyncffi::export(scalar = "id")]
fn rt_alias(id: NoteId) -> NoteId {
    id
}

/// Returns `id` (async; an alias of u64, passed as one C scalar).
#[asyncffi::export(scalar = "id")]
async fn rt_alias_later(id: NoteId) -> NoteId {
    id
}
