//! Firmware packages pushed to /5/0/0 with Block1: streamed into the object's sink block
//! by block, never reassembled in the engine.

use std::sync::{Arc, Mutex};

use super::*;
use crate::objects::firmware::{Firmware, FirmwareAction, PackageSink};

/// What reached the sink: length and a running FNV-1a hash, checked in order.
#[derive(Default)]
struct Received {
    len: u64,
    hash: u64,
    finished: Option<u64>,
    writes: usize,
}

#[derive(Clone, Default)]
struct HashSink(Arc<Mutex<Received>>);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(mut hash: u64, data: &[u8]) -> u64 {
    for &b in data {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x100_0000_01b3);
    }
    hash
}

impl PackageSink for HashSink {
    fn begin(&mut self) -> std::io::Result<()> {
        *self.0.lock().unwrap() = Received {
            hash: FNV_OFFSET,
            ..Received::default()
        };
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut r = self.0.lock().unwrap();
        assert_eq!(offset, r.len, "writes are sequential");
        r.len += data.len() as u64;
        r.hash = fnv(r.hash, data);
        r.writes += 1;
        Ok(())
    }
    fn finish(&mut self, len: u64) -> std::io::Result<()> {
        self.0.lock().unwrap().finished = Some(len);
        Ok(())
    }
    fn discard(&mut self) {
        *self.0.lock().unwrap() = Received::default();
    }
}

/// The engine's Block1 reassembly is limited to 64 bytes here: a package that got there
/// instead of being streamed would be refused with 4.13.
fn sim(max_package: u64) -> (Sim, HashSink) {
    let sink = HashSink::default();
    let fw = Firmware::new(clock, Box::new(sink.clone()), Vec::new(), max_package);
    let mut sim = Sim::with_objects(86400, 1024, 64, Vec::new(), vec![Box::new(fw)]);
    sim.register();
    (sim, sink)
}

fn block(num: u32, more: bool, szx: u8, data: Vec<u8>) -> impl FnOnce(&mut Packet) {
    move |p: &mut Packet| {
        p.add_option(CoapOption::ContentFormat, encode_uint(42));
        p.add_option(CoapOption::Block1, BlockOption { num, more, szx }.encode());
        p.payload = data;
    }
}

fn int(sim: &Sim, r: u16) -> i64 {
    match sim.engine.read(&Path::resource(5, 0, r)).unwrap()[0].value {
        Value::Integer(n) => n,
        ref other => panic!("{other:?}"),
    }
}

/// Byte `i` of the test package.
fn byte(i: u64) -> u8 {
    (i.wrapping_mul(31) >> 3) as u8
}

fn piece(offset: u64, len: usize) -> Vec<u8> {
    (offset..offset + len as u64).map(byte).collect()
}

#[test]
fn push_streams_blocks_beyond_2_16() {
    let (mut sim, sink) = sim(10_000_000);
    // 16-byte blocks: block numbers pass 65535 with a package of about 1 MB.
    let blocks = 70_000u32;
    let tail = 5;
    let mut expected = FNV_OFFSET;
    for num in 0..blocks {
        // Message IDs wrap after 65536 requests: let the deduplication cache forget them.
        sim.now += Duration::from_millis(5);
        let data = piece(u64::from(num) * 16, 16);
        expected = fnv(expected, &data);
        let resp = sim.request(RequestType::Put, "/5/0/0", block(num, true, 0, data));
        assert_eq!(code(&resp), ResponseType::Continue, "block {num}");
        assert_eq!(
            block::block1(&resp),
            Some(Ok(BlockOption {
                num,
                more: true,
                szx: 0
            }))
        );
        if num == 0 {
            assert_eq!(int(&sim, 3), 1, "Downloading");
        }
    }
    let data = piece(u64::from(blocks) * 16, tail);
    expected = fnv(expected, &data);
    let resp = sim.request(RequestType::Put, "/5/0/0", block(blocks, false, 0, data));
    assert_eq!(code(&resp), ResponseType::Changed);
    let len = u64::from(blocks) * 16 + tail as u64;
    {
        let r = sink.0.lock().unwrap();
        assert_eq!((r.len, r.hash, r.finished), (len, expected, Some(len)));
    }
    assert_eq!(
        sim.engine.poll_action(),
        Some(Action::Firmware(FirmwareAction::Check { len }))
    );
    // The backend checks the package and says Downloaded; then Update is accepted.
    sim.engine
        .set_value(
            Path::resource(5, 0, 3),
            ResourceValue::Single(Value::Integer(2)),
        )
        .unwrap();
    let resp = sim.request(RequestType::Post, "/5/0/2", |_| {});
    assert_eq!(code(&resp), ResponseType::Changed);
    assert_eq!(
        sim.engine.poll_action(),
        Some(Action::Firmware(FirmwareAction::Install))
    );
    assert_eq!(int(&sim, 3), 3);
}

