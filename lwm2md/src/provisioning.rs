//! The provisioning file in the state directory: what a bootstrap server wrote into the
//! Security, Server and Access Control objects, loaded at start in preference to the
//! configuration's accounts.
//!
//! Format: the line `lwm2md provisioning 1\n`, then the instances of objects 0, 1 and 2
//! as SenML CBOR (RFC 8428, LwM2M names). The header names the version; SenML describes
//! itself, so the file can be inspected with any CBOR tool.

use crate::codec::{self, ContentFormat, Record};
use crate::path::Path;
use crate::value::ResourceType;

/// The file's name under the state directory.
pub const FILE: &str = "provisioning";

const HEADER: &[u8] = b"lwm2md provisioning 1\n";

#[derive(Debug, Clone, PartialEq)]
pub enum ProvisioningError {
    /// Not a provisioning file of this version.
    Header,
    /// The SenML does not decode.
    Payload(String),
    /// A record outside objects 0, 1 and 2.
    Foreign(Path),
}

impl std::fmt::Display for ProvisioningError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProvisioningError::Header => write!(f, "not a version 1 provisioning file"),
            ProvisioningError::Payload(why) => write!(f, "{why}"),
            ProvisioningError::Foreign(p) => write!(f, "record {p} is not provisioning"),
        }
    }
}

impl std::error::Error for ProvisioningError {}

pub fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = HEADER.to_vec();
    // Records come sorted and at resource paths, which SenML always represents.
    if let Ok(senml) = codec::encode(ContentFormat::SenmlCbor, &Path::ROOT, records) {
        out.extend(senml);
    }
    out
}

pub fn decode(
    data: &[u8],
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
) -> Result<Vec<Record>, ProvisioningError> {
    let payload = data.strip_prefix(HEADER).ok_or(ProvisioningError::Header)?;
    let records = codec::decode(ContentFormat::SenmlCbor, &Path::ROOT, payload, ty)
        .map_err(|e| ProvisioningError::Payload(e.to_string()))?;
    if let Some(r) = records
        .iter()
        .find(|r| !matches!(r.path.object_id(), Some(0..=2)))
    {
        return Err(ProvisioningError::Foreign(r.path));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::registry;
    use crate::value::Value;

    fn ty(p: &Path) -> Option<ResourceType> {
        let def = match p.object_id()? {
            0 => &registry::SECURITY,
            1 => &registry::SERVER,
            _ => return None,
        };
        def.resource(p.resource_id()?).map(|r| r.ty)
    }

    fn records() -> Vec<Record> {
        vec![
            Record {
                path: Path::resource(0, 1, 0),
                value: Value::String("coaps://192.0.2.1".into()),
            },
            Record {
                path: Path::resource(0, 1, 5),
                value: Value::Opaque(vec![0, 1, 2, 0xff]),
            },
            Record {
                path: Path::resource(1, 0, 1),
                value: Value::Integer(300),
            },
        ]
    }

    #[test]
    fn round_trip() {
        let data = encode(&records());
        assert!(data.starts_with(b"lwm2md provisioning 1\n"));
        assert_eq!(decode(&data, &ty).unwrap(), records());
    }

    #[test]
    fn truncation_and_garbage_are_errors_never_panics() {
        let data = encode(&records());
        for n in 0..data.len() {
            // Every prefix either fails or decodes to a subset of the records (a SenML
            // array cut at a record boundary is not valid CBOR, so in practice it fails).
            if let Ok(got) = decode(&data[..n], &ty) {
                assert!(got.iter().all(|r| records().contains(r)));
            }
        }
        assert_eq!(decode(b"", &ty), Err(ProvisioningError::Header));
        assert_eq!(
            decode(b"lwm2md provisioning 2\n", &ty),
            Err(ProvisioningError::Header)
        );
        let mut flipped = data.clone();
        for i in HEADER.len()..flipped.len() {
            flipped[i] ^= 0x5a;
            let _ = decode(&flipped, &ty);
            flipped[i] ^= 0x5a;
        }
    }

    #[test]
    fn records_of_other_objects_are_refused() {
        let other = [Record {
            path: Path::resource(3, 0, 0),
            value: Value::String("x".into()),
        }];
        let data = encode(&other);
        let ty3 = |p: &Path| registry::DEVICE.resource(p.resource_id()?).map(|r| r.ty);
        assert!(matches!(
            decode(&data, &ty3),
            Err(ProvisioningError::Foreign(_))
        ));
    }
}
