//! Bootstrap and retry simulations: a scripted bootstrap server and LwM2M server on a
//! simulated network with virtual time, following the spec's bootstrap sequence.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};

use super::*;
use crate::coap::CoapParams;
use crate::codec::{self, Record};
use crate::objects::device::Device;
use crate::objects::security::{Security, SecurityMode};
use crate::objects::server::Server;

const BS: &str = "192.0.2.10:5683";
const DM: &str = "192.0.2.20:5683";

fn clock() -> i64 {
    1_700_000_000
}

struct Net {
    engine: Engine,
    now: Instant,
    mid: u16,
}

fn path_of(p: &Packet) -> String {
    string_options(p, CoapOption::UriPath).unwrap().join("/")
}

fn code(p: &Packet) -> ResponseType {
    match p.header.code {
        MessageClass::Response(r) => r,
        other => panic!("not a response: {other:?}"),
    }
}

/// An engine with only a bootstrap account (factory bootstrap of a `bootstrap = true`
/// server), or with a bootstrap and a server account.
fn engine(with_server: Option<Server>) -> Net {
    engine_asking_packs(with_server, false)
}

fn engine_asking_packs(with_server: Option<Server>, pack: bool) -> Net {
    let now = Instant::now();
    let mut security = Security::new();
    security.add_bootstrap_account(0, "coap://192.0.2.10", SecurityMode::NoSec);
    let mut servers = Vec::new();
    let srv = match with_server {
        Some(srv) => {
            security.add_nosec_account(1, "coap://192.0.2.20", 7);
            servers.push(ServerSpec {
                short_server_id: 7,
                addr: DM.parse().unwrap(),
                uri: "coap://192.0.2.20".into(),
            });
            srv
        }
        None => Server::new(),
    };
    let config = EngineConfig {
        endpoint: "bs-ep".into(),
        preferred_format: ContentFormat::SenmlCbor,
        coap: CoapParams::default(),
        block_size: 1024,
        max_upload: 65536,
        servers,
        send: Vec::new(),
        wall_clock: clock,
        resolve: bootstrap::resolve_literal,
        limits: Default::default(),
    };
    let objects: Vec<Box<dyn Object>> = vec![
        Box::new(security),
        Box::new(srv),
        Box::new(Device::new(clock, false)),
    ];
    let mut engine = Engine::new(config, objects, 11, now);
    engine.use_bootstrap_pack(pack);
    engine.handle_timeout(now);
    Net {
        engine,
        now,
        mid: 1000,
    }
}

