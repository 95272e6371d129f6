//! Engine simulations: a scripted LwM2M server on a simulated network with virtual time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};

use super::*;
use crate::coap::CoapParams;
use crate::objects::device::Device;
use crate::objects::security::Security;
use crate::objects::server::Server;

mod firmware;

const SERVER: &str = "192.0.2.1:5683";

struct Sim {
    engine: Engine,
    now: Instant,
    server: SocketAddr,
    next_mid: u16,
}

fn clock() -> i64 {
    1_700_000_000
}

fn packet(code: MessageClass, ty: MessageType, mid: u16, token: &[u8]) -> Packet {
    let mut p = Packet::new();
    p.header.code = code;
    p.header.set_type(ty);
    p.header.message_id = mid;
    p.set_token(token.to_vec());
    p
}

fn path_of(p: &Packet) -> String {
    string_options(p, CoapOption::UriPath).unwrap().join("/")
}

fn queries_of(p: &Packet) -> Vec<String> {
    string_options(p, CoapOption::UriQuery).unwrap()
}

impl Sim {
    fn new(lifetime: u32) -> Sim {
        Sim::with(lifetime, 1024, 65536)
    }

    fn with(lifetime: u32, block_size: usize, max_upload: usize) -> Sim {
        Sim::build(lifetime, block_size, max_upload, Vec::new())
    }

    fn build(lifetime: u32, block_size: usize, max_upload: usize, send: Vec<SendSpec>) -> Sim {
        Sim::make(lifetime, block_size, max_upload, send, "U")
    }

    /// A Sim whose engine also has `extra` objects.
    fn with_objects(
        lifetime: u32,
        block_size: usize,
        max_upload: usize,
        send: Vec<SendSpec>,
        extra: Vec<Box<dyn Object>>,
    ) -> Sim {
        Sim::make_with(lifetime, block_size, max_upload, send, "U", extra)
    }

    fn make(
        lifetime: u32,
        block_size: usize,
        max_upload: usize,
        send: Vec<SendSpec>,
        binding: &str,
    ) -> Sim {
        Sim::make_with(lifetime, block_size, max_upload, send, binding, Vec::new())
    }

    fn make_with(
        lifetime: u32,
        block_size: usize,
        max_upload: usize,
        send: Vec<SendSpec>,
        binding: &str,
        extra: Vec<Box<dyn Object>>,
    ) -> Sim {
        let mut sim = Sim::unstarted(lifetime, block_size, max_upload, send, binding, extra);
        sim.engine.handle_timeout(sim.now);
        sim
    }

    /// A Sim whose engine has not been given time yet (nothing sent).
    fn unstarted(
        lifetime: u32,
        block_size: usize,
        max_upload: usize,
        send: Vec<SendSpec>,
        binding: &str,
        extra: Vec<Box<dyn Object>>,
    ) -> Sim {
        let now = Instant::now();
        let server: SocketAddr = SERVER.parse().unwrap();
        let mut security = Security::new();
        security.add_nosec_account(0, "coap://192.0.2.1", 1);
        let mut srv = Server::new();
        srv.add_account(0, 1, lifetime, binding);
        let device = Device::new(clock, true);
        let config = EngineConfig {
            endpoint: "sim-ep".into(),
            preferred_format: ContentFormat::Tlv,
            coap: CoapParams::default(),
            block_size,
            max_upload,
            servers: vec![ServerSpec {
                short_server_id: 1,
                addr: server,
                uri: "coap://192.0.2.1".into(),
            }],
            send,
            wall_clock: clock,
            limits: Default::default(),
            resolve: super::bootstrap::resolve_literal,
        };
        let mut objects: Vec<Box<dyn Object>> =
            vec![Box::new(security), Box::new(srv), Box::new(device)];
        objects.extend(extra);
        let mut engine = Engine::new(config, objects, 7, now);
        engine
            .set_value(
                Path::resource(3, 0, 0),
                ResourceValue::Single(Value::String("ACME".into())),
            )
            .unwrap();
        Sim {
            engine,
            now,
            server,
            next_mid: 100,
        }
    }

    /// Advances virtual time to the engine's next deadline, if it is before `limit`.
    fn run_until_transmit(&mut self, limit: Duration) -> Option<Packet> {
        let end = self.now + limit;
        loop {
            if let Some(t) = self.engine.poll_transmit() {
                assert_eq!(t.peer, self.server);
                return Some(Packet::from_bytes(&t.data).unwrap());
            }
            match self.engine.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.engine.handle_timeout(self.now);
                }
                _ => return None,
            }
        }
    }

    /// Advances virtual time to the next deadline; returns what went out then.
    fn step(&mut self) -> Vec<Packet> {
        let t = self.engine.poll_timeout().expect("a deadline");
        self.now = self.now.max(t);
        self.engine.handle_timeout(self.now);
        std::iter::from_fn(|| self.engine.poll_transmit())
            .map(|t| Packet::from_bytes(&t.data).unwrap())
            .collect()
    }

    fn sent(&mut self) -> Packet {
        self.run_until_transmit(Duration::ZERO).expect("a datagram")
    }

    fn deliver(&mut self, p: &Packet) {
        let bytes = p.to_bytes().unwrap();
        self.engine.handle_datagram(self.now, self.server, &bytes);
    }

    /// Answers a request of the engine with a piggybacked response.
    fn answer(&mut self, req: &Packet, code: ResponseType, location: &[&str]) {
        let mut resp = packet(
            MessageClass::Response(code),
            MessageType::Acknowledgement,
            req.header.message_id,
            req.get_token(),
        );
        add_string_options(
            &mut resp,
            CoapOption::LocationPath,
            location.iter().copied(),
        );
        self.deliver(&resp);
    }

    fn register(&mut self) -> Packet {
        let reg = self.sent();
        assert_eq!(path_of(&reg), "rd");
        self.answer(&reg, ResponseType::Created, &["rd", "abc"]);
        reg
    }

    /// Sends a DM request as the server and returns the engine's response.
    fn request(
        &mut self,
        method: RequestType,
        path: &str,
        build: impl FnOnce(&mut Packet),
    ) -> Packet {
        self.next_mid = self.next_mid.wrapping_add(1);
        let mut req = packet(
            MessageClass::Request(method),
            MessageType::Confirmable,
            self.next_mid,
            &[1, 2, 3, 4],
        );
        add_string_options(
            &mut req,
            CoapOption::UriPath,
            path.split('/').filter(|s| !s.is_empty()),
        );
        build(&mut req);
        self.deliver(&req);
        let resp = self.sent();
        assert_eq!(
            resp.header.get_type(),
            MessageType::Acknowledgement,
            "{resp:?}"
        );
        assert_eq!(resp.header.message_id, req.header.message_id);
        assert_eq!(resp.get_token(), req.get_token());
        resp
    }
}

fn code(p: &Packet) -> ResponseType {
    match p.header.code {
        MessageClass::Response(r) => r,
        other => panic!("not a response: {other:?}"),
    }
}

#[test]
fn registers_with_object_list() {
    let mut sim = Sim::new(300);
    let reg = sim.sent();
    assert_eq!(reg.header.code, MessageClass::Request(RequestType::Post));
    assert_eq!(reg.header.get_type(), MessageType::Confirmable);
    assert_eq!(path_of(&reg), "rd");
    assert_eq!(
        queries_of(&reg),
        ["ep=sim-ep", "lt=300", "lwm2m=1.1", "b=U"]
    );
    assert_eq!(uint_option(&reg, CoapOption::ContentFormat), Ok(Some(40)));
    assert_eq!(
        String::from_utf8(reg.payload.clone()).unwrap(),
        "</>;rt=\"oma.lwm2m\";ct=\"0 42 110 112 11542 11544\",</1>;ver=1.1,</1/0>,</3>;ver=1.1,</3/0>"
    );
    sim.answer(&reg, ResponseType::Created, &["rd", "abc"]);
    assert_eq!(
        sim.engine.poll_event(),
        Some(Event::Registered {
            short_server_id: 1,
            location: "rd/abc".into()
        })
    );
    assert_eq!(sim.engine.registrations(), [(1, "coap://192.0.2.1", true)]);
}

