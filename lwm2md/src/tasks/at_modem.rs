//! The AT modem behind the connectivity task: polled on a thread of its own (serial I/O
//! blocks), each poll turned into the [`ConnectivitySnapshot`] every connectivity backend
//! reports, so objects 4 and 7 show a bare AT modem as they show ModemManager's.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use backends::location::Fix;
use backends::modem::at::{
    self, AccessTechnology, AtModem, AtModemStatus, ConnectError, DataChange, ModemChange,
    PowerSaving, PowerSavingChange, RegistrationState,
};
use backends::modem::{Bearer, ConnectivitySnapshot, Radio};
use tokio::sync::mpsc;

use crate::model::ConnectivityAction;
use crate::objects::{apn, cellular};
use crate::path::Path;
use crate::value::{ResourceValue, Value};

/// One poll of the modem, as the objects need it.
#[derive(Debug, Default)]
pub struct AtLook {
    pub snapshot: ConnectivitySnapshot,
    pub power_saving: Option<PowerSaving>,
    pub fix: Option<Fix>,
    /// A server's connection request carried out since the previous look.
    pub connection: Option<ConnectionAttempt>,
}

/// The outcome of connecting with an object 11 profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionAttempt {
    pub profile: u16,
    /// When the server's request was taken (UTC seconds).
    pub requested_at: i64,
    pub result: Result<(), ConnectError>,
    /// The profile that carried the data connection before.
    pub replaced: Option<u16>,
}

/// Snapshots of the modem; a modem that does not answer shows as an empty snapshot (its
/// figures absent), the failure logged once by the polling thread.
pub struct AtSource {
    results: mpsc::Receiver<Result<AtModemStatus, String>>,
    changes: std::sync::mpsc::Sender<ModemChange>,
    /// When each profile's pending connection was asked for.
    requested: HashMap<u16, i64>,
    /// The object 11 instance of the data connection, when a profile made it.
    active_profile: Option<u16>,
}

impl AtSource {
    /// `gnss`: read the module's GNSS receiver too. `active_profile`: the object 11
    /// instance a server left enabled before the daemon stopped.
    pub fn start(
        port: PathBuf,
        baud: u32,
        interval: u32,
        gnss: bool,
        active_profile: Option<u16>,
    ) -> Option<AtSource> {
        let (tx, results) = mpsc::channel(2);
        let (changes, changes_rx) = std::sync::mpsc::channel();
        let modem = AtModem::new(port, baud).read_gnss(gnss);
        let interval = Duration::from_secs(interval.max(1).into());
        match at::watch(modem, interval, tx, changes_rx) {
            Ok(_) => Some(AtSource {
                results,
                changes,
                requested: HashMap::new(),
                active_profile,
            }),
            Err(e) => {
                tracing::error!("cannot start the modem thread: {e}");
                None
            }
        }
    }

    /// The next look at the modem.
    pub async fn next(&mut self) -> Option<AtLook> {
        let result = self.results.recv().await?;
        Some(match result {
            Ok(mut s) => {
                let connection = s.connect_outcome.take().map(|o| {
                    // A profile written resource by resource asks several times and the thread
                    // may carry out more than one: each outcome keeps the latest request's time.
                    let requested_at = self.requested.get(&o.id).copied().unwrap_or_default();
                    let replaced = self.active_profile;
                    if o.result.is_ok() {
                        self.active_profile = Some(o.id);
                    }
                    ConnectionAttempt {
                        profile: o.id,
                        requested_at,
                        result: o.result,
                        replaced,
                    }
                });
                AtLook {
                    snapshot: snapshot(&s),
                    power_saving: s.power_saving,
                    fix: s.gnss_fix,
                    connection,
                }
            }
            Err(_) => AtLook::default(),
        })
    }

    /// Hands a server's change to the modem thread, which carries it out between polls.
    pub fn act(&self, change: PowerSavingChange) {
        if self.changes.send(ModemChange::PowerSaving(change)).is_err() {
            tracing::warn!(?change, "the modem thread is gone: change dropped");
        }
    }

