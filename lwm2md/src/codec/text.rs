//! Plain text (content format 0): one resource or resource-instance value as UTF-8 text
//! (Transport TS 1.1 §7.4.1).

use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use base64::Engine;

use super::{declared_type, parse_objlnk, CodecError, Record};
use crate::path::Path;
use crate::value::{ResourceType, Value};

/// Encodes the single record under `base`; anything but one value is unrepresentable.
pub fn encode(base: &Path, records: &[Record]) -> Result<Vec<u8>, CodecError> {
    match records {
        [record] if record.path == *base && base.len() >= 3 => {
            Ok(format_value(&record.value)?.into_bytes())
        }
        _ => Err(CodecError::Unrepresentable),
    }
}

/// The text form of one value.
pub fn format_value(value: &Value) -> Result<String, CodecError> {
    Ok(match value {
        Value::Integer(n) | Value::Time(n) => n.to_string(),
        Value::Unsigned(n) => n.to_string(),
        // Display prints the shortest decimal that reads back to the same f64; text has
        // no spelling for NaN or infinity that a server would parse.
        Value::Float(x) if x.is_finite() => x.to_string(),
        Value::Float(_) => return Err(CodecError::Unrepresentable),
        Value::Boolean(b) => if *b { "1" } else { "0" }.to_string(),
        Value::String(s) | Value::CoreLnk(s) => s.clone(),
        Value::Opaque(bytes) => STANDARD.encode(bytes),
        Value::ObjLnk(o, i) => format!("{o}:{i}"),
    })
}

/// Decodes a text payload written to the resource or resource instance `base`.
pub fn decode(
    base: &Path,
    payload: &[u8],
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
) -> Result<Vec<Record>, CodecError> {
    if base.len() < 3 {
        return Err(CodecError::Malformed(format!(
            "plain text carries a single resource value, not {base}"
        )));
    }
    let expected = declared_type(base, ty)?;
    let text = std::str::from_utf8(payload)
        .map_err(|_| CodecError::Malformed("plain text is not UTF-8".into()))?;
    let value = parse_value(text, expected).ok_or(CodecError::Type {
        path: *base,
        expected,
    })?;
    Ok(vec![Record { path: *base, value }])
}

