//! Values as files and commands spell them: `42000` millidegrees in a thermal zone,
//! `yes` from a health check, a version string with its newline.

use crate::codec::text;
use crate::value::{ResourceType, Value};

/// Why a reading could not become a value.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadingError {
    NotUtf8,
    /// The text does not read as the resource's type.
    Unparsable {
        text: String,
        ty: ResourceType,
    },
    /// The scaled number does not fit the resource's type.
    OutOfRange {
        value: f64,
        ty: ResourceType,
    },
    /// This value cannot be written as text (NaN, or no scale for it).
    Unwritable,
}

impl std::fmt::Display for ReadingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadingError::NotUtf8 => write!(f, "output is not UTF-8 text"),
            ReadingError::Unparsable { text, ty } => {
                // Garbage can be long: the log line gets its start.
                let start: String = text.chars().take(40).collect();
                write!(f, "{start:?} is not a {ty:?} value")
            }
            ReadingError::OutOfRange { value, ty } => {
                write!(f, "{value} does not fit a {ty:?} resource")
            }
            ReadingError::Unwritable => write!(f, "the value has no text form"),
        }
    }
}

impl std::error::Error for ReadingError {}

fn is_numeric(ty: ResourceType) -> bool {
    matches!(
        ty,
        ResourceType::Integer | ResourceType::Unsigned | ResourceType::Float | ResourceType::Time
    )
}

/// Whether `scale` and `offset` can apply to a resource of this type.
pub fn scalable(ty: ResourceType) -> bool {
    is_numeric(ty)
}

/// Turns what a file holds or a command printed into a value of type `ty`: surrounding
/// whitespace is ignored, numbers are multiplied by `scale` then shifted by `offset`,
/// booleans may also be spelt true/false, yes/no, on/off. Opaque resources take the
/// bytes as they are.
pub fn parse(
    raw: &[u8],
    ty: ResourceType,
    scale: Option<f64>,
    offset: Option<f64>,
) -> Result<Value, ReadingError> {
    if ty == ResourceType::Opaque {
        return Ok(Value::Opaque(raw.to_vec()));
    }
    let text = std::str::from_utf8(raw)
        .map_err(|_| ReadingError::NotUtf8)?
        .trim();
    let unparsable = || ReadingError::Unparsable {
        text: text.to_string(),
        ty,
    };
    if is_numeric(ty) && (scale.is_some() || offset.is_some() || ty != ResourceType::Float) {
        // Integers first so that large ones keep every digit when no scale applies.
        if scale.is_none() && offset.is_none() {
            if let Some(v) = text::parse_value(text, ty) {
                return Ok(v);
            }
        }
        let x = match text::parse_value(text, ResourceType::Float) {
            Some(Value::Float(x)) => x,
            _ => return Err(unparsable()),
        };
        return from_f64(x * scale.unwrap_or(1.0) + offset.unwrap_or(0.0), ty);
    }
    if ty == ResourceType::Boolean {
        return match text.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Value::Boolean(true)),
            "0" | "false" | "no" | "off" => Ok(Value::Boolean(false)),
            _ => Err(unparsable()),
        };
    }
    text::parse_value(text, ty).ok_or_else(unparsable)
}

fn from_f64(x: f64, ty: ResourceType) -> Result<Value, ReadingError> {
    let out_of_range = || ReadingError::OutOfRange { value: x, ty };
    if !x.is_finite() {
        return Err(out_of_range());
    }
    let rounded = x.round();
    // 2^63 as f64: every f64 below it converts to i64 exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    Ok(match ty {
        ResourceType::Float => Value::Float(x),
        ResourceType::Integer | ResourceType::Time if (-LIMIT..LIMIT).contains(&rounded) => {
            let n = rounded as i64;
            if ty == ResourceType::Time {
                Value::Time(n)
            } else {
                Value::Integer(n)
            }
        }
        ResourceType::Unsigned if (0.0..2.0 * LIMIT).contains(&rounded) => {
            Value::Unsigned(rounded as u64)
        }
        _ => return Err(out_of_range()),
    })
}

