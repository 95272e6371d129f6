//! Parsers of 3GPP TS 27.007 answers. Each takes the answer's information lines and
//! returns what it could make of them; nothing here panics on any input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::fields::{after_prefix, Field};

/// `<AcT>` of +COPS and the registration commands (27.007 7.3 and 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessTechnology {
    Gsm,
    GsmCompact,
    Utran,
    GsmEgprs,
    UtranHsdpa,
    UtranHsupa,
    UtranHspa,
    Eutran,
    EcGsmIot,
    EutranNbIot,
    /// E-UTRA connected to a 5G core.
    Eutra5gcn,
    /// NR connected to a 5G core (standalone).
    Nr5gcn,
    NgRan,
    /// E-UTRA-NR dual connectivity (5G non-standalone).
    EutraNrDual,
    /// LTE Cat-M (u-blox and others report it apart from E-UTRAN).
    EutranCatM,
}

impl AccessTechnology {
    pub fn from_act(n: i64) -> Option<AccessTechnology> {
        use AccessTechnology::*;
        Some(match n {
            0 => Gsm,
            1 => GsmCompact,
            2 => Utran,
            3 => GsmEgprs,
            4 => UtranHsdpa,
            5 => UtranHsupa,
            6 => UtranHspa,
            7 => Eutran,
            8 => EcGsmIot,
            9 => EutranNbIot,
            10 => Eutra5gcn,
            11 => Nr5gcn,
            12 => NgRan,
            13 => EutraNrDual,
            _ => return None,
        })
    }

    /// The generation, as an operator says it.
    pub fn generation(self) -> &'static str {
        use AccessTechnology::*;
        match self {
            Gsm | GsmCompact | GsmEgprs | EcGsmIot => "2G",
            Utran | UtranHsdpa | UtranHsupa | UtranHspa => "3G",
            Eutran | EutranNbIot | Eutra5gcn | EutranCatM => "4G",
            Nr5gcn | NgRan | EutraNrDual => "5G",
        }
    }
}

/// `<stat>` of +CREG, +CGREG, +CEREG, +C5GREG (27.007 7.2, 10.1.20, 10.1.22, 10.1.40).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    NotRegistered,
    Home,
    Searching,
    Denied,
    Unknown,
    Roaming,
    SmsOnlyHome,
    SmsOnlyRoaming,
    Emergency,
    CsfbNotPreferredHome,
    CsfbNotPreferredRoaming,
    /// Attached for access to RLOS (5G).
    Rlos,
}

impl RegistrationState {
    pub fn from_stat(n: i64) -> Option<RegistrationState> {
        use RegistrationState::*;
        Some(match n {
            0 => NotRegistered,
            1 => Home,
            2 => Searching,
            3 => Denied,
            4 => Unknown,
            5 => Roaming,
            6 => SmsOnlyHome,
            7 => SmsOnlyRoaming,
            8 => Emergency,
            9 => CsfbNotPreferredHome,
            10 => CsfbNotPreferredRoaming,
            11 => Rlos,
            _ => return None,
        })
    }

    pub fn is_registered(self) -> bool {
        use RegistrationState::*;
        matches!(
            self,
            Home | Roaming
                | SmsOnlyHome
                | SmsOnlyRoaming
                | CsfbNotPreferredHome
                | CsfbNotPreferredRoaming
        )
    }
}

fn first_line<'a>(lines: &'a [String], prefix: &str) -> Option<Vec<Field<'a>>> {
    lines.iter().find_map(|l| after_prefix(l, prefix))
}

fn field<'a, 'b>(f: &'b [Field<'a>], i: usize) -> Option<&'b Field<'a>> {
    f.get(i).filter(|f| !f.is_empty())
}

/// AT+CSQ (27.007 8.5): `+CSQ: <rssi>,<ber>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Csq {
    /// dBm; `None` for 99 (not known or not detectable).
    pub rssi_dbm: Option<i32>,
    /// RxQual 0..7; `None` for 99.
    pub ber: Option<u8>,
}

pub fn csq(lines: &[String]) -> Option<Csq> {
    let f = first_line(lines, "+CSQ")?;
    let rssi = field(&f, 0)?.int()?;
    Some(Csq {
        rssi_dbm: csq_to_dbm(rssi),
        ber: field(&f, 1)
            .and_then(Field::int)
            .filter(|b| (0..=7).contains(b))
            .and_then(|b| u8::try_from(b).ok()),
    })
}

