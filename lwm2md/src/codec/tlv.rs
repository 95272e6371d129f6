//! OMA-TLV (content format 11542), Core TS 1.0 §6.4.3 / Transport TS 1.1 §7.4.3.
//!
//! Each TLV starts with a type byte: bits 7-6 say what it is (object instance, resource
//! instance, multiple resource, resource with value), bit 5 whether the identifier takes
//! one or two bytes, bits 4-3 how many bytes the length takes (0 means bits 2-0 hold it).

use super::{declared_type, finish, CodecError, Record};
use crate::path::{Path, MAX_ID};
use crate::value::{ResourceType, Value};

/// What a TLV stands for (bits 7-6 of its type byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ObjectInstance = 0b00,
    ResourceInstance = 0b01,
    MultipleResource = 0b10,
    Resource = 0b11,
}

/// One TLV as it is on the wire; `value` holds the children of the container kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub kind: Kind,
    pub id: u16,
    pub value: &'a [u8],
}

/// The longest value the 24-bit length field can describe.
const MAX_LEN: usize = 0xff_ffff;

/// Parses a sequence of TLVs that must fill `bytes` exactly.
pub fn parse(mut bytes: &[u8]) -> Result<Vec<Tlv<'_>>, CodecError> {
    let mut out = Vec::new();
    while let Some((&type_byte, rest)) = bytes.split_first() {
        let kind = match type_byte >> 6 {
            0b00 => Kind::ObjectInstance,
            0b01 => Kind::ResourceInstance,
            0b10 => Kind::MultipleResource,
            _ => Kind::Resource,
        };
        let id_len = if type_byte & 0x20 != 0 { 2 } else { 1 };
        let len_len = usize::from((type_byte >> 3) & 0b11);
        let (id_bytes, rest) = split(rest, id_len)?;
        let id = id_bytes
            .iter()
            .fold(0u16, |acc, &b| (acc << 8) | u16::from(b));
        if id > MAX_ID {
            return Err(CodecError::Malformed(
                "TLV identifier 65535 is reserved".into(),
            ));
        }
        let (len_bytes, rest) = split(rest, len_len)?;
        let len = if len_len == 0 {
            usize::from(type_byte & 0b111)
        } else {
            len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        let (value, rest) = split(rest, len)?;
        out.push(Tlv { kind, id, value });
        bytes = rest;
    }
    Ok(out)
}

fn split(bytes: &[u8], n: usize) -> Result<(&[u8], &[u8]), CodecError> {
    if bytes.len() < n {
        return Err(CodecError::Malformed("TLV truncated".into()));
    }
    Ok(bytes.split_at(n))
}

/// Appends one TLV with the shortest identifier and length fields.
pub fn emit(out: &mut Vec<u8>, kind: Kind, id: u16, value: &[u8]) -> Result<(), CodecError> {
    let len = value.len();
    if len > MAX_LEN {
        return Err(CodecError::Unrepresentable);
    }
    let mut type_byte = (kind as u8) << 6;
    if id > 0xff {
        type_byte |= 0x20;
    }
    let len_len: usize = match len {
        0..=7 => 0,
        8..=0xff => 1,
        0x100..=0xffff => 2,
        _ => 3,
    };
    if len_len == 0 {
        type_byte |= len as u8;
    } else {
        type_byte |= (len_len as u8) << 3;
    }
    out.push(type_byte);
    if id > 0xff {
        out.extend_from_slice(&id.to_be_bytes());
    } else {
        out.push(id as u8);
    }
    let len_bytes = (len as u32).to_be_bytes();
    out.extend_from_slice(&len_bytes[4 - len_len..]);
    out.extend_from_slice(value);
    Ok(())
}

/// Emits a container TLV whose value is built by `fill`.
fn emit_nested(
    out: &mut Vec<u8>,
    kind: Kind,
    id: u16,
    fill: impl FnOnce(&mut Vec<u8>) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let mut inner = Vec::new();
    fill(&mut inner)?;
    emit(out, kind, id, &inner)
}

