//! The host connectivity backend on a real interface: a veth pair in a network namespace
//! that the test makes, with known addresses and a default route.
//!
//! The test binary runs itself again inside the namespace (`ip netns exec`, which also
//! mounts that namespace's sysfs), so the backend reads the kernel exactly as the daemon
//! would. Needs root and iproute2.

use std::net::IpAddr;
use std::process::Command;

const INNER: &str = "LWM2MD_TEST_NETNS_INNER";

/// A network namespace deleted on drop.
struct Netns(String);

impl Netns {
    fn create() -> Netns {
        let name = format!("lwm2md-hostnet-{}", std::process::id());
        ip(&["netns", "add", &name]);
        Netns(name)
    }

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.0.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip")
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run ip ({e}); install iproute2"));
    assert!(status.success(), "ip {} failed: {status}", args.join(" "));
}

#[test]
fn veth_in_a_namespace() {
    if std::env::var_os(INNER).is_some() {
        return inside();
    }
    let ns = Netns::create();
    ns.ip(&[
        "link", "add", "uplink0", "type", "veth", "peer", "name", "peer0",
    ]);
    ns.ip(&["addr", "add", "10.77.0.2/24", "dev", "uplink0"]);
    ns.ip(&["addr", "add", "10.77.1.2/24", "dev", "uplink0"]);
    ns.ip(&["addr", "add", "fd00:77::2/64", "dev", "uplink0", "nodad"]);
    ns.ip(&["addr", "add", "10.77.0.1/24", "dev", "peer0"]);
    ns.ip(&["link", "set", "uplink0", "up"]);
    ns.ip(&["link", "set", "peer0", "up"]);
    ns.ip(&["link", "set", "lo", "up"]);
    ns.ip(&[
        "route",
        "add",
        "default",
        "via",
        "10.77.0.1",
        "dev",
        "uplink0",
    ]);
    ns.ip(&[
        "-6",
        "route",
        "add",
        "default",
        "via",
        "fd00:77::1",
        "dev",
        "uplink0",
    ]);
    let exe = std::env::current_exe().expect("test binary");
    let output = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args(["--exact", "veth_in_a_namespace", "--nocapture"])
        .env(INNER, "1")
        .output()
        .expect("run the test inside the namespace");
    assert!(
        output.status.success(),
        "inside the namespace:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn inside() {
    use backends::host::{connectivity, default_interface};
    use backends::modem::Bearer;

    let root = std::path::Path::new("/");
    assert_eq!(default_interface(root).as_deref(), Some("uplink0"));
    // With no interface named, the default route's interface is taken.
    let s = connectivity(None).expect("connectivity of the default interface");
    assert_eq!(s.interface.as_deref(), Some("uplink0"));
    assert_eq!(s.bearer, Some(Bearer::Ethernet));
    let ips: Vec<String> = s.ip_addresses.iter().map(IpAddr::to_string).collect();
    assert_eq!(
        ips.get(..2),
        Some(&["10.77.0.2".to_owned(), "10.77.1.2".to_owned()][..])
    );
    assert!(ips.contains(&"fd00:77::2".to_owned()), "{ips:?}");
    assert!(ips.iter().any(|a| a.starts_with("fe80::")), "{ips:?}");
    let routers: Vec<String> = s.routers.iter().map(IpAddr::to_string).collect();
    assert_eq!(routers, ["10.77.0.1", "fd00:77::1"]);
    assert!(s.counters.is_some());
    assert_eq!(s.radio.signal_dbm, None);

    // Datagrams to an outside address leave through uplink0 towards the router (peer0,
    // which drops them): the counters grow by at least that much.
    let before = s.counters.unwrap_or_default();
    let socket = std::net::UdpSocket::bind("10.77.0.2:0").expect("bind on uplink0");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        socket.send_to(&[0u8; 200], "192.0.2.9:9").expect("send");
        let now = connectivity(Some("uplink0"))
            .expect("uplink0")
            .counters
            .unwrap_or_default();
        if now.tx_packets >= before.tx_packets + 3 && now.tx_bytes >= before.tx_bytes + 3 * 228 {
            assert!(now.rx_packets >= before.rx_packets, "{now:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "counters stayed at {now:?} from {before:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let peer = connectivity(Some("peer0")).expect("peer0");
    assert!(peer.routers.is_empty());
    assert_eq!(
        peer.ip_addresses.first().map(IpAddr::to_string).as_deref(),
        Some("10.77.0.1")
    );
}