/// 0 is -113 dBm or less, 31 is -51 dBm or more, 2 dBm a step; 99 unknown.
pub fn csq_to_dbm(n: i64) -> Option<i32> {
    match n {
        0..=31 => i32::try_from(-113 + 2 * n).ok(),
        _ => None,
    }
}

/// AT+CESQ (27.007 8.69): `+CESQ: <rxlev>,<ber>,<rscp>,<ecno>,<rsrq>,<rsrp>`. Each
/// value is the lower bound of the index's range (index 0 means "below" it).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cesq {
    /// GSM RSSI, dBm.
    pub rxlev_dbm: Option<f64>,
    /// UTRA RSCP, dBm.
    pub rscp_dbm: Option<f64>,
    /// UTRA Ec/No, dB.
    pub ecno_db: Option<f64>,
    /// E-UTRA RSRQ, dB.
    pub rsrq_db: Option<f64>,
    /// E-UTRA RSRP, dBm.
    pub rsrp_dbm: Option<f64>,
}

pub fn cesq(lines: &[String]) -> Option<Cesq> {
    let f = first_line(lines, "+CESQ")?;
    if f.len() < 6 {
        return None;
    }
    let idx = |i: usize| field(&f, i).and_then(Field::int);
    Some(Cesq {
        rxlev_dbm: idx(0).and_then(cesq_rxlev),
        rscp_dbm: idx(2).and_then(cesq_rscp),
        ecno_db: idx(3).and_then(cesq_ecno),
        rsrq_db: idx(4).and_then(cesq_rsrq),
        rsrp_dbm: idx(5).and_then(cesq_rsrp),
    })
}

/// 0: below -110 dBm, 1: -110 <= rssi < -109, ..., 63: -48 or more; 99 unknown.
pub fn cesq_rxlev(n: i64) -> Option<f64> {
    (0..=63).contains(&n).then(|| -111.0 + n as f64)
}
/// 0: below -120 dBm, ..., 96: -25 or more; 255 unknown.
pub fn cesq_rscp(n: i64) -> Option<f64> {
    (0..=96).contains(&n).then(|| -121.0 + n as f64)
}
/// 0: below -24 dB, half-dB steps, 49: 0 dB or more; 255 unknown.
pub fn cesq_ecno(n: i64) -> Option<f64> {
    (0..=49).contains(&n).then(|| -24.5 + n as f64 / 2.0)
}
/// 0: below -19.5 dB, half-dB steps, 34: -3 dB or more; 255 unknown.
pub fn cesq_rsrq(n: i64) -> Option<f64> {
    (0..=34).contains(&n).then(|| -20.0 + n as f64 / 2.0)
}
/// 0: below -140 dBm, 1: -140 <= rsrp < -139, ..., 97: -44 or more; 255 unknown.
pub fn cesq_rsrp(n: i64) -> Option<f64> {
    (0..=97).contains(&n).then(|| -141.0 + n as f64)
}

/// AT+COPS? (27.007 7.3): `+COPS: <mode>[,<format>,<oper>[,<AcT>]]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cops {
    /// The long or short alphanumeric name, when the format was 0 or 1.
    pub name: Option<String>,
    /// From the numeric format (2): MCC and MNC.
    pub mcc: Option<u16>,
    pub mnc: Option<u16>,
    /// Whether the MNC has three digits (`310410` vs `26201`).
    pub mnc_three_digits: bool,
    pub access_technology: Option<AccessTechnology>,
}

pub fn cops(lines: &[String]) -> Option<Cops> {
    let f = first_line(lines, "+COPS")?;
    field(&f, 0)?.int()?;
    let mut out = Cops::default();
    if let (Some(format), Some(oper)) = (field(&f, 1).and_then(Field::int), field(&f, 2)) {
        if format == 2 {
            if let Some((mcc, mnc, three)) = plmn(oper.text) {
                out.mcc = Some(mcc);
                out.mnc = Some(mnc);
                out.mnc_three_digits = three;
            }
        } else if oper.text.len() <= 64 && !oper.text.chars().any(char::is_control) {
            out.name = Some(oper.text.to_string());
        }
    }
    out.access_technology = field(&f, 3)
        .and_then(Field::int)
        .and_then(AccessTechnology::from_act);
    Some(out)
}