#[test]
fn register_retransmits_then_backs_off() {
    let mut sim = Sim::new(300);
    let first = sim.sent();
    let start = sim.now;
    let mut times = Vec::new();
    for _ in 0..4 {
        let again = sim
            .run_until_transmit(Duration::from_secs(100))
            .expect("retransmission");
        assert_eq!(again.header.message_id, first.header.message_id);
        times.push(sim.now - start);
    }
    // ACK_TIMEOUT 2 s with a random factor of up to 1.5, doubling each time.
    let t0 = times[0].as_secs_f64();
    assert!((2.0..=3.0).contains(&t0), "{times:?}");
    for (n, t) in times.iter().enumerate() {
        let expected = t0 * ((1u32 << (n + 1)) - 1) as f64;
        assert!((t.as_secs_f64() - expected).abs() < 0.01, "{times:?}");
    }
    // After MAX_RETRANSMIT the registration fails and is retried after a back-off.
    let retry = sim
        .run_until_transmit(Duration::from_secs(200))
        .expect("a new Register");
    assert_ne!(retry.header.message_id, first.header.message_id);
    assert_eq!(path_of(&retry), "rd");
    let elapsed = (sim.now - start).as_secs_f64();
    assert!(
        elapsed >= t0 * 31.0 + 30.0 - 0.01,
        "retried after {elapsed}"
    );
    assert!(matches!(
        sim.engine.poll_event(),
        Some(Event::RegistrationFailed { .. })
    ));
}

#[test]
fn late_response_after_giving_up_is_ignored() {
    let mut sim = Sim::new(300);
    let reg = sim.sent();
    for _ in 0..4 {
        sim.run_until_transmit(Duration::from_secs(100)).unwrap();
    }
    // The next Register goes out after the back-off; an answer to the old one must not register us.
    let next = sim
        .run_until_transmit(Duration::from_secs(200))
        .expect("a new Register");
    assert_ne!(next.header.message_id, reg.header.message_id);
    sim.answer(&reg, ResponseType::Created, &["rd", "old"]);
    assert_eq!(sim.engine.registrations(), [(1, "coap://192.0.2.1", false)]);
}

#[test]
fn update_before_lifetime_expires() {
    let mut sim = Sim::new(20);
    sim.register();
    // A 20 s lifetime cannot wait for MAX_TRANSMIT_WAIT (93 s): update at half of it.
    let start = sim.now;
    let upd = sim
        .run_until_transmit(Duration::from_secs(30))
        .expect("an Update");
    assert_eq!(sim.now - start, Duration::from_secs(10));
    assert_eq!(path_of(&upd), "rd/abc");
    assert!(
        queries_of(&upd).is_empty(),
        "nothing changed: {:?}",
        queries_of(&upd)
    );
    assert!(upd.payload.is_empty());
    sim.answer(&upd, ResponseType::Changed, &[]);

    let mut sim = Sim::new(86400);
    sim.register();
    let start = sim.now;
    sim.run_until_transmit(Duration::from_secs(90000))
        .expect("an Update");
    assert_eq!(
        sim.now - start,
        Duration::from_secs(86400) - CoapParams::default().max_transmit_wait()
    );
}

#[test]
fn update_refused_with_not_found_registers_again() {
    let mut sim = Sim::new(20);
    sim.register();
    let upd = sim.run_until_transmit(Duration::from_secs(30)).unwrap();
    sim.answer(&upd, ResponseType::NotFound, &[]);
    let reg = sim.sent();
    assert_eq!(path_of(&reg), "rd");
    assert!(queries_of(&reg).contains(&"ep=sim-ep".to_string()));
}

#[test]
fn lifetime_write_sends_update_with_only_lt() {
    let mut sim = Sim::new(300);
    sim.register();
    let resp = sim.request(RequestType::Put, "/1/0/1", |p| {
        p.add_option(CoapOption::ContentFormat, encode_uint(0));
        p.payload = b"120".to_vec();
    });
    assert_eq!(code(&resp), ResponseType::Changed);
    let upd = sim.sent();
    assert_eq!(path_of(&upd), "rd/abc");
    assert_eq!(queries_of(&upd), ["lt=120"]);
    assert!(upd.payload.is_empty());
}

#[test]
fn duplicate_execute_is_applied_once() {
    let mut sim = Sim::new(300);
    sim.register();
    let mut req = packet(
        MessageClass::Request(RequestType::Post),
        MessageType::Confirmable,
        555,
        &[9],
    );
    add_string_options(&mut req, CoapOption::UriPath, ["3", "0", "4"]);
    sim.deliver(&req);
    let first = sim.sent();
    sim.deliver(&req);
    let second = sim.sent();
    assert_eq!(first.to_bytes().unwrap(), second.to_bytes().unwrap());
    assert_eq!(sim.engine.poll_action(), Some(Action::Reboot));
    assert_eq!(sim.engine.poll_action(), None);
}

#[test]
fn registration_update_trigger() {
    let mut sim = Sim::new(300);
    sim.register();
    let resp = sim.request(RequestType::Post, "/1/0/8", |_| {});
    assert_eq!(code(&resp), ResponseType::Changed);
    let upd = sim.sent();
    assert_eq!(path_of(&upd), "rd/abc");
}

#[test]
fn dm_codes() {
    let mut sim = Sim::new(300);
    sim.register();
    let text = |p: &mut Packet| {
        p.add_option(CoapOption::ContentFormat, encode_uint(0));
        p.payload = b"x".to_vec();
    };
    type Case = (
        RequestType,
        &'static str,
        Box<dyn Fn(&mut Packet)>,
        ResponseType,
    );
    let cases: Vec<Case> = vec![
        (
            RequestType::Get,
            "/3/0/0",
            Box::new(|_| {}),
            ResponseType::Content,
        ),
        (
            RequestType::Get,
            "/3/0/99",
            Box::new(|_| {}),
            ResponseType::NotFound,
        ),
        (
            RequestType::Get,
            "/99",
            Box::new(|_| {}),
            ResponseType::NotFound,
        ),
        (
            RequestType::Get,
            "/3/7",
            Box::new(|_| {}),
            ResponseType::NotFound,
        ),
        (
            RequestType::Get,
            "/3/0/4",
            Box::new(|_| {}),
            ResponseType::MethodNotAllowed,
        ),
        (
            RequestType::Get,
            "/0",
            Box::new(|_| {}),
            ResponseType::Unauthorized,
        ),
        (
            RequestType::Get,
            "/3/0/0",
            Box::new(|p| p.add_option(CoapOption::Accept, encode_uint(9999))),
            ResponseType::NotAcceptable,
        ),
        (
            RequestType::Get,
            "/3/0",
            Box::new(|p| p.add_option(CoapOption::Accept, encode_uint(0))),
            ResponseType::NotAcceptable,
        ),
        (
            RequestType::Put,
            "/3/0/0",
            Box::new(text),
            ResponseType::MethodNotAllowed,
        ),
        (
            RequestType::Put,
            "/3/0/15",
            Box::new(|p| p.payload = b"Europe/Paris".to_vec()),
            ResponseType::UnsupportedContentFormat,
        ),
        (
            RequestType::Put,
            "/1/0/1",
            Box::new(text),
            ResponseType::BadRequest,
        ),
        (
            RequestType::Post,
            "/3/0/0",
            Box::new(|_| {}),
            ResponseType::MethodNotAllowed,
        ),
        (
            RequestType::Post,
            "/3/0/4",
            Box::new(|p| p.payload = b"bad args".to_vec()),
            ResponseType::BadRequest,
        ),
        (
            RequestType::Post,
            "/3",
            Box::new(text),
            ResponseType::MethodNotAllowed,
        ),
        (
            RequestType::Delete,
            "/3/0",
            Box::new(|_| {}),
            ResponseType::MethodNotAllowed,
        ),
        (
            RequestType::Delete,
            "/3/5",
            Box::new(|_| {}),
            ResponseType::NotFound,
        ),
        (
            RequestType::Get,
            "/3/0/0/0/0",
            Box::new(|_| {}),
            ResponseType::NotFound,
        ),
    ];
    for (method, path, build, expected) in cases {
        let resp = sim.request(method, path, build);
        assert_eq!(code(&resp), expected, "{method:?} {path}");
    }
    let resp = sim.request(RequestType::Get, "/3/0/0", |_| {});
    assert_eq!(resp.payload, b"ACME");
    assert_eq!(uint_option(&resp, CoapOption::ContentFormat), Ok(Some(0)));
    let resp = sim.request(RequestType::Get, "/1", |p| {
        p.add_option(CoapOption::Accept, encode_uint(40))
    });
    assert_eq!(code(&resp), ResponseType::Content);
    let links = String::from_utf8(resp.payload).unwrap();
    assert!(
        links.starts_with("</1>;ver=1.1,</1/0>,</1/0/0>,</1/0/1>"),
        "{links}"
    );
}

