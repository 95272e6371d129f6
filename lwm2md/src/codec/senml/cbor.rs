//! SenML CBOR (content format 112, RFC 8428 §6): the JSON data model with integer labels
//! (bn -2, bt -3, n 0, v 2, vs 3, vb 4, t 6, vd 8) and LwM2M's text label "vlo".

use minicbor::data::Type;
use minicbor::{Decoder, Encoder};

use super::{
    from_raw, must_understand, to_raw, unsupported, Number, RawRecord, SenmlValue, MAX_RECORDS,
};
use crate::codec::{CodecError, Record};
use crate::path::Path;
use crate::value::ResourceType;

const BVER: i64 = -1;
const BN: i64 = -2;
const BT: i64 = -3;
const BU: i64 = -4;
const BV: i64 = -5;
const BS: i64 = -6;
const N: i64 = 0;
const U: i64 = 1;
const V: i64 = 2;
const VS: i64 = 3;
const VB: i64 = 4;
const S: i64 = 5;
const T: i64 = 6;
const UT: i64 = 7;
const VD: i64 = 8;
const VLO: &str = "vlo";

/// Encodes the records under `base`; no records is the empty array.
pub fn encode(base: &Path, records: &[Record]) -> Result<Vec<u8>, CodecError> {
    emit(&to_raw(base, records)?)
}

/// Decodes a SenML CBOR pack written to `base`.
pub fn decode(
    base: &Path,
    payload: &[u8],
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
) -> Result<Vec<Record>, CodecError> {
    from_raw(base, parse(payload)?, ty)
}

/// Emits a pack with definite lengths; integers stay integers, floats take four bytes
/// when that loses nothing.
pub fn emit(records: &[RawRecord]) -> Result<Vec<u8>, CodecError> {
    write(records).map_err(|_| CodecError::Unrepresentable)
}

fn write(
    records: &[RawRecord],
) -> Result<Vec<u8>, minicbor::encode::Error<std::convert::Infallible>> {
    let mut e = Encoder::new(Vec::new());
    e.array(records.len() as u64)?;
    for r in records {
        let fields = [
            r.bn.is_some(),
            r.bt.is_some(),
            r.n.is_some(),
            r.t.is_some(),
            r.value.is_some(),
        ];
        e.map(fields.iter().filter(|f| **f).count() as u64)?;
        if let Some(bn) = &r.bn {
            e.i64(BN)?.str(bn)?;
        }
        if let Some(bt) = r.bt {
            e.i64(BT)?;
            number(&mut e, Number::Float(bt))?;
        }
        if let Some(n) = &r.n {
            e.i64(N)?.str(n)?;
        }
        if let Some(t) = r.t {
            e.i64(T)?;
            number(&mut e, Number::Float(t))?;
        }
        match &r.value {
            None => {}
            Some(SenmlValue::Number(n)) => {
                e.i64(V)?;
                number(&mut e, *n)?;
            }
            Some(SenmlValue::String(s)) => {
                e.i64(VS)?.str(s)?;
            }
            Some(SenmlValue::Bool(b)) => {
                e.i64(VB)?.bool(*b)?;
            }
            Some(SenmlValue::Data(d)) => {
                e.i64(VD)?.bytes(d)?;
            }
            Some(SenmlValue::ObjLnk(s)) => {
                e.str(VLO)?.str(s)?;
            }
        }
    }
    Ok(e.into_writer())
}

/// Writes a number; floats take four bytes when that loses nothing.
pub(crate) fn number(
    e: &mut Encoder<Vec<u8>>,
    n: Number,
) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
    match n {
        Number::Int(n) => e.i64(n)?,
        Number::Uint(n) => e.u64(n)?,
        Number::Float(x) => {
            let single = x as f32;
            if f64::from(single) == x || x.is_nan() {
                e.f32(single)?
            } else {
                e.f64(x)?
            }
        }
    };
    Ok(())
}

fn malformed(e: minicbor::decode::Error) -> CodecError {
    CodecError::Malformed(format!("SenML CBOR: {e}"))
}

