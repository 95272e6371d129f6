//! Shared input shaping for the codec targets: a request path and a type model drawn from
//! the first bytes, so that the decoders get past their type lookups.

#![allow(dead_code)]

use lwm2md::codec::senml::{RawRecord, SenmlValue};
use lwm2md::codec::{CodecError, Record};
use lwm2md::path::Path;
use lwm2md::value::{ResourceType, Value};

pub const TYPES: [ResourceType; 10] = [
    ResourceType::Integer,
    ResourceType::Unsigned,
    ResourceType::Float,
    ResourceType::Boolean,
    ResourceType::String,
    ResourceType::Opaque,
    ResourceType::Time,
    ResourceType::ObjLnk,
    ResourceType::CoreLnk,
    ResourceType::None,
];

/// The model the decoder sees: each resource gets a type from `seed` and its IDs, and
/// some resources are unknown.
#[derive(Clone, Copy, Debug)]
pub struct Model {
    seed: u8,
    /// Fixed type for every resource, when the input asks for one.
    fixed: Option<ResourceType>,
}

impl Model {
    pub fn ty(&self, path: &Path) -> Option<ResourceType> {
        if let Some(ty) = self.fixed {
            return Some(ty);
        }
        let mix = path.ids().iter().fold(u32::from(self.seed), |acc, &id| {
            acc.wrapping_mul(31).wrapping_add(u32::from(id))
        });
        // One resource in eleven is unknown to the model.
        match (mix % 11) as usize {
            10 => None,
            k => TYPES.get(k).copied(),
        }
    }
}

/// Splits off a header: a model and a request path of 0..=4 IDs (small IDs, so that
/// payload IDs fall under it often).
pub fn shape(data: &[u8]) -> Option<(Model, Path, &[u8])> {
    let (&[sel, seed, depth, a, b, c, d], rest) = data.split_first_chunk::<7>()?;
    let fixed = if sel & 0x80 != 0 {
        TYPES.get(usize::from(sel & 0x0f) % TYPES.len()).copied()
    } else {
        None
    };
    let ids = [a, b, c, d].map(|x| u16::from(x % 8));
    let depth = usize::from(depth % 5);
    let base = Path::from_ids(ids.get(..depth)?).ok()?;
    Some((Model { seed, fixed }, base, rest))
}

/// Equality that treats NaN as equal to itself, since the codecs carry NaN through.
pub fn same_records(a: &[Record], b: &[Record]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.path == y.path && same_value(&x.value, &y.value))
}

pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        }
        _ => a == b,
    }
}

/// Decoding what was encoded from decoded records gives the same records back.
pub fn check_round_trip(
    encode: impl Fn(&Path, &[Record]) -> Result<Vec<u8>, CodecError>,
    decode: impl Fn(
        &Path,
        &[u8],
        &dyn Fn(&Path) -> Option<ResourceType>,
    ) -> Result<Vec<Record>, CodecError>,
    model: Model,
    base: &Path,
    records: &[Record],
) {
    let ty = |p: &Path| model.ty(p);
    let Ok(bytes) = encode(base, records) else {
        return;
    };
    match decode(base, &bytes, &ty) {
        Ok(again) => assert!(
            same_records(records, &again),
            "round trip changed the records under {base}:\n{records:?}\n{again:?}\nencoded: {bytes:02x?}"
        ),
        Err(e) => panic!("re-decoding failed under {base}: {e}\n{records:?}\nencoded: {bytes:02x?}"),
    }
}

/// `RawRecord` equality with NaN equal to itself.
pub fn same_raw(a: &[RawRecord], b: &[RawRecord]) -> bool {
    fn f(x: Option<f64>, y: Option<f64>) -> bool {
        match (x, y) {
            (Some(x), Some(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
            _ => x == y,
        }
    }
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.bn == y.bn
                && x.n == y.n
                && f(x.bt, y.bt)
                && f(x.t, y.t)
                && match (&x.value, &y.value) {
                    (Some(SenmlValue::Number(p)), Some(SenmlValue::Number(q))) => {
                        p == q || (p.as_f64().is_nan() && q.as_f64().is_nan())
                    }
                    (p, q) => p == q,
                }
        })
}