#[test]
fn repeated_block_is_not_written_twice_and_a_gap_fails_the_push() {
    let (mut sim, sink) = sim(10_000);
    for num in 0..3 {
        sim.request(
            RequestType::Put,
            "/5/0/0",
            block(num, true, 1, piece(u64::from(num) * 32, 32)),
        );
    }
    // Block 2 again under a new message ID: answered, not written.
    let resp = sim.request(RequestType::Put, "/5/0/0", block(2, true, 1, piece(64, 32)));
    assert_eq!(code(&resp), ResponseType::Continue);
    assert_eq!(sink.0.lock().unwrap().writes, 3);
    // Block 5 after 2: 4.08, the push is over with result 4.
    let resp = sim.request(
        RequestType::Put,
        "/5/0/0",
        block(5, true, 1, piece(160, 32)),
    );
    assert_eq!(code(&resp), ResponseType::RequestEntityIncomplete);
    assert_eq!((int(&sim, 3), int(&sim, 5)), (0, 4));
    let resp = sim.request(RequestType::Put, "/5/0/0", block(3, true, 1, piece(96, 32)));
    assert_eq!(code(&resp), ResponseType::RequestEntityIncomplete);
}

#[test]
fn package_over_the_maximum_is_4_13() {
    let (mut sim, _) = sim(100);
    // Announced with Size1: refused at the first block.
    let resp = sim.request(RequestType::Put, "/5/0/0", |p: &mut Packet| {
        block(0, true, 1, piece(0, 32))(p);
        block::set_size1(p, 101);
    });
    assert_eq!(code(&resp), ResponseType::RequestEntityTooLarge);
    assert_eq!(uint_option(&resp, CoapOption::Size1), Ok(Some(100)));
    assert_eq!((int(&sim, 3), int(&sim, 5)), (0, 2));
    // Not announced: refused when it gets there.
    for num in 0..3 {
        let resp = sim.request(
            RequestType::Put,
            "/5/0/0",
            block(num, true, 1, piece(u64::from(num) * 32, 32)),
        );
        assert_eq!(code(&resp), ResponseType::Continue);
    }
    let resp = sim.request(RequestType::Put, "/5/0/0", block(3, true, 1, piece(96, 32)));
    assert_eq!(code(&resp), ResponseType::RequestEntityTooLarge);
    assert_eq!((int(&sim, 3), int(&sim, 5)), (0, 2));
}

#[test]
fn abandoned_push_ends_with_result_4() {
    let (mut sim, sink) = sim(10_000);
    sim.request(RequestType::Put, "/5/0/0", block(0, true, 1, piece(0, 32)));
    assert_eq!(int(&sim, 3), 1);
    // No further block: once EXCHANGE_LIFETIME passes, the push is given up.
    let lifetime = CoapParams::default().exchange_lifetime();
    let end = sim.now + lifetime + Duration::from_secs(1);
    while let Some(t) = sim.engine.poll_timeout().filter(|&t| t <= end) {
        sim.now = sim.now.max(t);
        sim.engine.handle_timeout(sim.now);
        while sim.engine.poll_transmit().is_some() {}
    }
    assert_eq!((int(&sim, 3), int(&sim, 5)), (0, 4));
    assert_eq!(sink.0.lock().unwrap().len, 0);
}

#[test]
fn small_package_in_one_request_and_update_outside_downloaded() {
    let (mut sim, sink) = sim(10_000);
    let resp = sim.request(RequestType::Post, "/5/0/2", |_| {});
    assert_eq!(code(&resp), ResponseType::MethodNotAllowed);
    let resp = sim.request(RequestType::Put, "/5/0/0", |p: &mut Packet| {
        p.add_option(CoapOption::ContentFormat, encode_uint(42));
        p.payload = vec![9; 10];
    });
    assert_eq!(code(&resp), ResponseType::Changed);
    assert_eq!(sink.0.lock().unwrap().finished, Some(10));
    assert_eq!(int(&sim, 3), 1);
    // A single NULL byte resets to Idle.
    let resp = sim.request(RequestType::Put, "/5/0/0", |p: &mut Packet| {
        p.add_option(CoapOption::ContentFormat, encode_uint(42));
        p.payload = vec![0];
    });
    assert_eq!(code(&resp), ResponseType::Changed);
    assert_eq!((int(&sim, 3), int(&sim, 5)), (0, 0));
}