/// `26201`, `310410`, `262-01`: MCC, MNC and whether the MNC has three digits.
pub fn plmn(s: &str) -> Option<(u16, u16, bool)> {
    let digits: String = s.chars().filter(|c| *c != '-' && *c != ' ').collect();
    if !(5..=6).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mcc = digits.get(..3)?.parse().ok()?;
    let mnc_text = digits.get(3..)?;
    Some((mcc, mnc_text.parse().ok()?, mnc_text.len() == 3))
}

/// AT+CREG?, +CGREG?, +CEREG?, +C5GREG?: `+CxREG: <n>,<stat>[,[<lac|tac>],[<ci>],[<AcT>]...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    pub state: RegistrationState,
    /// LAC (2G/3G) or TAC (4G/5G).
    pub area: Option<u32>,
    /// Cell identity: 16 or 28 bits before 5G, 36 bits on NR.
    pub cell_id: Option<u64>,
    pub access_technology: Option<AccessTechnology>,
}

/// `prefix` is `+CREG`, `+CGREG`, `+CEREG` or `+C5GREG`.
pub fn registration(lines: &[String], prefix: &str) -> Option<Registration> {
    let f = first_line(lines, prefix)?;
    field(&f, 0)?.int()?;
    let state = RegistrationState::from_stat(field(&f, 1)?.int()?)?;
    // +CGREG puts <rac> after <AcT>, +CEREG and +C5GREG have no <rac> before it: the
    // first three optional fields agree across all four.
    let area = field(&f, 2)
        .and_then(Field::hex)
        .and_then(|a| u32::try_from(a).ok())
        .filter(|a| *a != 0xffff && *a != 0xfffffe && *a != 0xffffff);
    let cell_id = field(&f, 3)
        .and_then(Field::hex)
        .filter(|c| *c < 1 << 36 && *c != 0xffff_ffff);
    let access_technology = field(&f, 4)
        .and_then(Field::int)
        .and_then(AccessTechnology::from_act);
    Some(Registration {
        state,
        area,
        cell_id,
        access_technology,
    })
}

/// One line of AT+CGDCONT? (27.007 10.1.1): `+CGDCONT: <cid>,<PDP_type>,<APN>,...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdpContext {
    pub cid: u32,
    pub pdp_type: String,
    pub apn: String,
}

pub fn cgdcont(lines: &[String]) -> Vec<PdpContext> {
    lines
        .iter()
        .filter_map(|l| {
            let f = after_prefix(l, "+CGDCONT")?;
            let cid = field(&f, 0)?.uint()?;
            let text = |i: usize| {
                f.get(i)
                    .map(|f| f.text.chars().take(100).collect::<String>())
                    .unwrap_or_default()
            };
            Some(PdpContext {
                cid,
                pdp_type: text(1),
                apn: text(2),
            })
        })
        .collect()
}

/// AT+CGPADDR (27.007 10.1.14): `+CGPADDR: <cid>[,<PDP_addr_1>[,<PDP_addr_2>]]`, per cid.
pub fn cgpaddr(lines: &[String]) -> Vec<(u32, Vec<IpAddr>)> {
    lines
        .iter()
        .filter_map(|l| {
            let f = after_prefix(l, "+CGPADDR")?;
            let cid = field(&f, 0)?.uint()?;
            let addrs = f
                .iter()
                .skip(1)
                .filter_map(|a| ip_address(a.text))
                .filter(|a| !a.is_unspecified())
                .collect();
            Some((cid, addrs))
        })
        .collect()
}

/// One line of AT+CGCONTRDP (27.007 10.1.23): `+CGCONTRDP: <cid>,<bearer_id>,<apn>
/// [,<local_addr and subnet_mask>[,<gw_addr>[,<DNS_prim_addr>[,<DNS_sec_addr>...]]]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicContext {
    pub cid: u32,
    pub apn: String,
    pub address: Option<IpAddr>,
    /// Prefix length from the subnet mask.
    pub prefix_len: Option<u8>,
    pub gateway: Option<IpAddr>,
    pub dns: Vec<IpAddr>,
}

