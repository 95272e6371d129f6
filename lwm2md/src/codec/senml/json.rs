//! SenML JSON (content format 110, RFC 8428 §5).

use base64::engine::general_purpose::{URL_SAFE_NO_PAD, URL_SAFE_NO_PAD_INDIFFERENT};
use base64::Engine;
use serde_json::{Map, Value as Json};

use super::{
    from_raw, must_understand, to_raw, unsupported, Number, RawRecord, SenmlValue, MAX_RECORDS,
};
use crate::codec::{CodecError, Record};
use crate::path::Path;
use crate::value::ResourceType;

/// Encodes the records under `base`; no records is the empty pack `[]`.
pub fn encode(base: &Path, records: &[Record]) -> Result<Vec<u8>, CodecError> {
    emit(&to_raw(base, records)?)
}

/// Decodes a SenML JSON pack written to `base`.
pub fn decode(
    base: &Path,
    payload: &[u8],
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
) -> Result<Vec<Record>, CodecError> {
    from_raw(base, parse(payload)?, ty)
}

/// Emits a pack; NaN and infinities have no JSON spelling.
pub fn emit(records: &[RawRecord]) -> Result<Vec<u8>, CodecError> {
    let mut pack = Vec::with_capacity(records.len());
    for r in records {
        let mut map = Map::new();
        if let Some(bn) = &r.bn {
            map.insert("bn".into(), Json::String(bn.clone()));
        }
        if let Some(bt) = r.bt {
            map.insert("bt".into(), number(Number::Float(bt))?);
        }
        if let Some(n) = &r.n {
            map.insert("n".into(), Json::String(n.clone()));
        }
        if let Some(t) = r.t {
            map.insert("t".into(), number(Number::Float(t))?);
        }
        match &r.value {
            None => {}
            Some(SenmlValue::Number(n)) => {
                map.insert("v".into(), number(*n)?);
            }
            Some(SenmlValue::String(s)) => {
                map.insert("vs".into(), Json::String(s.clone()));
            }
            Some(SenmlValue::Bool(b)) => {
                map.insert("vb".into(), Json::Bool(*b));
            }
            Some(SenmlValue::Data(d)) => {
                map.insert("vd".into(), Json::String(URL_SAFE_NO_PAD.encode(d)));
            }
            Some(SenmlValue::ObjLnk(s)) => {
                map.insert("vlo".into(), Json::String(s.clone()));
            }
        }
        pack.push(Json::Object(map));
    }
    serde_json::to_vec(&Json::Array(pack)).map_err(|_| CodecError::Unrepresentable)
}

fn number(n: Number) -> Result<Json, CodecError> {
    Ok(match n {
        Number::Int(n) => Json::from(n),
        Number::Uint(n) => Json::from(n),
        Number::Float(x) => {
            Json::Number(serde_json::Number::from_f64(x).ok_or(CodecError::Unrepresentable)?)
        }
    })
}

/// Parses a pack. serde_json bounds nesting (128 levels) and the record count is bounded
/// here, so no input can exhaust the stack.
pub fn parse(payload: &[u8]) -> Result<Vec<RawRecord>, CodecError> {
    let json: Json = serde_json::from_slice(payload)
        .map_err(|e| CodecError::Malformed(format!("SenML JSON: {e}")))?;
    let Json::Array(pack) = json else {
        return Err(CodecError::Malformed("a SenML pack is a JSON array".into()));
    };
    if pack.len() > MAX_RECORDS {
        return Err(CodecError::Malformed(format!(
            "SenML pack of more than {MAX_RECORDS} records"
        )));
    }
    pack.into_iter().map(parse_record).collect()
}

/// What a label of a JSON record carries. SenML JSON and LwM2M 1.0's JSON entries share
/// the record shape and differ only in how they spell the labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    BaseName,
    Name,
    BaseTime,
    Time,
    Number,
    String,
    Bool,
    Data,
    ObjLnk,
    /// Known and checked for its type, but of no use here.
    IgnoredNumber,
    IgnoredString,
    /// Known, with a meaning lwm2md does not implement: the record is refused.
    Unsupported,
    /// Not known: ignored, unless the format says it must be understood.
    Unknown,
}

