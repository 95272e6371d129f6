//! ModemManager's encodings: access technology bits, signal dictionaries, operator
//! codes and the 3GPP location string. Whatever a modem reports, out-of-range or
//! malformed values are dropped here, never passed on.

use std::collections::HashMap;

use crate::location::Fix;
use crate::modem::{Bearer, Radio};

// MMModemAccessTechnology bits.
const GSM: u32 = 1 << 1;
const GSM_COMPACT: u32 = 1 << 2;
const GPRS: u32 = 1 << 3;
const EDGE: u32 = 1 << 4;
const UMTS: u32 = 1 << 5;
const HSDPA: u32 = 1 << 6;
const HSUPA: u32 = 1 << 7;
const HSPA: u32 = 1 << 8;
const HSPA_PLUS: u32 = 1 << 9;
const CDMA_1XRTT: u32 = 1 << 10;
const EVDO0: u32 = 1 << 11;
const EVDOA: u32 = 1 << 12;
const EVDOB: u32 = 1 << 13;
const LTE: u32 = 1 << 14;
const NR5G: u32 = 1 << 15;
const LTE_CAT_M: u32 = 1 << 16;
const LTE_NB_IOT: u32 = 1 << 17;

/// ModemManager does not say whether LTE or NR runs in FDD or TDD. LTE is FDD on the vast
/// majority of networks; NR's main mid band (n78, 3.5 GHz) is TDD.
const LTE_BEARER: Bearer = Bearer::LteFdd;
const NR_BEARER: Bearer = Bearer::NrTdd;

/// Every bearer the technology bits name, the most capable first.
pub fn bearers_of(bits: u32) -> Vec<Bearer> {
    let table = [
        (NR5G, NR_BEARER),
        (LTE | LTE_CAT_M, LTE_BEARER),
        (LTE_NB_IOT, Bearer::NbIot),
        (UMTS | HSDPA | HSUPA | HSPA | HSPA_PLUS, Bearer::Wcdma),
        (CDMA_1XRTT | EVDO0 | EVDOA | EVDOB, Bearer::Cdma2000),
        (GSM | GSM_COMPACT | GPRS | EDGE, Bearer::Gsm),
    ];
    table
        .iter()
        .filter(|(mask, _)| bits & mask != 0)
        .map(|(_, b)| *b)
        .collect()
}

/// The bearer in use: the most capable technology reported (a 5G non-standalone
/// connection reports LTE and NR together).
pub fn bearer_of(bits: u32) -> Option<Bearer> {
    bearers_of(bits).into_iter().next()
}

pub fn is_nr(b: Bearer) -> bool {
    matches!(b, Bearer::NrFdd | Bearer::NrTdd)
}

pub fn is_lte(b: Bearer) -> bool {
    matches!(b, Bearer::LteFdd | Bearer::LteTdd | Bearer::NbIot)
}

fn in_range(v: Option<&f64>, low: f64, high: f64) -> Option<i32> {
    let v = *v?;
    (v.is_finite() && (low..=high).contains(&v)).then(|| v.round() as i32)
}

/// Fills signal figures from Modem.Signal's dictionary for `bearer` (keys "rssi",
/// "rscp", "rsrp", "rsrq", "snr", "sinr" in dBm or dB). Ranges are those of 3GPP TS 36.133
/// / 38.133 / 25.133 / 45.008 measurement reports, with margin.
pub fn apply_signal(radio: &mut Radio, bearer: Bearer, figures: &HashMap<String, f64>) {
    let get = |k: &str| figures.get(k);
    if is_lte(bearer) || is_nr(bearer) {
        radio.signal_dbm = in_range(get("rsrp"), -160.0, -30.0);
        radio.link_quality = in_range(get("rsrq"), -45.0, 20.0);
        radio.snr_db = in_range(get("snr").or(get("sinr")), -30.0, 50.0);
    } else if bearer == Bearer::Wcdma {
        radio.signal_dbm =
            in_range(get("rscp"), -130.0, -20.0).or(in_range(get("rssi"), -130.0, -20.0));
    } else if bearer == Bearer::Gsm {
        radio.signal_dbm = in_range(get("rssi"), -130.0, -20.0);
    }
}

/// "26201" → (262, 1); "310410" → (310, 410). The MNC has two digits after a five-digit
/// code and three after a six-digit one.
pub fn operator_code(code: &str) -> Option<(u16, u16)> {
    let code = code.trim();
    if !(5..=6).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mcc = code.get(..3)?.parse().ok()?;
    let mnc = code.get(3..)?.parse().ok()?;
    Some((mcc, mnc))
}

/// The 3GPP location of Modem.Location: "MCC,MNC,LAC,CI,TAC", LAC, CI and TAC in
/// hexadecimal; a LAC of 0 or FFFE/FFFF means none (LTE-only), as does a TAC of 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location3gpp {
    pub mcc: u16,
    pub mnc: u16,
    pub lac: Option<u32>,
    pub cell_id: Option<u64>,
    pub tac: Option<u32>,
}