    /// Hands an object 11 connection request to the modem thread; `now` is its
    /// establishment time.
    pub fn connect(&mut self, action: ConnectivityAction, now: i64) {
        let change = match action {
            ConnectivityAction::Connect { profile, settings } => {
                self.requested.insert(profile, now);
                DataChange::Connect {
                    id: profile,
                    settings,
                }
            }
            // Only the profile that made the connection ends it.
            ConnectivityAction::Disconnect { profile } if self.active_profile == Some(profile) => {
                self.active_profile = None;
                DataChange::Disconnect
            }
            _ => return,
        };
        if self.changes.send(ModemChange::Data(change)).is_err() {
            tracing::warn!("the modem thread is gone: connection request dropped");
        }
    }
}

/// What object 11 (and /10/0/11) show of a connection attempt: its time, result and
/// reject cause; a profile that connected becomes the activated one, and the one it
/// replaced is no longer enabled.
pub fn attempt_values(attempt: &ConnectionAttempt) -> Vec<(Path, Option<ResourceValue>)> {
    let first = |v: Value| Some(ResourceValue::Multiple(BTreeMap::from([(0, v)])));
    let p = |resource| Path::resource(apn::OBJECT_ID, attempt.profile, resource);
    let mut out = vec![(
        p(apn::ESTABLISHMENT_TIME),
        first(Value::Time(attempt.requested_at)),
    )];
    match &attempt.result {
        Ok(()) => {
            out.push((p(apn::ESTABLISHMENT_RESULT), first(Value::Integer(0))));
            out.push((p(apn::REJECT_CAUSE), None));
            out.push((
                Path::resource(cellular::OBJECT_ID, 0, cellular::ACTIVATED_PROFILE_NAMES),
                first(Value::ObjLnk(apn::OBJECT_ID, attempt.profile)),
            ));
            if let Some(old) = attempt.replaced.filter(|&old| old != attempt.profile) {
                out.push((
                    Path::resource(apn::OBJECT_ID, old, apn::ENABLE_STATUS),
                    Some(ResourceValue::Single(Value::Boolean(false))),
                ));
            }
        }
        Err(e) => {
            out.push((p(apn::ESTABLISHMENT_RESULT), first(Value::Integer(1))));
            let cause = e.reject_cause().map(|c| Value::Integer(c.into()));
            out.push((p(apn::REJECT_CAUSE), cause.and_then(first)));
        }
    }
    out
}

/// What object 4 shows of an AT modem's status. The bearer needs a registration: a modem
/// that is searching or denied has a radio, but carries no data.
pub fn snapshot(s: &AtModemStatus) -> ConnectivitySnapshot {
    let registered = matches!(
        s.registration,
        Some(RegistrationState::Home | RegistrationState::Roaming)
    );
    let bearer = s.access_technology.map(bearer).filter(|_| registered);
    let lte_or_nr = bearer.is_some_and(|b| {
        matches!(
            b,
            Bearer::LteFdd | Bearer::LteTdd | Bearer::NbIot | Bearer::NrFdd | Bearer::NrTdd
        )
    });
    let round = |x: f64| x.is_finite().then(|| x.round() as i32);
    let (signal_dbm, link_quality) = if lte_or_nr {
        (
            s.rsrp_dbm.and_then(round).or(s.rssi_dbm),
            s.rsrq_db.and_then(round),
        )
    } else {
        (s.rssi_dbm, None)
    };
    let (lac, tac) = if lte_or_nr {
        (None, s.lac_tac)
    } else {
        (s.lac_tac, None)
    };
    ConnectivitySnapshot {
        bearer,
        available_bearers: bearer.into_iter().collect(),
        radio: Radio {
            signal_dbm,
            link_quality,
            snr_db: s.snr_db.and_then(round),
            cell_id: s.cell_id,
            mcc: s.mcc,
            mnc: s.mnc,
            lac,
            tac,
            operator_name: s.operator.clone(),
        },
        ip_addresses: s.ip_addresses.clone(),
        routers: s.gateway.into_iter().collect(),
        apns: s.apn.clone().into_iter().collect(),
        ..ConnectivitySnapshot::default()
    }
}

