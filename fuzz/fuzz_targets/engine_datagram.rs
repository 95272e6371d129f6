#![no_main]

//! A registered engine fed arbitrary datagrams from its server (and a stranger), with
//! virtual time driving its timers. Input: frames of `[flags][len][len bytes]`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, ResponseType};
use libfuzzer_sys::fuzz_target;
use lwm2md::coap::CoapParams;
use lwm2md::codec::ContentFormat;
use lwm2md::engine::{Engine, EngineConfig, SendSpec, ServerSpec};
use lwm2md::objects::device::Device;
use lwm2md::objects::security::Security;
use lwm2md::objects::server::Server;
use lwm2md::path::Path;

const SERVER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
    5683,
);
const STRANGER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7)),
    5683,
);

fn clock() -> i64 {
    1_700_000_000
}

/// An engine that has registered with `SERVER`.
fn registered(now: Instant, format: ContentFormat) -> Engine {
    let mut security = Security::new();
    security.add_nosec_account(0, "coap://192.0.2.1", 1);
    let mut server = Server::new();
    server.add_account(0, 1, 300, "U");
    let device = Device::new(clock, true);
    let config = EngineConfig {
        endpoint: "fuzz-ep".into(),
        preferred_format: format,
        coap: CoapParams::default(),
        block_size: 64,
        max_upload: 4096,
        servers: vec![ServerSpec {
            short_server_id: 1,
            addr: SERVER,
            uri: "coap://192.0.2.1".into(),
        }],
        send: vec![SendSpec {
            paths: vec![Path::instance(3, 0)],
            interval: Duration::from_secs(30),
            format: ContentFormat::SenmlCbor,
        }],
        wall_clock: || 1_700_000_000,
        limits: Default::default(),
        resolve: lwm2md::engine::bootstrap::resolve_literal,
    };
    let mut engine = Engine::new(
        config,
        vec![Box::new(security), Box::new(server), Box::new(device)],
        7,
        now,
    );
    engine.handle_timeout(now);
    let register = engine
        .poll_transmit()
        .and_then(|t| Packet::from_bytes(&t.data).ok())
        .expect("the engine registers first");
    let mut created = Packet::new();
    created.header.code = MessageClass::Response(ResponseType::Created);
    created.header.set_type(MessageType::Acknowledgement);
    created.header.message_id = register.header.message_id;
    created.set_token(register.get_token().to_vec());
    created.add_option(CoapOption::LocationPath, b"rd".to_vec());
    created.add_option(CoapOption::LocationPath, b"abc".to_vec());
    engine.handle_datagram(now, SERVER, &created.to_bytes().expect("a valid response"));
    assert!(engine
        .registrations()
        .iter()
        .all(|(_, _, registered)| *registered));
    engine
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let format = if pick & 1 == 0 {
        ContentFormat::Tlv
    } else {
        ContentFormat::SenmlJson
    };
    let start = Instant::now();
    let mut now = start;
    let mut engine = registered(now, format);
    while let Some((&[flags, len], tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(len).min(tail.len());
        let (datagram, tail) = tail.split_at(len);
        rest = tail;
        let from = if flags & 0x80 != 0 { STRANGER } else { SERVER };
        engine.handle_datagram(now, from, datagram);
        // Time moves on by 0..=63 s; the engine's deadlines that fall in it fire in order.
        let until = now + Duration::from_secs(u64::from(flags & 0x3f));
        loop {
            while let Some(t) = engine.poll_transmit() {
                // A stranger gets resets and error responses, never data.
                if t.peer == STRANGER {
                    let class = t.data.get(1).map_or(0, |code| code >> 5);
                    assert!(class != 2, "served a stranger: {:02x?}", t.data);
                }
            }
            while engine.poll_event().is_some() {}
            while engine.poll_action().is_some() {}
            match engine.poll_timeout() {
                Some(deadline) if deadline <= until => {
                    now = now.max(deadline);
                    engine.handle_timeout(now);
                }
                _ => break,
            }
        }
        now = until;
        engine.handle_timeout(now);
    }
});
