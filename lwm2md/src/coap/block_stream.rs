//! Block1 uploads passed on block by block instead of reassembled (RFC 7959 §2.5): what
//! is kept per upload is the offset expected next, so a firmware image of any size
//! costs the same memory as a small one.

use std::time::{Duration, Instant};

use super::block::{Block1Key, BlockOption};

/// What to do with one block of a streamed upload.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StreamStep {
    /// Hand the payload on: it starts at `offset` of the body.
    Write { offset: u64 },
    /// The block was handed on already (a client retransmitting it under a new message
    /// ID after our answer was lost): answer as before, pass nothing on.
    Duplicate,
}

/// Why a block does not fit the upload: answer 4.08 (Request Entity Incomplete).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OutOfOrder;

impl std::fmt::Display for OutOfOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("block does not continue the streamed upload")
    }
}

impl std::error::Error for OutOfOrder {}

/// Streamed uploads in progress at once; the oldest is dropped beyond this.
const MAX_STREAMS: usize = 2;

struct Stream {
    key: Block1Key,
    /// Offset of the next byte expected.
    next: u64,
    expires: Instant,
}

/// Tracks streamed Block1 uploads.
pub struct Block1Streams {
    lifetime: Duration,
    streams: Vec<Stream>,
}

impl Block1Streams {
    /// `lifetime`: how long an upload waits for its next block (EXCHANGE_LIFETIME).
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            streams: Vec::new(),
        }
    }

    /// Places one block of `len` bytes. Block 0 (re)starts the upload for `key`; the last
    /// block (M = 0) ends it. A block that neither continues nor repeats what was received
    /// drops the upload.
    pub fn accept(
        &mut self,
        now: Instant,
        key: &Block1Key,
        block: BlockOption,
        len: usize,
    ) -> Result<StreamStep, OutOfOrder> {
        // Only the last block may be shorter than its SZX says.
        if len > block.size() || (block.more && len != block.size()) {
            self.cancel(key);
            return Err(OutOfOrder);
        }
        let offset = block.offset();
        let end = offset.saturating_add(len as u64);
        let expires = now.checked_add(self.lifetime).unwrap_or(now);
        let existing = self.streams.iter().position(|s| &s.key == key);
        if block.num == 0 {
            if let Some(i) = existing {
                self.streams.remove(i);
            }
            if block.more {
                if self.streams.len() >= MAX_STREAMS {
                    self.streams.remove(0);
                }
                self.streams.push(Stream {
                    key: key.clone(),
                    next: end,
                    expires,
                });
            }
            return Ok(StreamStep::Write { offset: 0 });
        }
        let Some(i) = existing else {
            return Err(OutOfOrder);
        };
        let Some(stream) = self.streams.get_mut(i) else {
            return Err(OutOfOrder);
        };
        if offset == stream.next {
            stream.next = end;
            stream.expires = expires;
            if !block.more {
                self.streams.remove(i);
            }
            Ok(StreamStep::Write { offset })
        } else if end <= stream.next && block.more {
            stream.expires = expires;
            Ok(StreamStep::Duplicate)
        } else {
            self.streams.remove(i);
            Err(OutOfOrder)
        }
    }

    /// Drops the upload for `key`, if any.
    pub fn cancel(&mut self, key: &Block1Key) {
        self.streams.retain(|s| &s.key != key);
    }

    /// Drops uploads whose next block is overdue and returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<Block1Key> {
        let mut gone = Vec::new();
        self.streams.retain(|s| {
            let keep = s.expires > now;
            if !keep {
                gone.push(s.key.clone());
            }
            keep
        });
        gone
    }

    /// When the next upload expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.streams.iter().map(|s| s.expires).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn key(port: u16) -> Block1Key {
        Block1Key {
            peer: SocketAddr::from(([192, 0, 2, 1], port)),
            path: "/5/0/0".into(),
        }
    }

    fn block(num: u32, more: bool, szx: u8) -> BlockOption {
        BlockOption { num, more, szx }
    }

    #[test]
    fn in_order_blocks_are_written_at_their_offsets() {
        let now = Instant::now();
        let mut s = Block1Streams::new(Duration::from_secs(247));
        let k = key(1);
        assert_eq!(
            s.accept(now, &k, block(0, true, 0), 16),
            Ok(StreamStep::Write { offset: 0 })
        );
        assert_eq!(
            s.accept(now, &k, block(1, true, 0), 16),
            Ok(StreamStep::Write { offset: 16 })
        );
        // The client may move to smaller blocks: offset 32 in 16-byte blocks is block 2,
        // in 32-byte blocks block 1.
        assert_eq!(
            s.accept(now, &k, block(1, false, 1), 5),
            Ok(StreamStep::Write { offset: 32 })
        );
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn block_numbers_beyond_16_bits() {
        let now = Instant::now();
        let mut s = Block1Streams::new(Duration::from_secs(247));
        let k = key(1);
        s.accept(now, &k, block(0, true, 6), 1024).unwrap();
        for num in 1..70_000u32 {
            assert_eq!(
                s.accept(now, &k, block(num, true, 6), 1024),
                Ok(StreamStep::Write {
                    offset: u64::from(num) * 1024
                })
            );
        }
        assert_eq!(
            s.accept(now, &k, block(70_000, false, 6), 1),
            Ok(StreamStep::Write {
                offset: 70_000 * 1024
            })
        );
    }

    #[test]
    fn repeated_block_is_a_duplicate_and_a_gap_is_out_of_order() {
        let now = Instant::now();
        let mut s = Block1Streams::new(Duration::from_secs(247));
        let k = key(1);
        s.accept(now, &k, block(0, true, 0), 16).unwrap();
        s.accept(now, &k, block(1, true, 0), 16).unwrap();
        assert_eq!(
            s.accept(now, &k, block(1, true, 0), 16),
            Ok(StreamStep::Duplicate)
        );
        assert_eq!(
            s.accept(now, &k, block(2, true, 0), 16),
            Ok(StreamStep::Write { offset: 32 })
        );
        assert_eq!(s.accept(now, &k, block(4, true, 0), 16), Err(OutOfOrder));
        // The upload is gone: even the right block has nothing to continue.
        assert_eq!(s.accept(now, &k, block(3, true, 0), 16), Err(OutOfOrder));
        // A wrong-sized middle block is refused.
        s.accept(now, &k, block(0, true, 0), 16).unwrap();
        assert_eq!(s.accept(now, &k, block(1, true, 0), 15), Err(OutOfOrder));
        // Other clients' uploads are separate.
        assert_eq!(
            s.accept(now, &key(2), block(1, true, 0), 16),
            Err(OutOfOrder)
        );
    }

    #[test]
    fn overdue_uploads_expire() {
        let now = Instant::now();
        let life = Duration::from_secs(247);
        let mut s = Block1Streams::new(life);
        let k = key(1);
        s.accept(now, &k, block(0, true, 0), 16).unwrap();
        assert_eq!(s.poll_timeout(), Some(now + life));
        assert!(s.expire(now + life - Duration::from_secs(1)).is_empty());
        assert_eq!(s.expire(now + life), vec![k.clone()]);
        assert_eq!(s.accept(now, &k, block(1, true, 0), 16), Err(OutOfOrder));
    }
}
