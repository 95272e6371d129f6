//! SenML (RFC 8428) as LwM2M uses it (Transport TS 1.1 §7.4.4, §7.4.5): each record names
//! a resource or resource instance by the plain concatenation of base name and name
//! (`"/3/0/"` + `"6/1"`), and carries its value in `v`, `vs`, `vb`, `vd` or `vlo`.
//!
//! Both representations parse into the same `RawRecord`s, which `resolve` turns into
//! named values, and emit from them.

pub mod cbor;
pub mod json;

use super::{convert, finish, parse_objlnk, CodecError, ContentFormat, Record};
use crate::path::Path;
use crate::value::{ResourceType, Value};

/// Most records a pack may hold; a longer pack is refused rather than buffered.
pub const MAX_RECORDS: usize = 65_536;

/// A SenML number as it came: JSON and CBOR both tell integers from fractions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    /// Only for integers above `i64::MAX`.
    Uint(u64),
    Float(f64),
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(n) => n as f64,
            Number::Uint(n) => n as f64,
            Number::Float(x) => x,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SenmlValue {
    /// `v`
    Number(Number),
    /// `vs`
    String(String),
    /// `vb`
    Bool(bool),
    /// `vd`
    Data(Vec<u8>),
    /// `vlo`, LwM2M's object link `"3:0"`.
    ObjLnk(String),
}

/// One record as written, before base name and base time apply. Fields lwm2md has no use
/// for (units, version, update time) are checked for type and dropped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawRecord {
    pub bn: Option<String>,
    pub bt: Option<f64>,
    pub n: Option<String>,
    pub t: Option<f64>,
    pub value: Option<SenmlValue>,
}

/// A record with the base name and base time applied (RFC 8428 §4.6).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub name: String,
    pub time: f64,
    pub value: Option<SenmlValue>,
}

/// Applies base name and base time: each base field holds until the next one.
pub fn resolve(raw: Vec<RawRecord>) -> Vec<Resolved> {
    let mut bn = String::new();
    let mut bt = 0.0;
    raw.into_iter()
        .map(|r| {
            if let Some(b) = r.bn {
                bn = b;
            }
            if let Some(b) = r.bt {
                bt = b;
            }
            let mut name = bn.clone();
            name.push_str(r.n.as_deref().unwrap_or(""));
            Resolved {
                name,
                time: bt + r.t.unwrap_or(0.0),
                value: r.value,
            }
        })
        .collect()
}

/// Why a known label was refused.
fn unsupported(label: &str) -> CodecError {
    CodecError::Malformed(format!("SenML field {label:?} is not supported"))
}

/// Whether a label not understood here makes the record unusable (RFC 8428 §4.4).
fn must_understand(label: &str) -> bool {
    label.ends_with('_')
}

/// Builds the records of a pack for `base`: the base name goes in the first record only.
pub fn to_raw(base: &Path, records: &[Record]) -> Result<Vec<RawRecord>, CodecError> {
    let single = matches!(records, [r] if r.path == *base && !base.is_root());
    let mut out = Vec::with_capacity(records.len());
    for (k, record) in records.iter().enumerate() {
        let (bn, n) = if single {
            (Some(base.to_string()), None)
        } else {
            let rel = record.path.ids().get(base.len()..).unwrap_or(&[]);
            if rel.is_empty() {
                // A value at the request path next to values below it: no name fits.
                return Err(CodecError::Unrepresentable);
            }
            let rel: Vec<String> = rel.iter().map(u16::to_string).collect();
            if base.is_root() {
                (None, Some(format!("/{}", rel.join("/"))))
            } else {
                let bn = (k == 0).then(|| format!("{base}/"));
                (bn, Some(rel.join("/")))
            }
        };
        out.push(RawRecord {
            bn,
            bt: None,
            n,
            t: None,
            value: Some(to_senml(&record.value)),
        });
    }
    Ok(out)
}