impl Net {
    /// The next datagram, advancing virtual time up to `limit` for it.
    fn next(&mut self, limit: Duration) -> Option<(SocketAddr, Packet)> {
        let end = self.now + limit;
        loop {
            if let Some(t) = self.engine.poll_transmit() {
                return Some((t.peer, Packet::from_bytes(&t.data).unwrap()));
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

    fn sent_to(&mut self, peer: &str) -> Packet {
        let (to, p) = self.next(Duration::ZERO).expect("a datagram");
        assert_eq!(to, peer.parse::<SocketAddr>().unwrap(), "{p:?}");
        p
    }

    fn deliver(&mut self, from: &str, p: &Packet) {
        let bytes = p.to_bytes().unwrap();
        self.engine
            .handle_datagram(self.now, from.parse().unwrap(), &bytes);
    }

    fn answer(&mut self, from: &str, req: &Packet, code: ResponseType, location: &[&str]) {
        let mut resp = Packet::new();
        resp.header.code = MessageClass::Response(code);
        resp.header.set_type(MessageType::Acknowledgement);
        resp.header.message_id = req.header.message_id;
        resp.set_token(req.get_token().to_vec());
        add_string_options(
            &mut resp,
            CoapOption::LocationPath,
            location.iter().copied(),
        );
        self.deliver(from, &resp);
    }

    /// A request from `from`; returns the engine's piggybacked response.
    fn request(
        &mut self,
        from: &str,
        method: RequestType,
        path: &str,
        build: impl FnOnce(&mut Packet),
    ) -> Packet {
        self.mid += 1;
        let mut req = Packet::new();
        req.header.code = MessageClass::Request(method);
        req.header.set_type(MessageType::Confirmable);
        req.header.message_id = self.mid;
        req.set_token(vec![9, 9]);
        add_string_options(
            &mut req,
            CoapOption::UriPath,
            path.split('/').filter(|s| !s.is_empty()),
        );
        build(&mut req);
        self.deliver(from, &req);
        let resp = self.sent_to(from);
        assert_eq!(resp.header.message_id, req.header.message_id);
        resp
    }

    fn write(&mut self, path: &str, format: ContentFormat, payload: Vec<u8>) -> ResponseType {
        let resp = self.request(BS, RequestType::Put, path, |p| {
            p.add_option(CoapOption::ContentFormat, encode_uint(format.code().into()));
            p.payload = payload;
        });
        code(&resp)
    }

    fn bootstrap_request(&mut self) -> Packet {
        let req = self.sent_to(BS);
        assert_eq!(req.header.code, MessageClass::Request(RequestType::Post));
        assert_eq!(path_of(&req), "bs");
        assert_eq!(
            string_options(&req, CoapOption::UriQuery).unwrap(),
            ["ep=bs-ep", "pct=112"]
        );
        req
    }
}

fn rec(path: Path, value: Value) -> Record {
    Record { path, value }
}

/// A NoSec account for the DM server, SSID 7, as SenML CBOR of /0/1 and /1/0.
fn account_records(lifetime: i64) -> (Vec<Record>, Vec<Record>) {
    let security = vec![
        rec(
            Path::resource(0, 1, 0),
            Value::String("coap://192.0.2.20".into()),
        ),
        rec(Path::resource(0, 1, 1), Value::Boolean(false)),
        rec(Path::resource(0, 1, 2), Value::Integer(3)),
        rec(Path::resource(0, 1, 10), Value::Integer(7)),
    ];
    let server = vec![
        rec(Path::resource(1, 0, 0), Value::Integer(7)),
        rec(Path::resource(1, 0, 1), Value::Integer(lifetime)),
        rec(Path::resource(1, 0, 7), Value::String("U".into())),
    ];
    (security, server)
}

fn encode(format: ContentFormat, base: Path, records: &[Record]) -> Vec<u8> {
    codec::encode(format, &base, records).unwrap()
}

/// Runs the spec's sequence up to Bootstrap-Finish, writing the account in `format`.
fn provision(net: &mut Net, format: ContentFormat) {
    let req = net.bootstrap_request();
    net.answer(BS, &req, ResponseType::Changed, &[]);
    // Bootstrap-Delete of everything but the bootstrap account.
    let del = net.request(BS, RequestType::Delete, "/", |_| {});
    assert_eq!(code(&del), ResponseType::Deleted);
    let (security, server) = account_records(120);
    // Writes at object level (/0) and at instance level (/1/0).
    assert_eq!(
        net.write("/0", format, encode(format, Path::object(0), &security)),
        ResponseType::Changed
    );
    assert_eq!(
        net.write(
            "/1/0",
            format,
            encode(format, Path::instance(1, 0), &server)
        ),
        ResponseType::Changed
    );
    let fin = net.request(BS, RequestType::Post, "/bs", |_| {});
    assert_eq!(code(&fin), ResponseType::Changed);
}

#[test]
fn bootstraps_then_registers_with_the_provisioned_account() {
    for format in [
        ContentFormat::Tlv,
        ContentFormat::SenmlCbor,
        ContentFormat::LwM2mCbor,
        ContentFormat::SenmlJson,
    ] {
        let mut net = engine(None);
        provision(&mut net, format);
        let events: Vec<Event> = std::iter::from_fn(|| net.engine.poll_event()).collect();
        assert_eq!(events, [Event::BootstrapStarted, Event::Provisioned]);
        let reg = net.sent_to(DM);
        assert_eq!(path_of(&reg), "rd");
        let queries = string_options(&reg, CoapOption::UriQuery).unwrap();
        assert!(queries.contains(&"lt=120".to_string()), "{queries:?}");
        net.answer(DM, &reg, ResponseType::Created, &["rd", "x"]);
        assert_eq!(net.engine.registrations(), [(7, "coap://192.0.2.20", true)]);
        // The provisioned values are what would be persisted, the bootstrap account with them.
        let saved = net.engine.provisioning();
        assert!(saved.contains(&rec(Path::resource(0, 0, 1), Value::Boolean(true))));
        assert!(saved.contains(&rec(Path::resource(1, 0, 0), Value::Integer(7))));
    }
}

#[test]
fn requests_from_others_are_refused_during_bootstrap() {
    let mut net = engine(None);
    let req = net.bootstrap_request();
    net.answer(BS, &req, ResponseType::Changed, &[]);
    let resp = net.request(DM, RequestType::Get, "/3/0", |_| {});
    assert_eq!(code(&resp), ResponseType::Unauthorized);
}

#[test]
fn finish_without_a_usable_account_is_not_acceptable() {
    let mut net = engine(None);
    let req = net.bootstrap_request();
    net.answer(BS, &req, ResponseType::Changed, &[]);
    // A Security instance whose Server instance is missing.
    let (security, _) = account_records(60);
    let f = ContentFormat::SenmlCbor;
    assert_eq!(
        net.write("/0", f, encode(f, Path::object(0), &security)),
        ResponseType::Changed
    );
    let fin = net.request(BS, RequestType::Post, "/bs", |_| {});
    assert_eq!(code(&fin), ResponseType::NotAcceptable);
    let why = String::from_utf8(fin.payload.clone()).unwrap();
    assert!(
        why.contains("no Server object instance with Short Server ID 7"),
        "{why}"
    );
    // The bootstrap server may fix it and finish again.
    let (_, server) = account_records(60);
    assert_eq!(
        net.write("/1/0", f, encode(f, Path::instance(1, 0), &server)),
        ResponseType::Changed
    );
    let fin = net.request(BS, RequestType::Post, "/bs", |_| {});
    assert_eq!(code(&fin), ResponseType::Changed);
    assert_eq!(path_of(&net.sent_to(DM)), "rd");
}

#[test]
fn bootstrap_read_discover_and_delete_rules() {
    let mut net = engine(None);
    let req = net.bootstrap_request();
    net.answer(BS, &req, ResponseType::Changed, &[]);
    let (security, server) = account_records(60);
    let f = ContentFormat::Tlv;
    net.write("/0", f, encode(f, Path::object(0), &security));
    net.write("/1/0", f, encode(f, Path::instance(1, 0), &server));

    // Bootstrap-Discover: the spec's attributes (Core TS §5.2.7.3).
    let disc = net.request(BS, RequestType::Get, "/", |p| {
        p.add_option(CoapOption::Accept, encode_uint(40));
    });
    assert_eq!(code(&disc), ResponseType::Content);
    assert_eq!(
        String::from_utf8(disc.payload.clone()).unwrap(),
        "</>;lwm2m=\"1.1\",</0>;ver=1.1,</0/0>;uri=\"coap://192.0.2.10\",\
         </0/1>;ssid=7;uri=\"coap://192.0.2.20\",</1>;ver=1.1,</1/0>;ssid=7,</3>;ver=1.1,</3/0>"
    );
    let disc = net.request(BS, RequestType::Get, "/1", |p| {
        p.add_option(CoapOption::Accept, encode_uint(40));
    });
    assert_eq!(
        String::from_utf8(disc.payload.clone()).unwrap(),
        "</1>;ver=1.1,</1/0>;ssid=7"
    );

    // Bootstrap-Read: the Server object yes, the Security and Device objects no.
    let read = net.request(BS, RequestType::Get, "/1/0", |p| {
        p.add_option(CoapOption::Accept, encode_uint(112));
    });
    assert_eq!(code(&read), ResponseType::Content);
    let ty = |p: &Path| {
        crate::model::registry::SERVER
            .resource(p.resource_id()?)
            .map(|r| r.ty)
    };
    let got = codec::decode(
        ContentFormat::SenmlCbor,
        &Path::instance(1, 0),
        &read.payload,
        &ty,
    )
    .unwrap();
    assert!(got.contains(&rec(Path::resource(1, 0, 1), Value::Integer(60))));
    for path in ["/0", "/0/1", "/3/0"] {
        let r = net.request(BS, RequestType::Get, path, |_| {});
        assert_eq!(code(&r), ResponseType::Unauthorized, "{path}");
    }

    // Bootstrap-Delete never removes the bootstrap account.
    let r = net.request(BS, RequestType::Delete, "/0/0", |_| {});
    assert_eq!(code(&r), ResponseType::BadRequest);
    let r = net.request(BS, RequestType::Delete, "/0", |_| {});
    assert_eq!(code(&r), ResponseType::Deleted);
    let r = net.request(BS, RequestType::Delete, "/1/0", |_| {});
    assert_eq!(code(&r), ResponseType::Deleted);
    let r = net.request(BS, RequestType::Delete, "/1/0", |_| {});
    assert_eq!(code(&r), ResponseType::NotFound);
    let disc = net.request(BS, RequestType::Get, "/0", |p| {
        p.add_option(CoapOption::Accept, encode_uint(40));
    });
    assert_eq!(
        String::from_utf8(disc.payload.clone()).unwrap(),
        "</0>;ver=1.1,</0/0>;uri=\"coap://192.0.2.10\""
    );
    // `/` keeps the Device object's instance.
    let r = net.request(BS, RequestType::Delete, "/", |_| {});
    assert_eq!(code(&r), ResponseType::Deleted);
    let r = net.request(BS, RequestType::Delete, "/3/0", |_| {});
    assert_eq!(code(&r), ResponseType::BadRequest);
}

#[test]
fn silent_bootstrap_server_is_retried_with_backoff() {
    let mut net = engine(None);
    let first = net.bootstrap_request();
    // No answer: the request times out, then a new one follows after the retry delay.
    let start = net.now;
    let mut retried = None;
    while let Some((peer, p)) = net.next(Duration::from_secs(600)) {
        assert_eq!(peer, BS.parse::<SocketAddr>().unwrap());
        if p.header.message_id != first.header.message_id {
            retried = Some(p);
            break;
        }
    }
    let retried = retried.expect("a second Bootstrap-Request");
    assert_eq!(path_of(&retried), "bs");
    assert!(net.now - start >= bootstrap::FIRST_RETRY);
    assert!(std::iter::from_fn(|| net.engine.poll_event()).any(|e| e == Event::BootstrapFailed));
    // Accepted but never finished: it fails after EXCHANGE_LIFETIME and starts over.
    net.answer(BS, &retried, ResponseType::Changed, &[]);
    let again = net
        .next(Duration::from_secs(3600))
        .expect("a third Bootstrap-Request");
    assert_eq!(path_of(&again.1), "bs");
}

#[test]
fn bootstrap_account_is_purged_after_its_timeout() {
    let mut net = engine(None);
    let req = net.bootstrap_request();
    net.answer(BS, &req, ResponseType::Changed, &[]);
    let f = ContentFormat::SenmlCbor;
    let timeout = [rec(Path::resource(0, 0, 12), Value::Integer(600))];
    assert_eq!(
        net.write("/0/0/12", f, encode(f, Path::resource(0, 0, 12), &timeout)),
        ResponseType::Changed
    );
    let (security, server) = account_records(86400);
    net.write("/0", f, encode(f, Path::object(0), &security));
    net.write("/1", f, encode(f, Path::object(1), &server));
    let fin = net.request(BS, RequestType::Post, "/bs", |_| {});
    assert_eq!(code(&fin), ResponseType::Changed);
    let reg = net.sent_to(DM);
    net.answer(DM, &reg, ResponseType::Created, &["rd", "x"]);
    while net.engine.poll_event().is_some() {}
    let finished = net.now;
    // Nothing to send before the purge; the purge itself is an event.
    assert!(net.next(Duration::from_secs(599)).is_none());
    net.now = finished + Duration::from_secs(600);
    net.engine.handle_timeout(net.now);
    assert_eq!(net.engine.poll_event(), Some(Event::Provisioned));
    assert!(!net
        .engine
        .provisioning()
        .iter()
        .any(|r| r.path.object_id() == Some(0) && r.path.instance_id() == Some(0)));
}

/// A Server object for the DM account with the given retry resources.
fn server_with(resources: &[(u16, Value)]) -> Server {
    let mut srv = Server::new();
    srv.add_account(0, 7, 300, "U");
    for (r, v) in resources {
        srv.write(0, *r, ResourceValue::Single(v.clone()), false)
            .unwrap();
    }
    srv
}

/// Fails every Register to the DM server (4.03) and returns the instants of the attempts,
/// until a Bootstrap-Request (or nothing) follows.
fn fail_registrations(net: &mut Net, limit: Duration) -> (Vec<Duration>, Option<Packet>) {
    let start = net.now;
    let mut times = Vec::new();
    while let Some((peer, p)) = net.next((start + limit).saturating_duration_since(net.now)) {
        if peer == BS.parse::<SocketAddr>().unwrap() {
            return (times, Some(p));
        }
        assert_eq!(path_of(&p), "rd");
        times.push(net.now - start);
        net.answer(DM, &p, ResponseType::Forbidden, &[]);
    }
    (times, None)
}

#[test]
fn registration_retries_follow_the_server_object_then_bootstrap() {
    let mut net = engine(Some(server_with(&[
        (server::COMMUNICATION_RETRY_COUNT, Value::Integer(3)),
        (server::COMMUNICATION_RETRY_TIMER, Value::Integer(10)),
        (server::SEQUENCE_DELAY_TIMER, Value::Integer(1000)),
        (server::SEQUENCE_RETRY_COUNT, Value::Integer(2)),
    ])));
    let (times, next) = fail_registrations(&mut net, Duration::from_secs(5000));
    let secs: Vec<u64> = times.iter().map(Duration::as_secs).collect();
    // Sequence 1 at 0, +10, +20; the sequence delay; sequence 2 likewise.
    assert_eq!(secs, [0, 10, 30, 1030, 1040, 1060]);
    // Bootstrap on Registration Failure defaults to true.
    let bs = next.expect("a Bootstrap-Request");
    assert_eq!(path_of(&bs), "bs");
}

#[test]
fn without_bootstrap_on_failure_the_sequences_start_over() {
    let mut net = engine(Some(server_with(&[
        (server::COMMUNICATION_RETRY_COUNT, Value::Integer(2)),
        (server::COMMUNICATION_RETRY_TIMER, Value::Integer(5)),
        (server::SEQUENCE_DELAY_TIMER, Value::Integer(100)),
        (
            server::BOOTSTRAP_ON_REGISTRATION_FAILURE,
            Value::Boolean(false),
        ),
    ])));
    let (times, next) = fail_registrations(&mut net, Duration::from_secs(250));
    assert!(next.is_none());
    let secs: Vec<u64> = times.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [0, 5, 105, 110, 210, 215]);
}

#[test]
fn bootstrap_request_trigger_starts_a_bootstrap() {
    let mut net = engine(Some(server_with(&[])));
    let reg = net.sent_to(DM);
    net.answer(DM, &reg, ResponseType::Created, &["rd", "x"]);
    let r = net.request(DM, RequestType::Post, "/1/0/9", |_| {});
    assert_eq!(code(&r), ResponseType::Changed);
    let req = net.bootstrap_request();
    net.answer(BS, &req, ResponseType::Changed, &[]);
    // The bootstrap server replaces the account: new lifetime.
    let f = ContentFormat::SenmlCbor;
    let lt = [rec(Path::resource(1, 0, 1), Value::Integer(4000))];
    assert_eq!(
        net.write("/1/0/1", f, encode(f, Path::resource(1, 0, 1), &lt)),
        ResponseType::Changed
    );
    let fin = net.request(BS, RequestType::Post, "/bs", |_| {});
    assert_eq!(code(&fin), ResponseType::Changed);
    let reg = net.sent_to(DM);
    assert_eq!(path_of(&reg), "rd");
    assert!(string_options(&reg, CoapOption::UriQuery)
        .unwrap()
        .contains(&"lt=4000".to_string()));
}

#[test]
fn restore_replaces_accounts_and_rejects_bad_records() {
    let mut net = engine(None);
    let _ = net.bootstrap_request();
    let (security, server) = account_records(77);
    let mut records = security.clone();
    records.extend(server);
    // A record that names a missing resource changes nothing.
    let mut bad = records.clone();
    bad.push(rec(Path::resource(1, 0, 999), Value::Integer(1)));
    assert!(net.engine.restore(net.now, bad).is_err());
    assert_eq!(net.engine.registrations(), []);
    net.engine.restore(net.now, records).unwrap();
    net.engine.handle_timeout(net.now);
    let reg = net.sent_to(DM);
    assert!(string_options(&reg, CoapOption::UriQuery)
        .unwrap()
        .contains(&"lt=77".to_string()));
}

const DM2: &str = "192.0.2.30:5683";

/// Two servers (SSID 7 and 8), each registered, with the given Access Control object.
fn two_servers(acl: crate::objects::access_control::AccessControl) -> Net {
    two_servers_with(acl, false)
}

/// With `factory`, the configuration's Access Control is granted before registering.
fn two_servers_with(acl: crate::objects::access_control::AccessControl, factory: bool) -> Net {
    two_servers_with_objects(acl, factory, Vec::new())
}

fn two_servers_with_objects(
    acl: crate::objects::access_control::AccessControl,
    factory: bool,
    extra: Vec<Box<dyn Object>>,
) -> Net {
    let now = Instant::now();
    let mut security = Security::new();
    security.add_nosec_account(0, "coap://192.0.2.20", 7);
    security.add_nosec_account(1, "coap://192.0.2.30", 8);
    let mut srv = Server::new();
    srv.add_account(0, 7, 300, "U");
    srv.add_account(1, 8, 300, "U");
    let spec = |ssid, addr: &str, uri: &str| ServerSpec {
        short_server_id: ssid,
        addr: addr.parse().unwrap(),
        uri: uri.into(),
    };
    let config = EngineConfig {
        endpoint: "acl-ep".into(),
        preferred_format: ContentFormat::Tlv,
        coap: CoapParams::default(),
        block_size: 1024,
        max_upload: 65536,
        servers: vec![
            spec(7, DM, "coap://192.0.2.20"),
            spec(8, DM2, "coap://192.0.2.30"),
        ],
        send: Vec::new(),
        wall_clock: clock,
        resolve: bootstrap::resolve_literal,
        limits: Default::default(),
    };
    let objects: Vec<Box<dyn Object>> = vec![
        Box::new(security),
        Box::new(srv),
        Box::new(acl),
        Box::new(Device::new(clock, false)),
    ];
    let objects = objects.into_iter().chain(extra).collect();
    let mut engine = Engine::new(config, objects, 5, now);
    if factory {
        assert!(engine.grant_factory_access());
    }
    engine.handle_timeout(now);
    let mut net = Net {
        engine,
        now,
        mid: 2000,
    };
    for _ in 0..2 {
        let (peer, reg) = net.next(Duration::ZERO).unwrap();
        let from = if peer == DM.parse::<SocketAddr>().unwrap() {
            DM
        } else {
            DM2
        };
        net.answer(from, &reg, ResponseType::Created, &["rd", "r"]);
    }
    assert!(net.engine.registrations().iter().all(|r| r.2));
    net
}

/// `/3/0` owned by server 7, server 8 may only read.
fn device_acl() -> crate::objects::access_control::AccessControl {
    use crate::objects::access_control as ac;
    let mut acl = ac::AccessControl::new();
    acl.create(0).unwrap();
    for (r, v) in [(ac::OBJECT_ID, 3), (ac::INSTANCE_ID, 0), (ac::OWNER, 7)] {
        acl.write(0, r, ResourceValue::Single(Value::Integer(v)), false)
            .unwrap();
    }
    let entries = [(8, Value::Integer(ac::READ.into()))].into_iter().collect();
    acl.write(0, ac::ACL, ResourceValue::Multiple(entries), false)
        .unwrap();
    acl
}

#[test]
fn access_control_grants_per_server() {
    let mut net = two_servers(device_acl());
    let get = |net: &mut Net, from| code(&net.request(from, RequestType::Get, "/3/0/16", |_| {}));
    let exec = |net: &mut Net, from| code(&net.request(from, RequestType::Post, "/3/0/4", |_| {}));
    assert_eq!(get(&mut net, DM2), ResponseType::Content);
    assert_eq!(exec(&mut net, DM2), ResponseType::Unauthorized);
    // The owner, without an entry of its own, has every right but Create.
    assert_eq!(get(&mut net, DM), ResponseType::Content);
    assert_eq!(exec(&mut net, DM), ResponseType::Changed);
    // Only the owner changes the ACL.
    let write_acl = |net: &mut Net, from| {
        let f = ContentFormat::SenmlCbor;
        let r = [rec(Path::resource_instance(2, 0, 2, 8), Value::Integer(5))];
        let payload = encode(f, Path::resource(2, 0, 2), &r);
        code(&net.request(from, RequestType::Post, "/2/0/2", |p| {
            p.add_option(CoapOption::ContentFormat, encode_uint(f.code().into()));
            p.payload = payload;
        }))
    };
    assert_eq!(write_acl(&mut net, DM2), ResponseType::Unauthorized);
    assert_eq!(write_acl(&mut net, DM), ResponseType::Changed);
    // Now server 8 may read and execute.
    assert_eq!(exec(&mut net, DM2), ResponseType::Changed);
    // Nobody deletes the ACL instances.
    let del = net.request(DM, RequestType::Delete, "/2/0", |_| {});
    assert_eq!(code(&del), ResponseType::Unauthorized);
}

#[test]
fn without_access_control_instances_every_server_has_access() {
    let mut net = two_servers(crate::objects::access_control::AccessControl::new());
    let r = net.request(DM2, RequestType::Post, "/3/0/4", |_| {});
    assert_eq!(code(&r), ResponseType::Changed);
}

#[test]
fn configured_servers_get_the_factory_access_control() {
    use crate::objects::access_control as ac;
    let mut net = two_servers_with(ac::AccessControl::new(), true);
    // /3/0 (Device is a single-instance object: no object-level instance) owned by the
    // first server, with full rights for both.
    let saved = net.engine.provisioning();
    let acl: Vec<&Record> = saved
        .iter()
        .filter(|r| r.path.object_id() == Some(2))
        .collect();
    let i = acl[0].path.instance_id().unwrap();
    let expected = [
        rec(Path::resource(2, i, ac::OBJECT_ID), Value::Integer(3)),
        rec(Path::resource(2, i, ac::INSTANCE_ID), Value::Integer(0)),
        rec(
            Path::resource_instance(2, i, ac::ACL, 7),
            Value::Integer(15),
        ),
        rec(
            Path::resource_instance(2, i, ac::ACL, 8),
            Value::Integer(15),
        ),
        rec(Path::resource(2, i, ac::OWNER), Value::Integer(7)),
    ];
    assert_eq!(acl, expected.iter().collect::<Vec<_>>());

    let exec = |net: &mut Net, from| code(&net.request(from, RequestType::Post, "/3/0/4", |_| {}));
    let get = |net: &mut Net, from| code(&net.request(from, RequestType::Get, "/3/0/16", |_| {}));
    assert_eq!(exec(&mut net, DM2), ResponseType::Changed);
    assert_eq!(get(&mut net, DM2), ResponseType::Content);
    // Only the owner narrows the other's rights: server 8 keeps Read only.
    let write_acl = |net: &mut Net, from| {
        let f = ContentFormat::SenmlCbor;
        let r = [rec(Path::resource_instance(2, i, 2, 8), Value::Integer(1))];
        let payload = encode(f, Path::resource(2, i, 2), &r);
        code(
            &net.request(from, RequestType::Post, &format!("/2/{i}/2"), |p| {
                p.add_option(CoapOption::ContentFormat, encode_uint(f.code().into()));
                p.payload = payload;
            }),
        )
    };
    assert_eq!(write_acl(&mut net, DM2), ResponseType::Unauthorized);
    assert_eq!(write_acl(&mut net, DM), ResponseType::Changed);
    assert_eq!(exec(&mut net, DM2), ResponseType::Unauthorized);
    assert_eq!(get(&mut net, DM2), ResponseType::Content);
    assert_eq!(exec(&mut net, DM), ResponseType::Changed);
}

#[test]
fn one_server_or_provisioned_acls_get_no_factory_access_control() {
    let mut net = engine(Some(server_with(&[])));
    assert!(!net.engine.grant_factory_access());
    let mut net = two_servers(device_acl());
    assert!(!net.engine.grant_factory_access());
    assert_eq!(
        net.engine
            .provisioning()
            .iter()
            .filter(|r| r.path.object_id() == Some(2) && r.path.resource_id() == Some(0))
            .count(),
        1
    );
}

#[test]
fn a_failed_server_initiated_bootstrap_keeps_the_registration() {
    let mut net = engine(Some(server_with(&[])));
    let reg = net.sent_to(DM);
    net.answer(DM, &reg, ResponseType::Created, &["rd", "x"]);
    let r = net.request(DM, RequestType::Post, "/1/0/9", |_| {});
    assert_eq!(code(&r), ResponseType::Changed);
    let req = net.bootstrap_request();
    net.answer(BS, &req, ResponseType::Forbidden, &[]);
    assert!(std::iter::from_fn(|| net.engine.poll_event()).any(|e| e == Event::BootstrapFailed));
    // The registration is updated as before, and no further Bootstrap-Request is sent.
    let (peer, upd) = net.next(Duration::from_secs(300)).expect("an Update");
    assert_eq!(peer, DM.parse::<SocketAddr>().unwrap());
    assert_eq!(path_of(&upd), "rd/x");
}

#[test]
fn huge_timers_from_servers_do_not_overflow_the_clock() {
    let max = Value::Integer(i64::MAX);
    let mut net = engine(Some(server_with(&[
        (server::COMMUNICATION_RETRY_TIMER, max.clone()),
        (server::SEQUENCE_DELAY_TIMER, max.clone()),
        (server::DISABLE_TIMEOUT, max.clone()),
    ])));
    let reg = net.sent_to(DM);
    net.answer(DM, &reg, ResponseType::Forbidden, &[]);
    assert!(net.engine.poll_timeout().is_some());
    let mut net = engine(Some(server_with(&[(server::DISABLE_TIMEOUT, max.clone())])));
    let reg = net.sent_to(DM);
    net.answer(DM, &reg, ResponseType::Created, &["rd", "x"]);
    let r = net.request(DM, RequestType::Post, "/1/0/4", |_| {});
    assert_eq!(code(&r), ResponseType::Changed);
    // The bootstrap account's timers too.
    let mut net = engine(None);
    let req = net.bootstrap_request();
    net.answer(BS, &req, ResponseType::Changed, &[]);
    let f = ContentFormat::SenmlCbor;
    let timers = [
        rec(Path::resource(0, 0, 11), max.clone()),
        rec(Path::resource(0, 0, 12), max),
    ];
    assert_eq!(
        net.write("/0/0", f, encode(f, Path::instance(0, 0), &timers)),
        ResponseType::Changed
    );
    let (security, server) = account_records(60);
    net.write("/0", f, encode(f, Path::object(0), &security));
    net.write("/1", f, encode(f, Path::object(1), &server));
    let fin = net.request(BS, RequestType::Post, "/bs", |_| {});
    assert_eq!(code(&fin), ResponseType::Changed);
}

#[test]
fn an_unfinished_bootstrap_leaves_the_accounts_as_they_were() {
    let mut net = engine(Some(server_with(&[])));
    let reg = net.sent_to(DM);
    net.answer(DM, &reg, ResponseType::Created, &["rd", "x"]);
    let before = net.engine.provisioning();
    let r = net.request(DM, RequestType::Post, "/1/0/9", |_| {});
    assert_eq!(code(&r), ResponseType::Changed);
    let req = net.bootstrap_request();
    net.answer(BS, &req, ResponseType::Changed, &[]);
    // The bootstrap server wipes everything, then falls silent.
    let del = net.request(BS, RequestType::Delete, "/", |_| {});
    assert_eq!(code(&del), ResponseType::Deleted);
    assert_ne!(net.engine.provisioning(), before);
    let (peer, upd) = net.next(Duration::from_secs(400)).expect("an Update");
    assert_eq!(peer, DM.parse::<SocketAddr>().unwrap());
    assert_eq!(path_of(&upd), "rd/x");
    assert_eq!(net.engine.provisioning(), before);
    assert!(std::iter::from_fn(|| net.engine.poll_event()).any(|e| e == Event::BootstrapFailed));
}

/// The Bootstrap-Pack-Request of Transport TS 1.2 §6.1: `GET /bspack?ep=` asking for
/// SenML CBOR.
fn bootstrap_pack_request(net: &mut Net) -> Packet {
    let req = net.sent_to(BS);
    assert_eq!(req.header.code, MessageClass::Request(RequestType::Get));
    assert_eq!(path_of(&req), "bspack");
    assert_eq!(
        string_options(&req, CoapOption::UriQuery).unwrap(),
        ["ep=bs-ep"]
    );
    assert_eq!(uint_option(&req, CoapOption::Accept).unwrap(), Some(112));
    req
}

fn answer_pack(net: &mut Net, req: &Packet, format: ContentFormat, payload: Vec<u8>) {
    let mut resp = Packet::new();
    resp.header.code = MessageClass::Response(ResponseType::Content);
    resp.header.set_type(MessageType::Acknowledgement);
    resp.header.message_id = req.header.message_id;
    resp.set_token(req.get_token().to_vec());
    resp.add_option(CoapOption::ContentFormat, encode_uint(format.code().into()));
    resp.payload = payload;
    net.deliver(BS, &resp);
}

fn pack_engine() -> Net {
    engine_asking_packs(None, true)
}

#[test]
fn a_bootstrap_pack_provisions_the_account_and_the_client_registers() {
    for format in [ContentFormat::SenmlCbor, ContentFormat::SenmlJson] {
        let mut net = pack_engine();
        let req = bootstrap_pack_request(&mut net);
        let (security, server) = account_records(120);
        let all: Vec<Record> = security.into_iter().chain(server).collect();
        answer_pack(&mut net, &req, format, encode(format, Path::ROOT, &all));
        let events: Vec<Event> = std::iter::from_fn(|| net.engine.poll_event()).collect();
        assert_eq!(events, [Event::BootstrapStarted, Event::Provisioned]);
        // No Bootstrap-Finish travels: the pack is the whole exchange.
        let reg = net.sent_to(DM);
        assert_eq!(path_of(&reg), "rd");
        let queries = string_options(&reg, CoapOption::UriQuery).unwrap();
        assert!(queries.contains(&"lt=120".to_string()), "{queries:?}");
        net.answer(DM, &reg, ResponseType::Created, &["rd", "p"]);
        assert_eq!(net.engine.registrations(), [(7, "coap://192.0.2.20", true)]);
        let saved = net.engine.provisioning();
        assert!(saved.contains(&rec(Path::resource(0, 0, 1), Value::Boolean(true))));
        assert!(saved.contains(&rec(Path::resource(0, 1, 10), Value::Integer(7))));
    }
}

#[test]
fn a_bootstrap_server_without_packs_gets_the_bootstrap_request() {
    for refusal in [ResponseType::NotFound, ResponseType::MethodNotAllowed] {
        let mut net = pack_engine();
        let req = bootstrap_pack_request(&mut net);
        net.answer(BS, &req, refusal, &[]);
        // At once, the classic sequence: Bootstrap-Request, writes, Bootstrap-Finish.
        provision(&mut net, ContentFormat::SenmlCbor);
        assert_eq!(path_of(&net.sent_to(DM)), "rd");
    }
}

#[test]
fn an_inconsistent_bootstrap_pack_leaves_nothing_behind_and_is_retried() {
    let mut net = pack_engine();
    let before = net.engine.provisioning();
    let req = bootstrap_pack_request(&mut net);
    // A Security instance whose Server instance is missing.
    let (security, _) = account_records(60);
    let f = ContentFormat::SenmlCbor;
    answer_pack(&mut net, &req, f, encode(f, Path::ROOT, &security));
    let events: Vec<Event> = std::iter::from_fn(|| net.engine.poll_event()).collect();
    assert_eq!(events, [Event::BootstrapStarted, Event::BootstrapFailed]);
    assert_eq!(net.engine.provisioning(), before);
    assert!(net.engine.is_bootstrapping());

    // A pack that does not decode is refused the same way; the next try comes after
    // the retry delay and asks for a pack again.
    let (at, req) = {
        let start = net.now;
        let req = net.next(bootstrap::MAX_RETRY).expect("a new request").1;
        (net.now - start, req)
    };
    assert!(at >= bootstrap::FIRST_RETRY, "{at:?}");
    assert_eq!(path_of(&req), "bspack");
    answer_pack(&mut net, &req, f, vec![0xff, 0x00]);
    assert_eq!(net.engine.poll_event(), Some(Event::BootstrapFailed));
    assert_eq!(net.engine.provisioning(), before);
}

#[test]
fn a_raw_public_key_account_is_refused_with_the_reason() {
    let mut net = engine(None);
    let req = net.bootstrap_request();
    net.answer(BS, &req, ResponseType::Changed, &[]);
    let (mut security, server) = account_records(60);
    security[0] = rec(
        Path::resource(0, 1, 0),
        Value::String("coaps://192.0.2.20".into()),
    );
    security[2] = rec(Path::resource(0, 1, 2), Value::Integer(1));
    let f = ContentFormat::SenmlCbor;
    net.write("/0", f, encode(f, Path::object(0), &security));
    net.write("/1/0", f, encode(f, Path::instance(1, 0), &server));
    let fin = net.request(BS, RequestType::Post, "/bs", |_| {});
    assert_eq!(code(&fin), ResponseType::NotAcceptable);
    let why = String::from_utf8(fin.payload.clone()).unwrap();
    if crate::dtls::RAW_PUBLIC_KEYS {
        // Mode 1 without its keys.
        assert!(why.contains("/0/1: raw public key mode without"), "{why}");
    } else {
        assert!(
            why.contains("/0/1: Security Mode 1: raw public keys"),
            "{why}"
        );
        assert!(why.contains("OpenSSL"), "{why}");
    }
}

#[cfg(ossl_rpk)]
#[test]
fn rpk_account_from_the_bootstrap_server_is_used() {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::pkey::PKey;
    let group = EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let ours = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let theirs = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut net = engine(None);
    let req = net.bootstrap_request();
    net.answer(BS, &req, ResponseType::Changed, &[]);
    let (mut security, server) = account_records(60);
    security[0] = rec(
        Path::resource(0, 1, 0),
        Value::String("coaps://192.0.2.20".into()),
    );
    security[2] = rec(Path::resource(0, 1, 2), Value::Integer(1));
    security.extend([
        rec(
            Path::resource(0, 1, 3),
            Value::Opaque(ours.public_key_to_der().unwrap()),
        ),
        rec(
            Path::resource(0, 1, 4),
            Value::Opaque(theirs.public_key_to_der().unwrap()),
        ),
        rec(
            Path::resource(0, 1, 5),
            Value::Opaque(ours.private_key_to_der().unwrap()),
        ),
    ]);
    let f = ContentFormat::SenmlCbor;
    net.write("/0", f, encode(f, Path::object(0), &security));
    net.write("/1/0", f, encode(f, Path::instance(1, 0), &server));
    let fin = net.request(BS, RequestType::Post, "/bs", |_| {});
    assert_eq!(code(&fin), ResponseType::Changed);
    let accounts = net.engine.accounts();
    let rpk = accounts
        .iter()
        .find_map(|(a, _)| match &a.credentials {
            Some(crate::dtls::Credentials::RawPublicKey(k)) => Some(k),
            _ => None,
        })
        .expect("a raw public key account");
    assert_eq!(rpk.server_public_key, theirs.public_key_to_der().unwrap());
    assert_eq!(rpk.private_key, ours.private_key_to_der().unwrap());
}

#[test]
fn a_bootstrap_pack_in_several_blocks_is_assembled() {
    use crate::coap::block::{block2, set_block2, BlockOption};
    let mut net = pack_engine();
    let mut req = bootstrap_pack_request(&mut net);
    let (security, server) = account_records(45);
    let all: Vec<Record> = security.into_iter().chain(server).collect();
    let f = ContentFormat::SenmlJson;
    let body = encode(f, Path::ROOT, &all);
    // 64-byte blocks (SZX 2), as a server with a small buffer sends them.
    let chunks: Vec<&[u8]> = body.chunks(64).collect();
    assert!(chunks.len() > 2);
    for (num, chunk) in chunks.iter().enumerate() {
        if num > 0 {
            req = net.sent_to(BS);
            assert_eq!(path_of(&req), "bspack");
            let asked = block2(&req).unwrap().unwrap();
            assert_eq!((asked.num, asked.szx), (u32::try_from(num).unwrap(), 2));
        }
        let mut resp = Packet::new();
        resp.header.code = MessageClass::Response(ResponseType::Content);
        resp.header.set_type(MessageType::Acknowledgement);
        resp.header.message_id = req.header.message_id;
        resp.set_token(req.get_token().to_vec());
        resp.add_option(CoapOption::ContentFormat, encode_uint(f.code().into()));
        let more = num + 1 < chunks.len();
        set_block2(
            &mut resp,
            BlockOption::new(u32::try_from(num).unwrap(), more, 2).unwrap(),
        );
        resp.payload = chunk.to_vec();
        net.deliver(BS, &resp);
    }
    let reg = net.sent_to(DM);
    assert!(string_options(&reg, CoapOption::UriQuery)
        .unwrap()
        .contains(&"lt=45".to_string()));
}

#[test]
fn instances_an_application_makes_follow_the_factory_access_control() {
    use crate::objects::access_control as ac;
    use crate::objects::custom::Custom;
    let xml = r#"<LWM2M><Object ObjectType="MODefinition"><Name>Rooms</Name>
      <ObjectID>33010</ObjectID><MultipleInstances>Multiple</MultipleInstances>
      <Mandatory>Optional</Mandatory><Resources>
      <Item ID="0"><Name>Level</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>
        <Mandatory>Optional</Mandatory><Type>Integer</Type></Item>
      </Resources></Object></LWM2M>"#;
    let def = crate::model::ddf::parse(xml).unwrap().remove(0).leak();
    let app = Custom::app_owned(def, None);
    let mut net = two_servers_with_objects(ac::AccessControl::new(), true, vec![Box::new(app)]);
    let acl_of = |net: &Net| {
        let acl = net.engine.objects.get(&2).unwrap();
        ac::find(acl.as_ref(), 33010, 4)
    };
    let room = Path::instance(33010, 4);
    net.engine.create_instance(net.now, room).unwrap();
    assert!(
        acl_of(&net).is_some(),
        "the new instance gets its Access Control"
    );
    net.engine.delete_instance(net.now, room).unwrap();
    assert!(acl_of(&net).is_none(), "and it goes with the instance");
}
