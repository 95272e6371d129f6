//! Object 4, Connectivity Monitoring: one read-only instance filled from the
//! connectivity backend's [`ConnectivitySnapshot`]. What the backend does not know is
//! absent rather than made up.

use std::collections::BTreeMap;

use backends::modem::{Bearer, ConnectivitySnapshot};

use crate::model::registry_connectivity::CONNECTIVITY_MONITORING;
use crate::objects::reported::Reported;
use crate::value::{ResourceValue, Value};

pub const OBJECT_ID: u16 = 4;
pub const NETWORK_BEARER: u16 = 0;
pub const AVAILABLE_BEARERS: u16 = 1;
pub const RADIO_SIGNAL_STRENGTH: u16 = 2;
pub const LINK_QUALITY: u16 = 3;
pub const IP_ADDRESSES: u16 = 4;
pub const ROUTER_IP_ADDRESSES: u16 = 5;
pub const LINK_UTILIZATION: u16 = 6;
pub const APN: u16 = 7;
pub const CELL_ID: u16 = 8;
pub const SMNC: u16 = 9;
pub const SMCC: u16 = 10;
pub const SIGNAL_SNR: u16 = 11;
pub const LAC: u16 = 12;

/// The resources [`values`] reports on, present or not.
pub const FED: [u16; 13] = [
    NETWORK_BEARER,
    AVAILABLE_BEARERS,
    RADIO_SIGNAL_STRENGTH,
    LINK_QUALITY,
    IP_ADDRESSES,
    ROUTER_IP_ADDRESSES,
    LINK_UTILIZATION,
    APN,
    CELL_ID,
    SMNC,
    SMCC,
    SIGNAL_SNR,
    LAC,
];

/// The Network Bearer code of object 4, resource 0.
pub fn bearer_code(bearer: Bearer) -> i64 {
    match bearer {
        Bearer::Gsm => 0,
        Bearer::TdScdma => 1,
        Bearer::Wcdma => 2,
        Bearer::Cdma2000 => 3,
        Bearer::Wimax => 4,
        Bearer::LteTdd => 5,
        Bearer::LteFdd => 6,
        Bearer::NbIot => 7,
        Bearer::NrTdd => 8,
        Bearer::NrFdd => 9,
        Bearer::Wlan => 21,
        Bearer::Bluetooth => 22,
        Bearer::Ieee802154 => 23,
        Bearer::Ethernet => 41,
        Bearer::Dsl => 42,
        Bearer::Plc => 43,
    }
}

/// Received power no receiver reports (RSRP goes down to -156 dBm, Wi-Fi levels up to 0)
/// comes from a garbled reading: it is left out.
const SIGNAL_DBM: std::ops::RangeInclusive<i32> = -200..=0;

/// The value of every resource of [`FED`] for a snapshot, `None` for absent.
pub fn values(s: &ConnectivitySnapshot) -> Vec<(u16, Option<ResourceValue>)> {
    let single = |v: Option<Value>| v.map(ResourceValue::Single);
    let int = |v: Option<i64>| single(v.map(Value::Integer));
    let list = |items: Vec<Value>| {
        (!items.is_empty())
            .then(|| ResourceValue::Multiple((0u16..).zip(items).collect::<BTreeMap<u16, Value>>()))
    };
    let r = &s.radio;
    let mut available: Vec<i64> = s
        .available_bearers
        .iter()
        .map(|b| bearer_code(*b))
        .collect();
    available.dedup();
    let cellular = s.bearer.is_some_and(Bearer::is_cellular);
    let three_digits = |v: Option<u16>| int(v.filter(|n| *n <= 999).map(i64::from));
    vec![
        (NETWORK_BEARER, int(s.bearer.map(bearer_code))),
        (
            AVAILABLE_BEARERS,
            list(available.into_iter().map(Value::Integer).collect()),
        ),
        (
            RADIO_SIGNAL_STRENGTH,
            int(r
                .signal_dbm
                .filter(|d| SIGNAL_DBM.contains(d))
                .map(i64::from)),
        ),
        (LINK_QUALITY, int(r.link_quality.map(i64::from))),
        (
            IP_ADDRESSES,
            list(
                s.ip_addresses
                    .iter()
                    .map(|a| Value::String(a.to_string()))
                    .collect(),
            ),
        ),
        (
            ROUTER_IP_ADDRESSES,
            list(
                s.routers
                    .iter()
                    .map(|a| Value::String(a.to_string()))
                    .collect(),
            ),
        ),
        (
            LINK_UTILIZATION,
            int(s.link_utilization.filter(|u| *u <= 100).map(i64::from)),
        ),
        (
            APN,
            list(s.apns.iter().map(|a| Value::String(a.clone())).collect()),
        ),
        (
            CELL_ID,
            int(r
                .cell_id
                .filter(|_| cellular)
                .and_then(|c| i64::try_from(c).ok())),
        ),
        (SMNC, three_digits(r.mnc.filter(|_| cellular))),
        (SMCC, three_digits(r.mcc.filter(|_| cellular))),
        (SIGNAL_SNR, int(r.snr_db.map(i64::from))),
        (
            LAC,
            int(r.lac.or(r.tac).filter(|_| cellular).map(i64::from)),
        ),
    ]
}

