#![no_main]

//! Datagrams from a few peers into the message layer, with time moving on between them.
//! Input: frames of `[peer/flags][len][len bytes]`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{MessageClass, Packet, ResponseType};
use libfuzzer_sys::fuzz_target;
use lwm2md::coap::{CoapParams, MessageLayer};

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let mut layer = MessageLayer::new(CoapParams::default(), 1);
    let peers: [SocketAddr; 3] = [
        SocketAddr::from(([192, 0, 2, 1], 5683)),
        SocketAddr::from(([192, 0, 2, 2], 5684)),
        SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 5683)),
    ];
    let mut rest = data;
    while let Some((&[flags, len], tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(len).min(tail.len());
        let (datagram, tail) = tail.split_at(len);
        rest = tail;
        let peer = peers[usize::from(flags & 0x03) % peers.len()];
        // Time moves on by 0..=63 s, sometimes far enough to expire exchanges.
        now += Duration::from_secs(u64::from(flags >> 2));
        layer.handle_timeout(now);
        if let Some(request) = layer.handle_datagram(now, peer, datagram) {
            if flags & 0x40 != 0 {
                let mut response = Packet::new();
                response.header.code = MessageClass::Response(ResponseType::Content);
                response.payload = datagram.to_vec();
                layer.respond(now, &request, response);
            }
        }
        while let Some(t) = layer.poll_transmit() {
            assert!(peers.contains(&t.peer), "sent to {}", t.peer);
        }
        while layer.poll_event().is_some() {}
        if let Some(deadline) = layer.poll_timeout() {
            assert!(deadline >= start, "deadline before start");
        }
    }
});
