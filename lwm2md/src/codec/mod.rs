//! Content formats, one module each. Hierarchical formats (TLV, SenML, LwM2M CBOR and
//! JSON) carry a list of `Record`s; plain text and opaque carry exactly one value.
//!
//! `encode` and `decode` are the entry points; each format module also exposes its own
//! functions so that fuzzers and tests can reach it directly.

pub mod composite;
pub mod link;
pub mod lwm2m_cbor;
pub mod lwm2m_json;
pub mod opaque;
pub mod senml;
pub mod text;
pub mod tlv;

use crate::path::Path;
use crate::value::{ResourceType, Value};

/// CoAP Content-Format numbers lwm2md knows (IANA CoAP Content-Formats registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentFormat {
    Text,
    LinkFormat,
    Opaque,
    SenmlJson,
    SenmlCbor,
    Tlv,
    LwM2mJson,
    LwM2mCbor,
}

impl ContentFormat {
    pub fn from_code(code: u16) -> Option<ContentFormat> {
        Some(match code {
            0 => ContentFormat::Text,
            40 => ContentFormat::LinkFormat,
            42 => ContentFormat::Opaque,
            110 => ContentFormat::SenmlJson,
            112 => ContentFormat::SenmlCbor,
            11542 => ContentFormat::Tlv,
            11543 => ContentFormat::LwM2mJson,
            11544 => ContentFormat::LwM2mCbor,
            _ => return None,
        })
    }

    pub fn code(self) -> u16 {
        match self {
            ContentFormat::Text => 0,
            ContentFormat::LinkFormat => 40,
            ContentFormat::Opaque => 42,
            ContentFormat::SenmlJson => 110,
            ContentFormat::SenmlCbor => 112,
            ContentFormat::Tlv => 11542,
            ContentFormat::LwM2mJson => 11543,
            ContentFormat::LwM2mCbor => 11544,
        }
    }
}

/// One value at a full resource (`/o/i/r`) or resource-instance (`/o/i/r/ri`) path.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub path: Path,
    pub value: Value,
}

/// Why a payload could not be decoded or a representation could not be encoded.
#[derive(Debug, Clone, PartialEq)]
pub enum CodecError {
    /// The payload is malformed; the text says where and why.
    Malformed(String),
    /// A value does not fit the type the model declares for its path.
    Type { path: Path, expected: ResourceType },
    /// The payload names a path that is not under the request's path.
    OutsideBase(Path),
    /// A record names a path the model does not know (no declared type).
    UnknownPath(Path),
    /// The format cannot represent this (text for several values, say): 4.06 on output.
    Unrepresentable,
    /// The format is not implemented for this direction.
    Unsupported(ContentFormat),
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::Malformed(why) => write!(f, "malformed payload: {why}"),
            CodecError::Type { path, expected } => {
                write!(f, "value at {path} is not of type {expected:?}")
            }
            CodecError::OutsideBase(p) => write!(f, "payload names {p}, outside the request path"),
            CodecError::UnknownPath(p) => write!(f, "payload names unknown resource {p}"),
            CodecError::Unrepresentable => {
                write!(f, "the content format cannot represent this target")
            }
            CodecError::Unsupported(cf) => {
                write!(f, "content format {} not supported here", cf.code())
            }
        }
    }
}

impl std::error::Error for CodecError {}

/// Encodes the records found under `base` (the request path: `/o`, `/o/i`, `/o/i/r` or
/// `/o/i/r/ri`). Records are sorted, each at a resource (`/o/i/r`) or resource-instance
/// (`/o/i/r/ri`) path; a record at a resource-instance path marks its resource as a
/// multiple-instance resource.
///
/// No "is this resource multiple" callback is needed: a single-instance resource always
/// yields exactly one record at its own path, so an empty record list under a resource
/// path can only be a multiple-instance resource without instances.
pub fn encode(
    format: ContentFormat,
    base: &Path,
    records: &[Record],
) -> Result<Vec<u8>, CodecError> {
    if let Some(outside) = records.iter().find(|r| !base.contains(&r.path)) {
        return Err(CodecError::OutsideBase(outside.path));
    }
    match format {
        ContentFormat::Text => text::encode(base, records),
        ContentFormat::Opaque => opaque::encode(base, records),
        ContentFormat::Tlv => tlv::encode(base, records),
        ContentFormat::SenmlJson => senml::json::encode(base, records),
        ContentFormat::SenmlCbor => senml::cbor::encode(base, records),
        ContentFormat::LwM2mCbor => lwm2m_cbor::encode(base, records),
        // Links are built by the engine for Register and Discover, never from values.
        ContentFormat::LinkFormat => Err(CodecError::Unrepresentable),
        // The LwM2M 1.0 JSON format is only read; SenML JSON answers in its place.
        ContentFormat::LwM2mJson => Err(CodecError::Unsupported(format)),
    }
}

