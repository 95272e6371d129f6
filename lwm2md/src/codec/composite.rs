//! The path lists of composite requests (Read-Composite, Observe-Composite: Core TS 1.1
//! §6.3.5): SenML records that carry names and no values.

use super::senml::{self, cbor, json};
use super::{CodecError, ContentFormat};
use crate::path::Path;

/// The paths a Read-Composite payload names, in order, without repeats.
pub fn decode_paths(format: ContentFormat, payload: &[u8]) -> Result<Vec<Path>, CodecError> {
    let raw = match format {
        ContentFormat::SenmlJson => json::parse(payload)?,
        ContentFormat::SenmlCbor => cbor::parse(payload)?,
        other => return Err(CodecError::Unsupported(other)),
    };
    let mut paths: Vec<Path> = Vec::new();
    for r in senml::resolve(raw) {
        if r.value.is_some() {
            return Err(CodecError::Malformed(format!(
                "{}: a composite read names paths without values",
                r.name
            )));
        }
        let path: Path = r
            .name
            .parse()
            .map_err(|e| CodecError::Malformed(format!("{:?}: {e}", r.name)))?;
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_senml_json_and_cbor() {
        // A base name holds for the records after it (RFC 8428 §4.6).
        let json_req = br#"[{"n":"/3/0/0"},{"n":"/3/0"},{"bn":"/1/0/","n":"1"}]"#;
        let expected = vec![
            Path::resource(3, 0, 0),
            Path::instance(3, 0),
            Path::resource(1, 0, 1),
        ];
        assert_eq!(
            decode_paths(ContentFormat::SenmlJson, json_req).unwrap(),
            expected
        );
        // [{0: "/3/0/0"}, {0: "/3/0"}, {-2: "/1/0/", 0: "1"}]
        let mut cbor_req = vec![0x83, 0xa1, 0x00, 0x66];
        cbor_req.extend_from_slice(b"/3/0/0");
        cbor_req.extend_from_slice(&[0xa1, 0x00, 0x64]);
        cbor_req.extend_from_slice(b"/3/0");
        cbor_req.extend_from_slice(&[0xa2, 0x21, 0x65]);
        cbor_req.extend_from_slice(b"/1/0/");
        cbor_req.extend_from_slice(&[0x00, 0x61, b'1']);
        assert_eq!(
            decode_paths(ContentFormat::SenmlCbor, &cbor_req).unwrap(),
            expected
        );
        assert!(decode_paths(ContentFormat::SenmlJson, br#"[{"n":"/3/0/0","v":1}]"#).is_err());
        assert!(decode_paths(ContentFormat::SenmlJson, br#"[{"n":"/3/x"}]"#).is_err());
        assert!(decode_paths(ContentFormat::Tlv, b"").is_err());
    }
}
