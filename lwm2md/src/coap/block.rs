//! Block-wise transfers (RFC 7959): the Block1/Block2 option values, the Size1/Size2
//! options, serving a representation in Block2 slices and reassembling Block1 uploads.
//!
//! coap-lite's `BlockValue` keeps the block number in a `u16`, which stops transfers at
//! 4096 blocks; the option is handled here with its full 20-bit block number.

use std::collections::LinkedList;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, Packet};

/// Largest block number a 3-byte option can carry.
pub const MAX_BLOCK_NUM: u32 = (1 << 20) - 1;

/// Largest SZX value; 7 is reserved.
pub const MAX_SZX: u8 = 6;

/// A Block1 or Block2 option value (RFC 7959 §2.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BlockOption {
    /// Block number, below 2^20.
    pub num: u32,
    /// More blocks follow.
    pub more: bool,
    /// Block size exponent: the size is 2^(szx + 4), 0..=6.
    pub szx: u8,
}

/// Why a block option value was rejected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BlockError {
    /// The option value is longer than 3 bytes.
    TooLong(usize),
    /// SZX 7 is reserved.
    ReservedSzx,
    /// The block number does not fit in 20 bits.
    NumTooLarge(u64),
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong(len) => write!(f, "block option of {len} bytes (at most 3)"),
            Self::ReservedSzx => f.write_str("block option with reserved SZX 7"),
            Self::NumTooLarge(num) => write!(f, "block number {num} does not fit in 20 bits"),
        }
    }
}

impl std::error::Error for BlockError {}

impl BlockOption {
    /// Checks the field ranges.
    pub fn new(num: u32, more: bool, szx: u8) -> Result<Self, BlockError> {
        if num > MAX_BLOCK_NUM {
            return Err(BlockError::NumTooLarge(num.into()));
        }
        if szx > MAX_SZX {
            return Err(BlockError::ReservedSzx);
        }
        Ok(Self { num, more, szx })
    }

    /// Decodes an option value of 0 to 3 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, BlockError> {
        if bytes.len() > 3 {
            return Err(BlockError::TooLong(bytes.len()));
        }
        let value = bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        let szx = (value & 0x07) as u8;
        if szx == 7 {
            return Err(BlockError::ReservedSzx);
        }
        Ok(Self {
            num: value >> 4,
            more: value & 0x08 != 0,
            szx,
        })
    }

    /// Encodes the value in the fewest bytes (zero bytes for 0/0/16). The fields must be
    /// in range (see [`BlockOption::new`]); out-of-range bits are dropped.
    pub fn encode(&self) -> Vec<u8> {
        let value = ((self.num & MAX_BLOCK_NUM) << 4)
            | (u32::from(self.more) << 3)
            | u32::from(self.szx.min(MAX_SZX));
        uint_bytes(value)
    }

    /// Block size in bytes.
    pub fn size(&self) -> usize {
        1usize << (u32::from(self.szx.min(MAX_SZX)) + 4)
    }

    /// Byte offset of this block in the whole body.
    pub fn offset(&self) -> u64 {
        u64::from(self.num) * self.size() as u64
    }
}

/// The largest SZX whose block size does not exceed `max_size` (SZX 0 if even 16 bytes
/// do not fit).
pub fn szx_for_size(max_size: usize) -> u8 {
    (1..=MAX_SZX)
        .rev()
        .find(|&szx| (1usize << (szx + 4)) <= max_size)
        .unwrap_or(0)
}

fn uint_bytes(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.get(skip..).unwrap_or_default().to_vec()
}