/// Parses a pack. Values of unknown labels are skipped without recursion and every count
/// is bounded by the input, so no input can exhaust memory or the stack.
pub fn parse(payload: &[u8]) -> Result<Vec<RawRecord>, CodecError> {
    let mut d = Decoder::new(payload);
    let len = d.array().map_err(malformed)?;
    let mut out = Vec::new();
    while has_next(&mut d, len, out.len() as u64)? {
        if out.len() >= MAX_RECORDS {
            return Err(CodecError::Malformed(format!(
                "SenML pack of more than {MAX_RECORDS} records"
            )));
        }
        out.push(parse_record(&mut d)?);
    }
    if d.position() != payload.len() {
        return Err(CodecError::Malformed("bytes after the SenML pack".into()));
    }
    Ok(out)
}

enum Label<'b> {
    Int(i64),
    Text(&'b str),
    /// An integer outside i64: no SenML label.
    Other,
}

fn parse_record(d: &mut Decoder<'_>) -> Result<RawRecord, CodecError> {
    if !matches!(d.datatype().map_err(malformed)?, Type::Map | Type::MapIndef) {
        return Err(CodecError::Malformed("a SenML record is a CBOR map".into()));
    }
    let len = d.map().map_err(malformed)?;
    let mut r = RawRecord::default();
    let mut seen = 0u64;
    while has_next(d, len, seen)? {
        seen += 1;
        let label = match d.datatype().map_err(malformed)? {
            Type::U8 | Type::U16 | Type::U32 | Type::I8 | Type::I16 | Type::I32 | Type::I64 => {
                Label::Int(d.i64().map_err(malformed)?)
            }
            Type::U64 | Type::Int => {
                d.skip().map_err(malformed)?;
                Label::Other
            }
            Type::String => Label::Text(d.str().map_err(malformed)?),
            _ => {
                return Err(CodecError::Malformed(
                    "a SenML label is an integer or text".into(),
                ))
            }
        };
        let value = match label {
            Label::Int(BN) => {
                r.bn = Some(d.str().map_err(malformed)?.to_string());
                continue;
            }
            Label::Int(N) => {
                r.n = Some(d.str().map_err(malformed)?.to_string());
                continue;
            }
            Label::Int(BT) => {
                r.bt = Some(read_number(d)?.as_f64());
                continue;
            }
            Label::Int(T) => {
                r.t = Some(read_number(d)?.as_f64());
                continue;
            }
            Label::Int(V) => SenmlValue::Number(read_number(d)?),
            Label::Int(VS) => SenmlValue::String(d.str().map_err(malformed)?.to_string()),
            Label::Int(VB) => SenmlValue::Bool(d.bool().map_err(malformed)?),
            Label::Int(VD) => SenmlValue::Data(d.bytes().map_err(malformed)?.to_vec()),
            Label::Text(VLO) => SenmlValue::ObjLnk(d.str().map_err(malformed)?.to_string()),
            Label::Int(BVER | UT) => {
                read_number(d)?;
                continue;
            }
            Label::Int(BU | U) => {
                d.str().map_err(malformed)?;
                continue;
            }
            Label::Int(BV) => return Err(unsupported("bv")),
            Label::Int(BS) => return Err(unsupported("bs")),
            Label::Int(S) => return Err(unsupported("s")),
            Label::Text(t) if must_understand(t) => return Err(unsupported(t)),
            Label::Int(_) | Label::Text(_) | Label::Other => {
                d.skip().map_err(malformed)?;
                continue;
            }
        };
        if r.value.replace(value).is_some() {
            return Err(CodecError::Malformed("SenML record with two values".into()));
        }
    }
    Ok(r)
}

/// Reads an integer or a float of any width.
/// Whether a container opened with `Decoder::array` or `Decoder::map` (of length `len`,
/// `None` when indefinite) has another item after the `seen` already read. Consumes the
/// break that ends an indefinite one.
pub(crate) fn has_next(
    d: &mut Decoder<'_>,
    len: Option<u64>,
    seen: u64,
) -> Result<bool, CodecError> {
    match len {
        Some(n) => Ok(seen < n),
        None if d.datatype().map_err(malformed)? == Type::Break => {
            d.skip().map_err(malformed)?;
            Ok(false)
        }
        None => Ok(true),
    }
}