fn to_senml(value: &Value) -> SenmlValue {
    match value {
        Value::Integer(n) | Value::Time(n) => SenmlValue::Number(Number::Int(*n)),
        Value::Unsigned(n) => SenmlValue::Number(match i64::try_from(*n) {
            Ok(n) => Number::Int(n),
            Err(_) => Number::Uint(*n),
        }),
        Value::Float(x) => SenmlValue::Number(Number::Float(*x)),
        Value::Boolean(b) => SenmlValue::Bool(*b),
        Value::String(s) | Value::CoreLnk(s) => SenmlValue::String(s.clone()),
        Value::Opaque(bytes) => SenmlValue::Data(bytes.clone()),
        Value::ObjLnk(o, i) => SenmlValue::ObjLnk(format!("{o}:{i}")),
    }
}

/// Turns parsed records into typed LwM2M records under `base`.
pub fn from_raw(
    base: &Path,
    raw: Vec<RawRecord>,
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
) -> Result<Vec<Record>, CodecError> {
    let mut records = Vec::new();
    for r in resolve(raw) {
        let path: Path = r.name.parse().map_err(|_| {
            CodecError::Malformed(format!("SenML name {:?} is not an LwM2M path", r.name))
        })?;
        if !base.contains(&path) {
            return Err(CodecError::OutsideBase(path));
        }
        if path.len() < 3 {
            return Err(CodecError::Malformed(format!(
                "SenML name {path} is not a resource or resource instance"
            )));
        }
        let value = match r.value {
            None => {
                return Err(CodecError::Malformed(format!(
                    "SenML record {path} has no value"
                )))
            }
            Some(SenmlValue::Number(Number::Int(n))) => Value::Integer(n),
            Some(SenmlValue::Number(Number::Uint(n))) => Value::Unsigned(n),
            Some(SenmlValue::Number(Number::Float(x))) => Value::Float(x),
            Some(SenmlValue::Bool(b)) => Value::Boolean(b),
            Some(SenmlValue::String(s)) => Value::String(s),
            Some(SenmlValue::Data(d)) => Value::Opaque(d),
            Some(SenmlValue::ObjLnk(s)) => parse_objlnk(&s).ok_or_else(|| {
                CodecError::Malformed(format!("object link {s:?} at {path} is not \"o:i\""))
            })?,
        };
        records.push(convert(path, value, ty)?);
    }
    finish(base, records)
}

/// A SenML pack of `records` (full paths as names) taken at `time`, Unix seconds, as the
/// base time: the payload of a Send (Core TS 1.1 §6.5.1).
pub fn encode_at(
    format: ContentFormat,
    records: &[Record],
    time: f64,
) -> Result<Vec<u8>, CodecError> {
    let mut raw = to_raw(&Path::ROOT, records)?;
    if let Some(first) = raw.first_mut() {
        first.bt = Some(time);
    }
    match format {
        ContentFormat::SenmlJson => json::emit(&raw),
        ContentFormat::SenmlCbor => cbor::emit(&raw),
        other => Err(CodecError::Unsupported(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_name_applies_until_replaced() {
        // RFC 8428 §4.6 resolution, with names as LwM2M writes them.
        let raw = vec![
            RawRecord {
                bn: Some("/3/0/".into()),
                bt: Some(100.0),
                n: Some("0".into()),
                ..Default::default()
            },
            RawRecord {
                n: Some("6/1".into()),
                t: Some(-5.0),
                ..Default::default()
            },
            RawRecord {
                bn: Some("/1/0/1".into()),
                ..Default::default()
            },
        ];
        let names: Vec<(String, f64)> =
            resolve(raw).into_iter().map(|r| (r.name, r.time)).collect();
        assert_eq!(
            names,
            [
                ("/3/0/0".to_string(), 100.0),
                ("/3/0/6/1".to_string(), 95.0),
                ("/1/0/1".to_string(), 100.0)
            ]
        );
    }
}