/// The value bytes of one resource value.
pub fn value_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::Integer(n) | Value::Time(n) => signed_bytes(*n),
        Value::Unsigned(n) => match i64::try_from(*n) {
            // Smallest length whose top bit stays clear, so that 1.0 servers reading it as
            // a signed integer see the same number.
            Ok(n) => signed_bytes(n),
            Err(_) => n.to_be_bytes().to_vec(),
        },
        Value::Float(x) => {
            let single = *x as f32;
            if f64::from(single) == *x || x.is_nan() {
                single.to_be_bytes().to_vec()
            } else {
                x.to_be_bytes().to_vec()
            }
        }
        Value::Boolean(b) => vec![u8::from(*b)],
        Value::String(s) | Value::CoreLnk(s) => s.as_bytes().to_vec(),
        Value::Opaque(bytes) => bytes.clone(),
        Value::ObjLnk(o, i) => {
            let mut v = o.to_be_bytes().to_vec();
            v.extend_from_slice(&i.to_be_bytes());
            v
        }
    }
}

fn signed_bytes(n: i64) -> Vec<u8> {
    if let Ok(n) = i8::try_from(n) {
        n.to_be_bytes().to_vec()
    } else if let Ok(n) = i16::try_from(n) {
        n.to_be_bytes().to_vec()
    } else if let Ok(n) = i32::try_from(n) {
        n.to_be_bytes().to_vec()
    } else {
        n.to_be_bytes().to_vec()
    }
}

/// Reads value bytes as the declared type `ty`; `None` when they cannot be one.
pub fn parse_value(bytes: &[u8], ty: ResourceType) -> Option<Value> {
    Some(match ty {
        ResourceType::Integer => Value::Integer(signed(bytes)?),
        ResourceType::Time => Value::Time(signed(bytes)?),
        ResourceType::Unsigned => match bytes.len() {
            1 | 2 | 4 | 8 => {
                Value::Unsigned(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
            }
            _ => return None,
        },
        ResourceType::Float => match bytes {
            [a, b, c, d] => Value::Float(f64::from(f32::from_be_bytes([*a, *b, *c, *d]))),
            _ => Value::Float(f64::from_be_bytes(bytes.try_into().ok()?)),
        },
        ResourceType::Boolean => match bytes {
            [0] => Value::Boolean(false),
            [1] => Value::Boolean(true),
            _ => return None,
        },
        ResourceType::String => Value::String(String::from_utf8(bytes.to_vec()).ok()?),
        ResourceType::CoreLnk => Value::CoreLnk(String::from_utf8(bytes.to_vec()).ok()?),
        ResourceType::Opaque => Value::Opaque(bytes.to_vec()),
        ResourceType::ObjLnk => match bytes {
            [a, b, c, d] => {
                Value::ObjLnk(u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d]))
            }
            _ => return None,
        },
        ResourceType::None => return None,
    })
}

fn signed(bytes: &[u8]) -> Option<i64> {
    Some(match bytes.len() {
        1 => i64::from(i8::from_be_bytes(bytes.try_into().ok()?)),
        2 => i64::from(i16::from_be_bytes(bytes.try_into().ok()?)),
        4 => i64::from(i32::from_be_bytes(bytes.try_into().ok()?)),
        8 => i64::from_be_bytes(bytes.try_into().ok()?),
        _ => return None,
    })
}

/// Encodes the records under `base` (an object, instance, resource or resource instance).
pub fn encode(base: &Path, records: &[Record]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    match base.ids() {
        [_] => {
            for group in records.chunk_by(|a, b| a.path.instance_id() == b.path.instance_id()) {
                let instance = group
                    .first()
                    .and_then(|r| r.path.instance_id())
                    .ok_or(CodecError::Unrepresentable)?;
                emit_nested(&mut out, Kind::ObjectInstance, instance, |inner| {
                    emit_resources(inner, group)
                })?;
            }
        }
        [_, _] => emit_resources(&mut out, records)?,
        [_, _, r] => {
            if records.is_empty() {
                // A single-instance resource always has one record, so nothing at a
                // resource path is a multiple-instance resource without instances.
                emit(&mut out, Kind::MultipleResource, *r, &[])?;
            } else {
                emit_resources(&mut out, records)?;
            }
        }
        [_, _, _, ri] => match records {
            [record] => emit(
                &mut out,
                Kind::ResourceInstance,
                *ri,
                &value_bytes(&record.value),
            )?,
            _ => return Err(CodecError::Unrepresentable),
        },
        _ => return Err(CodecError::Unrepresentable),
    }
    Ok(out)
}