pub fn cgcontrdp(lines: &[String]) -> Vec<DynamicContext> {
    lines
        .iter()
        .filter_map(|l| {
            let f = after_prefix(l, "+CGCONTRDP")?;
            let cid = field(&f, 0)?.uint()?;
            let apn = f
                .get(2)
                .map(|a| a.text.chars().take(100).collect())
                .unwrap_or_default();
            let (address, prefix_len) = match f.get(3).map(|a| address_and_mask(a.text)) {
                Some(Some((a, p))) => (Some(a), p),
                _ => (None, None),
            };
            let ip = |i: usize| {
                f.get(i)
                    .and_then(|a| ip_address(a.text))
                    .filter(|a| !a.is_unspecified())
            };
            Some(DynamicContext {
                cid,
                apn,
                address,
                prefix_len,
                gateway: ip(4),
                dns: [ip(5), ip(6)].into_iter().flatten().collect(),
            })
        })
        .collect()
}

/// An address as 27.007 writes it: dotted IPv4, IPv6 as 16 dotted decimal octets, or
/// (after AT+CGPIAF) IPv6 in colon notation.
pub fn ip_address(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if s.contains(':') {
        return s.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let octets = dotted(s)?;
    match octets.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            octets[0], octets[1], octets[2], octets[3],
        ))),
        16 => {
            let b: [u8; 16] = octets.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// `a.b.c.d.m1.m2.m3.m4` (8 octets) or 32 octets for IPv6, or colon notation with a
/// space or `/` before the mask.
fn address_and_mask(s: &str) -> Option<(IpAddr, Option<u8>)> {
    let s = s.trim();
    if s.contains(':') {
        let (addr, mask) = match s.split_once([' ', '/']) {
            Some((a, m)) => (a, Some(m)),
            None => (s, None),
        };
        let addr = addr.parse::<Ipv6Addr>().ok()?;
        let prefix = mask.and_then(|m| {
            m.parse::<Ipv6Addr>()
                .ok()
                .map(|m| u128::from(m).leading_ones() as u8)
                .or_else(|| m.parse::<u8>().ok().filter(|p| *p <= 128))
        });
        return Some((IpAddr::V6(addr), prefix));
    }
    let octets = dotted(s)?;
    let ones = |mask: &[u8]| mask.iter().map(|b| b.count_ones()).sum::<u32>() as u8;
    match octets.len() {
        4 | 16 => Some((ip_address(s)?, None)),
        8 => {
            let (a, m) = octets.split_at(4);
            Some((
                IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
                Some(ones(m)),
            ))
        }
        32 => {
            let (a, m) = octets.split_at(16);
            let b: [u8; 16] = a.try_into().ok()?;
            Some((IpAddr::V6(Ipv6Addr::from(b)), Some(ones(m))))
        }
        _ => None,
    }
}

fn dotted(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() > 160 {
        return None;
    }
    s.split('.').map(|o| o.parse::<u8>().ok()).collect()
}

/// AT+CGSN (27.007 5.4): the IMEI, bare or as `+CGSN: "<sn>"`; 15 digits.
pub fn imei(lines: &[String]) -> Option<String> {
    digits_line(lines, &["+CGSN", "+GSN"], 15..=15)
}

/// AT+CIMI (27.007 5.6): the IMSI, 6 to 15 digits.
pub fn imsi(lines: &[String]) -> Option<String> {
    digits_line(lines, &["+CIMI"], 6..=15)
}

/// AT+CCID and the vendors' variants (+ICCID, +QCCID): the SIM's ICCID, 18 to 22
/// characters, digits with a trailing F padding on some SIMs.
pub fn iccid(lines: &[String]) -> Option<String> {
    lines.iter().find_map(|l| {
        let value = ["+CCID", "+ICCID", "+QCCID"]
            .iter()
            .find_map(|p| after_prefix(l, p).and_then(|f| f.first().map(|f| f.text)))
            .unwrap_or(l.trim());
        let value = value.trim_end_matches(['F', 'f']);
        ((18..=22).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()))
            .then(|| value.to_string())
    })
}

fn digits_line(
    lines: &[String],
    prefixes: &[&str],
    len: std::ops::RangeInclusive<usize>,
) -> Option<String> {
    lines.iter().find_map(|l| {
        let value = prefixes
            .iter()
            .find_map(|p| after_prefix(l, p).and_then(|f| f.first().map(|f| f.text)))
            .unwrap_or(l.trim());
        (len.contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()))
            .then(|| value.to_string())
    })
}