/// The text written to a file or passed to a command for a value: the inverse of
/// `parse` (offset removed, then divided by scale).
pub fn format(
    value: &Value,
    scale: Option<f64>,
    offset: Option<f64>,
) -> Result<String, ReadingError> {
    if scale.is_none() && offset.is_none() {
        return match value {
            Value::Boolean(b) => Ok(if *b { "1" } else { "0" }.to_string()),
            Value::Opaque(bytes) => {
                String::from_utf8(bytes.clone()).map_err(|_| ReadingError::Unwritable)
            }
            v => text::format_value(v).map_err(|_| ReadingError::Unwritable),
        };
    }
    let x = match value {
        Value::Integer(n) | Value::Time(n) => *n as f64,
        Value::Unsigned(n) => *n as f64,
        Value::Float(x) => *x,
        _ => return Err(ReadingError::Unwritable),
    };
    let raw = (x - offset.unwrap_or(0.0)) / scale.unwrap_or(1.0);
    if !raw.is_finite() {
        return Err(ReadingError::Unwritable);
    }
    // Files that hold integers (sysfs) refuse "25000.0".
    if raw.fract() == 0.0 && raw.abs() < 9.0e15 {
        Ok(format!("{}", raw as i64))
    } else {
        Ok(raw.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings() {
        use ResourceType as T;
        let p = |raw: &str, ty, scale, offset| parse(raw.as_bytes(), ty, scale, offset);
        // A thermal zone in millidegrees.
        assert_eq!(
            p("42375\n", T::Float, Some(0.001), None),
            Ok(Value::Float(42.375))
        );
        assert_eq!(
            p("42375\n", T::Integer, Some(0.001), None),
            Ok(Value::Integer(42))
        );
        assert_eq!(
            p("10", T::Float, Some(2.0), Some(-1.5)),
            Ok(Value::Float(18.5))
        );
        assert_eq!(
            p(" 9223372036854775807 ", T::Integer, None, None),
            Ok(Value::Integer(i64::MAX))
        );
        assert_eq!(p("12.6", T::Integer, None, None), Ok(Value::Integer(13)));
        assert_eq!(
            p("-1", T::Unsigned, None, None).unwrap_err(),
            ReadingError::OutOfRange {
                value: -1.0,
                ty: T::Unsigned
            }
        );
        assert_eq!(
            p("1e300", T::Integer, None, None).unwrap_err(),
            ReadingError::OutOfRange {
                value: 1e300,
                ty: T::Integer
            }
        );
        assert_eq!(p("3.5", T::Float, None, None), Ok(Value::Float(3.5)));
        assert_eq!(
            p("1700000000", T::Time, None, None),
            Ok(Value::Time(1_700_000_000))
        );
        for (t, b) in [
            ("yes", true),
            ("ON", true),
            ("1", true),
            ("False", false),
            ("off\n", false),
        ] {
            assert_eq!(p(t, T::Boolean, None, None), Ok(Value::Boolean(b)), "{t}");
        }
        assert_eq!(
            p("  v1.2 beta\n", T::String, None, None),
            Ok(Value::String("v1.2 beta".into()))
        );
        assert_eq!(p("3:1", T::ObjLnk, None, None), Ok(Value::ObjLnk(3, 1)));
        assert_eq!(
            parse(&[0, 255], T::Opaque, None, None),
            Ok(Value::Opaque(vec![0, 255]))
        );
        for garbage in ["", "abc", "nan", "inf", "12abc", "0x10"] {
            assert!(p(garbage, T::Integer, None, None).is_err(), "{garbage}");
            assert!(
                p(garbage, T::Float, Some(0.001), None).is_err(),
                "{garbage}"
            );
        }
        assert!(p("maybe", T::Boolean, None, None).is_err());
        assert_eq!(
            parse(&[0xff, 0xfe], T::String, None, None),
            Err(ReadingError::NotUtf8)
        );
    }

    #[test]
    fn writes_undo_scale_and_offset() {
        assert_eq!(
            format(&Value::Float(42.375), Some(0.001), None).unwrap(),
            "42375"
        );
        assert_eq!(
            format(&Value::Float(18.5), Some(2.0), Some(-1.5)).unwrap(),
            "10"
        );
        assert_eq!(format(&Value::Float(0.25), None, None).unwrap(), "0.25");
        assert_eq!(format(&Value::Integer(-7), None, None).unwrap(), "-7");
        assert_eq!(format(&Value::Boolean(true), None, None).unwrap(), "1");
        assert_eq!(
            format(&Value::String("eco mode".into()), None, None).unwrap(),
            "eco mode"
        );
        assert!(format(&Value::Float(f64::NAN), None, None).is_err());
        assert!(format(&Value::String("x".into()), Some(2.0), None).is_err());
    }
}