/// Emits the resources of one instance: single ones as Resource TLVs, multiple-instance
/// ones (records at `/o/i/r/ri`) always as a Multiple Resource TLV.
fn emit_resources(out: &mut Vec<u8>, records: &[Record]) -> Result<(), CodecError> {
    for group in records.chunk_by(|a, b| a.path.resource_id() == b.path.resource_id()) {
        match group {
            [single] if single.path.len() == 3 => {
                let id = single
                    .path
                    .resource_id()
                    .ok_or(CodecError::Unrepresentable)?;
                emit(out, Kind::Resource, id, &value_bytes(&single.value))?;
            }
            _ => {
                let id = group
                    .first()
                    .and_then(|r| r.path.resource_id())
                    .ok_or(CodecError::Unrepresentable)?;
                emit_nested(out, Kind::MultipleResource, id, |inner| {
                    for record in group {
                        let ri = record
                            .path
                            .resource_instance_id()
                            .ok_or(CodecError::Unrepresentable)?;
                        emit(
                            inner,
                            Kind::ResourceInstance,
                            ri,
                            &value_bytes(&record.value),
                        )?;
                    }
                    Ok(())
                })?;
            }
        }
    }
    Ok(())
}

/// Decodes a Write or Create payload for `base`.
///
/// Under an object path resources must be wrapped in Object Instance TLVs; when they are
/// not, the error says the instance is missing (a Create may then retry with a new
/// instance path). Under an instance path a single wrapping Object Instance TLV with the
/// same ID is accepted. Under a resource path both a Resource / Multiple Resource TLV
/// and bare Resource Instance TLVs are accepted.
pub fn decode(
    base: &Path,
    payload: &[u8],
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
) -> Result<Vec<Record>, CodecError> {
    let top = parse(payload)?;
    let mut records = Vec::new();
    match base.ids() {
        [o] => {
            let mut seen = std::collections::BTreeSet::new();
            for tlv in &top {
                if tlv.kind != Kind::ObjectInstance {
                    return Err(CodecError::Malformed(format!(
                        "object instance TLV missing: resources under {base} must be wrapped in an Object Instance TLV"
                    )));
                }
                if !seen.insert(tlv.id) {
                    return Err(CodecError::Malformed(format!(
                        "object instance {} appears twice",
                        tlv.id
                    )));
                }
                let instance = Path::instance(*o, tlv.id);
                decode_resources(&instance, tlv.value, ty, &mut records)?;
            }
        }
        [o, i] => match top.as_slice() {
            [Tlv {
                kind: Kind::ObjectInstance,
                id,
                value,
            }] => {
                if id != i {
                    return Err(CodecError::OutsideBase(Path::instance(*o, *id)));
                }
                decode_resources(base, value, ty, &mut records)?;
            }
            _ => decode_resources(base, payload, ty, &mut records)?,
        },
        [_, _, r] => match top.as_slice() {
            [Tlv {
                kind: kind @ (Kind::Resource | Kind::MultipleResource),
                id,
                value,
            }] => {
                if id != r {
                    return Err(CodecError::OutsideBase(
                        base.parent().child(*id).unwrap_or(*base),
                    ));
                }
                decode_resource(base, *kind, value, ty, &mut records)?;
            }
            _ if top.iter().all(|t| t.kind == Kind::ResourceInstance) => {
                decode_resource(base, Kind::MultipleResource, payload, ty, &mut records)?;
            }
            _ => {
                return Err(CodecError::Malformed(format!(
                    "expected one resource TLV or resource instance TLVs for {base}"
                )))
            }
        },
        [_, _, _, ri] => match top.as_slice() {
            [Tlv {
                kind: Kind::ResourceInstance,
                id,
                value,
            }] => {
                if id != ri {
                    return Err(CodecError::OutsideBase(
                        base.parent().child(*id).unwrap_or(*base),
                    ));
                }
                records.push(typed(*base, value, ty)?);
            }
            _ => {
                return Err(CodecError::Malformed(format!(
                    "expected one resource instance TLV for {base}"
                )))
            }
        },
        _ => {
            return Err(CodecError::Malformed(
                "a TLV payload needs an object, instance or resource path".into(),
            ))
        }
    }
    finish(base, records)
}

