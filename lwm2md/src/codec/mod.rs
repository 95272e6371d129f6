//! Content formats, one module each. Hierarchical formats (TLV, SenML) carry a list of
//! `Record`s; plain text and opaque carry exactly one value.

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