/// Object 4 as the device reports it.
pub fn new() -> Reported {
    Reported::new(&CONNECTIVITY_MONITORING)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DmError, Object};
    use backends::modem::Radio;

    fn value(values: &[(u16, Option<ResourceValue>)], id: u16) -> Option<ResourceValue> {
        values
            .iter()
            .find(|(r, _)| *r == id)
            .and_then(|(_, v)| v.clone())
    }

    fn strings(v: Option<ResourceValue>) -> Vec<String> {
        match v {
            Some(ResourceValue::Multiple(m)) => m
                .into_values()
                .map(|v| match v {
                    Value::String(s) => s,
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lte_modem() {
        let s = ConnectivitySnapshot {
            interface: Some("wwan0".into()),
            bearer: Some(Bearer::LteFdd),
            available_bearers: vec![Bearer::LteFdd, Bearer::Wcdma, Bearer::Gsm],
            radio: Radio {
                signal_dbm: Some(-95),
                link_quality: Some(-11),
                snr_db: Some(7),
                cell_id: Some(0x0C4_5A01),
                mcc: Some(262),
                mnc: Some(1),
                lac: None,
                tac: Some(0x4E21),
                operator_name: Some("Telekom.de".into()),
            },
            ip_addresses: vec!["10.64.1.2".parse().unwrap(), "2a01:598::1".parse().unwrap()],
            routers: vec!["10.64.1.1".parse().unwrap()],
            link_utilization: None,
            apns: vec!["internet.telekom".into()],
            counters: None,
            data_connections: Vec::new(),
        };
        let v = values(&s);
        assert_eq!(v.len(), FED.len());
        let int = |n| Some(ResourceValue::Single(Value::Integer(n)));
        assert_eq!(value(&v, NETWORK_BEARER), int(6));
        assert_eq!(value(&v, RADIO_SIGNAL_STRENGTH), int(-95));
        assert_eq!(value(&v, LINK_QUALITY), int(-11));
        assert_eq!(value(&v, SIGNAL_SNR), int(7));
        assert_eq!(value(&v, CELL_ID), int(0x0C4_5A01));
        assert_eq!(value(&v, SMCC), int(262));
        assert_eq!(value(&v, SMNC), int(1));
        assert_eq!(value(&v, LAC), int(0x4E21));
        assert_eq!(value(&v, LINK_UTILIZATION), None);
        assert_eq!(
            strings(value(&v, IP_ADDRESSES)),
            ["10.64.1.2", "2a01:598::1"]
        );
        assert_eq!(strings(value(&v, APN)), ["internet.telekom"]);
        let Some(ResourceValue::Multiple(available)) = value(&v, AVAILABLE_BEARERS) else {
            panic!()
        };
        assert_eq!(
            available.into_values().collect::<Vec<_>>(),
            [Value::Integer(6), Value::Integer(2), Value::Integer(0)]
        );
    }

    #[test]
    fn out_of_range_and_non_cellular_values_are_absent() {
        let s = ConnectivitySnapshot {
            bearer: Some(Bearer::Ethernet),
            radio: Radio {
                signal_dbm: Some(25),
                cell_id: Some(7),
                mcc: Some(262),
                mnc: Some(1000),
                lac: Some(3),
                ..Radio::default()
            },
            link_utilization: Some(140),
            ..ConnectivitySnapshot::default()
        };
        let v = values(&s);
        for r in [
            RADIO_SIGNAL_STRENGTH,
            CELL_ID,
            SMCC,
            SMNC,
            LAC,
            LINK_UTILIZATION,
            IP_ADDRESSES,
            APN,
        ] {
            assert_eq!(value(&v, r), None, "resource {r}");
        }
        assert_eq!(
            value(&v, NETWORK_BEARER),
            Some(ResourceValue::Single(Value::Integer(41)))
        );
        // Nothing known, nothing reported.
        assert!(values(&ConnectivitySnapshot::default())
            .iter()
            .all(|(_, v)| v.is_none()));
    }

    #[test]
    fn values_come_and_go() {
        let mut o = new();
        assert_eq!(o.instances(), vec![0]);
        let v = ResourceValue::Single(Value::Integer(41));
        o.write(0, NETWORK_BEARER, v.clone(), false).unwrap();
        assert_eq!(o.read(0, NETWORK_BEARER), Some(v.clone()));
        assert_eq!(
            o.write(0, NETWORK_BEARER, v, true),
            Err(DmError::MethodNotAllowed)
        );
        o.remove_value(0, NETWORK_BEARER).unwrap();
        assert_eq!(o.read(0, NETWORK_BEARER), None);
        assert_eq!(o.remove_value(1, NETWORK_BEARER), Err(DmError::NotFound));
    }
}