#[test]
fn large_read_goes_block_wise() {
    let mut sim = Sim::with(300, 16, 65536);
    sim.register();
    let whole = crate::codec::encode(
        ContentFormat::Tlv,
        &Path::instance(3, 0),
        &sim.engine.read(&Path::instance(3, 0)).unwrap(),
    )
    .unwrap();
    assert!(whole.len() > 16, "needs several blocks");
    let mut got = Vec::new();
    for num in 0u32.. {
        let resp = sim.request(RequestType::Get, "/3/0", |p| {
            if num > 0 {
                p.add_option(
                    CoapOption::Block2,
                    BlockOption {
                        num,
                        more: false,
                        szx: 0,
                    }
                    .encode(),
                );
            }
        });
        assert_eq!(code(&resp), ResponseType::Content);
        let b = BlockOption::parse(resp.get_first_option(CoapOption::Block2).unwrap()).unwrap();
        assert_eq!((b.num, b.szx), (num, 0));
        got.extend_from_slice(&resp.payload);
        if !b.more {
            break;
        }
        assert_eq!(resp.payload.len(), 16);
    }
    assert_eq!(got, whole);
}

#[test]
fn block1_upload_rules() {
    let mut sim = Sim::with(300, 1024, 32);
    sim.register();
    let block = |num: u32, more: bool, data: &'static [u8]| {
        move |p: &mut Packet| {
            p.add_option(CoapOption::ContentFormat, encode_uint(0));
            p.add_option(
                CoapOption::Block1,
                BlockOption { num, more, szx: 0 }.encode(),
            );
            p.payload = data.to_vec();
        }
    };
    // In order: 2.31 Continue, then the write is applied.
    let resp = sim.request(
        RequestType::Put,
        "/3/0/15",
        block(0, true, b"America/Argentin"),
    );
    assert_eq!(code(&resp), ResponseType::Continue);
    let resp = sim.request(RequestType::Put, "/3/0/15", block(1, false, b"a/Cordoba"));
    assert_eq!(code(&resp), ResponseType::Changed);
    let records = sim.engine.read(&Path::resource(3, 0, 15)).unwrap();
    assert_eq!(
        records[0].value,
        Value::String("America/Argentina/Cordoba".into())
    );
    // A block out of order: 4.08.
    let resp = sim.request(
        RequestType::Put,
        "/3/0/15",
        block(3, true, b"0123456789abcdef"),
    );
    assert_eq!(code(&resp), ResponseType::RequestEntityIncomplete);
    // More than max_upload: 4.13 with Size1.
    sim.request(
        RequestType::Put,
        "/3/0/15",
        block(0, true, b"0123456789abcdef"),
    );
    sim.request(
        RequestType::Put,
        "/3/0/15",
        block(1, true, b"0123456789abcdef"),
    );
    let resp = sim.request(
        RequestType::Put,
        "/3/0/15",
        block(2, true, b"0123456789abcdef"),
    );
    assert_eq!(code(&resp), ResponseType::RequestEntityTooLarge);
    assert_eq!(uint_option(&resp, CoapOption::Size1), Ok(Some(32)));
}

#[test]
fn requests_from_strangers_are_refused() {
    let mut sim = Sim::new(300);
    sim.register();
    let mut req = packet(
        MessageClass::Request(RequestType::Get),
        MessageType::Confirmable,
        77,
        &[1],
    );
    add_string_options(&mut req, CoapOption::UriPath, ["3", "0"]);
    sim.engine.handle_datagram(
        sim.now,
        "198.51.100.7:5683".parse().unwrap(),
        &req.to_bytes().unwrap(),
    );
    let t = sim.engine.poll_transmit().unwrap();
    assert_eq!(t.peer.to_string(), "198.51.100.7:5683");
    assert_eq!(
        code(&Packet::from_bytes(&t.data).unwrap()),
        ResponseType::Unauthorized
    );
}

#[test]
fn shutdown_deregisters() {
    let mut sim = Sim::new(300);
    sim.register();
    sim.engine.shutdown(sim.now);
    let del = sim.sent();
    assert_eq!(del.header.code, MessageClass::Request(RequestType::Delete));
    assert_eq!(path_of(&del), "rd/abc");
    assert!(!sim.engine.is_stopped());
    sim.answer(&del, ResponseType::Deleted, &[]);
    assert!(sim.engine.is_stopped());
}

#[test]
fn shutdown_during_register_deregisters_once_registered() {
    let mut sim = Sim::new(300);
    let reg = sim.sent();
    sim.engine.shutdown(sim.now);
    assert!(!sim.engine.is_stopped());
    sim.answer(&reg, ResponseType::Created, &["rd", "late"]);
    let del = sim.sent();
    assert_eq!(del.header.code, MessageClass::Request(RequestType::Delete));
    assert_eq!(path_of(&del), "rd/late");
    sim.answer(&del, ResponseType::Deleted, &[]);
    assert!(sim.engine.is_stopped());

    // A Register that fails during shutdown is not retried.
    let mut sim = Sim::new(300);
    let reg = sim.sent();
    sim.engine.shutdown(sim.now);
    sim.answer(&reg, ResponseType::BadRequest, &[]);
    assert!(sim.engine.is_stopped());
    assert!(sim.run_until_transmit(Duration::from_secs(3600)).is_none());
}

#[test]
fn garbage_never_panics() {
    let mut sim = Sim::new(300);
    sim.register();
    let mut seed = 0x1234_5678_9abc_def0u64;
    for len in 0..2000usize {
        let mut data = Vec::with_capacity(len % 80);
        for _ in 0..len % 80 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            data.push(seed as u8);
        }
        if len % 3 == 0 && data.len() > 4 {
            data[0] = 0x40 | (data[0] & 0x0f); // version 1, CON: reach the option parser
            data[1] = 0x01 + (data[1] % 4); // GET..DELETE
        }
        sim.engine.handle_datagram(sim.now, sim.server, &data);
        while sim.engine.poll_transmit().is_some() {}
    }
}

fn observe_option(p: &Packet) -> Option<u32> {
    uint_option(p, CoapOption::Observe).unwrap()
}

impl Sim {
    fn set(&mut self, path: Path, value: Value) {
        self.engine
            .set_value(path, ResourceValue::Single(value))
            .unwrap();
        self.engine.handle_timeout(self.now);
    }

    fn observe(&mut self, path: &str, token: &[u8]) -> Packet {
        self.next_mid = self.next_mid.wrapping_add(1);
        let mut req = packet(
            MessageClass::Request(RequestType::Get),
            MessageType::Confirmable,
            self.next_mid,
            token,
        );
        req.add_option(CoapOption::Observe, encode_uint(0));
        add_string_options(
            &mut req,
            CoapOption::UriPath,
            path.split('/').filter(|s| !s.is_empty()),
        );
        self.deliver(&req);
        self.sent()
    }

    fn write_attributes(&mut self, path: &str, queries: &[&str]) -> ResponseType {
        let resp = self.request(RequestType::Put, path, |p| {
            add_string_options(p, CoapOption::UriQuery, queries.iter().copied())
        });
        code(&resp)
    }
}

const TZ: Path = Path::resource(3, 0, 15);

#[test]
fn observe_notifies_changes_with_increasing_sequence() {
    let mut sim = Sim::new(300);
    sim.register();
    sim.set(TZ, Value::String("UTC".into()));
    let resp = sim.observe("/3/0/15", &[7, 7]);
    assert_eq!(code(&resp), ResponseType::Content);
    assert_eq!(observe_option(&resp), Some(0));
    assert_eq!(resp.payload, b"UTC");
    assert!(sim.engine.poll_transmit().is_none(), "nothing changed yet");

    sim.set(TZ, Value::String("Europe/Paris".into()));
    let n = sim.sent();
    assert_eq!(n.get_token(), [7, 7]);
    assert_eq!(n.header.get_type(), MessageType::NonConfirmable);
    assert_eq!(observe_option(&n), Some(1));
    assert_eq!(n.payload, b"Europe/Paris");
    assert_eq!(uint_option(&n, CoapOption::ContentFormat), Ok(Some(0)));

    // The same value again is no change.
    sim.set(TZ, Value::String("Europe/Paris".into()));
    assert!(sim.engine.poll_transmit().is_none());
    sim.set(TZ, Value::String("Asia/Tokyo".into()));
    assert_eq!(observe_option(&sim.sent()), Some(2));
    // Nothing is due: no deadline from the observation.
    assert_eq!(sim.engine.observation_deadline(), None);
}