fn parse_uint(bytes: &[u8]) -> Option<u32> {
    if bytes.len() > 4 {
        return None;
    }
    Some(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

fn get_block(packet: &Packet, option: CoapOption) -> Option<Result<BlockOption, BlockError>> {
    packet
        .get_first_option(option)
        .map(|v| BlockOption::parse(v))
}

fn set_single(packet: &mut Packet, option: CoapOption, value: Vec<u8>) {
    let mut list = LinkedList::new();
    list.push_back(value);
    packet.set_option(option, list);
}

/// The Block1 option (27) of a packet, if present.
pub fn block1(packet: &Packet) -> Option<Result<BlockOption, BlockError>> {
    get_block(packet, CoapOption::Block1)
}

/// The Block2 option (23) of a packet, if present.
pub fn block2(packet: &Packet) -> Option<Result<BlockOption, BlockError>> {
    get_block(packet, CoapOption::Block2)
}

/// Sets (replaces) the Block1 option.
pub fn set_block1(packet: &mut Packet, block: BlockOption) {
    set_single(packet, CoapOption::Block1, block.encode());
}

/// Sets (replaces) the Block2 option.
pub fn set_block2(packet: &mut Packet, block: BlockOption) {
    set_single(packet, CoapOption::Block2, block.encode());
}

/// The Size1 option (60): `None` if absent or longer than 4 bytes.
pub fn size1(packet: &Packet) -> Option<u32> {
    packet
        .get_first_option(CoapOption::Size1)
        .and_then(|v| parse_uint(v))
}

/// The Size2 option (28): `None` if absent or longer than 4 bytes.
pub fn size2(packet: &Packet) -> Option<u32> {
    packet
        .get_first_option(CoapOption::Size2)
        .and_then(|v| parse_uint(v))
}

/// Sets (replaces) the Size1 option.
pub fn set_size1(packet: &mut Packet, size: u32) {
    set_single(packet, CoapOption::Size1, uint_bytes(size));
}

/// Sets (replaces) the Size2 option.
pub fn set_size2(packet: &mut Packet, size: u32) {
    set_single(packet, CoapOption::Size2, uint_bytes(size));
}

/// Why a Block2 request cannot be served.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Block2Error {
    /// The requested block starts at or beyond the end of the representation: answer
    /// 4.02 (Bad Option).
    OutOfRange { offset: u64, len: usize },
    /// The block lies beyond what a 20-bit block number can address at this size:
    /// answer 4.13 (Request Entity Too Large) — the representation is too big to serve.
    NotAddressable,
}

impl fmt::Display for Block2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange { offset, len } => {
                write!(
                    f,
                    "block at offset {offset} beyond representation of {len} bytes"
                )
            }
            Self::NotAddressable => f.write_str("block number beyond 2^20 - 1"),
        }
    }
}

impl std::error::Error for Block2Error {}

/// Picks the part of `representation` to send in a response.
///
/// `requested` is the request's Block2 option (its M bit is ignored); `max_size` our
/// preferred largest block. The smaller of the two sizes is used (RFC 7959 §2.4): a
/// client's smaller SZX is honoured, a larger one is reduced and its block number
/// rescaled so that the offset stays the same. Returns `None` when no Block2 was asked
/// and the whole representation fits in one block.
pub fn block2_slice(
    representation: &[u8],
    requested: Option<BlockOption>,
    max_size: usize,
) -> Result<Option<(&[u8], BlockOption)>, Block2Error> {
    let ours = szx_for_size(max_size);
    let (szx, offset) = match requested {
        None => {
            if representation.len() <= 1usize << (ours + 4) {
                return Ok(None);
            }
            (ours, 0)
        }
        Some(req) => (req.szx.min(ours).min(MAX_SZX), req.offset()),
    };
    let size = 1usize << (szx + 4);
    let len = representation.len();
    let out_of_range = Block2Error::OutOfRange { offset, len };
    // An empty representation still has a block 0 (empty).
    if offset > 0 && offset >= len as u64 {
        return Err(out_of_range);
    }
    let num = offset / size as u64;
    let num = u32::try_from(num)
        .ok()
        .filter(|&n| n <= MAX_BLOCK_NUM)
        .ok_or(Block2Error::NotAddressable)?;
    let start = usize::try_from(offset).map_err(|_| out_of_range)?;
    let end = start.saturating_add(size).min(len);
    let slice = representation.get(start..end).ok_or(out_of_range)?;
    Ok(Some((
        slice,
        BlockOption {
            num,
            more: end < len,
            szx,
        },
    )))
}

/// Identifies one Block1 upload: the client and the request's URI path.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Block1Key {
    pub peer: SocketAddr,
    pub path: String,
}