/// Parses the text form of a value of type `ty`.
pub fn parse_value(text: &str, ty: ResourceType) -> Option<Value> {
    Some(match ty {
        ResourceType::Integer => Value::Integer(parse_decimal(text)?),
        ResourceType::Time => Value::Time(parse_decimal(text)?),
        ResourceType::Unsigned => {
            let digits = text.strip_prefix('+').unwrap_or(text);
            if !is_digits(digits) {
                return None;
            }
            Value::Unsigned(digits.parse().ok()?)
        }
        ResourceType::Float => {
            // Rust also accepts "inf" and "NaN"; LwM2M text floats are decimal numbers.
            let plain = text
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
            if !plain || text.is_empty() {
                return None;
            }
            let x: f64 = text.parse().ok()?;
            if !x.is_finite() {
                return None;
            }
            Value::Float(x)
        }
        ResourceType::Boolean => match text {
            "0" => Value::Boolean(false),
            "1" => Value::Boolean(true),
            _ => return None,
        },
        ResourceType::String => Value::String(text.to_string()),
        ResourceType::CoreLnk => Value::CoreLnk(text.to_string()),
        ResourceType::Opaque => Value::Opaque(STANDARD_PAD_INDIFFERENT.decode(text).ok()?),
        ResourceType::ObjLnk => parse_objlnk(text)?,
        ResourceType::None => return None,
    })
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_decimal(text: &str) -> Option<i64> {
    let digits = text
        .strip_prefix('-')
        .or_else(|| text.strip_prefix('+'))
        .unwrap_or(text);
    if !is_digits(digits) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn device(p: &Path) -> Option<ResourceType> {
        super::super::tests::device_types(p)
    }

    fn one(path: &str, value: Value) -> Vec<Record> {
        vec![Record {
            path: path.parse().unwrap(),
            value,
        }]
    }

    #[test]
    fn spec_values() {
        // The Device object example values: Read /3/0/0 gives "Open Mobile Alliance"; /3/0/9 gives "100".
        let base: Path = "/3/0/0".parse().unwrap();
        let records = one("/3/0/0", Value::String("Open Mobile Alliance".into()));
        assert_eq!(encode(&base, &records).unwrap(), b"Open Mobile Alliance");
        assert_eq!(
            decode(&base, b"Open Mobile Alliance", &device).unwrap(),
            records
        );

        let base: Path = "/3/0/9".parse().unwrap();
        assert_eq!(
            decode(&base, b"100", &device).unwrap(),
            one("/3/0/9", Value::Integer(100))
        );
        assert_eq!(
            encode(&base, &one("/3/0/9", Value::Integer(100))).unwrap(),
            b"100"
        );
    }

    #[test]
    fn value_spellings() {
        let cases = [
            (Value::Integer(-42), "-42"),
            (Value::Unsigned(u64::MAX), "18446744073709551615"),
            (Value::Float(1.5), "1.5"),
            (Value::Float(0.1), "0.1"),
            (Value::Boolean(true), "1"),
            (Value::Boolean(false), "0"),
            (Value::Time(1367491215), "1367491215"),
            (Value::ObjLnk(3, 0), "3:0"),
            (Value::ObjLnk(65535, 65535), "65535:65535"),
            // Leshan's and the spec's example: opaque 01 02 03 04 05 as base64.
            (Value::Opaque(vec![1, 2, 3, 4, 5]), "AQIDBAU="),
        ];
        for (value, text) in cases {
            assert_eq!(format_value(&value).unwrap(), text);
            assert_eq!(parse_value(text, value.resource_type()), Some(value));
        }
    }

    #[test]
    fn refuses_bad_text() {
        for (text, ty) in [
            ("2", ResourceType::Boolean),
            ("true", ResourceType::Boolean),
            ("1.5", ResourceType::Integer),
            ("", ResourceType::Integer),
            ("-1", ResourceType::Unsigned),
            ("NaN", ResourceType::Float),
            ("inf", ResourceType::Float),
            ("3:", ResourceType::ObjLnk),
            ("3:70000", ResourceType::ObjLnk),
            ("!,-INVALID$_'", ResourceType::Opaque),
            ("9223372036854775808", ResourceType::Integer),
        ] {
            assert_eq!(parse_value(text, ty), None, "{text:?} as {ty:?}");
        }
        let base: Path = "/3/0/9".parse().unwrap();
        assert!(matches!(
            decode(&base, b"ten", &device),
            Err(CodecError::Type { .. })
        ));
        assert!(matches!(
            decode(&base, &[0xff, 0xfe], &device),
            Err(CodecError::Malformed(_))
        ));
        assert_eq!(
            decode(&"/3/0/99".parse().unwrap(), b"1", &device),
            Err(CodecError::UnknownPath("/3/0/99".parse().unwrap()))
        );
    }

    #[test]
    fn only_one_value() {
        let base: Path = "/3/0/6".parse().unwrap();
        let two = vec![
            Record {
                path: "/3/0/6/0".parse().unwrap(),
                value: Value::Integer(1),
            },
            Record {
                path: "/3/0/6/1".parse().unwrap(),
                value: Value::Integer(5),
            },
        ];
        assert_eq!(encode(&base, &two), Err(CodecError::Unrepresentable));
        assert_eq!(encode(&base, &[]), Err(CodecError::Unrepresentable));
        let base: Path = "/3/0".parse().unwrap();
        assert!(decode(&base, b"1", &device).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(value in super::super::tests::any_value()) {
            prop_assume!(!matches!(value, Value::Float(x) if !x.is_finite()));
            let text = format_value(&value).unwrap();
            prop_assert_eq!(parse_value(&text, value.resource_type()), Some(value));
        }
    }
}
