//! LwM2M CBOR (content format 11544, Transport TS 1.2 §7.4.6): CBOR maps nested along the
//! path from the root of the object tree, each key one path segment, each leaf a value in
//! its own CBOR type: `{3: {0: {0: "Open Mobile Alliance", 6: {0: 1, 1: 5}}}}`.
//!
//! A key may also be an array of segments standing for as many levels (`{[3, 0]: {9: 100}}`
//! or `{[3, 0, 9]: 100}`), and the same prefix may come back under another key; a reader
//! merges them all. The encoder writes the plainest form, one segment per map level with
//! definite lengths starting at the object ID, which every reader understands.
//!
//! Values: integers and floats as CBOR numbers, booleans as simple values, String and
//! CoreLnk as text, Opaque as bytes, Time as tag 1 (epoch seconds) over an integer, ObjLnk
//! as the text `"3:0"`.

use minicbor::data::{Tag, Type};
use minicbor::{Decoder, Encoder};

use super::senml::cbor::{has_next, number, read_number};
use super::senml::{Number, MAX_RECORDS};
use super::{convert, declared_type, finish, parse_objlnk, CodecError, Record};
use crate::path::{Path, MAX_ID};
use crate::value::{ResourceType, Value};

/// RFC 8949 §3.4.2: epoch-based date/time.
const EPOCH_TIME: u64 = 1;

/// Encodes the records under `base`. The maps always lead from the root down to `base`,
/// so a Read of an empty object or of a multiple-instance resource without instances
/// still names its target: `{3: {0: {6: {}}}}`.
pub fn encode(base: &Path, records: &[Record]) -> Result<Vec<u8>, CodecError> {
    let mut e = Encoder::new(Vec::new());
    write_level(&mut e, base, records, 0)?;
    Ok(e.into_writer())
}

/// Decodes a payload written to `base`; every path it names must lie under `base`.
pub fn decode(
    base: &Path,
    payload: &[u8],
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
) -> Result<Vec<Record>, CodecError> {
    let mut records = Vec::new();
    for (path, value) in parse(payload)? {
        if !base.contains(&path) {
            return Err(CodecError::OutsideBase(path));
        }
        if path.len() < 3 {
            return Err(CodecError::Malformed(format!(
                "LwM2M CBOR value at {path}, not at a resource or resource instance"
            )));
        }
        // An object link travels as text; only the declared type tells it from a string.
        let value = match value {
            Value::String(s) if declared_type(&path, ty)? == ResourceType::ObjLnk => {
                parse_objlnk(&s).ok_or(CodecError::Type {
                    path,
                    expected: ResourceType::ObjLnk,
                })?
            }
            other => other,
        };
        records.push(convert(path, value, ty)?);
    }
    finish(base, records)
}

fn unrepresentable<E>(_: minicbor::encode::Error<E>) -> CodecError {
    CodecError::Unrepresentable
}

/// Writes the map of the node `depth` segments below the root: one key per child that
/// holds records, or the next segment of `base` when nothing lies below it.
fn write_level(
    e: &mut Encoder<Vec<u8>>,
    base: &Path,
    records: &[Record],
    depth: usize,
) -> Result<(), CodecError> {
    let groups: Vec<&[Record]> = records
        .chunk_by(|a, b| a.path.ids().get(depth) == b.path.ids().get(depth))
        .collect();
    if groups.is_empty() {
        return match base.ids().get(depth) {
            Some(id) => {
                e.map(1).map_err(unrepresentable)?;
                e.u16(*id).map_err(unrepresentable)?;
                write_level(e, base, records, depth + 1)
            }
            None => {
                e.map(0).map_err(unrepresentable)?;
                Ok(())
            }
        };
    }
    e.map(groups.len() as u64).map_err(unrepresentable)?;
    for group in groups {
        let id = group
            .first()
            .and_then(|r| r.path.ids().get(depth))
            .ok_or(CodecError::Unrepresentable)?;
        e.u16(*id).map_err(unrepresentable)?;
        match group {
            [leaf] if leaf.path.len() == depth + 1 => write_value(e, &leaf.value)?,
            // A value at a path that also has values below it: no map can say both.
            _ if group.iter().any(|r| r.path.len() == depth + 1) => {
                return Err(CodecError::Unrepresentable)
            }
            _ => write_level(e, base, group, depth + 1)?,
        }
    }
    Ok(())
}