/// Outcome of one Block1 block.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Block1Progress {
    /// More blocks expected: answer 2.31 (Continue) echoing the Block1 option.
    Continue,
    /// The last block arrived: the whole body.
    Complete(Vec<u8>),
}

/// Why a Block1 block was refused; the partial upload is dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Block1Error {
    /// The block does not continue the body received so far (a gap, no upload in
    /// progress, or a payload that does not match its SZX): answer 4.08 (Request Entity
    /// Incomplete).
    OutOfOrder,
    /// The body would exceed `max` bytes: answer 4.13 (Request Entity Too Large) with
    /// Size1 = `max`.
    TooLarge { max: usize },
}

impl fmt::Display for Block1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfOrder => f.write_str("block does not continue the upload in progress"),
            Self::TooLarge { max } => write!(f, "upload larger than {max} bytes"),
        }
    }
}

impl std::error::Error for Block1Error {}

/// Uploads in progress at once; the oldest is dropped beyond this.
const MAX_UPLOADS: usize = 4;

struct Upload {
    key: Block1Key,
    body: Vec<u8>,
    expires: Instant,
}

/// Reassembles Block1 request bodies.
pub struct Block1Assembler {
    max_total: usize,
    lifetime: Duration,
    uploads: Vec<Upload>,
}

impl Block1Assembler {
    /// `max_total`: largest body accepted; `lifetime`: how long an upload waits for its
    /// next block (EXCHANGE_LIFETIME).
    pub fn new(max_total: usize, lifetime: Duration) -> Self {
        Self {
            max_total,
            lifetime,
            uploads: Vec::new(),
        }
    }

    /// Adds one block. Block 0 (re)starts the upload for `key`.
    pub fn push(
        &mut self,
        now: Instant,
        key: Block1Key,
        block: BlockOption,
        data: &[u8],
    ) -> Result<Block1Progress, Block1Error> {
        self.expire(now);
        let size = block.size();
        // Only the last block may be shorter than its SZX says.
        if data.len() > size || (block.more && data.len() != size) {
            self.cancel(&key);
            return Err(Block1Error::OutOfOrder);
        }
        if block.num == 0 && !block.more {
            // A body in a single block needs no state.
            self.cancel(&key);
            if data.len() > self.max_total {
                return Err(Block1Error::TooLarge {
                    max: self.max_total,
                });
            }
            return Ok(Block1Progress::Complete(data.to_vec()));
        }
        let existing = self.uploads.iter().position(|u| u.key == key);
        let index = if block.num == 0 {
            match existing {
                Some(i) => {
                    if let Some(upload) = self.uploads.get_mut(i) {
                        upload.body.clear();
                    }
                    i
                }
                None => {
                    if self.uploads.len() >= MAX_UPLOADS {
                        self.uploads.remove(0);
                    }
                    self.uploads.push(Upload {
                        key: key.clone(),
                        body: Vec::new(),
                        expires: now,
                    });
                    self.uploads.len() - 1
                }
            }
        } else {
            let continues = existing.filter(|&i| {
                self.uploads
                    .get(i)
                    .is_some_and(|u| u.body.len() as u64 == block.offset())
            });
            match continues {
                Some(i) => i,
                None => {
                    self.cancel(&key);
                    return Err(Block1Error::OutOfOrder);
                }
            }
        };
        let Some(upload) = self.uploads.get_mut(index) else {
            return Err(Block1Error::OutOfOrder);
        };
        if upload.body.len().saturating_add(data.len()) > self.max_total {
            self.uploads.remove(index);
            return Err(Block1Error::TooLarge {
                max: self.max_total,
            });
        }
        upload.body.extend_from_slice(data);
        upload.expires = now.checked_add(self.lifetime).unwrap_or(now);
        if block.more {
            Ok(Block1Progress::Continue)
        } else {
            let upload = self.uploads.remove(index);
            Ok(Block1Progress::Complete(upload.body))
        }
    }

    /// Drops the upload for `key`, if any.
    pub fn cancel(&mut self, key: &Block1Key) {
        self.uploads.retain(|u| &u.key != key);
    }

