//! Every parser and the exchange on mangled real answers: truncated at every byte,
//! bytes flipped, fields dropped and repeated. None may panic.

use super::{gnss, parse, power_saving, response::Exchange, vendor};

const VECTORS: &[&str] = &[
    "+CSQ: 17,99",
    "+CESQ: 99,99,255,255,20,50",
    "+COPS: 0,2,\"46000\",7",
    "+COPS: 0,0,\"T-Mobile Wholesale\",7",
    "+CREG: 2,1,\"3193\",\"08F381C5\",7",
    "+CEREG: 2,1,\"3193\",\"08F381C5\",7",
    "+C5GREG: 2,1,\"00A1B2\",\"00000000F\",11,,",
    "+CGDCONT: 1,\"IP\",\"internet.telekom\",\"0.0.0.0\",0,0,0,0",
    "+CGPADDR: 1,\"10.45.12.7\",\"32.1.13.184.0.0.0.0.0.0.0.0.0.0.0.1\"",
    "+CGCONTRDP: 1,5,\"internet\",\"10.45.12.7.255.255.255.0\",\"10.45.12.1\",\"8.8.8.8\",\"8.8.4.4\"",
    "+CGCONTRDP: 1,5,\"ims\",\"32.1.13.184.0.0.0.0.0.0.0.0.0.0.0.1.255.255.255.255.255.255.255.255.0.0.0.0.0.0.0.0\"",
    "+CGCONTRDP: 1,5,\"ims\",\"2001:db8::1 ffff:ffff:ffff:ffff::\"",
    "490154203237518",
    "+QCCID: 8986031876024014423F",
    "+QENG: \"servingcell\",\"NOCONN\",\"LTE\",\"FDD\",460,00,8F381C5,107,1300,3,5,5,3193,-98,-13,-70,-3,0,0,21",
    "+QENG: \"servingcell\",\"NOCONN\",\"NR5G-SA\",\"TDD\",262,01,1A2B3C4D5,123,00A1B2,643296,78,12,-85,-11,15,1,-",
    "+QENG: \"servingcell\",\"NOCONN\",\"WCDMA\",262,02,DB8,2E3F0F1,10638,33,1,-81,-3,-,-,-,-,-",
    "+QENG: \"LTE\",\"FDD\",262,01,25A5507,212,500,1,5,5,67BD,-93,-7,-65,15,28,-,-",
    "+QCSQ: \"LTE\",-66,-94,142,-9",
    "+CPSI: LTE,Online,404-45,0x21F9,322642,453,EUTRAN-BAND40,39275,4,4,-168,-1126,-773,7",
    "+CPSI: NR5G_SA,Online,460-11,0x6F4700,29869309958,201,NR5G_BAND78,627264,-740,-110,190",
    "+UCGED: 2",
    "6,4,001,01",
    "2525,5,25,50,2b67,69f6bc7,111,00000000,ffff,ff,67,19,0.00,255,255,255,67,11,255,0,255,255,0,0,0",
    "+CPSMS: 1,,,\"00100001\",\"00000101\"",
    "+CEDRXS: 4,\"0101\"",
    "+CEDRXRDP: 4,\"0101\",\"0101\",\"0011\"",
    "+QGPSLOC: 061951.000,31.16734,121.36458,1.1,40.0,3,12.30,3.6,1.9,110513,09",
    "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47",
    "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A",
    "+CME ERROR: 10",
    "+CMS ERROR: 310",
    "OK",
];

const NASTY: &[&str] = &[
    "",
    ",",
    ",,,,",
    "\"",
    "\"\"\"",
    "+",
    ":",
    "+X:",
    "-",
    "0x",
    "ffffffffffffffffffffffff",
    "-99999999999999999999",
    "1e308",
    "NaN",
    "inf",
    "é",
    "\u{fffd}",
    "255.255.255.255.255",
];

/// A small deterministic generator: the test is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn all_parsers(lines: &[String]) {
    let _ = parse::csq(lines);
    let _ = parse::cesq(lines);
    let _ = parse::cops(lines);
    for p in ["+CREG", "+CGREG", "+CEREG", "+C5GREG"] {
        let _ = parse::registration(lines, p);
    }
    let _ = parse::cgdcont(lines);
    let _ = parse::cgpaddr(lines);
    let _ = parse::cgcontrdp(lines);
    let _ = parse::imei(lines);
    let _ = parse::imsi(lines);
    let _ = parse::iccid(lines);
    let _ = parse::manufacturer(lines);
    let _ = vendor::quectel_qeng(lines);
    let _ = vendor::quectel_qcsq(lines);
    let _ = vendor::simcom_cpsi(lines);
    let _ = vendor::ublox_ucged(lines);
    let _ = power_saving::cpsms(lines);
    let _ = power_saving::cedrxs(lines);
    let _ = power_saving::cedrxrdp_ptw(lines);
    let _ = gnss::quectel_qgpsloc(lines);
    let _ = crate::location::nmea::fix(&lines.join("\r\n"));
    for l in lines {
        // Valid checksums, so that the field parsers are reached.
        let body = l.trim_start_matches('$').split('*').next().unwrap_or("");
        let sum = body.bytes().fold(0u8, |a, b| a ^ b);
        let _ = crate::location::nmea::fix(&format!("${body}*{sum:02X}"));
    }
    for command in [
        "AT+CSQ",
        "AT+CEREG?",
        "AT+CGSN",
        "AT+UCGED?",
        "AT+QENG=\"servingcell\"",
    ] {
        let mut e = Exchange::new(command);
        for l in lines {
            let _ = e.line(l);
        }
    }
}

#[test]
fn truncations() {
    for v in VECTORS {
        for end in 0..=v.len() {
            if let Some(prefix) = v.get(..end) {
                all_parsers(&[prefix.to_string()]);
                all_parsers(&["+UCGED: 2".into(), "6,4,001,01".into(), prefix.to_string()]);
            }
        }
    }
}

#[test]
fn mutations() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let base = VECTORS[rng.below(VECTORS.len())];
        let mut fields: Vec<String> = base.split(',').map(str::to_string).collect();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(fields.len());
            match rng.below(5) {
                0 => fields[i] = NASTY[rng.below(NASTY.len())].to_string(),
                1 => {
                    fields.remove(i);
                }
                2 => {
                    let f = fields[i].clone();
                    fields.insert(i, f);
                }
                3 => fields[i] = format!("\"{}", fields[i]),
                _ => {
                    let mut bytes = fields[i].clone().into_bytes();
                    if !bytes.is_empty() {
                        let j = rng.below(bytes.len());
                        bytes[j] = (rng.next() & 0xff) as u8;
                    }
                    fields[i] = String::from_utf8_lossy(&bytes).into_owned();
                }
            }
            if fields.is_empty() {
                fields.push(String::new());
            }
        }
        let line = fields.join(",");
        all_parsers(&["+UCGED: 2".into(), line.clone()]);
        all_parsers(&[line]);
    }
}