fn write_value(e: &mut Encoder<Vec<u8>>, value: &Value) -> Result<(), CodecError> {
    match value {
        Value::Integer(n) => {
            e.i64(*n).map_err(unrepresentable)?;
        }
        Value::Unsigned(n) => {
            e.u64(*n).map_err(unrepresentable)?;
        }
        Value::Float(x) => number(e, Number::Float(*x)).map_err(unrepresentable)?,
        Value::Boolean(b) => {
            e.bool(*b).map_err(unrepresentable)?;
        }
        Value::String(s) | Value::CoreLnk(s) => {
            e.str(s).map_err(unrepresentable)?;
        }
        Value::Opaque(bytes) => {
            e.bytes(bytes).map_err(unrepresentable)?;
        }
        Value::Time(t) => {
            e.tag(Tag::new(EPOCH_TIME))
                .and_then(|e| e.i64(*t))
                .map_err(unrepresentable)?;
        }
        Value::ObjLnk(o, i) => {
            e.str(&format!("{o}:{i}")).map_err(unrepresentable)?;
        }
    }
    Ok(())
}

fn malformed(e: minicbor::decode::Error) -> CodecError {
    CodecError::Malformed(format!("LwM2M CBOR: {e}"))
}

/// Parses a payload into its values, each with the full path its keys spell, in payload
/// order. Recursion is bounded by the path depth (every map level adds at least one
/// segment, at most four in all) and every count by the input, so no input can exhaust
/// the stack or memory.
pub fn parse(payload: &[u8]) -> Result<Vec<(Path, Value)>, CodecError> {
    let mut d = Decoder::new(payload);
    if !matches!(d.datatype().map_err(malformed)?, Type::Map | Type::MapIndef) {
        return Err(CodecError::Malformed(
            "an LwM2M CBOR payload is a CBOR map".into(),
        ));
    }
    let mut out = Vec::new();
    parse_map(&mut d, &[], &mut out)?;
    if d.position() != payload.len() {
        return Err(CodecError::Malformed(
            "bytes after the LwM2M CBOR map".into(),
        ));
    }
    Ok(out)
}

fn parse_map(
    d: &mut Decoder<'_>,
    prefix: &[u16],
    out: &mut Vec<(Path, Value)>,
) -> Result<(), CodecError> {
    let len = d.map().map_err(malformed)?;
    let mut seen = 0u64;
    while has_next(d, len, seen)? {
        seen += 1;
        let mut path = prefix.to_vec();
        read_key(d, &mut path)?;
        if matches!(d.datatype().map_err(malformed)?, Type::Map | Type::MapIndef) {
            parse_map(d, &path, out)?;
            continue;
        }
        let path = Path::from_ids(&path)
            .map_err(|e| CodecError::Malformed(format!("LwM2M CBOR path: {e}")))?;
        if out.len() >= MAX_RECORDS {
            return Err(CodecError::Malformed(format!(
                "LwM2M CBOR payload of more than {MAX_RECORDS} values"
            )));
        }
        out.push((path, read_value(d)?));
    }
    Ok(())
}

/// Appends the segments of one key: an unsigned integer or a non-empty array of them.
fn read_key(d: &mut Decoder<'_>, path: &mut Vec<u16>) -> Result<(), CodecError> {
    match d.datatype().map_err(malformed)? {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => push_segment(d, path),
        Type::Array | Type::ArrayIndef => {
            let len = d.array().map_err(malformed)?;
            let mut seen = 0u64;
            while has_next(d, len, seen)? {
                seen += 1;
                push_segment(d, path)?;
            }
            if seen == 0 {
                return Err(CodecError::Malformed(
                    "LwM2M CBOR key is an empty array".into(),
                ));
            }
            Ok(())
        }
        other => Err(CodecError::Malformed(format!(
            "LwM2M CBOR key of type {other} is not a path segment"
        ))),
    }
}

