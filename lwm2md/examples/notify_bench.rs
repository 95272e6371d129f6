//! Notification throughput of the engine on one core: a registered engine with one
//! observation of a single resource, its value changed as fast as possible, every
//! notification sent over a real UDP socket on loopback to a receiving thread.
//! Prints notifications per second and the bytes on the wire of one notification in each
//! content format. Run by `scripts/bench`.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use lwm2md::coap::CoapParams;
use lwm2md::codec::ContentFormat;
use lwm2md::engine::options::encode_uint;
use lwm2md::engine::{Engine, EngineConfig, ServerSpec};
use lwm2md::objects::device::{self, Device};
use lwm2md::objects::security::Security;
use lwm2md::objects::server::Server;
use lwm2md::path::Path;
use lwm2md::value::{ResourceValue, Value};

const MEMORY_FREE: Path = Path::resource(3, 0, device::MEMORY_FREE);

fn engine(server: SocketAddr, now: Instant) -> Engine {
    let mut security = Security::new();
    security.add_nosec_account(0, "coap://127.0.0.1", 1);
    let mut srv = Server::new();
    srv.add_account(0, 1, 86400, "U");
    let config = EngineConfig {
        endpoint: "bench".into(),
        preferred_format: ContentFormat::SenmlCbor,
        coap: CoapParams::default(),
        block_size: 1024,
        max_upload: 65536,
        servers: vec![ServerSpec {
            short_server_id: 1,
            addr: server,
            uri: "coap://127.0.0.1".into(),
        }],
        send: Vec::new(),
        wall_clock: device::system_clock,
        limits: Default::default(),
        resolve: lwm2md::engine::bootstrap::resolve_literal,
    };
    let objects: Vec<Box<dyn lwm2md::model::Object>> = vec![
        Box::new(security),
        Box::new(srv),
        Box::new(Device::new(device::system_clock, false)),
    ];
    let mut e = Engine::new(config, objects, 1, now);
    e.set_value(MEMORY_FREE, ResourceValue::Single(Value::Integer(1000)))
        .expect("set");
    e.handle_timeout(now);
    let register = Packet::from_bytes(&e.poll_transmit().expect("a Register").data).expect("CoAP");
    let mut created = Packet::new();
    created.header.code = MessageClass::Response(ResponseType::Created);
    created.header.set_type(MessageType::Acknowledgement);
    created.header.message_id = register.header.message_id;
    created.set_token(register.get_token().to_vec());
    created.add_option(CoapOption::LocationPath, b"rd".to_vec());
    created.add_option(CoapOption::LocationPath, b"1".to_vec());
    e.handle_datagram(now, server, &created.to_bytes().expect("encode"));
    e
}

/// Observes /3/0/10 in `format`; returns the engine with the observation in place.
fn observe(e: &mut Engine, server: SocketAddr, now: Instant, format: ContentFormat) {
    let mut get = Packet::new();
    get.header.code = MessageClass::Request(RequestType::Get);
    get.header.set_type(MessageType::Confirmable);
    get.header.message_id = 1;
    get.set_token(vec![0xb0, 0x0b]);
    get.add_option(CoapOption::Observe, encode_uint(0));
    for seg in ["3", "0", "10"] {
        get.add_option(CoapOption::UriPath, seg.as_bytes().to_vec());
    }
    get.add_option(CoapOption::Accept, encode_uint(format.code().into()));
    e.handle_datagram(now, server, &get.to_bytes().expect("encode"));
    while e.poll_transmit().is_some() {}
}

fn main() -> std::io::Result<()> {
    let receiver = UdpSocket::bind("127.0.0.1:0")?;
    let server = receiver.local_addr()?;
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    receiver.set_read_timeout(Some(Duration::from_millis(200)))?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while receiver.recv(&mut buf).is_ok() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let sender = UdpSocket::bind("127.0.0.1:0")?;

    println!("{:<52}{:>14}", "figure", "value");
    for format in [
        ContentFormat::Text,
        ContentFormat::Tlv,
        ContentFormat::SenmlJson,
        ContentFormat::SenmlCbor,
        ContentFormat::LwM2mCbor,
    ] {
        let now = Instant::now();
        let mut e = engine(server, now);
        observe(&mut e, server, now, format);
        e.set_value(MEMORY_FREE, ResourceValue::Single(Value::Integer(123_456)))
            .expect("set");
        e.handle_timeout(now);
        let t = e.poll_transmit().expect("a notification");
        println!(
            "{:<52}{:>8} bytes",
            format!("one notification of /3/0/10, {format:?}"),
            t.data.len() + 8 + 20
        );
    }

    let now = Instant::now();
    let mut e = engine(server, now);
    observe(&mut e, server, now, ContentFormat::SenmlCbor);
    let before = received.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut value = 0i64;
    while start.elapsed() < Duration::from_secs(3) {
        for _ in 0..1000 {
            value += 1;
            e.set_value(MEMORY_FREE, ResourceValue::Single(Value::Integer(value)))
                .expect("set");
            e.handle_timeout(Instant::now());
            while let Some(t) = e.poll_transmit() {
                sender.send_to(&t.data, t.peer)?;
                sent += 1;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let got = received.load(Ordering::Relaxed) - before;
    println!(
        "{:<52}{:>8.0} /s",
        "notifications, SenML CBOR, UDP loopback, one core",
        sent as f64 / elapsed
    );
    println!(
        "{:<52}{:>8.1} %",
        "  of them received by the server socket",
        100.0 * got as f64 / sent.max(1) as f64
    );
    Ok(())
}
