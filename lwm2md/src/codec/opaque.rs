//! Opaque (content format 42): the raw bytes of one Opaque resource or resource instance.

use super::{declared_type, CodecError, Record};
use crate::path::Path;
use crate::value::{ResourceType, Value};

/// Encodes the single Opaque record under `base`; anything else is unrepresentable.
pub fn encode(base: &Path, records: &[Record]) -> Result<Vec<u8>, CodecError> {
    match records {
        [Record {
            path,
            value: Value::Opaque(bytes),
        }] if path == base && base.len() >= 3 => Ok(bytes.clone()),
        _ => Err(CodecError::Unrepresentable),
    }
}

/// Decodes a payload written to the Opaque resource or resource instance `base`.
pub fn decode(
    base: &Path,
    payload: &[u8],
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
) -> Result<Vec<Record>, CodecError> {
    if base.len() < 3 {
        return Err(CodecError::Malformed(format!(
            "opaque carries a single resource value, not {base}"
        )));
    }
    match declared_type(base, ty)? {
        ResourceType::Opaque => Ok(vec![Record {
            path: *base,
            value: Value::Opaque(payload.to_vec()),
        }]),
        expected => Err(CodecError::Type {
            path: *base,
            expected,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_only() {
        let base: Path = "/5/0/0".parse().unwrap();
        let ty = |_: &Path| Some(ResourceType::Opaque);
        let records = decode(&base, &[0, 1, 0xff], &ty).unwrap();
        assert_eq!(
            records,
            vec![Record {
                path: base,
                value: Value::Opaque(vec![0, 1, 0xff])
            }]
        );
        assert_eq!(encode(&base, &records).unwrap(), [0, 1, 0xff]);

        let int = [Record {
            path: base,
            value: Value::Integer(1),
        }];
        assert_eq!(encode(&base, &int), Err(CodecError::Unrepresentable));
        let ty = |_: &Path| Some(ResourceType::Integer);
        assert!(matches!(
            decode(&base, b"1", &ty),
            Err(CodecError::Type { .. })
        ));
        assert!(decode(&"/5/0".parse().unwrap(), b"1", &ty).is_err());
    }
}