/// Decodes the Resource and Multiple Resource TLVs of one object instance.
fn decode_resources(
    instance: &Path,
    bytes: &[u8],
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
    records: &mut Vec<Record>,
) -> Result<(), CodecError> {
    let mut seen = std::collections::BTreeSet::new();
    for tlv in parse(bytes)? {
        if !seen.insert(tlv.id) {
            return Err(CodecError::Malformed(format!(
                "resource {} appears twice in {instance}",
                tlv.id
            )));
        }
        let path = instance.child(tlv.id).ok_or_else(|| {
            CodecError::Malformed(format!(
                "TLV {:?} cannot appear inside {instance}",
                tlv.kind
            ))
        })?;
        match tlv.kind {
            Kind::Resource | Kind::MultipleResource => {
                decode_resource(&path, tlv.kind, tlv.value, ty, records)?
            }
            _ => {
                return Err(CodecError::Malformed(format!(
                    "{:?} TLV inside object instance {instance}",
                    tlv.kind
                )))
            }
        }
    }
    Ok(())
}

/// Decodes the value of one Resource or Multiple Resource TLV at resource path `path`.
fn decode_resource(
    path: &Path,
    kind: Kind,
    value: &[u8],
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
    records: &mut Vec<Record>,
) -> Result<(), CodecError> {
    if kind == Kind::Resource {
        records.push(typed(*path, value, ty)?);
        return Ok(());
    }
    for tlv in parse(value)? {
        if tlv.kind != Kind::ResourceInstance {
            return Err(CodecError::Malformed(format!(
                "{:?} TLV inside multiple resource {path}",
                tlv.kind
            )));
        }
        let instance = path
            .child(tlv.id)
            .ok_or_else(|| CodecError::Malformed(format!("resource instance below {path}")))?;
        records.push(typed(instance, tlv.value, ty)?);
    }
    Ok(())
}

