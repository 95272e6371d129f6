//! The AT modem behind the connectivity task: polled on a thread of its own (serial I/O
//! blocks), each poll turned into the [`ConnectivitySnapshot`] every connectivity backend
//! reports, so objects 4 and 7 show a bare AT modem as they show ModemManager's.

use std::path::PathBuf;
use std::time::Duration;

use backends::location::Fix;
use backends::modem::at::{
    self, AccessTechnology, AtModem, AtModemStatus, PowerSaving, PowerSavingChange,
    RegistrationState,
};
use backends::modem::{Bearer, ConnectivitySnapshot, Radio};
use tokio::sync::mpsc;

/// One poll of the modem, as the objects need it.
#[derive(Debug, Default)]
pub struct AtLook {
    pub snapshot: ConnectivitySnapshot,
    pub power_saving: Option<PowerSaving>,
    pub fix: Option<Fix>,
}

/// Snapshots of the modem; a modem that does not answer shows as an empty snapshot (its
/// figures absent), the failure logged once by the polling thread.
pub struct AtSource {
    results: mpsc::Receiver<Result<AtModemStatus, String>>,
    changes: std::sync::mpsc::Sender<PowerSavingChange>,
}

impl AtSource {
    /// `gnss`: read the module's GNSS receiver too.
    pub fn start(port: PathBuf, baud: u32, interval: u32, gnss: bool) -> Option<AtSource> {
        let (tx, results) = mpsc::channel(2);
        let (changes, changes_rx) = std::sync::mpsc::channel();
        let modem = AtModem::new(port, baud).read_gnss(gnss);
        let interval = Duration::from_secs(interval.max(1).into());
        match at::watch(modem, interval, tx, changes_rx) {
            Ok(_) => Some(AtSource { results, changes }),
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
            Ok(s) => AtLook {
                snapshot: snapshot(&s),
                power_saving: s.power_saving,
                fix: s.gnss_fix,
            },
            Err(_) => AtLook::default(),
        })
    }

    /// Hands a server's change to the modem thread, which carries it out between polls.
    pub fn act(&self, change: PowerSavingChange) {
        if self.changes.send(change).is_err() {
            tracing::warn!(?change, "the modem thread is gone: change dropped");
        }
    }
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