/// A JSON record dialect: its name (for errors) and its labels.
pub(crate) struct Dialect {
    pub name: &'static str,
    pub field: fn(&str) -> Field,
}

const SENML: Dialect = Dialect {
    name: "SenML",
    field: |label| match label {
        "bn" => Field::BaseName,
        "n" => Field::Name,
        "bt" => Field::BaseTime,
        "t" => Field::Time,
        "v" => Field::Number,
        "vs" => Field::String,
        "vb" => Field::Bool,
        "vd" => Field::Data,
        "vlo" => Field::ObjLnk,
        "bver" | "ut" => Field::IgnoredNumber,
        "u" | "bu" => Field::IgnoredString,
        "bv" | "bs" | "s" => Field::Unsupported,
        other if must_understand(other) => Field::Unsupported,
        _ => Field::Unknown,
    },
};

fn parse_record(json: Json) -> Result<RawRecord, CodecError> {
    parse_object(json, &SENML)
}

/// Parses one record of `dialect` into its raw fields.
pub(crate) fn parse_object(json: Json, dialect: &Dialect) -> Result<RawRecord, CodecError> {
    let name = dialect.name;
    let Json::Object(map) = json else {
        return Err(CodecError::Malformed(format!(
            "a {name} record is a JSON object"
        )));
    };
    let mut r = RawRecord::default();
    for (label, field) in map {
        let value = match (dialect.field)(&label) {
            Field::BaseName => {
                r.bn = Some(string(&label, field)?);
                continue;
            }
            Field::Name => {
                r.n = Some(string(&label, field)?);
                continue;
            }
            Field::BaseTime => {
                r.bt = Some(to_number(&label, &field)?.as_f64());
                continue;
            }
            Field::Time => {
                r.t = Some(to_number(&label, &field)?.as_f64());
                continue;
            }
            Field::IgnoredNumber => {
                to_number(&label, &field)?;
                continue;
            }
            Field::IgnoredString => {
                string(&label, field)?;
                continue;
            }
            Field::Unknown => continue,
            Field::Unsupported => return Err(unsupported(&label)),
            Field::Number => SenmlValue::Number(to_number(&label, &field)?),
            Field::String => SenmlValue::String(string(&label, field)?),
            Field::ObjLnk => SenmlValue::ObjLnk(string(&label, field)?),
            Field::Bool => match field {
                Json::Bool(b) => SenmlValue::Bool(b),
                _ => return Err(wrong_type(&label)),
            },
            Field::Data => {
                let text = string(&label, field)?;
                SenmlValue::Data(
                    URL_SAFE_NO_PAD_INDIFFERENT
                        .decode(text)
                        .map_err(|_| CodecError::Malformed(format!("{label} is not base64url")))?,
                )
            }
        };
        if r.value.replace(value).is_some() {
            return Err(CodecError::Malformed(format!(
                "{name} record with two values"
            )));
        }
    }
    Ok(r)
}

fn wrong_type(label: &str) -> CodecError {
    CodecError::Malformed(format!("JSON field {label:?} has the wrong type"))
}

pub(crate) fn string(label: &str, field: Json) -> Result<String, CodecError> {
    match field {
        Json::String(s) => Ok(s),
        _ => Err(wrong_type(label)),
    }
}