/// Decodes a Write or Create payload for request path `base`. `ty` gives the declared type
/// of a resource path (`/o/i/r`); `None` means the model does not know the resource.
/// The records come back sorted, each at a resource or resource-instance path below
/// `base`, with values converted to the declared type.
pub fn decode(
    format: ContentFormat,
    base: &Path,
    payload: &[u8],
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
) -> Result<Vec<Record>, CodecError> {
    match format {
        ContentFormat::Text => text::decode(base, payload, ty),
        ContentFormat::Opaque => opaque::decode(base, payload, ty),
        ContentFormat::Tlv => tlv::decode(base, payload, ty),
        ContentFormat::SenmlJson => senml::json::decode(base, payload, ty),
        ContentFormat::SenmlCbor => senml::cbor::decode(base, payload, ty),
        ContentFormat::LwM2mCbor => lwm2m_cbor::decode(base, payload, ty),
        ContentFormat::LwM2mJson => lwm2m_json::decode(base, payload, ty),
        ContentFormat::LinkFormat => Err(CodecError::Unsupported(format)),
    }
}

/// The resource (`/o/i/r`) a resource or resource-instance path belongs to.
fn resource_of(path: &Path) -> Option<Path> {
    match path.ids() {
        [o, i, r] | [o, i, r, _] => Some(Path::resource(*o, *i, *r)),
        _ => None,
    }
}

/// The declared type of the resource `path` lies in.
fn declared_type(
    path: &Path,
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
) -> Result<ResourceType, CodecError> {
    let resource = resource_of(path).ok_or_else(|| {
        CodecError::Malformed(format!("{path} is not a resource or resource instance"))
    })?;
    match ty(&resource) {
        Some(ResourceType::None) | None => Err(CodecError::UnknownPath(resource)),
        Some(t) => Ok(t),
    }
}

/// Converts a value from a self-describing format to the declared type of `path`.
fn convert(
    path: Path,
    value: Value,
    ty: &dyn Fn(&Path) -> Option<ResourceType>,
) -> Result<Record, CodecError> {
    let expected = declared_type(&path, ty)?;
    let value = value
        .into_type(expected)
        .map_err(|_| CodecError::Type { path, expected })?;
    Ok(Record { path, value })
}

/// Checks decoded records against the request path and puts them in path order; the same
/// path twice in one payload is ambiguous and refused.
fn finish(base: &Path, mut records: Vec<Record>) -> Result<Vec<Record>, CodecError> {
    if let Some(outside) = records.iter().find(|r| !base.contains(&r.path)) {
        return Err(CodecError::OutsideBase(outside.path));
    }
    records.sort_by_key(|r| r.path);
    for pair in records.windows(2) {
        if let [a, b] = pair {
            if a.path == b.path {
                return Err(CodecError::Malformed(format!("{} appears twice", a.path)));
            }
            if b.path.len() == 4 && resource_of(&b.path) == Some(a.path) {
                return Err(CodecError::Malformed(format!(
                    "{} is given both as a single value and as instances",
                    a.path
                )));
            }
        }
    }
    Ok(records)
}

/// Parses an object link in its text form `"3:0"`; both IDs may be 65535 (the null link).
fn parse_objlnk(s: &str) -> Option<Value> {
    let (o, i) = s.split_once(':')?;
    let id = |t: &str| {
        if t.is_empty() || t.len() > 5 || !t.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            t.parse::<u16>().ok()
        }
    };
    Some(Value::ObjLnk(id(o)?, id(i)?))
}

#[cfg(test)]
mod tests;