fn push_segment(d: &mut Decoder<'_>, path: &mut Vec<u16>) -> Result<(), CodecError> {
    if !matches!(
        d.datatype().map_err(malformed)?,
        Type::U8 | Type::U16 | Type::U32 | Type::U64
    ) {
        return Err(CodecError::Malformed(
            "LwM2M CBOR path segment is not an unsigned integer".into(),
        ));
    }
    let id = d.u64().map_err(malformed)?;
    let id = u16::try_from(id)
        .ok()
        .filter(|id| *id <= MAX_ID)
        .ok_or_else(|| {
            CodecError::Malformed(format!("LwM2M CBOR path segment {id} is above {MAX_ID}"))
        })?;
    if path.len() >= 4 {
        return Err(CodecError::Malformed(
            "LwM2M CBOR path deeper than four segments".into(),
        ));
    }
    path.push(id);
    Ok(())
}

fn read_value(d: &mut Decoder<'_>) -> Result<Value, CodecError> {
    Ok(match d.datatype().map_err(malformed)? {
        Type::U8
        | Type::U16
        | Type::U32
        | Type::U64
        | Type::I8
        | Type::I16
        | Type::I32
        | Type::I64
        | Type::F16
        | Type::F32
        | Type::F64 => match read_number(d)? {
            Number::Int(n) => Value::Integer(n),
            Number::Uint(n) => Value::Unsigned(n),
            Number::Float(x) => Value::Float(x),
        },
        Type::Bool => Value::Boolean(d.bool().map_err(malformed)?),
        Type::String | Type::StringIndef => {
            let mut text = String::new();
            for chunk in d.str_iter().map_err(malformed)? {
                text.push_str(chunk.map_err(malformed)?);
            }
            Value::String(text)
        }
        Type::Bytes | Type::BytesIndef => {
            let mut bytes = Vec::new();
            for chunk in d.bytes_iter().map_err(malformed)? {
                bytes.extend_from_slice(chunk.map_err(malformed)?);
            }
            Value::Opaque(bytes)
        }
        Type::Tag => {
            let tag = d.tag().map_err(malformed)?.as_u64();
            if tag != EPOCH_TIME {
                return Err(CodecError::Malformed(format!(
                    "LwM2M CBOR tag {tag} is not supported"
                )));
            }
            match read_number(d)? {
                Number::Int(n) => Value::Time(n),
                // Whole seconds only: into_type refuses a fraction for a Time resource.
                Number::Float(x) => Value::Float(x),
                Number::Uint(n) => {
                    return Err(CodecError::Malformed(format!(
                        "LwM2M CBOR time {n} is out of range"
                    )))
                }
            }
        }
        other => {
            return Err(CodecError::Malformed(format!(
                "LwM2M CBOR value of type {other} is not a resource value"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::{device_records, device_types, hex, records_strategy, test_types};
    use proptest::prelude::*;

    /// Text of fewer than 24 bytes.
    fn s(t: &str) -> Vec<u8> {
        assert!(t.len() < 24);
        let mut v = vec![0x60 + t.len() as u8];
        v.extend_from_slice(t.as_bytes());
        v
    }

    /// The Device object instance of the Core TS example (Read /3/0) in diagnostic
    /// notation `{3: {0: {0: "Open Mobile Alliance", 1: "Lightweight M2M Client",
    /// 2: "345000123", 3: "1.0", 6: {0: 1, 1: 5}, 7: {0: 3800, 1: 5000},
    /// 8: {0: 125, 1: 900}, 9: 100, 10: 15, 11: {0: 0}, 13: 1(1367491215),
    /// 14: "+02:00", 16: "U"}}}`, written out byte by byte; `head` is the part before
    /// the instance's map.
    fn device_instance(head: &str) -> Vec<u8> {
        [
            hex(head),
            hex("AD"), // map(13)
            hex("00"),
            s("Open Mobile Alliance"),
            hex("01"),
            s("Lightweight M2M Client"),
            hex("02"),
            s("345000123"),
            hex("03"),
            s("1.0"),
            hex("06 A2 00 01 01 05"),
            hex("07 A2 00 19 0ED8 01 19 1388"),
            hex("08 A2 00 18 7D 01 19 0384"),
            hex("09 18 64"),
            hex("0A 0F"),
            hex("0B A1 00 00"),
            hex("0D C1 1A 5182428F"),
            hex("0E"),
            s("+02:00"),
            hex("10"),
            s("U"),
        ]
        .concat()
    }

    #[test]
    fn device_instance_read() {
        let base = Path::instance(3, 0);
        let nested = device_instance("A1 03 A1 00"); // {3: {0: ...}}
        assert_eq!(encode(&base, &device_records()).unwrap(), nested);
        assert_eq!(
            decode(&base, &nested, &device_types).unwrap(),
            device_records()
        );
        // The same instance under a compressed key, {[3, 0]: ...}, and as a Create
        // payload under /3.
        let compressed = device_instance("A1 82 03 00");
        assert_eq!(
            decode(&base, &compressed, &device_types).unwrap(),
            device_records()
        );
        assert_eq!(
            decode(&Path::object(3), &compressed, &device_types).unwrap(),
            device_records()
        );
    }

    #[test]
    fn single_resource_and_instance() {
        // {3: {0: {0: "Open Mobile Alliance"}}}
        let base = Path::resource(3, 0, 0);
        let rec = &device_records()[..1];
        let bytes = [hex("A1 03 A1 00 A1 00"), s("Open Mobile Alliance")].concat();
        assert_eq!(encode(&base, rec).unwrap(), bytes);
        assert_eq!(decode(&base, &bytes, &device_types).unwrap(), rec);
        // {[3, 0, 0]: "Open Mobile Alliance"}
        let flat = [hex("A1 83 03 00 00"), s("Open Mobile Alliance")].concat();
        assert_eq!(decode(&base, &flat, &device_types).unwrap(), rec);

        // {3: {0: {6: {0: 1, 1: 5}}}}
        let base = Path::resource(3, 0, 6);
        let rec = &device_records()[4..6];
        let bytes = hex("A1 03 A1 00 A1 06 A2 00 01 01 05");
        assert_eq!(encode(&base, rec).unwrap(), bytes);
        assert_eq!(decode(&base, &bytes, &device_types).unwrap(), rec);
        // {[3, 0, 6, 0]: 1, [3, 0, 6, 1]: 5}
        let flat = hex("A2 84 03 00 06 00 01 84 03 00 06 01 05");
        assert_eq!(decode(&base, &flat, &device_types).unwrap(), rec);

        // No instances: the maps still lead to the resource, {3: {0: {6: {}}}}.
        assert_eq!(encode(&base, &[]).unwrap(), hex("A1 03 A1 00 A1 06 A0"));
        assert_eq!(
            decode(&base, &hex("A1 03 A1 00 A1 06 A0"), &device_types).unwrap(),
            vec![]
        );
        assert_eq!(encode(&Path::ROOT, &[]).unwrap(), hex("A0"));
    }

    #[test]
    fn mixed_keys_merge() {
        let base = Path::instance(3, 0);
        let want = vec![
            Record {
                path: Path::resource_instance(3, 0, 6, 0),
                value: Value::Integer(1),
            },
            Record {
                path: Path::resource(3, 0, 9),
                value: Value::Integer(100),
            },
            Record {
                path: Path::resource(3, 0, 13),
                value: Value::Time(5),
            },
        ];
        for form in [
            // {[3, 0]: {9: 100}, [3, 0, 6]: {0: 1}, 3: {[0, 13]: 1(5)}}
            "A3 82 03 00 A1 09 18 64  83 03 00 06 A1 00 01  03 A1 82 00 0D C1 05",
            // The same with indefinite maps and arrays.
            "BF 9F 03 00 FF BF 09 18 64 FF  9F 03 00 06 FF BF 00 01 FF
             03 BF 9F 00 0D FF C1 05 FF FF",
            // {3: {0: {9: 100.0, 6: {0: 1}, 13: 5}}}: a whole float to an integer
            // resource and an untagged time.
            "A1 03 A1 00 A3 09 F9 5640 06 A1 00 01 0D 05",
        ] {
            assert_eq!(
                decode(&base, &hex(form), &device_types).unwrap(),
                want,
                "{form}"
            );
        }
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
            Some(7) => Some(ResourceType::Time),
            _ => None,
        };
        let records = vec![
            Record {
                path: Path::resource(9, 0, 1),
                value: Value::Opaque(vec![1, 2, 3, 0xff]),
            },
            Record {
                path: Path::resource(9, 0, 2),
                value: Value::ObjLnk(3, 0),
            },
            Record {
                path: Path::resource(9, 0, 3),
                value: Value::Boolean(true),
            },
            Record {
                path: Path::resource(9, 0, 4),
                value: Value::Float(1.5),
            },
            Record {
                path: Path::resource(9, 0, 5),
                value: Value::Unsigned(u64::MAX),
            },
            Record {
                path: Path::resource(9, 0, 6),
                value: Value::CoreLnk("</3/0>".into()),
            },
            Record {
                path: Path::resource(9, 0, 7),
                value: Value::Time(-1),
            },
        ];
        // {9: {0: {1: h'010203FF', 2: "3:0", 3: true, 4: 1.5, 5: 18446744073709551615,
        //  6: "</3/0>", 7: 1(-1)}}}
        let bytes = [
            hex("A1 09 A1 00 A7 01 44 010203FF 02"),
            s("3:0"),
            hex("03 F5 04 FA 3FC00000 05 1B FFFFFFFFFFFFFFFF 06"),
            s("</3/0>"),
            hex("07 C1 20"),
        ]
        .concat();
        let base = Path::instance(9, 0);
        assert_eq!(encode(&base, &records).unwrap(), bytes);
        assert_eq!(decode(&base, &bytes, &ty).unwrap(), records);
        // Indefinite text and bytes, a half float.
        let chunked = hex("A1 83 09 00 01 5F 42 0102 42 03FF FF");
        assert_eq!(
            decode(&base, &chunked, &ty).unwrap()[0].value,
            Value::Opaque(vec![1, 2, 3, 0xff])
        );
        let chunked = hex("A1 83 09 00 06 7F 62 3C2F 64 332F303E FF");
        assert_eq!(
            decode(&base, &chunked, &ty).unwrap()[0].value,
            Value::CoreLnk("</3/0>".into())
        );
        let half = hex("A1 83 09 00 04 F9 3E00");
        assert_eq!(
            decode(&base, &half, &ty).unwrap()[0].value,
            Value::Float(1.5)
        );
    }

    #[test]
    fn refuses_bad_payloads() {
        let base = Path::instance(3, 0);
        for bad in [
            "",
            "80",                                    // not a map
            "A1 83 03 00 09",                        // value missing
            "A1 83 03 00 09 01 00",                  // trailing byte
            "A1 83 03 00 09 F6",                     // null
            "A1 83 03 00 09 80",                     // array value
            "A1 83 03 00 09 C4 82 21 19",            // decimal fraction
            "A1 83 03 00 09 C1 1B FFFFFFFFFFFFFFFF", // time out of range
            "A1 63 332F30 01",                       // text key
            "A1 20 01",                              // negative key
            "A1 80 01",                              // empty array key
            "A1 82 03 61 30 01",                     // text in an array key
            "A1 83 03 00 19 FFFF 01",                // key 65535
            "A1 85 03 00 06 00 01 01",               // five segments
            "A1 84 03 00 06 00 A1 01 01",            // a map below a resource instance
            "A1 82 03 00 01",                        // a value at an instance
            "A2 83 03 00 09 01 03 A1 00 A1 09 02",   // /3/0/9 twice
            "A2 83 03 00 06 01 84 03 00 06 00 01",   // /3/0/6 single and multiple
            "A1 83 03 00 00 01",                     // integer to a string resource
            "BF",                                    // unterminated
            "A1 9F 03",
            "BB FFFFFFFFFFFFFFFF",
            "A1 9B FFFFFFFFFFFFFFFF 03",
        ] {
            assert!(
                decode(&base, &hex(bad), &device_types).is_err(),
                "{bad} accepted"
            );
        }
        assert_eq!(
            decode(&base, &hex("A1 83 03 01 09 01"), &device_types),
            Err(CodecError::OutsideBase(Path::resource(3, 1, 9)))
        );
        assert_eq!(
            decode(&base, &hex("A1 83 03 00 18 63 01"), &device_types),
            Err(CodecError::UnknownPath(Path::resource(3, 0, 99)))
        );
        // The nesting of an adversary's payload is bounded by the path depth.
        let deep = [hex("A1 00").repeat(5000), hex("01")].concat();
        assert!(decode(&Path::ROOT, &deep, &test_types).is_err());
    }

    proptest! {
        #[test]
        fn round_trip((base, records) in records_strategy()) {
            let bytes = encode(&base, &records).unwrap();
            let back = decode(&base, &bytes, &test_types).unwrap();
            prop_assert_eq!(back, records);
        }
    }
}
