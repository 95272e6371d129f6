//! The host's own uplink: bearer, addresses, default routers, Wi-Fi link quality and
//! traffic counters of one network interface, from the kernel (sysfs, procfs and
//! `getifaddrs`, which asks the kernel over netlink).

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use super::under;
use crate::modem::{Bearer, ConnectivitySnapshot, Counters, Radio};

/// Why the uplink could not be looked at.
#[derive(Debug)]
pub enum NetworkError {
    /// No interface of that name (it may appear later: USB adapters, PPP links).
    NoSuchInterface(String),
    /// No interface was configured and no default route names one.
    NoDefaultRoute,
    /// Listing the addresses failed.
    Addresses(io::Error),
}

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchInterface(name) => write!(f, "no network interface {name:?}"),
            Self::NoDefaultRoute => f.write_str("no default route, and no interface configured"),
            Self::Addresses(e) => write!(f, "listing interface addresses: {e}"),
        }
    }
}

impl std::error::Error for NetworkError {}

/// Looks at `interface` (or, when `None`, at the interface of the first default route)
/// on the running machine.
pub fn connectivity(interface: Option<&str>) -> Result<ConnectivitySnapshot, NetworkError> {
    let root = Path::new("/");
    let name = match interface {
        Some(name) => name.to_owned(),
        None => default_interface(root).ok_or(NetworkError::NoDefaultRoute)?,
    };
    let mut snapshot = interface_facts(root, &name)?;
    snapshot.ip_addresses = addresses(&name).map_err(NetworkError::Addresses)?;
    Ok(snapshot)
}

/// Everything but the addresses, from the files under `root`.
pub fn interface_facts(root: &Path, name: &str) -> Result<ConnectivitySnapshot, NetworkError> {
    // A name with a slash would leave /sys/class/net.
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(NetworkError::NoSuchInterface(name.to_owned()));
    }
    let sys = under(root, "/sys/class/net").join(name);
    if !sys.exists() {
        return Err(NetworkError::NoSuchInterface(name.to_owned()));
    }
    let bearer = bearer(&sys);
    let mut radio = Radio::default();
    if let Ok(text) = std::fs::read_to_string(under(root, "/proc/net/wireless")) {
        if let Some(w) = parse_wireless(&text, name) {
            radio.link_quality = Some(w.link);
            radio.signal_dbm = w.level_dbm;
        }
    }
    let mut routers = Vec::new();
    if let Ok(text) = std::fs::read_to_string(under(root, "/proc/net/route")) {
        routers.extend(parse_route_v4(&text, name).into_iter().map(IpAddr::V4));
    }
    if let Ok(text) = std::fs::read_to_string(under(root, "/proc/net/ipv6_route")) {
        routers.extend(parse_route_v6(&text, name).into_iter().map(IpAddr::V6));
    }
    Ok(ConnectivitySnapshot {
        interface: Some(name.to_owned()),
        bearer,
        available_bearers: bearer.into_iter().collect(),
        radio,
        ip_addresses: Vec::new(),
        routers,
        link_utilization: None,
        apns: Vec::new(),
        counters: counters(&sys),
        data_connections: Vec::new(),
    })
}

/// Link speed in Mbit/s as the driver reports it (Ethernet); `None` where it has none.
pub fn link_speed_mbps(root: &Path, name: &str) -> Option<u64> {
    if name.contains('/') {
        return None;
    }
    let path = under(root, "/sys/class/net").join(name).join("speed");
    // Reads fail with EINVAL on a link that is down; -1 means unknown.
    let speed: i64 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    u64::try_from(speed).ok().filter(|s| *s > 0)
}

/// The interface of the first default route, IPv4 before IPv6.
pub fn default_interface(root: &Path) -> Option<String> {
    let v4 = std::fs::read_to_string(under(root, "/proc/net/route")).unwrap_or_default();
    for line in v4.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [iface, dest, _gw, flags, ..] = f.as_slice() {
            let up = u16::from_str_radix(flags, 16).is_ok_and(|fl| fl & RTF_UP != 0);
            if *dest == "00000000" && up {
                return Some((*iface).to_owned());
            }
        }
    }
    let v6 = std::fs::read_to_string(under(root, "/proc/net/ipv6_route")).unwrap_or_default();
    for line in v6.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [dest, dest_len, _, _, next_hop, _, _, _, flags, iface] = f.as_slice() {
            let up = u32::from_str_radix(flags, 16).is_ok_and(|fl| fl & u32::from(RTF_UP) != 0);
            if dest.bytes().all(|b| b == b'0')
                && *dest_len == "00"
                && up
                && !next_hop.bytes().all(|b| b == b'0')
                && *iface != "lo"
            {
                return Some((*iface).to_owned());
            }
        }
    }
    None
}

/// Every address of `name`, IPv4 first, in the kernel's order within a family.
pub fn addresses(name: &str) -> io::Result<Vec<IpAddr>> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        if ifa.interface_name != name {
            continue;
        }
        let Some(address) = ifa.address else { continue };
        if let Some(sin) = address.as_sockaddr_in() {
            v4.push(IpAddr::V4(sin.ip()));
        } else if let Some(sin6) = address.as_sockaddr_in6() {
            v6.push(IpAddr::V6(sin6.ip()));
        }
    }
    v4.extend(v6);
    Ok(v4)
}