/// AT+COPS / +CEREG access technologies as object 4 bearers. AT commands do not tell the
/// duplex mode: LTE shows as LTE-FDD and NR as NR-TDD (their common deployments), as
/// with ModemManager.
fn bearer(act: AccessTechnology) -> Bearer {
    use AccessTechnology::*;
    match act {
        Gsm | GsmCompact | GsmEgprs | EcGsmIot => Bearer::Gsm,
        Utran | UtranHsdpa | UtranHsupa | UtranHspa => Bearer::Wcdma,
        Eutran | Eutra5gcn | EutranCatM => Bearer::LteFdd,
        EutranNbIot => Bearer::NbIot,
        Nr5gcn | NgRan | EutraNrDual => Bearer::NrTdd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backends::modem::at::response::{CommandError, ErrorCode};

    #[test]
    fn connection_attempts_become_object_11_figures() {
        let first = |v: Value| Some(ResourceValue::Multiple(BTreeMap::from([(0, v)])));
        let ok = ConnectionAttempt {
            profile: 2,
            requested_at: 1_795_600_000,
            result: Ok(()),
            replaced: Some(1),
        };
        assert_eq!(
            attempt_values(&ok),
            vec![
                (Path::resource(11, 2, 9), first(Value::Time(1_795_600_000))),
                (Path::resource(11, 2, 10), first(Value::Integer(0))),
                (Path::resource(11, 2, 11), None),
                (Path::resource(10, 0, 11), first(Value::ObjLnk(11, 2))),
                (
                    Path::resource(11, 1, 3),
                    Some(ResourceValue::Single(Value::Boolean(false)))
                ),
            ]
        );
        let again = ConnectionAttempt {
            replaced: Some(2),
            ..ok
        };
        assert_eq!(attempt_values(&again).len(), 4, "same profile again");

        let refused = ConnectionAttempt {
            profile: 2,
            requested_at: 1_795_600_000,
            result: Err(ConnectError::Refused {
                command: "AT+CGACT=1,1".into(),
                error: CommandError::Cme(ErrorCode::Numeric(127)),
            }),
            replaced: Some(1),
        };
        let v = attempt_values(&refused);
        assert_eq!(v[1], (Path::resource(11, 2, 10), first(Value::Integer(1))));
        assert_eq!(v[2], (Path::resource(11, 2, 11), first(Value::Integer(27))));
        assert_eq!(v.len(), 3, "the active profile stays as it was");

        let silent = ConnectionAttempt {
            result: Err(ConnectError::Port("AT+CGACT=1,1: no answer".into())),
            ..refused
        };
        assert_eq!(
            attempt_values(&silent)[2],
            (Path::resource(11, 2, 11), None)
        );
    }

    #[test]
    fn lte_status_becomes_object_4_figures() {
        let s = AtModemStatus {
            registration: Some(RegistrationState::Home),
            access_technology: Some(AccessTechnology::Eutran),
            rssi_dbm: Some(-65),
            rsrp_dbm: Some(-98.0),
            rsrq_db: Some(-11.4),
            snr_db: Some(12.0),
            cell_id: Some(0x1A2B3C4),
            lac_tac: Some(0x1F40),
            mcc: Some(262),
            mnc: Some(1),
            apn: Some("internet".into()),
            ..AtModemStatus::default()
        };
        let snap = snapshot(&s);
        assert_eq!(snap.bearer, Some(Bearer::LteFdd));
        assert_eq!(snap.radio.signal_dbm, Some(-98), "RSRP on LTE");
        assert_eq!(snap.radio.link_quality, Some(-11));
        assert_eq!((snap.radio.lac, snap.radio.tac), (None, Some(0x1F40)));
        assert_eq!(snap.apns, vec!["internet".to_string()]);

        let searching = AtModemStatus {
            registration: Some(RegistrationState::Searching),
            access_technology: Some(AccessTechnology::Gsm),
            rssi_dbm: Some(-101),
            lac_tac: Some(7),
            ..AtModemStatus::default()
        };
        let snap = snapshot(&searching);
        assert_eq!(snap.bearer, None);
        assert_eq!(snap.radio.signal_dbm, Some(-101));
        assert_eq!((snap.radio.lac, snap.radio.tac), (Some(7), None));
    }
}