#[test]
fn pmin_holds_back_and_pmax_forces_notifications() {
    let mut sim = Sim::new(3000);
    sim.register();
    sim.set(TZ, Value::String("UTC".into()));
    assert_eq!(
        sim.write_attributes("/3/0/15", &["pmin=10", "pmax=60"]),
        ResponseType::Changed
    );
    let start = sim.now;
    sim.observe("/3/0/15", &[1]);
    sim.now += Duration::from_secs(1);
    sim.set(TZ, Value::String("Europe/Paris".into()));
    assert!(sim.engine.poll_transmit().is_none(), "before pmin");
    let n = sim
        .run_until_transmit(Duration::from_secs(100))
        .expect("notification at pmin");
    assert_eq!(sim.now - start, Duration::from_secs(10));
    assert_eq!(n.payload, b"Europe/Paris");
    // Unchanged: reported again at pmax.
    let n = sim
        .run_until_transmit(Duration::from_secs(100))
        .expect("notification at pmax");
    assert_eq!(sim.now - start, Duration::from_secs(70));
    assert_eq!(n.payload, b"Europe/Paris");
    assert_eq!(observe_option(&n), Some(2));
}

#[test]
fn epmin_delays_evaluation_and_epmax_bounds_it() {
    let mut sim = Sim::new(3000);
    sim.register();
    sim.set(TZ, Value::String("UTC".into()));
    assert_eq!(
        sim.write_attributes("/3/0/15", &["pmin=5", "epmin=20", "epmax=50"]),
        ResponseType::Changed
    );
    let start = sim.now;
    sim.observe("/3/0/15", &[1]);
    sim.now += Duration::from_secs(1);
    sim.set(TZ, Value::String("Europe/Paris".into()));
    let n = sim
        .run_until_transmit(Duration::from_secs(100))
        .expect("notification at the next evaluation");
    assert_eq!(sim.now - start, Duration::from_secs(20), "epmin, not pmin");
    assert_eq!(n.payload, b"Europe/Paris");
    // Nothing changes: the engine still evaluates at epmax (a wake-up), and sends
    // nothing because the value is what the server has.
    assert_eq!(
        sim.engine.observation_deadline(),
        Some(start + Duration::from_secs(70))
    );
    assert!(sim.run_until_transmit(Duration::from_secs(60)).is_none());
}

#[test]
fn thresholds_filter_changes() {
    let mut sim = Sim::new(3000);
    sim.register();
    let mem = Path::resource(3, 0, 10);
    sim.set(mem, Value::Integer(500));
    assert_eq!(
        sim.write_attributes("/3/0/10", &["gt=1000", "st=300"]),
        ResponseType::Changed
    );
    sim.observe("/3/0/10", &[2]);
    sim.set(mem, Value::Integer(600));
    assert!(
        sim.engine.poll_transmit().is_none(),
        "small step, no crossing"
    );
    sim.set(mem, Value::Integer(1100));
    assert_eq!(sim.sent().payload, b"1100", "gt crossed");
    sim.set(mem, Value::Integer(1200));
    assert!(sim.engine.poll_transmit().is_none());
    sim.set(mem, Value::Integer(1450));
    assert_eq!(
        sim.sent().payload,
        b"1450",
        "step of st since the last notification"
    );
}

#[test]
fn cancel_by_get_and_by_reset() {
    let mut sim = Sim::new(300);
    sim.register();
    sim.set(TZ, Value::String("UTC".into()));
    sim.observe("/3/0/15", &[3]);
    let mut cancel = packet(
        MessageClass::Request(RequestType::Get),
        MessageType::Confirmable,
        999,
        &[3],
    );
    cancel.add_option(CoapOption::Observe, encode_uint(1));
    add_string_options(&mut cancel, CoapOption::UriPath, ["3", "0", "15"]);
    sim.deliver(&cancel);
    let resp = sim.sent();
    assert_eq!(code(&resp), ResponseType::Content);
    assert_eq!(observe_option(&resp), None);
    sim.set(TZ, Value::String("Europe/Oslo".into()));
    assert!(sim.engine.poll_transmit().is_none(), "cancelled");

    sim.observe("/3/0/15", &[4]);
    sim.set(TZ, Value::String("Europe/Rome".into()));
    let n = sim.sent();
    let rst = packet(
        MessageClass::Empty,
        MessageType::Reset,
        n.header.message_id,
        &[],
    );
    sim.deliver(&rst);
    sim.set(TZ, Value::String("Europe/Riga".into()));
    assert!(sim.engine.poll_transmit().is_none(), "RST cancels");
}

#[test]
fn registering_again_ends_observations() {
    let mut sim = Sim::new(20);
    sim.register();
    sim.set(TZ, Value::String("UTC".into()));
    sim.observe("/3/0/15", &[5]);
    let upd = sim.run_until_transmit(Duration::from_secs(30)).unwrap();
    sim.answer(&upd, ResponseType::NotFound, &[]);
    let reg = sim.sent();
    sim.answer(&reg, ResponseType::Created, &["rd", "new"]);
    sim.set(TZ, Value::String("Europe/Lisbon".into()));
    assert!(sim.engine.poll_transmit().is_none());
}

#[test]
fn write_attributes_validation_and_discover() {
    let mut sim = Sim::new(300);
    sim.register();
    assert_eq!(
        sim.write_attributes("/3/0/15", &["pmin=60", "pmax=10"]),
        ResponseType::BadRequest
    );
    assert_eq!(
        sim.write_attributes("/3/0/15", &["gt=3"]),
        ResponseType::BadRequest,
        "not numeric"
    );
    assert_eq!(
        sim.write_attributes("/3/0", &["st=3"]),
        ResponseType::BadRequest,
        "thresholds need a resource"
    );
    assert_eq!(
        sim.write_attributes("/3/0/15", &["bogus=1"]),
        ResponseType::BadRequest
    );
    assert_eq!(
        sim.write_attributes("/3/9", &["pmin=1"]),
        ResponseType::NotFound
    );
    assert_eq!(
        sim.write_attributes("/3/0/4", &["pmin=1"]),
        ResponseType::MethodNotAllowed
    );
    sim.set(Path::resource(3, 0, 10), Value::Integer(1000));
    assert_eq!(
        sim.write_attributes("/3", &["pmin=5"]),
        ResponseType::Changed
    );
    assert_eq!(
        sim.write_attributes("/3/0/10", &["pmax=50", "gt=7.5"]),
        ResponseType::Changed
    );
    let resp = sim.request(RequestType::Get, "/3", |p| {
        p.add_option(CoapOption::Accept, encode_uint(40))
    });
    let links = String::from_utf8(resp.payload).unwrap();
    assert!(links.starts_with("</3>;ver=1.1;pmin=5,</3/0>,"), "{links}");
    assert!(links.contains("</3/0/10>;pmax=50;gt=7.5,"), "{links}");
}

