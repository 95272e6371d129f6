//! LwM2M JSON (content format 11543), the JSON format of LwM2M 1.0 (Core TS 1.0 §6.4.4)
//! that SenML JSON replaced in 1.1: `{"bn":"/3/0/","e":[{"n":"0","sv":"Open Mobile
//! Alliance"},{"n":"9","v":95}]}`. Each entry names its resource or resource instance by
//! the base name followed by its name, and carries its value in `v` (number), `sv`
//! (string; Opaque as base64), `bv` (boolean) or `ov` (object link `"3:0"`).
//!
//! Decoding only: servers that still write this format are accepted, and Reads are
//! answered in SenML or TLV. Entries become SenML records, so names, paths and values
//! are checked exactly as for SenML.

use serde_json::Value as Json;

use super::senml::json::{parse_object, string, to_number, Dialect, Field};
use super::senml::{from_raw, RawRecord, SenmlValue, MAX_RECORDS};
use super::{declared_type, text, CodecError, Record};
use crate::path::Path;
use crate::value::{ResourceType, Value};

/// Decodes a payload written to `base`. Without `bn` names are relative to `base`.
pub fn decode(
    base: &Path,
    payload: &[u8],
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
) -> Result<Vec<Record>, CodecError> {
    let mut raw = parse(base, payload)?;
    for r in &mut raw {
        // Opaque values travel as base64 in "sv"; only the declared type says so.
        let (Some(SenmlValue::String(s)), Some(name)) = (&r.value, &r.n) else {
            continue;
        };
        let Ok(path) = name.parse::<Path>() else {
            continue;
        };
        if declared_type(&path, ty).ok() == Some(ResourceType::Opaque) {
            match text::parse_value(s, ResourceType::Opaque) {
                Some(Value::Opaque(bytes)) => r.value = Some(SenmlValue::Data(bytes)),
                _ => {
                    return Err(CodecError::Type {
                        path,
                        expected: ResourceType::Opaque,
                    })
                }
            }
        }
    }
    from_raw(base, raw, ty)
}

/// Parses a payload into one record per entry, each named in full (base name and name
/// joined) in its `n`. serde_json bounds nesting and the entry count is bounded here.
pub fn parse(base: &Path, payload: &[u8]) -> Result<Vec<RawRecord>, CodecError> {
    let json: Json = serde_json::from_slice(payload)
        .map_err(|e| CodecError::Malformed(format!("LwM2M JSON: {e}")))?;
    let Json::Object(map) = json else {
        return Err(CodecError::Malformed(
            "an LwM2M JSON payload is a JSON object".into(),
        ));
    };
    let mut bn = None;
    let mut bt = None;
    let mut entries = None;
    for (label, field) in map {
        match label.as_str() {
            "bn" => bn = Some(string(&label, field)?),
            "bt" => bt = Some(to_number(&label, &field)?.as_f64()),
            "e" => match field {
                Json::Array(e) => entries = Some(e),
                _ => {
                    return Err(CodecError::Malformed(
                        "LwM2M JSON \"e\" is not an array".into(),
                    ))
                }
            },
            // LwM2M JSON has no must-understand labels: others are ignored.
            _ => {}
        }
    }
    let entries =
        entries.ok_or_else(|| CodecError::Malformed("LwM2M JSON without \"e\"".into()))?;
    if entries.len() > MAX_RECORDS {
        return Err(CodecError::Malformed(format!(
            "LwM2M JSON of more than {MAX_RECORDS} entries"
        )));
    }
    entries
        .into_iter()
        .map(|entry| {
            let mut r = parse_entry(entry)?;
            let n = r.n.take().unwrap_or_default();
            let name = match &bn {
                Some(bn) => format!("{bn}{n}"),
                None if n.is_empty() => base.to_string(),
                // A name that starts at the root is already complete.
                None if n.starts_with('/') => n,
                None if base.is_root() => format!("/{n}"),
                None => format!("{base}/{n}"),
            };
            r.n = Some(name);
            r.bt = bt;
            Ok(r)
        })
        .collect()
}

/// The labels of an entry. LwM2M JSON has no must-understand labels: others are ignored.
/// Opaque values travel as base64 strings in "sv" (see `decode`).
const ENTRY: Dialect = Dialect {
    name: "LwM2M JSON",
    field: |label| match label {
        "n" => Field::Name,
        "t" => Field::Time,
        "v" => Field::Number,
        "sv" => Field::String,
        "bv" => Field::Bool,
        "ov" => Field::ObjLnk,
        _ => Field::Unknown,
    },
};