const RTF_UP: u16 = 0x0001;
const RTF_GATEWAY: u16 = 0x0002;

/// ARPHRD_* link types of /sys/class/net/*/type (linux/if_arp.h).
const ARPHRD_ETHER: u32 = 1;
const ARPHRD_IEEE802154: u32 = 804;
const ARPHRD_6LOWPAN: u32 = 825;

fn bearer(sys: &Path) -> Option<Bearer> {
    let devtype = std::fs::read_to_string(sys.join("uevent"))
        .ok()
        .and_then(|u| {
            u.lines()
                .find_map(|l| l.strip_prefix("DEVTYPE=").map(str::to_owned))
        });
    if sys.join("wireless").exists()
        || sys.join("phy80211").exists()
        || devtype.as_deref() == Some("wlan")
    {
        return Some(Bearer::Wlan);
    }
    if devtype.as_deref() == Some("bluetooth") {
        return Some(Bearer::Bluetooth);
    }
    // A wwan device says it is cellular but not which technology: the modem knows that.
    if devtype.as_deref() == Some("wwan") {
        return None;
    }
    let link_type: u32 = std::fs::read_to_string(sys.join("type"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    match link_type {
        ARPHRD_ETHER => Some(Bearer::Ethernet),
        ARPHRD_IEEE802154 | ARPHRD_6LOWPAN => Some(Bearer::Ieee802154),
        // Loopback, PPP, tunnels: no bearer the object can name.
        _ => None,
    }
}

fn counters(sys: &Path) -> Option<Counters> {
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(sys.join("statistics").join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Some(Counters {
        tx_bytes: read("tx_bytes")?,
        rx_bytes: read("rx_bytes")?,
        tx_packets: read("tx_packets")?,
        rx_packets: read("rx_packets")?,
    })
}

#[derive(Debug, PartialEq)]
struct Wireless {
    /// The driver's link quality (often out of 70).
    link: i32,
    /// Signal level in dBm, when the driver reports it in dBm.
    level_dbm: Option<i32>,
}

/// One interface's line of /proc/net/wireless:
/// ` wlan0: 0000   54.  -56.  -256        0      0      0      0     18        0`.
fn parse_wireless(text: &str, name: &str) -> Option<Wireless> {
    for line in text.lines().skip(2) {
        let Some((iface, rest)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() != name {
            continue;
        }
        let mut fields = rest.split_whitespace().skip(1);
        let number = |f: Option<&str>| -> Option<i32> {
            let v: f64 = f?.trim_end_matches('.').parse().ok()?;
            (v.is_finite() && v.abs() < 1e6).then_some(v as i32)
        };
        let link = number(fields.next())?;
        // Levels in dBm are negative; some drivers give an unsigned 0..255 scale instead.
        let level_dbm = number(fields.next()).filter(|l| (-150..0).contains(l));
        return Some(Wireless { link, level_dbm });
    }
    None
}

/// Gateways of the IPv4 default routes through `name` (/proc/net/route: hexadecimal
/// addresses in the kernel's byte order, i.e. little-endian on every Linux target).
fn parse_route_v4(text: &str, name: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [iface, dest, gateway, flags, ..] = f.as_slice() else {
            continue;
        };
        let Ok(flags) = u16::from_str_radix(flags, 16) else {
            continue;
        };
        if *iface != name || *dest != "00000000" || flags & (RTF_UP | RTF_GATEWAY) == 0 {
            continue;
        }
        if let Ok(raw) = u32::from_str_radix(gateway, 16) {
            let ip = Ipv4Addr::from(raw.to_le_bytes());
            if !ip.is_unspecified() && !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out
}

/// Next hops of the IPv6 default routes through `name` (/proc/net/ipv6_route).
fn parse_route_v6(text: &str, name: &str) -> Vec<Ipv6Addr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [dest, dest_len, _, _, next_hop, _, _, _, _, iface] = f.as_slice() else {
            continue;
        };
        if *iface != name || *dest_len != "00" || !dest.bytes().all(|b| b == b'0') {
            continue;
        }
        let Ok(raw) = u128::from_str_radix(next_hop, 16) else {
            continue;
        };
        let ip = Ipv6Addr::from(raw);
        if !ip.is_unspecified() && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
wlan0\t00000000\t FE0A0A0A\t0003\t0\t0\t600\t00000000\t0\t0\t0
";

    const ROUTE6: &str = "\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00450003 eth0
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo
";

    const WIRELESS: &str = "\
Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE
 face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22
wlan0: 0000   54.  -56.  -256        0      0      0      0     18        0
";

    #[test]
    fn default_routes_of_one_interface() {
        assert_eq!(
            parse_route_v4(ROUTE, "eth0"),
            vec![Ipv4Addr::new(192, 168, 2, 1)]
        );
        assert!(parse_route_v4(ROUTE, "lo").is_empty());
        assert_eq!(
            parse_route_v6(ROUTE6, "eth0"),
            vec!["fe80::1".parse::<Ipv6Addr>().unwrap()]
        );
        assert!(parse_route_v6(ROUTE6, "lo").is_empty());
    }

    #[test]
    fn garbled_route_tables_give_nothing() {
        for text in [
            "",
            "Iface\n",
            "eth0 zz 0102A8C0 0003\n",
            "x\neth0 00000000 nothex 0003 0 0\n",
        ] {
            assert!(parse_route_v4(text, "eth0").is_empty());
        }
        assert!(parse_route_v6("00 00 00 00 zz 0 0 0 0 eth0\n", "eth0").is_empty());
    }

    #[test]
    fn wireless_link_quality_and_level() {
        assert_eq!(
            parse_wireless(WIRELESS, "wlan0"),
            Some(Wireless {
                link: 54,
                level_dbm: Some(-56)
            })
        );
        assert_eq!(parse_wireless(WIRELESS, "wlan1"), None);
        let unsigned_scale = WIRELESS.replace("-56.", "200.");
        assert_eq!(
            parse_wireless(&unsigned_scale, "wlan0").unwrap().level_dbm,
            None
        );
        assert_eq!(parse_wireless("a\nb\nwlan0: 0000 x. y.\n", "wlan0"), None);
    }

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, text) in [
            ("proc/net/route", ROUTE),
            ("proc/net/ipv6_route", ROUTE6),
            ("proc/net/wireless", WIRELESS),
            ("sys/class/net/eth0/type", "1\n"),
            ("sys/class/net/eth0/uevent", "INTERFACE=eth0\nIFINDEX=2\n"),
            ("sys/class/net/eth0/speed", "1000\n"),
            ("sys/class/net/eth0/statistics/tx_bytes", "1000\n"),
            ("sys/class/net/eth0/statistics/rx_bytes", "20000\n"),
            ("sys/class/net/eth0/statistics/tx_packets", "10\n"),
            ("sys/class/net/eth0/statistics/rx_packets", "40\n"),
            ("sys/class/net/wlan0/type", "1\n"),
            (
                "sys/class/net/wlan0/uevent",
                "DEVTYPE=wlan\nINTERFACE=wlan0\n",
            ),
            ("sys/class/net/wwan0/type", "65534\n"),
            ("sys/class/net/wwan0/uevent", "DEVTYPE=wwan\n"),
            ("sys/class/net/lo/type", "772\n"),
        ] {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn ethernet_facts_from_sysfs_and_procfs() {
        let dir = fixture();
        let s = interface_facts(dir.path(), "eth0").unwrap();
        assert_eq!(s.interface.as_deref(), Some("eth0"));
        assert_eq!(s.bearer, Some(Bearer::Ethernet));
        assert_eq!(s.available_bearers, vec![Bearer::Ethernet]);
        assert_eq!(
            s.routers,
            vec![
                "192.168.2.1".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        assert_eq!(
            s.counters,
            Some(Counters {
                tx_bytes: 1000,
                rx_bytes: 20000,
                tx_packets: 10,
                rx_packets: 40
            })
        );
        assert_eq!(s.radio, Radio::default());
        assert_eq!(link_speed_mbps(dir.path(), "eth0"), Some(1000));
        assert_eq!(link_speed_mbps(dir.path(), "wlan0"), None);
    }

    #[test]
    fn wifi_wwan_and_loopback() {
        let dir = fixture();
        let w = interface_facts(dir.path(), "wlan0").unwrap();
        assert_eq!(w.bearer, Some(Bearer::Wlan));
        assert_eq!(w.radio.signal_dbm, Some(-56));
        assert_eq!(w.radio.link_quality, Some(54));
        assert_eq!(w.routers, vec!["10.10.10.254".parse::<IpAddr>().unwrap()]);
        assert_eq!(w.counters, None);
        assert_eq!(interface_facts(dir.path(), "wwan0").unwrap().bearer, None);
        assert_eq!(interface_facts(dir.path(), "lo").unwrap().bearer, None);
    }

    #[test]
    fn unknown_or_escaping_names() {
        let dir = fixture();
        for name in ["eth9", "", "..", "../eth0", "eth0/statistics"] {
            assert!(
                matches!(
                    interface_facts(dir.path(), name),
                    Err(NetworkError::NoSuchInterface(_))
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn default_interface_from_the_route_tables() {
        let dir = fixture();
        assert_eq!(default_interface(dir.path()).as_deref(), Some("eth0"));
        std::fs::write(dir.path().join("proc/net/route"), "Iface\n").unwrap();
        assert_eq!(default_interface(dir.path()).as_deref(), Some("eth0"));
        std::fs::write(dir.path().join("proc/net/ipv6_route"), "").unwrap();
        assert_eq!(default_interface(dir.path()), None);
    }

    #[test]
    fn loopback_of_this_machine() {
        let s = connectivity(Some("lo")).unwrap();
        assert!(s.ip_addresses.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(s.counters.is_some());
        assert!(matches!(
            connectivity(Some("no-such-if0")),
            Err(NetworkError::NoSuchInterface(_))
        ));
    }
}