    /// Drops uploads whose next block is overdue.
    pub fn expire(&mut self, now: Instant) {
        self.uploads.retain(|u| u.expires > now);
    }

    /// When the next upload expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.uploads.iter().map(|u| u.expires).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block(num: u32, more: bool, szx: u8) -> BlockOption {
        BlockOption { num, more, szx }
    }

    #[test]
    fn option_encoding_follows_rfc7959_bit_layout() {
        // NUM | M | SZX packed as an unsigned integer in the fewest bytes.
        assert_eq!(block(0, false, 0).encode(), Vec::<u8>::new());
        // Figure 2 of RFC 7959: "2:0/0/128" then "2:1/1/128".
        assert_eq!(block(0, false, 3).encode(), vec![0x03]);
        assert_eq!(block(1, true, 3).encode(), vec![0x1b]);
        assert_eq!(block(2, false, 3).encode(), vec![0x23]);
        // Largest one-byte number, smallest two-byte one.
        assert_eq!(block(15, true, 6).encode(), vec![0xfe]);
        assert_eq!(block(16, false, 0).encode(), vec![0x01, 0x00]);
        assert_eq!(block(4095, true, 6).encode(), vec![0xff, 0xfe]);
        // Three bytes from block 4096 on: beyond coap-lite's u16 block number.
        assert_eq!(block(4096, false, 6).encode(), vec![0x01, 0x00, 0x06]);
        assert_eq!(
            block(MAX_BLOCK_NUM, true, 6).encode(),
            vec![0xff, 0xff, 0xfe]
        );
    }

    #[test]
    fn option_decoding() {
        assert_eq!(BlockOption::parse(&[]), Ok(block(0, false, 0)));
        assert_eq!(BlockOption::parse(&[0x1b]), Ok(block(1, true, 3)));
        assert_eq!(BlockOption::parse(&[0x00, 0x1b]), Ok(block(1, true, 3)));
        assert_eq!(
            BlockOption::parse(&[0xff, 0xff, 0xfe]),
            Ok(block(MAX_BLOCK_NUM, true, 6))
        );
        assert_eq!(
            BlockOption::parse(&[0x01, 0x00, 0x06]),
            Ok(block(4096, false, 6))
        );
        assert_eq!(BlockOption::parse(&[0x07]), Err(BlockError::ReservedSzx));
        assert_eq!(
            BlockOption::parse(&[0, 0, 0, 0]),
            Err(BlockError::TooLong(4))
        );
    }

    #[test]
    fn size_and_offset() {
        assert_eq!(block(0, false, 0).size(), 16);
        assert_eq!(block(0, false, 6).size(), 1024);
        // RFC 7959 §2.2: block 2 of 64-byte blocks starts at byte 128.
        assert_eq!(block(2, false, 2).offset(), 128);
        assert_eq!(
            block(MAX_BLOCK_NUM, false, 6).offset(),
            u64::from(MAX_BLOCK_NUM) * 1024
        );
        assert_eq!(szx_for_size(1024), 6);
        assert_eq!(szx_for_size(5000), 6);
        assert_eq!(szx_for_size(1000), 5);
        assert_eq!(szx_for_size(16), 0);
        assert_eq!(szx_for_size(0), 0);
        assert!(BlockOption::new(1 << 20, false, 0).is_err());
        assert!(BlockOption::new(0, false, 7).is_err());
    }

    #[test]
    fn packet_helpers_survive_the_wire() {
        let mut packet = Packet::new();
        set_block2(&mut packet, block(70_000, true, 6));
        set_block1(&mut packet, block(3, false, 2));
        set_size1(&mut packet, 100_000);
        set_size2(&mut packet, 0);
        // Setting again replaces rather than repeats.
        set_block2(&mut packet, block(70_001, true, 6));
        let bytes = packet.to_bytes_unlimited().unwrap();
        let decoded = Packet::from_bytes(&bytes).unwrap();
        assert_eq!(block2(&decoded), Some(Ok(block(70_001, true, 6))));
        assert_eq!(block1(&decoded), Some(Ok(block(3, false, 2))));
        assert_eq!(size1(&decoded), Some(100_000));
        assert_eq!(size2(&decoded), Some(0));
        assert_eq!(block1(&Packet::new()), None);
    }

    #[test]
    fn block2_whole_representation_fits() {
        let body = [7u8; 100];
        assert_eq!(block2_slice(&body, None, 1024), Ok(None));
        // Asked for explicitly: served as the only block.
        let (slice, opt) = block2_slice(&body, Some(block(0, false, 6)), 1024)
            .unwrap()
            .unwrap();
        assert_eq!(slice.len(), 100);
        assert_eq!(opt, block(0, false, 6));
    }

    #[test]
    fn block2_unsolicited_and_early_negotiation() {
        let body: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        // No Block2 in the request, too big: first block at our size.
        let (slice, opt) = block2_slice(&body, None, 128).unwrap().unwrap();
        assert_eq!(slice, &body[..128]);
        assert_eq!(opt, block(0, true, 3));
        // Early negotiation (RFC 7959 §2.4): the client asks for 64-byte blocks.
        let (slice, opt) = block2_slice(&body, Some(block(0, false, 2)), 1024)
            .unwrap()
            .unwrap();
        assert_eq!(slice, &body[..64]);
        assert_eq!(opt, block(0, true, 2));
        // Last block is short and has M=0.
        let (slice, opt) = block2_slice(&body, Some(block(4, false, 2)), 1024)
            .unwrap()
            .unwrap();
        assert_eq!(slice, &body[256..]);
        assert_eq!(opt, block(4, false, 2));
        // Beyond the end.
        assert_eq!(
            block2_slice(&body, Some(block(5, false, 2)), 1024),
            Err(Block2Error::OutOfRange {
                offset: 320,
                len: 300
            })
        );
    }

    #[test]
    fn block2_larger_request_is_reduced_keeping_the_offset() {
        let body: Vec<u8> = (0..100u8).collect();
        // Block 1 of 32 bytes (offset 32) served as block 2 of 16 bytes.
        let (slice, opt) = block2_slice(&body, Some(block(1, false, 1)), 16)
            .unwrap()
            .unwrap();
        assert_eq!(slice, &body[32..48]);
        assert_eq!(opt, block(2, true, 0));
    }

    fn key(port: u16, path: &str) -> Block1Key {
        Block1Key {
            peer: SocketAddr::from(([192, 0, 2, 1], port)),
            path: path.to_string(),
        }
    }

    #[test]
    fn block1_upload_reassembles_in_order() {
        let now = Instant::now();
        let mut asm = Block1Assembler::new(1000, Duration::from_secs(247));
        let k = key(5683, "/5/0/0");
        assert_eq!(
            asm.push(now, k.clone(), block(0, true, 0), &[1; 16]),
            Ok(Block1Progress::Continue)
        );
        // Another client's upload to the same path is independent.
        assert_eq!(
            asm.push(now, key(5684, "/5/0/0"), block(0, true, 0), &[9; 16]),
            Ok(Block1Progress::Continue)
        );
        assert_eq!(
            asm.push(now, k.clone(), block(1, true, 0), &[2; 16]),
            Ok(Block1Progress::Continue)
        );
        let mut expected = vec![1; 16];
        expected.extend([2; 16]);
        expected.extend([3; 5]);
        assert_eq!(
            asm.push(now, k.clone(), block(2, false, 0), &[3; 5]),
            Ok(Block1Progress::Complete(expected))
        );
        // Finished: a further block has nothing to continue.
        assert_eq!(
            asm.push(now, k, block(3, false, 0), &[3; 5]),
            Err(Block1Error::OutOfOrder)
        );
    }

    #[test]
    fn block1_client_may_reduce_block_size_midway() {
        let now = Instant::now();
        let mut asm = Block1Assembler::new(1000, Duration::from_secs(247));
        let k = key(5683, "/x");
        asm.push(now, k.clone(), block(0, true, 1), &[0; 32])
            .unwrap();
        // Offset 32 expressed in 16-byte blocks.
        assert_eq!(
            asm.push(now, k, block(2, false, 0), &[1; 3]).unwrap(),
            Block1Progress::Complete([vec![0; 32], vec![1; 3]].concat())
        );
    }

    #[test]
    fn block1_gap_and_bad_size_are_out_of_order() {
        let now = Instant::now();
        let mut asm = Block1Assembler::new(1000, Duration::from_secs(247));
        let k = key(5683, "/x");
        asm.push(now, k.clone(), block(0, true, 0), &[0; 16])
            .unwrap();
        assert_eq!(
            asm.push(now, k.clone(), block(2, true, 0), &[0; 16]),
            Err(Block1Error::OutOfOrder)
        );
        asm.push(now, k.clone(), block(0, true, 0), &[0; 16])
            .unwrap();
        assert_eq!(
            asm.push(now, k.clone(), block(1, true, 0), &[0; 15]),
            Err(Block1Error::OutOfOrder)
        );
        assert_eq!(
            asm.push(now, k.clone(), block(0, false, 0), &[0; 17]),
            Err(Block1Error::OutOfOrder)
        );
        // A body in one block.
        assert_eq!(
            asm.push(now, k.clone(), block(0, false, 0), &[5; 10]),
            Ok(Block1Progress::Complete(vec![5; 10]))
        );
        assert_eq!(asm.poll_timeout(), None);
    }

    #[test]
    fn block1_restart_and_limit() {
        let now = Instant::now();
        let mut asm = Block1Assembler::new(40, Duration::from_secs(247));
        let k = key(5683, "/x");
        asm.push(now, k.clone(), block(0, true, 0), &[1; 16])
            .unwrap();
        asm.push(now, k.clone(), block(1, true, 0), &[1; 16])
            .unwrap();
        // A new block 0 starts over.
        asm.push(now, k.clone(), block(0, true, 0), &[2; 16])
            .unwrap();
        asm.push(now, k.clone(), block(1, true, 0), &[2; 16])
            .unwrap();
        assert_eq!(
            asm.push(now, k.clone(), block(2, true, 0), &[2; 16]),
            Err(Block1Error::TooLarge { max: 40 })
        );
        // The oversized upload is gone.
        assert_eq!(
            asm.push(now, k, block(3, false, 0), &[2; 1]),
            Err(Block1Error::OutOfOrder)
        );
    }

    #[test]
    fn block1_upload_expires() {
        let now = Instant::now();
        let lifetime = Duration::from_secs(247);
        let mut asm = Block1Assembler::new(1000, lifetime);
        let k = key(5683, "/x");
        asm.push(now, k.clone(), block(0, true, 0), &[0; 16])
            .unwrap();
        assert_eq!(asm.poll_timeout(), Some(now + lifetime));
        asm.expire(now + lifetime);
        assert_eq!(asm.poll_timeout(), None);
        assert_eq!(
            asm.push(now + lifetime, k, block(1, false, 0), &[0; 1]),
            Err(Block1Error::OutOfOrder)
        );
    }

    proptest! {
        #[test]
        fn option_round_trip(num in 0..=MAX_BLOCK_NUM, more: bool, szx in 0..=MAX_SZX) {
            let opt = block(num, more, szx);
            let bytes = opt.encode();
            prop_assert!(bytes.len() <= 3);
            // Minimal: no leading zero byte.
            prop_assert_ne!(bytes.first(), Some(&0));
            prop_assert_eq!(BlockOption::parse(&bytes), Ok(opt));
        }

        #[test]
        fn option_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..6)) {
            let _ = BlockOption::parse(&bytes);
        }

        #[test]
        fn block2_slices_cover_the_representation(len in 0usize..3000, max in 0usize..2000) {
            let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut rebuilt = Vec::new();
            let mut num = 0;
            loop {
                let szx = szx_for_size(max);
                let (slice, opt) = block2_slice(&body, Some(block(num, false, szx)), max)
                    .unwrap()
                    .unwrap();
                rebuilt.extend_from_slice(slice);
                if !opt.more { break; }
                num += 1;
            }
            prop_assert_eq!(rebuilt, body);
        }
    }
}