fn parse_entry(json: Json) -> Result<RawRecord, CodecError> {
    parse_object(json, &ENTRY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::{device_records, device_types};

    /// Core TS 1.0 §6.4.4: Read /3/0 as JSON (current time 1367491215, UTC offset
    /// "+02:00").
    const DEVICE: &str = concat!(
        r#"{"bn":"/3/0/","e":["#,
        r#"{"n":"0","sv":"Open Mobile Alliance"},"#,
        r#"{"n":"1","sv":"Lightweight M2M Client"},"#,
        r#"{"n":"2","sv":"345000123"},"#,
        r#"{"n":"3","sv":"1.0"},"#,
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
        r#"{"n":"14","sv":"+02:00"},"#,
        r#"{"n":"16","sv":"U"}]}"#
    );

    #[test]
    fn device_instance_read() {
        assert_eq!(
            decode(&Path::instance(3, 0), DEVICE.as_bytes(), &device_types).unwrap(),
            device_records()
        );
        // The same payload is a valid Create payload under /3 and Write-Composite-like
        // payload at the root.
        for base in [Path::object(3), Path::ROOT] {
            assert_eq!(
                decode(&base, DEVICE.as_bytes(), &device_types).unwrap(),
                device_records()
            );
        }
    }

    #[test]
    fn names_without_base_name() {
        let rec = &device_records()[..1];
        for (base, json) in [
            (
                Path::resource(3, 0, 0),
                r#"{"e":[{"sv":"Open Mobile Alliance"}]}"#,
            ),
            (
                Path::instance(3, 0),
                r#"{"e":[{"n":"0","sv":"Open Mobile Alliance"}]}"#,
            ),
            (
                Path::ROOT,
                r#"{"e":[{"n":"3/0/0","sv":"Open Mobile Alliance"}]}"#,
            ),
            (
                Path::object(3),
                r#"{"e":[{"n":"/3/0/0","sv":"Open Mobile Alliance"}]}"#,
            ),
            (
                Path::resource(3, 0, 0),
                r#"{"bn":"/3/0/0","e":[{"sv":"Open Mobile Alliance"}]}"#,
            ),
        ] {
            assert_eq!(
                decode(&base, json.as_bytes(), &device_types).unwrap(),
                rec,
                "{json}"
            );
        }
        let rec = &device_records()[4..6];
        let json = r#"{"bn":"/3/0/6/","e":[{"n":"0","v":1},{"n":"1","v":5}]}"#;
        assert_eq!(
            decode(&Path::resource(3, 0, 6), json.as_bytes(), &device_types).unwrap(),
            rec
        );
        assert_eq!(
            decode(&Path::resource(3, 0, 6), br#"{"e":[]}"#, &device_types).unwrap(),
            vec![]
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
            Some(6) => Some(ResourceType::Time),
            _ => None,
        };
        let json = r#"{"bn":"/9/0/","bt":25462634,"e":[{"n":"1","sv":"AQID/w=="},
            {"n":"2","ov":"3:0"},{"n":"3","bv":true},{"n":"4","v":3},
            {"n":"5","v":18446744073709551615},{"n":"6","v":1367491215,"t":-5}]}"#;
        let values: Vec<Value> = decode(&Path::instance(9, 0), json.as_bytes(), &ty)
            .unwrap()
            .into_iter()
            .map(|r| r.value)
            .collect();
        assert_eq!(
            values,
            [
                Value::Opaque(vec![1, 2, 3, 0xff]),
                Value::ObjLnk(3, 0),
                Value::Boolean(true),
                Value::Float(3.0),
                Value::Unsigned(u64::MAX),
                Value::Time(1367491215),
            ]
        );
    }

    #[test]
    fn refuses_bad_payloads() {
        let base = Path::instance(3, 0);
        for bad in [
            r#"[{"n":"/3/0/9","v":1}]"#,
            r#"{"bn":"/3/0/"}"#,
            r#"{"bn":"/3/0/","e":{}}"#,
            r#"{"bn":"/3/0/","e":[1]}"#,
            r#"{"bn":3,"e":[]}"#,
            r#"{"bn":"/3/0/","e":[{"n":"9"}]}"#,
            r#"{"bn":"/3/0/","e":[{"n":"9","v":1,"sv":"1"}]}"#,
            r#"{"bn":"/3/0/","e":[{"n":"9","v":"1"}]}"#,
            r#"{"bn":"/3/0/","e":[{"n":"9","v":1.5}]}"#,
            r#"{"bn":"/3/0/","e":[{"n":"9","bv":1}]}"#,
            r#"{"bn":"/3/0/","e":[{"n":"9","v":1},{"n":"9","v":2}]}"#,
            r#"{"bn":"/3/0/","e":[{"n":"","v":1}]}"#,
            r#"{"bn":"/3/0","e":[{"n":"9","v":1}]}"#,
            r#"{"bn":"/3/0/","e":[{"n":"9","v":1}]"#,
            r#"{"e":[{"n":"/3/0","v":1}]}"#,
        ] {
            assert!(
                decode(&base, bad.as_bytes(), &device_types).is_err(),
                "{bad} accepted"
            );
        }
        assert_eq!(
            decode(
                &base,
                br#"{"bn":"/3/1/","e":[{"n":"9","v":1}]}"#,
                &device_types
            ),
            Err(CodecError::OutsideBase(Path::resource(3, 1, 9)))
        );
        assert_eq!(
            decode(&base, br#"{"e":[{"n":"99","v":1}]}"#, &device_types),
            Err(CodecError::UnknownPath(Path::resource(3, 0, 99)))
        );
        let opaque = |p: &Path| (p.resource_id() == Some(1)).then_some(ResourceType::Opaque);
        assert_eq!(
            decode(&base, br#"{"e":[{"n":"1","sv":"!!"}]}"#, &opaque),
            Err(CodecError::Type {
                path: Path::resource(3, 0, 1),
                expected: ResourceType::Opaque
            })
        );
        let deep = format!(r#"{{"e":{}{}}}"#, "[".repeat(5000), "]".repeat(5000));
        assert!(decode(&base, deep.as_bytes(), &device_types).is_err());
    }
}