#[test]
fn read_and_write_composite() {
    let mut sim = Sim::new(300);
    sim.register();
    sim.set(TZ, Value::String("UTC".into()));
    let senml_json = |p: &mut Packet, body: &[u8]| {
        p.add_option(CoapOption::ContentFormat, encode_uint(110));
        p.payload = body.to_vec();
    };
    let resp = sim.request(RequestType::Fetch, "/", |p| {
        senml_json(p, br#"[{"n":"/3/0/0"},{"n":"/1/0/1"},{"n":"/3/0/99"}]"#)
    });
    assert_eq!(code(&resp), ResponseType::Content);
    assert_eq!(uint_option(&resp, CoapOption::ContentFormat), Ok(Some(110)));
    let body: serde_json::Value = serde_json::from_slice(&resp.payload).unwrap();
    let names: Vec<String> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}{}",
                r["bn"].as_str().unwrap_or(""),
                r["n"].as_str().unwrap_or("")
            )
        })
        .collect();
    // bn carries over to the following records (RFC 8428 §4.6).
    assert!(
        names[0].ends_with("/1/0/1") && names[1].ends_with("/3/0/0"),
        "{names:?}"
    );
    assert_eq!(body[0]["v"], 300);
    assert_eq!(body[1]["vs"], "ACME");

    let resp = sim.request(RequestType::Fetch, "/", |p| {
        senml_json(p, br#"[{"n":"/3/0/99"}]"#)
    });
    assert_eq!(code(&resp), ResponseType::NotFound);
    let resp = sim.request(RequestType::Fetch, "/", |p| {
        senml_json(p, br#"[{"n":"/0/0"}]"#)
    });
    assert_eq!(code(&resp), ResponseType::Unauthorized);
    let resp = sim.request(RequestType::Fetch, "/", |p| {
        p.add_option(CoapOption::ContentFormat, encode_uint(11542));
    });
    assert_eq!(code(&resp), ResponseType::UnsupportedContentFormat);

    let resp = sim.request(RequestType::IPatch, "/", |p| {
        senml_json(
            p,
            br#"[{"n":"/1/0/1","v":120},{"n":"/3/0/15","vs":"Europe/Paris"}]"#,
        )
    });
    assert_eq!(code(&resp), ResponseType::Changed);
    assert_eq!(
        sim.engine.read(&TZ).unwrap()[0].value,
        Value::String("Europe/Paris".into())
    );
    assert_eq!(
        sim.engine.poll_action(),
        Some(Action::SetTimezone("Europe/Paris".into()))
    );
    let upd = sim.sent();
    assert_eq!(path_of(&upd), "rd/abc");
    assert_eq!(queries_of(&upd), ["lt=120"]);
    // All or nothing: a read-only resource in the list refuses the whole write.
    let resp = sim.request(RequestType::IPatch, "/", |p| {
        senml_json(p, br#"[{"n":"/1/0/1","v":60},{"n":"/3/0/0","vs":"x"}]"#)
    });
    assert_eq!(code(&resp), ResponseType::MethodNotAllowed);
    assert_eq!(
        sim.engine.read(&Path::resource(1, 0, 1)).unwrap()[0].value,
        Value::Integer(120)
    );
}

#[test]
fn scheduled_send_posts_timestamped_senml_and_honours_mute() {
    let spec = SendSpec {
        paths: vec![
            Path::resource(3, 0, 0),
            Path::resource(1, 0, 1),
            Path::resource(3, 0, 99),
        ],
        interval: Duration::from_secs(60),
        format: ContentFormat::SenmlJson,
    };
    let mut sim = Sim::build(3000, 1024, 65536, vec![spec]);
    let start = sim.now;
    sim.register();
    let dp = sim
        .run_until_transmit(Duration::from_secs(100))
        .expect("a Send");
    assert_eq!(sim.now - start, Duration::from_secs(60));
    assert_eq!(dp.header.code, MessageClass::Request(RequestType::Post));
    assert_eq!(dp.header.get_type(), MessageType::Confirmable);
    assert_eq!(path_of(&dp), "dp");
    assert_eq!(uint_option(&dp, CoapOption::ContentFormat), Ok(Some(110)));
    let body: serde_json::Value = serde_json::from_slice(&dp.payload).unwrap();
    assert_eq!(body[0]["bt"], 1_700_000_000.0);
    assert_eq!(body[0]["n"], "/1/0/1");
    assert_eq!(body[0]["v"], 3000);
    assert_eq!(body[1]["n"], "/3/0/0");
    assert_eq!(body[1]["vs"], "ACME");
    assert_eq!(
        body.as_array().unwrap().len(),
        2,
        "the missing path is left out"
    );
    sim.answer(&dp, ResponseType::Changed, &[]);
    assert_eq!(sim.engine.registrations(), [(1, "coap://192.0.2.1", true)]);

    // Mute Send (/1/0/23): the schedule runs but nothing goes out.
    let resp = sim.request(RequestType::Put, "/1/0/23", |p| {
        p.add_option(CoapOption::ContentFormat, encode_uint(0));
        p.payload = b"1".to_vec();
    });
    assert_eq!(code(&resp), ResponseType::Changed);
    let next = sim.run_until_transmit(Duration::from_secs(100));
    assert!(next.is_none_or(|p| path_of(&p) != "dp"), "muted");
}

#[test]
fn observe_composite() {
    let mut sim = Sim::new(300);
    sim.register();
    sim.set(TZ, Value::String("UTC".into()));
    sim.next_mid += 1;
    let mut req = packet(
        MessageClass::Request(RequestType::Fetch),
        MessageType::Confirmable,
        sim.next_mid,
        &[8, 8],
    );
    req.add_option(CoapOption::Observe, encode_uint(0));
    req.add_option(CoapOption::ContentFormat, encode_uint(110));
    req.payload = br#"[{"n":"/3/0/15"},{"n":"/1/0/1"}]"#.to_vec();
    sim.deliver(&req);
    let resp = sim.sent();
    assert_eq!(code(&resp), ResponseType::Content);
    assert_eq!(observe_option(&resp), Some(0));

    // A change under one of the paths: the whole composite goes out again.
    sim.set(TZ, Value::String("Europe/Paris".into()));
    let n = sim.sent();
    assert_eq!(n.get_token(), [8, 8]);
    assert_eq!(observe_option(&n), Some(1));
    assert_eq!(uint_option(&n, CoapOption::ContentFormat), Ok(Some(110)));
    let body: serde_json::Value = serde_json::from_slice(&n.payload).unwrap();
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert_eq!(body[1]["vs"], "Europe/Paris");
    // A change elsewhere does not concern it.
    sim.set(Path::resource(3, 0, 10), Value::Integer(5));
    assert!(sim.engine.poll_transmit().is_none());
}

#[test]
fn composite_observation_follows_each_paths_attributes() {
    let mut sim = Sim::new(3000);
    sim.register();
    sim.set(TZ, Value::String("UTC".into()));
    let timing = [
        ("/3/0/15", "pmin=30"),
        ("/3/0/10", "pmin=5"),
        ("/3/0/10", "pmax=100"),
    ];
    for (path, attr) in timing {
        assert_eq!(sim.write_attributes(path, &[attr]), ResponseType::Changed);
    }
    assert_eq!(
        sim.write_attributes("/3/0/10", &["st=10"]),
        ResponseType::Changed
    );
    sim.set(Path::resource(3, 0, 10), Value::Integer(100));
    sim.next_mid += 1;
    let mut req = packet(
        MessageClass::Request(RequestType::Fetch),
        MessageType::Confirmable,
        sim.next_mid,
        &[8, 9],
    );
    req.add_option(CoapOption::Observe, encode_uint(0));
    req.add_option(CoapOption::ContentFormat, encode_uint(110));
    req.payload = br#"[{"n":"/3/0/15"},{"n":"/3/0/10"}]"#.to_vec();
    sim.deliver(&req);
    assert_eq!(code(&sim.sent()), ResponseType::Content);
    let start = sim.now;

    // /3/0/10 changes by less than its step: not worth a notification.
    sim.set(Path::resource(3, 0, 10), Value::Integer(104));
    assert!(sim.run_until_transmit(Duration::from_secs(50)).is_none());
    // By its step: reported after its own pmin (5 s), not the other path's 30 s.
    sim.now = start + Duration::from_secs(60);
    sim.engine.handle_timeout(sim.now);
    sim.set(Path::resource(3, 0, 10), Value::Integer(120));
    let n = sim.sent();
    assert_eq!(observe_option(&n), Some(1));
    // The time zone changes 1 s later: held for its pmin of 30 s.
    sim.now += Duration::from_secs(1);
    sim.set(TZ, Value::String("Europe/Paris".into()));
    let sent_at = sim.now - Duration::from_secs(1);
    let n = sim.run_until_transmit(Duration::from_secs(100)).unwrap();
    assert_eq!(sim.now - sent_at, Duration::from_secs(30));
    let body: serde_json::Value = serde_json::from_slice(&n.payload).unwrap();
    let records = body.as_array().unwrap();
    assert!(records.iter().any(|r| r["vs"] == "Europe/Paris"), "{body}");
    // Nothing changes: the earliest pmax of the paths (100 s) brings the next one.
    let last = sim.now;
    sim.run_until_transmit(Duration::from_secs(200)).unwrap();
    assert_eq!(sim.now - last, Duration::from_secs(100));
}

#[test]
fn con_and_edge_attributes() {
    let mut sim = Sim::new(3000);
    sim.register();
    let write_bool = |sim: &mut Sim, v: &'static [u8]| {
        let resp = sim.request(RequestType::Put, "/1/0/6", |p| {
            p.add_option(CoapOption::ContentFormat, encode_uint(0));
            p.payload = v.to_vec();
        });
        assert_eq!(code(&resp), ResponseType::Changed);
    };
    assert_eq!(
        sim.write_attributes("/1/0/1", &["edge=1"]),
        ResponseType::BadRequest,
        "not boolean"
    );
    assert_eq!(
        sim.write_attributes("/1/0/6", &["edge=1", "con=1"]),
        ResponseType::Changed
    );
    let links = String::from_utf8(
        sim.request(RequestType::Get, "/1/0", |p| {
            p.add_option(CoapOption::Accept, encode_uint(40))
        })
        .payload,
    )
    .unwrap();
    assert!(links.contains("</1/0/6>;edge=1;con=1"), "{links}");
    sim.observe("/1/0/6", &[6]); // currently true
    write_bool(&mut sim, b"0");
    assert!(
        sim.engine.poll_transmit().is_none(),
        "falling edge not asked for"
    );
    write_bool(&mut sim, b"1");
    let n = sim.sent();
    assert_eq!(n.payload, b"1");
    assert_eq!(n.header.get_type(), MessageType::Confirmable, "con=1");
}

/// An object of our own (`Custom`) with resource 1 bound to a backend, resource 2 free.
fn sim_with_bound_resource() -> Sim {
    use crate::objects::custom::{BoundKind, Custom};
    let xml = r#"<LWM2M><Object ObjectType="MODefinition"><Name>Gadget</Name>
      <ObjectID>33000</ObjectID><ObjectVersion>1.1</ObjectVersion>
      <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory><Resources>
      <Item ID="1"><Name>Mode</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>
        <Mandatory>Optional</Mandatory><Type>String</Type></Item>
      <Item ID="2"><Name>Note</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>
        <Mandatory>Optional</Mandatory><Type>String</Type></Item>
      <Item ID="3"><Name>Go</Name><Operations>E</Operations><MultipleInstances>Single</MultipleInstances>
        <Mandatory>Optional</Mandatory><Type></Type></Item>
      </Resources></Object></LWM2M>"#;
    let def = crate::model::ddf::parse(xml).unwrap().remove(0).leak();
    let bound = [((0, 1), BoundKind::Backend), ((0, 3), BoundKind::Backend)].into();
    let custom = Custom::new(def, bound, None);
    Sim::make_with(300, 1024, 65536, Vec::new(), "U", vec![Box::new(custom)])
}

#[test]
fn object_list_carries_the_version_of_a_loaded_object() {
    let mut sim = sim_with_bound_resource();
    let reg = sim.register();
    let list = String::from_utf8(reg.payload).unwrap();
    assert!(list.contains("</33000>;ver=1.1,</33000/0>"), "{list}");
}

#[test]
fn bound_write_is_answered_when_the_backend_is_done() {
    let mut sim = sim_with_bound_resource();
    sim.register();
    let write = |sim: &mut Sim, mid: u16, value: &str| {
        let mut req = packet(
            MessageClass::Request(RequestType::Put),
            MessageType::Confirmable,
            mid,
            &[5, mid as u8],
        );
        add_string_options(&mut req, CoapOption::UriPath, ["33000", "0", "1"]);
        req.add_option(CoapOption::ContentFormat, encode_uint(0));
        req.payload = value.as_bytes().to_vec();
        sim.deliver(&req);
        req
    };
    let req = write(&mut sim, 700, "eco");
    assert!(
        sim.engine.poll_transmit().is_none(),
        "answered before the backend"
    );
    let Some(Action::Bound(b)) = sim.engine.poll_action() else {
        panic!("no bound action")
    };
    assert_eq!(b.path, Path::resource(33000, 0, 1));
    assert_eq!(
        b.op,
        crate::model::BoundOp::Write(Value::String("eco".into()))
    );
    // A retransmission meanwhile is neither answered nor run twice.
    sim.deliver(&req);
    assert!(sim.engine.poll_transmit().is_none());
    assert_eq!(sim.engine.poll_action(), None);
    sim.engine.complete_action(sim.now, b.ticket, Ok(()));
    let resp = sim.sent();
    assert_eq!(code(&resp), ResponseType::Changed);
    assert_eq!(resp.header.message_id, 700);
    // The answer is replayed for a later duplicate.
    sim.deliver(&req);
    assert_eq!(code(&sim.sent()), ResponseType::Changed);

    write(&mut sim, 701, "turbo");
    let Some(Action::Bound(b)) = sim.engine.poll_action() else {
        panic!("no bound action")
    };
    sim.engine
        .complete_action(sim.now, b.ticket, Err(DmError::Internal("exit 1".into())));
    let resp = sim.sent();
    assert_eq!(code(&resp), ResponseType::InternalServerError);
    assert_eq!(resp.header.message_id, 701);
    // Unknown or repeated tickets change nothing.
    sim.engine.complete_action(sim.now, b.ticket, Ok(()));
    assert!(sim.engine.poll_transmit().is_none());

    // Unbound resources answer at once.
    let resp = sim.request(RequestType::Put, "/33000/0/2", |p| {
        p.add_option(CoapOption::ContentFormat, encode_uint(0));
        p.payload = b"hello".to_vec();
    });
    assert_eq!(code(&resp), ResponseType::Changed);
    assert_eq!(sim.engine.poll_action(), None);
}

#[test]
fn observed_pmin_tells_backends_how_soon_changes_are_wanted() {
    let mut sim = Sim::new(300);
    sim.register();
    sim.set(TZ, Value::String("UTC".into()));
    assert_eq!(sim.engine.observed_pmin(&TZ), None);
    assert_eq!(code(&sim.observe("/3/0", &[1])), ResponseType::Content);
    assert_eq!(sim.engine.observed_pmin(&TZ), Some(Duration::ZERO));
    assert_eq!(sim.engine.observed_pmin(&Path::resource(1, 0, 1)), None);
    assert_eq!(
        sim.write_attributes("/3/0", &["pmin=30"]),
        ResponseType::Changed
    );
    assert_eq!(sim.engine.observed_pmin(&TZ), Some(Duration::from_secs(30)));
    // The tightest of several observations counts.
    assert_eq!(
        sim.write_attributes("/3/0/15", &["pmin=5"]),
        ResponseType::Changed
    );
    assert_eq!(code(&sim.observe("/3/0/15", &[2])), ResponseType::Content);
    assert_eq!(sim.engine.observed_pmin(&TZ), Some(Duration::from_secs(5)));
}

#[test]
fn bound_action_without_an_outcome_is_answered_when_the_server_gives_up() {
    let mut sim = sim_with_bound_resource();
    sim.register();
    let mut req = packet(
        MessageClass::Request(RequestType::Post),
        MessageType::Confirmable,
        800,
        &[8],
    );
    add_string_options(&mut req, CoapOption::UriPath, ["33000", "0", "3"]);
    sim.deliver(&req);
    let Some(Action::Bound(b)) = sim.engine.poll_action() else {
        panic!("no bound action")
    };
    let ack = sim
        .run_until_transmit(Duration::from_secs(120))
        .expect("an empty ACK");
    assert_eq!(ack.header.get_type(), MessageType::Acknowledgement);
    assert_eq!(ack.header.code, MessageClass::Empty);
    let resp = sim
        .run_until_transmit(Duration::from_secs(120))
        .expect("an answer once MAX_TRANSMIT_SPAN is over");
    assert_eq!(code(&resp), ResponseType::InternalServerError);
    assert_eq!(resp.header.get_type(), MessageType::Confirmable);
    assert_eq!(resp.get_token(), [8]);
    // The late outcome changes nothing.
    sim.engine.complete_action(sim.now, b.ticket, Ok(()));
    assert!(sim.engine.poll_transmit().is_none());
}

#[test]
fn slow_bound_write_gets_an_empty_ack_then_a_separate_response() {
    // RFC 7252 §5.2.2: the request is acknowledged before the server would retransmit
    // it, and the outcome follows as a confirmable response with the request's token.
    let mut sim = sim_with_bound_resource();
    sim.register();
    let mut req = packet(
        MessageClass::Request(RequestType::Put),
        MessageType::Confirmable,
        900,
        &[9, 9],
    );
    add_string_options(&mut req, CoapOption::UriPath, ["33000", "0", "1"]);
    req.add_option(CoapOption::ContentFormat, encode_uint(0));
    req.payload = b"eco".to_vec();
    let start = sim.now;
    sim.deliver(&req);
    assert!(sim.engine.poll_transmit().is_none());
    let Some(Action::Bound(b)) = sim.engine.poll_action() else {
        panic!("no bound action")
    };
    let ack = sim.step();
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].header.get_type(), MessageType::Acknowledgement);
    assert_eq!(ack[0].header.code, MessageClass::Empty);
    assert_eq!(ack[0].header.message_id, 900);
    // Before the server's first retransmission (ACK_TIMEOUT at the earliest).
    assert!(sim.now - start < CoapParams::default().ack_timeout);
    // A retransmission that crossed the ACK gets the ACK again and runs nothing twice.
    sim.deliver(&req);
    let again = sim.sent();
    assert_eq!(again.header.code, MessageClass::Empty);
    assert_eq!(again.header.message_id, 900);
    assert_eq!(sim.engine.poll_action(), None);

    sim.now += Duration::from_secs(20);
    sim.engine.complete_action(sim.now, b.ticket, Ok(()));
    let resp = sim.sent();
    assert_eq!(resp.header.get_type(), MessageType::Confirmable);
    assert_eq!(code(&resp), ResponseType::Changed);
    assert_eq!(resp.get_token(), [9, 9]);
    assert_ne!(resp.header.message_id, 900);
    // Retransmitted until the server acknowledges it.
    let resent = sim.step();
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].header.message_id, resp.header.message_id);
    let ack = packet(
        MessageClass::Empty,
        MessageType::Acknowledgement,
        resp.header.message_id,
        &[],
    );
    sim.deliver(&ack);
    assert!(sim
        .run_until_transmit(Duration::from_secs(60))
        .is_none_or(|p| path_of(&p) == "rd/abc"));

    // A quick outcome still goes piggybacked.
    let resp = {
        let mut quick = req.clone();
        quick.header.message_id = 901;
        sim.deliver(&quick);
        let Some(Action::Bound(b)) = sim.engine.poll_action() else {
            panic!("no bound action")
        };
        sim.engine.complete_action(sim.now, b.ticket, Ok(()));
        sim.sent()
    };
    assert_eq!(resp.header.get_type(), MessageType::Acknowledgement);
    assert_eq!(resp.header.message_id, 901);
    assert_eq!(code(&resp), ResponseType::Changed);
}

