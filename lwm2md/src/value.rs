//! Typed resource values.

use std::fmt;

/// The data types of LwM2M resources (Core TS, Appendix C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    Integer,
    Unsigned,
    Float,
    Boolean,
    String,
    Opaque,
    /// Seconds since the Unix epoch, signed.
    Time,
    ObjLnk,
    CoreLnk,
    /// Executable resources carry no value.
    None,
}

/// One resource (or resource instance) value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Integer(i64),
    Unsigned(u64),
    Float(f64),
    Boolean(bool),
    String(String),
    Opaque(Vec<u8>),
    Time(i64),
    /// Object link: object ID and instance ID.
    ObjLnk(u16, u16),
    CoreLnk(String),
}

/// A value did not fit the resource's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMismatch {
    pub expected: ResourceType,
    pub found: ResourceType,
}

impl fmt::Display for TypeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected a value of type {:?}, got {:?}",
            self.expected, self.found
        )
    }
}

impl std::error::Error for TypeMismatch {}

impl Value {
    pub fn resource_type(&self) -> ResourceType {
        match self {
            Value::Integer(_) => ResourceType::Integer,
            Value::Unsigned(_) => ResourceType::Unsigned,
            Value::Float(_) => ResourceType::Float,
            Value::Boolean(_) => ResourceType::Boolean,
            Value::String(_) => ResourceType::String,
            Value::Opaque(_) => ResourceType::Opaque,
            Value::Time(_) => ResourceType::Time,
            Value::ObjLnk(..) => ResourceType::ObjLnk,
            Value::CoreLnk(_) => ResourceType::CoreLnk,
        }
    }

    /// Converts a decoded value to the type the model declares. Self-describing formats
    /// (SenML, CBOR) carry numbers without saying integer, unsigned, float or time, so
    /// lossless numeric conversions are allowed; anything else must already match.
    pub fn into_type(self, ty: ResourceType) -> Result<Value, TypeMismatch> {
        let found = self.resource_type();
        let mismatch = TypeMismatch {
            expected: ty,
            found,
        };
        Ok(match (self, ty) {
            (v, t) if v.resource_type() == t => v,
            (Value::Integer(n), ResourceType::Unsigned) => {
                Value::Unsigned(u64::try_from(n).map_err(|_| mismatch)?)
            }
            (Value::Integer(n), ResourceType::Time) => Value::Time(n),
            (Value::Integer(n), ResourceType::Float) => Value::Float(n as f64),
            (Value::Unsigned(n), ResourceType::Integer) => {
                Value::Integer(i64::try_from(n).map_err(|_| mismatch)?)
            }
            (Value::Unsigned(n), ResourceType::Time) => {
                Value::Time(i64::try_from(n).map_err(|_| mismatch)?)
            }
            (Value::Unsigned(n), ResourceType::Float) => Value::Float(n as f64),
            (Value::Time(n), ResourceType::Integer) => Value::Integer(n),
            (
                Value::Float(x),
                ResourceType::Integer | ResourceType::Time | ResourceType::Unsigned,
            ) => {
                // Only whole numbers in range: 2.5 written to an integer resource is an error.
                if x.fract() != 0.0
                    || !x.is_finite()
                    || x.abs() >= 9.2e18
                    || (ty == ResourceType::Unsigned && x < 0.0)
                {
                    return Err(mismatch);
                }
                match ty {
                    ResourceType::Integer => Value::Integer(x as i64),
                    ResourceType::Time => Value::Time(x as i64),
                    _ => Value::Unsigned(x as u64),
                }
            }
            (Value::String(s), ResourceType::CoreLnk) => Value::CoreLnk(s),
            (Value::CoreLnk(s), ResourceType::String) => Value::String(s),
            _ => return Err(mismatch),
        })
    }
}

/// A single-instance resource's value, or the instances of a multiple-instance resource.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceValue {
    Single(Value),
    Multiple(std::collections::BTreeMap<u16, Value>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_conversions() {
        assert_eq!(
            Value::Integer(5).into_type(ResourceType::Unsigned),
            Ok(Value::Unsigned(5))
        );
        assert!(Value::Integer(-5)
            .into_type(ResourceType::Unsigned)
            .is_err());
        assert_eq!(
            Value::Float(3.0).into_type(ResourceType::Integer),
            Ok(Value::Integer(3))
        );
        assert!(Value::Float(3.5).into_type(ResourceType::Integer).is_err());
        assert!(Value::Float(f64::NAN)
            .into_type(ResourceType::Time)
            .is_err());
        assert!(Value::Unsigned(u64::MAX)
            .into_type(ResourceType::Integer)
            .is_err());
        assert!(Value::Boolean(true)
            .into_type(ResourceType::Integer)
            .is_err());
        assert!(Value::String("x".into())
            .into_type(ResourceType::Opaque)
            .is_err());
    }
}
