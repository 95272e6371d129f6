//! Reading and writing the CoAP options LwM2M requests carry.

use coap_lite::{CoapOption, Packet};

/// Encodes a CoAP uint option value in its shortest form (RFC 7252 §3.2).
pub fn encode_uint(n: u32) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    bytes[skip..].to_vec()
}

/// Decodes a uint option; `None` when longer than four bytes.
pub fn decode_uint(bytes: &[u8]) -> Option<u32> {
    if bytes.len() > 4 {
        return None;
    }
    Some(bytes.iter().fold(0u32, |n, &b| (n << 8) | u32::from(b)))
}

/// An option whose value is not what its definition says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BadOption(pub CoapOption);

/// The first value of a uint option. `Err` when present but malformed.
pub fn uint_option(packet: &Packet, option: CoapOption) -> Result<Option<u32>, BadOption> {
    match packet.get_first_option(option) {
        None => Ok(None),
        Some(v) => decode_uint(v).map(Some).ok_or(BadOption(option)),
    }
}

/// All values of a string option (Uri-Path, Uri-Query, Location-Path). `Err` when one
/// is not UTF-8.
pub fn string_options(packet: &Packet, option: CoapOption) -> Result<Vec<String>, BadOption> {
    let Some(list) = packet.get_option(option) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|v| String::from_utf8(v.clone()).map_err(|_| BadOption(option)))
        .collect()
}

pub fn add_string_options<'a>(
    packet: &mut Packet,
    option: CoapOption,
    values: impl IntoIterator<Item = &'a str>,
) {
    for v in values {
        packet.add_option(option, v.as_bytes().to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_round_trip() {
        for n in [0u32, 1, 255, 256, 11542, 65536, u32::MAX] {
            assert_eq!(decode_uint(&encode_uint(n)), Some(n));
        }
        assert_eq!(encode_uint(0), Vec::<u8>::new());
        assert_eq!(encode_uint(11542), vec![0x2d, 0x16]);
        assert_eq!(decode_uint(&[1, 2, 3, 4, 5]), None);
    }
}