/// An object of our own that a local application owns as a whole.
fn sim_with_app_object() -> Sim {
    use crate::objects::custom::Custom;
    let xml = r#"<LWM2M><Object ObjectType="MODefinition"><Name>Rooms</Name>
      <ObjectID>33010</ObjectID><MultipleInstances>Multiple</MultipleInstances>
      <Mandatory>Optional</Mandatory><Resources>
      <Item ID="0"><Name>Level</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>
        <Mandatory>Optional</Mandatory><Type>Integer</Type></Item>
      </Resources></Object></LWM2M>"#;
    let def = crate::model::ddf::parse(xml).unwrap().remove(0).leak();
    let custom = Custom::app_owned(def, None);
    Sim::make_with(300, 1024, 65536, Vec::new(), "U", vec![Box::new(custom)])
}

#[test]
fn instances_an_application_creates_and_deletes_are_announced_in_an_update() {
    let mut sim = sim_with_app_object();
    let reg = sim.register();
    let list = String::from_utf8(reg.payload).unwrap();
    assert!(list.contains("</33010>"), "{list}");
    let room = Path::instance(33010, 4);
    sim.engine.create_instance(sim.now, room).unwrap();
    let update = sim.sent();
    assert_eq!(path_of(&update), "rd/abc");
    let list = String::from_utf8(update.payload.clone()).unwrap();
    assert!(list.contains("</33010/4>"), "{list}");
    sim.answer(&update, ResponseType::Changed, &[]);
    sim.engine
        .set_value(
            Path::resource(33010, 4, 0),
            ResourceValue::Single(Value::Integer(3)),
        )
        .unwrap();
    let resp = sim.request(RequestType::Get, "/33010/4/0", |p| {
        p.add_option(CoapOption::Accept, encode_uint(0));
    });
    assert_eq!(
        (code(&resp), resp.payload.as_slice()),
        (ResponseType::Content, &b"3"[..])
    );
    // The server may not shape what the application owns.
    let resp = sim.request(RequestType::Delete, "/33010/4", |_| {});
    assert_eq!(code(&resp), ResponseType::MethodNotAllowed);
    assert!(matches!(
        sim.engine.create_instance(sim.now, room),
        Err(DmError::BadRequest(_))
    ));
    assert_eq!(
        sim.engine.create_instance(sim.now, Path::instance(3, 1)),
        Err(DmError::MethodNotAllowed)
    );

    sim.engine.delete_instance(sim.now, room).unwrap();
    let update = sim.sent();
    let list = String::from_utf8(update.payload.clone()).unwrap();
    assert!(
        !list.contains("</33010/4>") && list.contains("</33010>"),
        "{list}"
    );
    sim.answer(&update, ResponseType::Changed, &[]);
    let resp = sim.request(RequestType::Get, "/33010/4/0", |_| {});
    assert_eq!(code(&resp), ResponseType::NotFound);
}