fn typed(
    path: Path,
    bytes: &[u8],
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
) -> Result<Record, CodecError> {
    let expected = declared_type(&path, ty)?;
    let value = parse_value(bytes, expected).ok_or(CodecError::Type { path, expected })?;
    Ok(Record { path, value })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{device_records, device_types, hex, records_strategy, test_types};
    use super::*;
    use proptest::prelude::*;

    /// Core TS 1.0 §6.4.3.1, Read /3/0: the Device object instance as
    /// resource TLVs.
    const DEVICE: &str = "C800144F70656E204D6F62696C6520416C6C69616E6365\
        C801164C69676874776569676874204D324D20436C69656E74\
        C80209333435303030313233\
        C303312E30\
        86064100014101 05\
        88070842000ED842011388\
        870841007D42010384\
        C10964\
        C10A0F\
        830B410000\
        C40D5182428F\
        C60E2B30323A3030\
        C11055";

    #[test]
    fn device_instance_read() {
        let base: Path = "/3/0".parse().unwrap();
        assert_eq!(encode(&base, &device_records()).unwrap(), hex(DEVICE));
        assert_eq!(
            decode(&base, &hex(DEVICE), &device_types).unwrap(),
            device_records()
        );
    }

    #[test]
    fn device_object_read_wraps_instance() {
        // Core TS 1.0 §6.4.3.2 A): Read /3 wraps the instance in an Object Instance TLV.
        let wrapped = [hex("080079"), hex(DEVICE)].concat();
        let object: Path = "/3".parse().unwrap();
        assert_eq!(encode(&object, &device_records()).unwrap(), wrapped);
        assert_eq!(
            decode(&object, &wrapped, &device_types).unwrap(),
            device_records()
        );
        // A wrapper with the same instance ID is accepted under /3/0 too.
        let instance: Path = "/3/0".parse().unwrap();
        assert_eq!(
            decode(&instance, &wrapped, &device_types).unwrap(),
            device_records()
        );
        let other = [hex("080179"), hex(DEVICE)].concat();
        assert_eq!(
            decode(&instance, &other, &device_types),
            Err(CodecError::OutsideBase("/3/1".parse().unwrap()))
        );
    }

    #[test]
    fn create_without_instance_is_reported() {
        let err = decode(&"/3".parse().unwrap(), &hex(DEVICE), &device_types).unwrap_err();
        match err {
            CodecError::Malformed(why) => assert!(why.contains("instance TLV missing"), "{why}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn acl_object_two_instances() {
        // Core TS 1.0 §6.4.3.2 B): Read /2 with instances 0 and 2.
        let payload =
            hex("08000EC10001C101008302417F07C1037F080212C10003C101008702417F0761013601C1037F");
        let ty = |p: &Path| match p.resource_id() {
            Some(0..=3) => Some(ResourceType::Integer),
            _ => None,
        };
        let rec = |p: &str, n| Record {
            path: p.parse().unwrap(),
            value: Value::Integer(n),
        };
        let expected = vec![
            rec("/2/0/0", 1),
            rec("/2/0/1", 0),
            rec("/2/0/2/127", 7),
            rec("/2/0/3", 127),
            rec("/2/2/0", 3),
            rec("/2/2/1", 0),
            rec("/2/2/2/127", 7),
            rec("/2/2/2/310", 1),
            rec("/2/2/3", 127),
        ];
        let base: Path = "/2".parse().unwrap();
        assert_eq!(decode(&base, &payload, &ty).unwrap(), expected);
        assert_eq!(encode(&base, &expected).unwrap(), payload);
    }

    #[test]
    fn object_links() {
        // Core TS 1.0 §6.4.3.3 1): instance of object 65 with a multiple object-link
        // resource, a string and an integer.
        let payload =
            hex("88000C440000420000440100420001C8010D38363133383030373535353030C40212345678");
        let ty = |p: &Path| match p.resource_id() {
            Some(0) => Some(ResourceType::ObjLnk),
            Some(1) => Some(ResourceType::String),
            Some(2) => Some(ResourceType::Integer),
            _ => None,
        };
        let base: Path = "/65/0".parse().unwrap();
        let records = decode(&base, &payload, &ty).unwrap();
        assert_eq!(
            records,
            vec![
                Record {
                    path: "/65/0/0/0".parse().unwrap(),
                    value: Value::ObjLnk(66, 0)
                },
                Record {
                    path: "/65/0/0/1".parse().unwrap(),
                    value: Value::ObjLnk(66, 1)
                },
                Record {
                    path: "/65/0/1".parse().unwrap(),
                    value: Value::String("8613800755500".into())
                },
                Record {
                    path: "/65/0/2".parse().unwrap(),
                    value: Value::Integer(0x12345678)
                },
            ]
        );
        assert_eq!(encode(&base, &records).unwrap(), payload);
    }

    #[test]
    fn single_and_multiple_resource() {
        let manufacturer: Path = "/3/0/0".parse().unwrap();
        let records = decode(
            &manufacturer,
            &hex("C800144F70656E204D6F62696C6520416C6C69616E6365"),
            &device_types,
        )
        .unwrap();
        assert_eq!(records, device_records()[..1]);
        assert_eq!(
            encode(&manufacturer, &records).unwrap(),
            hex("C800144F70656E204D6F62696C6520416C6C69616E6365")
        );

        // Power sources /3/0/6, as a Multiple Resource TLV and as bare instances.
        let sources: Path = "/3/0/6".parse().unwrap();
        let expected = device_records()[4..6].to_vec();
        assert_eq!(
            decode(&sources, &hex("8606410001410105"), &device_types).unwrap(),
            expected
        );
        assert_eq!(
            decode(&sources, &hex("410001410105"), &device_types).unwrap(),
            expected
        );
        assert_eq!(
            encode(&sources, &expected).unwrap(),
            hex("8606410001410105")
        );
        // A multiple resource without instances.
        assert_eq!(encode(&sources, &[]).unwrap(), hex("8006"));
        assert_eq!(
            decode(&sources, &hex("8006"), &device_types).unwrap(),
            vec![]
        );

        let one: Path = "/3/0/6/1".parse().unwrap();
        assert_eq!(encode(&one, &expected[1..]).unwrap(), hex("410105"));
        assert_eq!(
            decode(&one, &hex("410105"), &device_types).unwrap(),
            expected[1..]
        );
        assert!(matches!(
            decode(&one, &hex("410005"), &device_types),
            Err(CodecError::OutsideBase(_))
        ));
    }

    #[test]
    fn integer_sizes() {
        let cases: [(Value, &str); 12] = [
            (Value::Integer(0), "00"),
            (Value::Integer(-128), "80"),
            (Value::Integer(128), "0080"),
            (Value::Integer(-32769), "FFFF7FFF"),
            (Value::Integer(i64::MIN), "8000000000000000"),
            (Value::Unsigned(127), "7F"),
            (Value::Unsigned(128), "0080"),
            (Value::Unsigned(0xffff), "0000FFFF"),
            (Value::Unsigned(u64::MAX), "FFFFFFFFFFFFFFFF"),
            (Value::Float(1.5), "3FC00000"),
            (Value::Float(0.1), "3FB999999999999A"),
            (Value::ObjLnk(3, 0xffff), "0003FFFF"),
        ];
        for (value, bytes) in cases {
            assert_eq!(value_bytes(&value), hex(bytes), "{value:?}");
            assert_eq!(parse_value(&hex(bytes), value.resource_type()), Some(value));
        }
        assert_eq!(parse_value(&hex("000001"), ResourceType::Integer), None);
        assert_eq!(parse_value(&hex("02"), ResourceType::Boolean), None);
        assert_eq!(parse_value(&hex("0001"), ResourceType::Float), None);
    }

    #[test]
    fn long_values_and_ids() {
        let mut out = Vec::new();
        emit(&mut out, Kind::Resource, 300, &[7u8; 300]).unwrap();
        assert_eq!(out[..5], hex("F0012C012C"));
        let parsed = parse(&out).unwrap();
        assert_eq!(
            parsed,
            vec![Tlv {
                kind: Kind::Resource,
                id: 300,
                value: &[7u8; 300]
            }]
        );
    }

    #[test]
    fn refuses_bad_input() {
        let base: Path = "/3/0".parse().unwrap();
        for bad in [
            "C8",                    // no identifier
            "C80014",                // value missing
            "C1096464",              // trailing byte
            "E1FFFF00",              // identifier 65535
            "860641000141",          // multiple resource overruns its instances
            "8603C10964",            // a resource inside a multiple resource
            "080003080100",          // object instance inside an instance
            "4100 01",               // resource instance directly under an instance
            "C10901C10902",          // same resource twice
            "8603410001 8603410105", // same multiple resource twice
        ] {
            assert!(
                decode(&base, &hex(bad), &device_types).is_err(),
                "{bad} accepted"
            );
        }
        assert_eq!(
            decode(&base, &hex("C16301"), &device_types),
            Err(CodecError::UnknownPath("/3/0/99".parse().unwrap()))
        );
        assert!(decode(&Path::ROOT, &hex("C10964"), &device_types).is_err());
        // Two Object Instance TLVs with the same ID.
        assert!(decode(
            &"/3".parse().unwrap(),
            &hex("080003C10964 080003C10A0F"),
            &device_types
        )
        .is_err());
    }

    proptest! {
        #[test]
        fn round_trip((base, records) in records_strategy()) {
            prop_assume!(!base.is_empty());
            let bytes = encode(&base, &records).unwrap();
            let back = decode(&base, &bytes, &test_types).unwrap();
            prop_assert_eq!(back, records);
        }
    }
}