pub(crate) fn read_number(d: &mut Decoder<'_>) -> Result<Number, CodecError> {
    Ok(match d.datatype().map_err(malformed)? {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => {
            let n = d.u64().map_err(malformed)?;
            match i64::try_from(n) {
                Ok(n) => Number::Int(n),
                Err(_) => Number::Uint(n),
            }
        }
        Type::I8 | Type::I16 | Type::I32 | Type::I64 => Number::Int(d.i64().map_err(malformed)?),
        Type::F16 => {
            // minicbor reads half floats only with its "half" feature; they are simple.
            let pos = d.position();
            let bits = d
                .input()
                .get(pos + 1..pos + 3)
                .and_then(|b| <[u8; 2]>::try_from(b).ok())
                .ok_or_else(|| CodecError::Malformed("SenML CBOR: truncated half float".into()))?;
            d.set_position(pos + 3);
            Number::Float(half_to_f64(u16::from_be_bytes(bits)))
        }
        Type::F32 => Number::Float(f64::from(d.f32().map_err(malformed)?)),
        Type::F64 => Number::Float(d.f64().map_err(malformed)?),
        _ => {
            return Err(CodecError::Malformed(
                "SenML CBOR: expected a number".into(),
            ))
        }
    })
}

/// IEEE 754 binary16 to f64.
fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f64::from(bits & 0x3ff);
    let magnitude = match exponent {
        0 => mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + mantissa / 1024.0) * 2f64.powi(e - 15),
    };
    sign * magnitude
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::{device_records, device_types, hex, records_strategy, test_types};
    use crate::value::Value;
    use proptest::prelude::*;

    #[test]
    fn device_instance_read() {
        // Transport TS 1.1 §7.4.5: the pack of §7.4.4 with integer labels, here written
        // out byte by byte.
        let mut expected = hex("90"); // array(16)
        let s = |t: &str| {
            let mut v = vec![0x60 + t.len() as u8];
            assert!(t.len() < 24);
            v.extend_from_slice(t.as_bytes());
            v
        };
        // {-2: "/3/0/", 0: "0", 3: "Open Mobile Alliance"}
        expected.extend(
            [
                hex("A3 21"),
                s("/3/0/"),
                hex("00"),
                s("0"),
                hex("03"),
                s("Open Mobile Alliance"),
            ]
            .concat(),
        );
        expected.extend([hex("A2 00"), s("1"), hex("03"), s("Lightweight M2M Client")].concat());
        expected.extend([hex("A2 00"), s("2"), hex("03"), s("345000123")].concat());
        expected.extend([hex("A2 00"), s("3"), hex("03"), s("1.0")].concat());
        expected.extend([hex("A2 00"), s("6/0"), hex("02 01")].concat());
        expected.extend([hex("A2 00"), s("6/1"), hex("02 05")].concat());
        expected.extend([hex("A2 00"), s("7/0"), hex("02 19 0ED8")].concat());
        expected.extend([hex("A2 00"), s("7/1"), hex("02 19 1388")].concat());
        expected.extend([hex("A2 00"), s("8/0"), hex("02 18 7D")].concat());
        expected.extend([hex("A2 00"), s("8/1"), hex("02 19 0384")].concat());
        expected.extend([hex("A2 00"), s("9"), hex("02 18 64")].concat());
        expected.extend([hex("A2 00"), s("10"), hex("02 0F")].concat());
        expected.extend([hex("A2 00"), s("11/0"), hex("02 00")].concat());
        expected.extend([hex("A2 00"), s("13"), hex("02 1A 5182428F")].concat());
        expected.extend([hex("A2 00"), s("14"), hex("03"), s("+02:00")].concat());
        expected.extend([hex("A2 00"), s("16"), hex("03"), s("U")].concat());
        let base: Path = "/3/0".parse().unwrap();
        assert_eq!(encode(&base, &device_records()).unwrap(), expected);
        assert_eq!(
            decode(&base, &expected, &device_types).unwrap(),
            device_records()
        );
    }

    #[test]
    fn rfc8428_cbor_example() {
        // RFC 8428 §6: the CBOR form of the §5.1.2 pack (first two records).
        let cbor = hex(
            "82 A7 21 78 1B 75726E3A6465763A6F773A 3130653230373361303130383030363A
             22 FB 41D303A15B001062
             23 61 41
             20 05
             00 67 766F6C74616765
             01 61 56
             02 FB 405E066666666666
             A3 00 67 63757272656E74
             06 24
             02 FB 3FF3333333333333",
        );
        let resolved = super::super::resolve(parse(&cbor).unwrap());
        assert_eq!(resolved.len(), 2);
        assert_eq!(resolved[0].name, "urn:dev:ow:10e2073a0108006:voltage");
        assert_eq!(resolved[0].time, 1.276020076001e9);
        assert_eq!(
            resolved[0].value,
            Some(SenmlValue::Number(Number::Float(120.1)))
        );
        assert_eq!(resolved[1].name, "urn:dev:ow:10e2073a0108006:current");
        assert_eq!(resolved[1].time, 1.276020076001e9 - 5.0);
        assert_eq!(
            resolved[1].value,
            Some(SenmlValue::Number(Number::Float(1.2)))
        );
    }

    #[test]
    fn value_kinds_and_indefinite_lengths() {
        let ty = |p: &Path| match p.resource_id() {
            Some(1) => Some(ResourceType::Opaque),
            Some(2) => Some(ResourceType::ObjLnk),
            Some(3) => Some(ResourceType::Boolean),
            Some(4) => Some(ResourceType::Float),
            _ => None,
        };
        // [_ {_ -2: "/9/0/", 0: "1", 8: h'0102'}, {0: "2", "vlo": "3:0"},
        //  {0: "3", 4: true}, {0: "4", 2: 1.5 (half)}]
        let cbor = hex("9F BF 21 65 2F392F302F 00 61 31 08 42 0102 FF
             A2 00 61 32 63 766C6F 63 333A30
             A2 00 61 33 04 F5
             A2 00 61 34 02 F9 3E00
             FF");
        let values: Vec<Value> = decode(&"/9/0".parse().unwrap(), &cbor, &ty)
            .unwrap()
            .into_iter()
            .map(|r| r.value)
            .collect();
        assert_eq!(
            values,
            [
                Value::Opaque(vec![1, 2]),
                Value::ObjLnk(3, 0),
                Value::Boolean(true),
                Value::Float(1.5)
            ]
        );
    }

    #[test]
    fn refuses_bad_packs() {
        let base: Path = "/3/0".parse().unwrap();
        for bad in [
            "",
            "A0",                                                         // not an array
            "81 A1 00 66 2F332F302F39",                                   // no value
            "81 A2 00 66 2F332F302F39 02",                                // value missing
            "81 A2 00 66 2F332F302F39 02 01 00",                          // trailing byte
            "81 A2 00 66 2F332F302F39 02 61 31",                          // v as text
            "81 A3 00 66 2F332F302F39 02 01 05 01",                       // sum
            "81 A3 00 66 2F332F302F39 02 01 03 61 31",                    // two values
            "82 A2 00 66 2F332F302F39 02 01 A2 00 66 2F332F302F39 02 02", // twice
            "81 A2 00 66 2F332F302F39 02 C4 82 21 19 6AB3",               // decimal fraction
            "9F",                                                         // unterminated
            "BB FFFFFFFFFFFFFFFF",
            "9B FFFFFFFFFFFFFFFF A0",
        ] {
            assert!(
                decode(&base, &hex(bad), &device_types).is_err(),
                "{bad} accepted"
            );
        }
        // Unknown labels are skipped, however nested.
        let ok = hex("81 A3 00 66 2F332F302F39 02 01 09 9F 9F 81 A1 01 80 FF FF");
        assert!(decode(&base, &ok, &device_types).is_ok());
        assert_eq!(encode(&base, &[]).unwrap(), hex("80"));
    }

    #[test]
    fn half_floats() {
        assert_eq!(half_to_f64(0x3c00), 1.0);
        assert_eq!(half_to_f64(0xc000), -2.0);
        assert_eq!(half_to_f64(0x0001), 5.960464477539063e-8);
        assert_eq!(half_to_f64(0x7c00), f64::INFINITY);
        assert!(half_to_f64(0x7e00).is_nan());
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