#[test]
fn queue_mode_sleeps_and_sends_an_update_before_notifications() {
    let mut sim = Sim::make(86400, 1024, 65536, Vec::new(), "UQ");
    let reg = sim.register();
    let queries = queries_of(&reg);
    assert!(queries.contains(&"b=U".to_string()), "{queries:?}");
    assert!(queries.contains(&"Q".to_string()), "{queries:?}");
    sim.set(TZ, Value::String("UTC".into()));
    sim.observe("/3/0/15", &[5]);
    let last_exchange = sim.now;

    // Nothing to do: the client stops listening after MAX_TRANSMIT_WAIT.
    assert!(sim.step().is_empty());
    assert!(sim.engine.sessions[0].asleep);
    assert_eq!(
        sim.now - last_exchange,
        CoapParams::default().max_transmit_wait()
    );
    assert_eq!(sim.engine.poll_timeout(), sim.engine.sessions[0].update_at);
    // A request now is not heard.
    sim.next_mid += 1;
    let mut get = packet(
        MessageClass::Request(RequestType::Get),
        MessageType::Confirmable,
        sim.next_mid,
        &[9],
    );
    add_string_options(&mut get, CoapOption::UriPath, ["3", "0", "15"]);
    sim.deliver(&get);
    assert!(sim.engine.poll_transmit().is_none());

    // A change to report: an Update goes first, the notification waits for its answer.
    sim.now += Duration::from_secs(600);
    sim.set(TZ, Value::String("Europe/Paris".into()));
    let update = sim.sent();
    assert_eq!(path_of(&update), "rd/abc");
    assert!(sim.engine.poll_transmit().is_none(), "notification held");
    sim.answer(&update, ResponseType::Changed, &[]);
    let n = sim.sent();
    assert_eq!(n.get_token(), [5]);
    assert_eq!(n.payload, b"Europe/Paris");
    // Awake again: the server's queued request is served.
    sim.deliver(&get);
    let resp = sim.sent();
    assert_eq!(resp.payload, b"Europe/Paris");
}