/// AT+CGMI (27.007 5.1): the manufacturer, bare or `+CGMI: <manufacturer>`.
pub fn manufacturer(lines: &[String]) -> Option<String> {
    lines.iter().find_map(|l| {
        let value = after_prefix(l, "+CGMI")
            .and_then(|f| f.first().map(|f| f.text.to_string()))
            .unwrap_or_else(|| l.trim().to_string());
        (!value.is_empty() && value.len() <= 64 && !value.chars().any(char::is_control))
            .then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn csq_vectors() {
        let c = csq(&l(&["+CSQ: 17,99"])).unwrap();
        assert_eq!(c.rssi_dbm, Some(-79));
        assert_eq!(c.ber, None);
        assert_eq!(csq(&l(&["+CSQ: 0,0"])).unwrap().rssi_dbm, Some(-113));
        assert_eq!(csq(&l(&["+CSQ: 31,7"])).unwrap().rssi_dbm, Some(-51));
        assert_eq!(csq(&l(&["+CSQ: 99,99"])).unwrap().rssi_dbm, None);
        assert_eq!(csq(&l(&["+CSQ: 32,99"])).unwrap().rssi_dbm, None);
        assert_eq!(csq(&l(&["+CSQ: -1,99"])).unwrap().rssi_dbm, None);
        assert_eq!(csq(&l(&["+CSQ:"])), None);
        assert_eq!(csq(&l(&[])), None);
    }

    #[test]
    fn cesq_vectors() {
        // LTE only: RSRQ index 20 = -10 dB, RSRP index 50 = -91 dBm.
        let c = cesq(&l(&["+CESQ: 99,99,255,255,20,50"])).unwrap();
        assert_eq!(c.rxlev_dbm, None);
        assert_eq!(c.rscp_dbm, None);
        assert_eq!(c.rsrq_db, Some(-10.0));
        assert_eq!(c.rsrp_dbm, Some(-91.0));
        let c = cesq(&l(&["+CESQ: 63,0,96,49,34,97"])).unwrap();
        assert_eq!(c.rxlev_dbm, Some(-48.0));
        assert_eq!(c.rscp_dbm, Some(-25.0));
        assert_eq!(c.ecno_db, Some(0.0));
        assert_eq!(c.rsrq_db, Some(-3.0));
        assert_eq!(c.rsrp_dbm, Some(-44.0));
        let c = cesq(&l(&["+CESQ: 1,0,1,1,1,1"])).unwrap();
        assert_eq!(c.rxlev_dbm, Some(-110.0));
        assert_eq!(c.rsrp_dbm, Some(-140.0));
        assert_eq!(c.rsrq_db, Some(-19.5));
        assert_eq!(cesq(&l(&["+CESQ: 99,99"])), None);
        assert_eq!(
            cesq(&l(&["+CESQ: 99,99,255,255,35,98"])).unwrap().rsrp_dbm,
            None
        );
    }

    #[test]
    fn cops_vectors() {
        let c = cops(&l(&["+COPS: 0,2,\"46000\",7"])).unwrap();
        assert_eq!(
            (c.mcc, c.mnc, c.mnc_three_digits),
            (Some(460), Some(0), false)
        );
        assert_eq!(c.access_technology, Some(AccessTechnology::Eutran));
        let c = cops(&l(&["+COPS: 0,0,\"T-Mobile Wholesale\",7"])).unwrap();
        assert_eq!(c.name.as_deref(), Some("T-Mobile Wholesale"));
        let c = cops(&l(&["+COPS: 0,2,\"310410\",13"])).unwrap();
        assert_eq!(
            (c.mcc, c.mnc, c.mnc_three_digits),
            (Some(310), Some(410), true)
        );
        assert_eq!(c.access_technology, Some(AccessTechnology::EutraNrDual));
        let c = cops(&l(&["+COPS: 0"])).unwrap();
        assert_eq!(c, Cops::default());
        let c = cops(&l(&["+COPS: 0,2,\"2620\",99"])).unwrap();
        assert_eq!((c.mcc, c.access_technology), (None, None));
        assert_eq!(cops(&l(&["+COPS: x"])), None);
    }

    #[test]
    fn registration_vectors() {
        let r = registration(&l(&["+CEREG: 2,1,\"3193\",\"08F381C5\",7"]), "+CEREG").unwrap();
        assert_eq!(r.state, RegistrationState::Home);
        assert_eq!(r.area, Some(0x3193));
        assert_eq!(r.cell_id, Some(0x08f3_81c5));
        assert_eq!(r.access_technology, Some(AccessTechnology::Eutran));
        let r = registration(&l(&["+CREG: 0,5"]), "+CREG").unwrap();
        assert_eq!(r.state, RegistrationState::Roaming);
        assert_eq!((r.area, r.cell_id), (None, None));
        // 27.007 example shapes: omitted fields, 5G cell id of 36 bits.
        let r = registration(
            &l(&["+C5GREG: 2,1,\"00A1B2\",\"00000000F\",11,,"]),
            "+C5GREG",
        )
        .unwrap();
        assert_eq!(r.area, Some(0xa1b2));
        assert_eq!(r.cell_id, Some(0xf));
        assert_eq!(r.access_technology, Some(AccessTechnology::Nr5gcn));
        let r = registration(&l(&["+CGREG: 2,2,,,"]), "+CGREG").unwrap();
        assert_eq!(r.state, RegistrationState::Searching);
        assert!(registration(&l(&["+CEREG: 2,12"]), "+CEREG").is_none());
        assert!(registration(&l(&["+CEREG: 2"]), "+CEREG").is_none());
        assert!(RegistrationState::Roaming.is_registered());
        assert!(!RegistrationState::Denied.is_registered());
    }

    #[test]
    fn contexts_and_addresses() {
        let c = cgdcont(&l(&[
            "+CGDCONT: 1,\"IP\",\"internet.telekom\",\"0.0.0.0\",0,0,0,0",
            "+CGDCONT: 2,\"IPV4V6\",\"ims\",\"\",0,0",
            "+CGDCONT: x",
        ]));
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].apn, "internet.telekom");
        assert_eq!(c[1].pdp_type, "IPV4V6");

        let a = cgpaddr(&l(&[
            "+CGPADDR: 1,\"10.45.12.7\",\"32.1.13.184.0.0.0.0.0.0.0.0.0.0.0.1\"",
            "+CGPADDR: 2,\"0.0.0.0\"",
            "+CGPADDR: 3,\"2001:db8::5\"",
        ]));
        assert_eq!(
            a[0].1,
            vec![
                "10.45.12.7".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse::<IpAddr>().unwrap()
            ]
        );
        assert!(a[1].1.is_empty());
        assert_eq!(a[2].1, vec!["2001:db8::5".parse::<IpAddr>().unwrap()]);

        let d = cgcontrdp(&l(&[
            "+CGCONTRDP: 1,5,\"internet\",\"10.45.12.7.255.255.255.0\",\"10.45.12.1\",\"8.8.8.8\",\"8.8.4.4\"",
        ]));
        assert_eq!(d[0].cid, 1);
        assert_eq!(d[0].apn, "internet");
        assert_eq!(d[0].address, Some("10.45.12.7".parse().unwrap()));
        assert_eq!(d[0].prefix_len, Some(24));
        assert_eq!(d[0].gateway, Some("10.45.12.1".parse().unwrap()));
        assert_eq!(d[0].dns.len(), 2);
        assert_eq!(ip_address("1.2.3"), None);
        assert_eq!(ip_address("1.2.3.256"), None);
        assert_eq!(ip_address(""), None);
    }

    #[test]
    fn identities() {
        assert_eq!(
            imei(&l(&["490154203237518"])).as_deref(),
            Some("490154203237518")
        );
        assert_eq!(
            imei(&l(&["+CGSN: \"490154203237518\""])).as_deref(),
            Some("490154203237518")
        );
        assert_eq!(imei(&l(&["49015420323751"])), None);
        assert_eq!(
            imsi(&l(&["262011234567890"])).as_deref(),
            Some("262011234567890")
        );
        assert_eq!(
            iccid(&l(&["+CCID: 89490200001234567890"])).as_deref(),
            Some("89490200001234567890")
        );
        assert_eq!(
            iccid(&l(&["+QCCID: 8986031876024014423F"])).as_deref(),
            Some("8986031876024014423")
        );
        assert_eq!(
            iccid(&l(&["+ICCID: 89860318760240144236"])).as_deref(),
            Some("89860318760240144236")
        );
        assert_eq!(
            iccid(&l(&["89860318760240144236"])).as_deref(),
            Some("89860318760240144236")
        );
        assert_eq!(iccid(&l(&["SIM not ready"])), None);
        assert_eq!(manufacturer(&l(&["Quectel"])).as_deref(), Some("Quectel"));
        assert_eq!(
            manufacturer(&l(&["+CGMI: u-blox"])).as_deref(),
            Some("u-blox")
        );
        assert_eq!(plmn("262-01"), Some((262, 1, false)));
    }
}