/// Numbers without fraction or exponent stay integers.
pub(crate) fn to_number(label: &str, field: &Json) -> Result<Number, CodecError> {
    let Json::Number(n) = field else {
        return Err(wrong_type(label));
    };
    if let Some(i) = n.as_i64() {
        Ok(Number::Int(i))
    } else if let Some(u) = n.as_u64() {
        Ok(Number::Uint(u))
    } else {
        n.as_f64()
            .map(Number::Float)
            .ok_or_else(|| wrong_type(label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::{device_records, device_types, records_strategy, test_types};
    use crate::value::Value;
    use proptest::prelude::*;

    /// Transport TS 1.1 §7.4.4: Read /3/0 as SenML JSON (current time 1367491215,
    /// UTC offset "+02:00").
    pub(crate) const DEVICE: &str = concat!(
        r#"[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},"#,
        r#"{"n":"1","vs":"Lightweight M2M Client"},"#,
        r#"{"n":"2","vs":"345000123"},"#,
        r#"{"n":"3","vs":"1.0"},"#,
        r#"{"n":"6/0","v":1},"#,
        r#"{"n":"6/1","v":5},"#,
        r#"{"n":"7/0","v":3800},"#,
        r#"{"n":"7/1","v":5000},"#,
        r#"{"n":"8/0","v":125},"#,
        r#"{"n":"8/1","v":900},"#,
        r#"{"n":"9","v":100},"#,
        r#"{"n":"10","v":15},"#,
        r#"{"n":"11/0","v":0},"#,
        r#"{"n":"13","v":1367491215},"#,
        r#"{"n":"14","vs":"+02:00"},"#,
        r#"{"n":"16","vs":"U"}]"#
    );

    #[test]
    fn device_instance_read() {
        let base: Path = "/3/0".parse().unwrap();
        assert_eq!(
            String::from_utf8(encode(&base, &device_records()).unwrap()).unwrap(),
            DEVICE
        );
        assert_eq!(
            decode(&base, DEVICE.as_bytes(), &device_types).unwrap(),
            device_records()
        );
        // The same pack is a valid Create payload under /3.
        assert_eq!(
            decode(&"/3".parse().unwrap(), DEVICE.as_bytes(), &device_types).unwrap(),
            device_records()
        );
    }

    #[test]
    fn single_resource_and_instance() {
        let base: Path = "/3/0/0".parse().unwrap();
        let rec = &device_records()[..1];
        let json = r#"[{"bn":"/3/0/0","vs":"Open Mobile Alliance"}]"#;
        assert_eq!(encode(&base, rec).unwrap(), json.as_bytes());
        assert_eq!(decode(&base, json.as_bytes(), &device_types).unwrap(), rec);

        let base: Path = "/3/0/6".parse().unwrap();
        let rec = &device_records()[4..6];
        let json = r#"[{"bn":"/3/0/6/","n":"0","v":1},{"n":"1","v":5}]"#;
        assert_eq!(encode(&base, rec).unwrap(), json.as_bytes());
        assert_eq!(decode(&base, json.as_bytes(), &device_types).unwrap(), rec);

        assert_eq!(encode(&base, &[]).unwrap(), b"[]");
        assert_eq!(decode(&base, b"[]", &device_types).unwrap(), vec![]);
    }

    #[test]
    fn rfc8428_multiple_datapoints() {
        // RFC 8428 §5.1.2.
        let json = r#"[
            {"bn":"urn:dev:ow:10e2073a0108006:","bt":1.276020076001e+09,
             "bu":"A","bver":5,
             "n":"voltage","u":"V","v":120.1},
            {"n":"current","t":-5,"v":1.2},
            {"n":"current","t":-4,"v":1.3},
            {"n":"current","t":-3,"v":1.4},
            {"n":"current","t":-2,"v":1.5},
            {"n":"current","t":-1,"v":1.6},
            {"n":"current","v":1.7}
        ]"#;
        let resolved = super::super::resolve(parse(json.as_bytes()).unwrap());
        assert_eq!(resolved.len(), 7);
        assert_eq!(resolved[0].name, "urn:dev:ow:10e2073a0108006:voltage");
        assert_eq!(
            resolved[0].value,
            Some(SenmlValue::Number(Number::Float(120.1)))
        );
        assert_eq!(resolved[1].name, "urn:dev:ow:10e2073a0108006:current");
        assert_eq!(resolved[1].time, 1.276020076001e9 - 5.0);
        assert_eq!(resolved[6].time, 1.276020076001e9);
        assert_eq!(
            resolved[6].value,
            Some(SenmlValue::Number(Number::Float(1.7)))
        );
    }

    #[test]
    fn value_kinds() {
        let ty = |p: &Path| match p.resource_id() {
            Some(1) => Some(ResourceType::Opaque),
            Some(2) => Some(ResourceType::ObjLnk),
            Some(3) => Some(ResourceType::Boolean),
            Some(4) => Some(ResourceType::Float),
            Some(5) => Some(ResourceType::Unsigned),
            Some(6) => Some(ResourceType::CoreLnk),
            _ => None,
        };
        let json = r#"[{"bn":"/9/0/","n":"1","vd":"AQID_w"},{"n":"2","vlo":"3:0"},
            {"n":"3","vb":true},{"n":"4","v":3},{"n":"5","v":18446744073709551615},
            {"n":"6","vs":"</3/0>"}]"#;
        let records = decode(&"/9/0".parse().unwrap(), json.as_bytes(), &ty).unwrap();
        let values: Vec<Value> = records.into_iter().map(|r| r.value).collect();
        assert_eq!(
            values,
            [
                Value::Opaque(vec![1, 2, 3, 0xff]),
                Value::ObjLnk(3, 0),
                Value::Boolean(true),
                Value::Float(3.0),
                Value::Unsigned(u64::MAX),
                Value::CoreLnk("</3/0>".into()),
            ]
        );
    }

    #[test]
    fn refuses_bad_packs() {
        let base: Path = "/3/0".parse().unwrap();
        for bad in [
            r#"{"n":"/3/0/9","v":1}"#,
            r#"[{"n":"/3/0/9"}]"#,
            r#"[{"n":"/3/0/9","v":1,"vs":"x"}]"#,
            r#"[{"n":"/3/0/9","v":"1"}]"#,
            r#"[{"n":"/3/0/9","v":1.5}]"#,
            r#"[{"n":"/3/0/9","v":1,"foo_":1}]"#,
            r#"[{"n":"/3/0/9","v":1,"bv":1}]"#,
            r#"[{"n":"/3/0/9","v":1},{"n":"/3/0/9","v":2}]"#,
            r#"[{"n":"/3/0/","v":1}]"#,
            r#"[{"n":"/3/0","v":1}]"#,
            r#"[{"n":"/3/0/1","vd":"!!"}]"#,
            r#"[1]"#,
            r#"[{"n":"/3/0/9","v":1}"#,
        ] {
            assert!(
                decode(&base, bad.as_bytes(), &device_types).is_err(),
                "{bad} accepted"
            );
        }
        assert_eq!(
            decode(&base, br#"[{"n":"/3/1/9","v":1}]"#, &device_types),
            Err(CodecError::OutsideBase("/3/1/9".parse().unwrap()))
        );
        assert_eq!(
            decode(&base, br#"[{"n":"/3/0/99","v":1}]"#, &device_types),
            Err(CodecError::UnknownPath("/3/0/99".parse().unwrap()))
        );
        // Unknown labels that do not end in "_" are ignored.
        assert!(decode(
            &base,
            br#"[{"n":"/3/0/9","v":1,"x":[1,{}]}]"#,
            &device_types
        )
        .is_ok());
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert!(decode(&base, deep.as_bytes(), &device_types).is_err());
        let nan = [Record {
            path: "/3/0/9".parse().unwrap(),
            value: Value::Float(f64::NAN),
        }];
        assert_eq!(
            encode(&"/3/0/9".parse().unwrap(), &nan),
            Err(CodecError::Unrepresentable)
        );
    }

    proptest! {
        #[test]
        fn round_trip((base, records) in records_strategy()) {
            prop_assume!(records.iter().all(|r| !matches!(r.value, Value::Float(x) if !x.is_finite())));
            let bytes = encode(&base, &records).unwrap();
            let back = decode(&base, &bytes, &test_types).unwrap();
            prop_assert_eq!(back, records);
        }
    }
}