#[test]
fn notifications_are_stored_while_offline_and_delivered_in_order() {
    for storing in [true, false] {
        let mut sim = Sim::new(86400);
        sim.register();
        sim.set(TZ, Value::String("UTC".into()));
        if !storing {
            sim.set(
                Path::resource(1, 0, server::NOTIFICATION_STORING),
                Value::Boolean(false),
            );
        }
        sim.observe("/3/0/15", &[6]);
        // The server vanishes: an Update goes unanswered to the end.
        let resp = sim.request(RequestType::Post, "/1/0/8", |_| {});
        assert_eq!(code(&resp), ResponseType::Changed);
        let update = sim.sent();
        assert_eq!(path_of(&update), "rd/abc");
        while !sim.engine.sessions[0].reconnecting {
            for p in sim.step() {
                assert_eq!(p.header.message_id, update.header.message_id);
            }
        }
        // Still registered (the lifetime has not run out): the observation lives on,
        // the changes are held.
        assert!(sim.engine.sessions[0].is_registered());
        sim.set(TZ, Value::String("Europe/Paris".into()));
        sim.set(TZ, Value::String("Asia/Tokyo".into()));
        assert!(sim.engine.poll_transmit().is_none());
        let retry = sim.run_until_transmit(Duration::from_secs(3600)).unwrap();
        assert_eq!(path_of(&retry), "rd/abc");
        sim.answer(&retry, ResponseType::Changed, &[]);
        let delivered: Vec<(Vec<u8>, Option<u32>)> =
            std::iter::from_fn(|| sim.engine.poll_transmit())
                .map(|t| Packet::from_bytes(&t.data).unwrap())
                .map(|p| (p.payload.clone(), observe_option(&p)))
                .collect();
        let expected: Vec<(Vec<u8>, Option<u32>)> = if storing {
            vec![
                (b"Europe/Paris".to_vec(), Some(1)),
                (b"Asia/Tokyo".to_vec(), Some(2)),
            ]
        } else {
            vec![(b"Asia/Tokyo".to_vec(), Some(1))]
        };
        assert_eq!(delivered, expected, "storing {storing}");
    }
}

#[test]
fn a_restart_resumes_the_registration_observations_and_stored_notifications() {
    let mut sim = Sim::new(86400);
    sim.register();
    sim.set(TZ, Value::String("UTC".into()));
    assert_eq!(
        sim.write_attributes("/3/0/15", &["pmax=600"]),
        ResponseType::Changed
    );
    sim.observe("/3/0/15", &[6]);
    sim.set(TZ, Value::String("Europe/Berlin".into()));
    let seq = observe_option(&sim.sent()).unwrap();
    // The server vanishes; two changes are stored.
    sim.request(RequestType::Post, "/1/0/8", |_| {});
    while !sim.engine.sessions[0].reconnecting {
        sim.step();
    }
    let before = sim.engine.reporting_version();
    sim.set(TZ, Value::String("Europe/Paris".into()));
    sim.set(TZ, Value::String("Asia/Tokyo".into()));
    assert_ne!(
        sim.engine.reporting_version(),
        before,
        "storing is worth saving"
    );
    // What the daemon writes to the state directory, and reads back after a power cut.
    let saved = serde_json::to_vec(&sim.engine.snapshot(sim.now, clock())).unwrap();
    let snapshot: super::resume::Snapshot = serde_json::from_slice(&saved).unwrap();

    let mut next = Sim::unstarted(86400, 1024, 65536, Vec::new(), "U", Vec::new());
    assert_eq!(next.engine.resume(snapshot, next.now, clock()), vec![1]);
    next.engine.handle_timeout(next.now);
    // An Update to the old location carrying everything, not a Register.
    let update = next.sent();
    assert_eq!(path_of(&update), "rd/abc");
    let queries = queries_of(&update);
    assert!(queries.contains(&"lt=86400".to_string()), "{queries:?}");
    assert!(queries.contains(&"b=U".to_string()), "{queries:?}");
    assert!(String::from_utf8_lossy(&update.payload).contains("</3/0>"));
    assert!(
        next.engine.poll_transmit().is_none(),
        "stored notifications wait"
    );
    next.answer(&update, ResponseType::Changed, &[]);
    // Registered for this run (what waits for a registration, a firmware commit, goes on).
    let events: Vec<Event> = std::iter::from_fn(|| next.engine.poll_event()).collect();
    assert!(
        events.contains(&Event::Registered {
            short_server_id: 1,
            location: "rd/abc".into()
        }),
        "{events:?}"
    );
    let delivered: Vec<Packet> = std::iter::from_fn(|| next.engine.poll_transmit())
        .map(|t| Packet::from_bytes(&t.data).unwrap())
        .collect();
    let payloads: Vec<&[u8]> = delivered.iter().map(|p| p.payload.as_slice()).collect();
    assert_eq!(payloads, [&b"Europe/Paris"[..], b"Asia/Tokyo"]);
    let seqs: Vec<u32> = delivered
        .iter()
        .map(|p| observe_option(p).unwrap())
        .collect();
    for p in &delivered {
        assert_eq!(p.get_token(), [6]);
    }
    // Fresher than anything sent before the restart (RFC 7641 §3.4), and in order.
    assert!(
        seqs[0] > seq + 2 && seqs[0] - seq < 1 << 23,
        "{seq} then {seqs:?}"
    );
    assert_eq!(seqs[1], seqs[0] + 1);
    // The observation and its attributes carry on.
    assert_eq!(
        next.engine.attributes.get(1, &TZ).and_then(|a| a.pmax),
        Some(600)
    );
    next.set(TZ, Value::String("America/Lima".into()));
    let n = next.sent();
    assert_eq!(
        (n.get_token(), n.payload.as_slice()),
        (&[6][..], &b"America/Lima"[..])
    );
}

#[test]
fn nothing_is_resumed_from_an_expired_registration_or_another_endpoint() {
    let mut sim = Sim::new(600);
    sim.register();
    sim.observe("/3/0/15", &[6]);
    let snapshot = || {
        serde_json::from_slice::<super::resume::Snapshot>(
            &serde_json::to_vec(&sim.engine.snapshot(sim.now, clock())).unwrap(),
        )
        .unwrap()
    };
    let mut other = snapshot();
    other.endpoint = "another".into();
    for (snapshot, unix_now) in [(snapshot(), clock() + 601), (other, clock())] {
        let mut next = Sim::unstarted(600, 1024, 65536, Vec::new(), "U", Vec::new());
        assert!(next.engine.resume(snapshot, next.now, unix_now).is_empty());
        next.engine.handle_timeout(next.now);
        assert_eq!(path_of(&next.sent()), "rd");
        assert_eq!(next.engine.observation_count(1), 0);
    }
    // A confirmed De-register leaves nothing to resume.
    sim.engine.shutdown(sim.now);
    let dereg = sim.sent();
    sim.answer(&dereg, ResponseType::Deleted, &[]);
    assert!(sim.engine.snapshot(sim.now, clock()).is_empty());
}

#[test]
fn unusable_parts_of_a_saved_snapshot_are_skipped() {
    use super::resume::{ObservationSnapshot, SessionSnapshot, Snapshot};
    let observation = |path: &str, format: u16, token: Vec<u8>| ObservationSnapshot {
        token,
        path: path.into(),
        composite: Vec::new(),
        format,
        seq: 0x00ff_fff0,
        stored: vec![b"x".to_vec(); 100],
    };
    let snapshot = Snapshot {
        endpoint: "sim-ep".into(),
        sessions: vec![
            SessionSnapshot {
                short_server_id: 1,
                uri: "coap://192.0.2.1".into(),
                location: vec!["rd".into(), "abc".into()],
                expires: clock() + 100,
                attributes: vec![
                    ("/3/0/15".into(), vec!["pmin=9".into(), "pmax=3".into()]),
                    ("/3/x".into(), vec!["pmax=3".into()]),
                    ("/3/0/13".into(), vec!["pmax=30".into()]),
                ],
                observations: vec![
                    observation("/3/0/15", 0, vec![1]),
                    observation("/3/0/15", 9999, vec![2]),
                    observation("/3/0/1/2/3/4", 0, vec![3]),
                    observation("/3/0/15", 0, vec![0; 9]),
                ],
            },
            SessionSnapshot {
                short_server_id: 7,
                uri: "coap://192.0.2.9".into(),
                location: vec!["rd".into(), "x".into()],
                expires: clock() + 100,
                attributes: Vec::new(),
                observations: Vec::new(),
            },
        ],
    };
    let mut sim = Sim::unstarted(86400, 1024, 65536, Vec::new(), "U", Vec::new());
    assert_eq!(sim.engine.resume(snapshot, sim.now, clock()), vec![1]);
    assert_eq!(sim.engine.observation_count(1), 1);
    let o = &sim.engine.observations[0];
    assert_eq!(o.token, [1]);
    assert_eq!(o.seq, (0x00ff_fff0 + (1 << 22)) & 0x00ff_ffff);
    assert_eq!(o.stored.len(), Limits::default().stored_per_observation);
    assert!(sim.engine.attributes.get(1, &TZ).is_none(), "pmax < pmin");
    assert_eq!(
        sim.engine
            .attributes
            .get(1, &Path::resource(3, 0, 13))
            .and_then(|a| a.pmax),
        Some(30)
    );
}