pub fn location_3gpp(text: &str) -> Option<Location3gpp> {
    let fields: Vec<&str> = text.trim().split(',').map(str::trim).collect();
    let (mcc, mnc, lac, ci, tac) = match fields.as_slice() {
        [mcc, mnc, lac, ci, tac] => (mcc, mnc, lac, ci, Some(tac)),
        // ModemManager before 1.10 had no TAC.
        [mcc, mnc, lac, ci] => (mcc, mnc, lac, ci, None),
        _ => return None,
    };
    let mcc: u16 = mcc.parse().ok().filter(|m| *m <= 999)?;
    let mnc: u16 = mnc.parse().ok().filter(|m| *m <= 999)?;
    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    let lac = hex(lac)
        .filter(|l| *l != 0 && *l < 0xFFFE)
        .and_then(|l| u32::try_from(l).ok());
    // 28 bits on UMTS and LTE, 36 on NR.
    let cell_id = hex(ci).filter(|c| *c != 0 && *c < 1 << 36);
    let tac = tac
        .and_then(|t| hex(t))
        .filter(|t| *t != 0 && *t < 1 << 24)
        .and_then(|t| u32::try_from(t).ok());
    Some(Location3gpp {
        mcc,
        mnc,
        lac,
        cell_id,
        tac,
    })
}

/// A GPS_RAW position. Its `utc-time` is a time of day without a date, so the fix
/// carries no time (the measurement is taken as current).
pub fn gps_raw(
    latitude: Option<f64>,
    longitude: Option<f64>,
    altitude: Option<f64>,
) -> Option<Fix> {
    let latitude = latitude.filter(|x| (-90.0..=90.0).contains(x))?;
    let longitude = longitude.filter(|x| (-180.0..=180.0).contains(x))?;
    Some(Fix {
        latitude,
        longitude,
        altitude: altitude.filter(|a| a.is_finite()),
        radius: None,
        speed: None,
        track: None,
        climb: None,
        time: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_technologies() {
        assert_eq!(bearer_of(LTE), Some(Bearer::LteFdd));
        assert_eq!(bearer_of(LTE | NR5G), Some(Bearer::NrTdd));
        assert_eq!(bearer_of(HSPA_PLUS), Some(Bearer::Wcdma));
        assert_eq!(bearer_of(EDGE), Some(Bearer::Gsm));
        assert_eq!(bearer_of(LTE_NB_IOT), Some(Bearer::NbIot));
        assert_eq!(bearer_of(EVDOA), Some(Bearer::Cdma2000));
        // Unknown, POTS only, or bits from a future ModemManager.
        assert_eq!(bearer_of(0), None);
        assert_eq!(bearer_of(1), None);
        assert_eq!(bearer_of(1 << 30), None);
        assert_eq!(
            bearers_of(LTE | UMTS | GSM),
            vec![Bearer::LteFdd, Bearer::Wcdma, Bearer::Gsm]
        );
    }

    #[test]
    fn signal_figures_by_bearer_and_range() {
        let figures: HashMap<String, f64> = [
            ("rssi", -67.0),
            ("rsrq", -11.4),
            ("rsrp", -95.0),
            ("snr", 7.2),
            ("rscp", -80.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut r = Radio::default();
        apply_signal(&mut r, Bearer::LteFdd, &figures);
        assert_eq!(
            (r.signal_dbm, r.link_quality, r.snr_db),
            (Some(-95), Some(-11), Some(7))
        );
        let mut r = Radio::default();
        apply_signal(&mut r, Bearer::Wcdma, &figures);
        assert_eq!((r.signal_dbm, r.link_quality), (Some(-80), None));
        let mut r = Radio::default();
        apply_signal(&mut r, Bearer::Gsm, &figures);
        assert_eq!(r.signal_dbm, Some(-67));

        let garbage: HashMap<String, f64> = [("rsrp", 12.0), ("rsrq", f64::NAN), ("snr", 1e9)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let mut r = Radio::default();
        apply_signal(&mut r, Bearer::LteFdd, &garbage);
        assert_eq!(r, Radio::default());
    }

    #[test]
    fn operator_codes() {
        assert_eq!(operator_code("26201"), Some((262, 1)));
        assert_eq!(operator_code("310410"), Some((310, 410)));
        for bad in ["", "2620", "2620123", "26a01", "２６２０１"] {
            assert_eq!(operator_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn location_strings() {
        assert_eq!(
            location_3gpp("262,01,FFFE,C45A01,4E21"),
            Some(Location3gpp {
                mcc: 262,
                mnc: 1,
                lac: None,
                cell_id: Some(0xC45A01),
                tac: Some(0x4E21),
            })
        );
        assert_eq!(
            location_3gpp("214,07,2F3A,1B2C3D4,0"),
            Some(Location3gpp {
                mcc: 214,
                mnc: 7,
                lac: Some(0x2F3A),
                cell_id: Some(0x1B2C3D4),
                tac: None,
            })
        );
        assert_eq!(location_3gpp("262,01,1234,ABCD").unwrap().tac, None);
        for bad in [
            "",
            "262",
            "262,01",
            "x,01,1,1,1",
            "1000,01,1,1,1",
            "262,01,1,1,1,1",
        ] {
            assert_eq!(location_3gpp(bad), None, "{bad}");
        }
        let odd = location_3gpp("262,01,zz,FFFFFFFFFFFF,zz").unwrap();
        assert_eq!((odd.lac, odd.cell_id, odd.tac), (None, None, None));
    }

    #[test]
    fn gps_raw_positions_in_range_only() {
        let f = gps_raw(Some(38.889722), Some(-77.008889), Some(33.5)).unwrap();
        assert_eq!(
            (f.latitude, f.longitude, f.altitude),
            (38.889722, -77.008889, Some(33.5))
        );
        assert_eq!(gps_raw(Some(91.0), Some(0.0), None), None);
        assert_eq!(gps_raw(Some(0.0), Some(-181.0), None), None);
        assert_eq!(gps_raw(None, Some(0.0), None), None);
        assert_eq!(gps_raw(Some(f64::NAN), Some(0.0), None), None);
    }
}
