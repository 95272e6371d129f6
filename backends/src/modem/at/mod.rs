//! A cellular modem driven over its AT command port, for gateways without ModemManager.
//!
//! [`AtModem::poll`] runs the 3GPP TS 27.007 queries and the serving-cell command of the
//! module's vendor (chosen by AT+CGMI) and returns an [`AtModemStatus`]. The port is
//! blocking: [`watch`] runs the modem on a thread of its own and hands each status to
//! async code.

pub mod fields;
pub mod gnss;
pub mod parse;
pub mod pdp;
pub mod port;
pub mod power_saving;
pub mod response;
pub mod vendor;

#[cfg(test)]
mod no_panic;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use parse::{AccessTechnology, RegistrationState};
pub use pdp::{ConnectError, ConnectOutcome, DataChange};
pub use port::{AtError, AtPort};
pub use power_saving::{EdrxAct, PowerSaving, PowerSavingChange};
pub use response::CommandError;
pub use vendor::Vendor;

/// Most queries answer within a second; the network-facing ones can take longer on a
/// busy module.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
const NETWORK_TIMEOUT: Duration = Duration::from_secs(15);
/// Activating a context or attaching waits for the network; modules give up within
/// about a minute and a half.
const ACTIVATION_TIMEOUT: Duration = Duration::from_secs(90);

/// The context a modem with no connected one uses for data (the LTE default bearer's).
const DEFAULT_CID: u32 = 1;

/// A server's change, carried out by the polling thread between two polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemChange {
    PowerSaving(PowerSavingChange),
    Data(DataChange),
}

/// Everything the AT backend knows about the modem after one poll. Values the modem did
/// not give (unsupported command, not registered, unknown index) are `None`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AtModemStatus {
    pub manufacturer: Option<String>,
    pub vendor: Option<Vendor>,
    pub imei: Option<String>,
    pub imsi: Option<String>,
    pub iccid: Option<String>,
    /// The operator's alphanumeric name.
    pub operator: Option<String>,
    pub mcc: Option<u16>,
    pub mnc: Option<u16>,
    pub registration: Option<RegistrationState>,
    pub access_technology: Option<AccessTechnology>,
    /// Received signal strength, dBm (AT+CSQ, else the vendor report).
    pub rssi_dbm: Option<i32>,
    pub rsrp_dbm: Option<f64>,
    pub rsrq_db: Option<f64>,
    pub snr_db: Option<f64>,
    /// Serving cell identity (28 bits on LTE, 36 on NR).
    pub cell_id: Option<u64>,
    /// Location or tracking area code.
    pub lac_tac: Option<u32>,
    /// APN of the connected context, else of the first defined one.
    pub apn: Option<String>,
    pub ip_addresses: Vec<IpAddr>,
    /// Gateway of the connected context (AT+CGCONTRDP).
    pub gateway: Option<IpAddr>,
    /// PSM and eDRX, `None` when the modem knows neither command.
    pub power_saving: Option<PowerSaving>,
    /// The module's GNSS fix, when asked for ([`AtModem::read_gnss`]) and it has one.
    pub gnss_fix: Option<crate::location::Fix>,
    /// The outcome of the connection asked for since the previous poll.
    pub connect_outcome: Option<ConnectOutcome>,
}

/// The modem on one AT port.
pub struct AtModem {
    port: AtPort,
    /// The port generation the modem was last set up for.
    setup_for: Option<u64>,
    identity: AtModemStatus,
    /// Read the module's GNSS receiver at each poll.
    gnss: bool,
    /// The context that carries data: the connected one at the last poll.
    data_cid: u32,
    /// The settings the data context was last connected with on request (kept in
    /// memory only: they hold the secret), to go back to when new ones fail.
    connected_with: Option<crate::modem::ApnSettings>,
}

impl AtModem {
    pub fn new(path: PathBuf, baud: u32) -> AtModem {
        AtModem::with_port(AtPort::new(path, baud))
    }

    pub fn with_port(port: AtPort) -> AtModem {
        AtModem {
            port,
            setup_for: None,
            identity: AtModemStatus::default(),
            gnss: false,
            data_cid: DEFAULT_CID,
            connected_with: None,
        }
    }

    /// Also starts the module's GNSS engine and reads its fix at each poll (Quectel
    /// modules; others have no position to give over AT here).
    pub fn read_gnss(mut self, on: bool) -> AtModem {
        self.gnss = on;
        self
    }

    pub fn port(&mut self) -> &mut AtPort {
        &mut self.port
    }

    /// One round of queries. Errors are those of the port (absent, lost, silent); a
    /// query the modem refuses only leaves its values out.
    pub fn poll(&mut self) -> Result<AtModemStatus, AtError> {
        self.port.ensure_open()?;
        if self.setup_for != Some(self.port.generation()) {
            self.setup()?;
        }
        let mut s = self.identity.clone();

        if let Some(lines) = self.query("AT+CSQ", QUERY_TIMEOUT)? {
            s.rssi_dbm = parse::csq(&lines).and_then(|c| c.rssi_dbm);
        }
        if let Some(lines) = self.query("AT+CESQ", QUERY_TIMEOUT)? {
            if let Some(c) = parse::cesq(&lines) {
                s.rsrp_dbm = c.rsrp_dbm;
                s.rsrq_db = c.rsrq_db;
                if s.rssi_dbm.is_none() {
                    s.rssi_dbm = c.rxlev_dbm.map(|x| x as i32);
                }
            }
        }
        // The name and the numeric PLMN need two formats of the same query.
        if self.query("AT+COPS=3,0", QUERY_TIMEOUT)?.is_some() {
            if let Some(lines) = self.query("AT+COPS?", NETWORK_TIMEOUT)? {
                s.operator = parse::cops(&lines).and_then(|c| c.name);
            }
        }
        if self.query("AT+COPS=3,2", QUERY_TIMEOUT)?.is_some() {
            if let Some(lines) = self.query("AT+COPS?", NETWORK_TIMEOUT)? {
                if let Some(c) = parse::cops(&lines) {
                    s.mcc = c.mcc;
                    s.mnc = c.mnc;
                    s.access_technology = c.access_technology;
                }
            }
        }
        // The most capable registration that holds wins: 5G, then EPS, then CS.
        let mut best: Option<parse::Registration> = None;
        for (command, prefix) in [
            ("AT+C5GREG?", "+C5GREG"),
            ("AT+CEREG?", "+CEREG"),
            ("AT+CREG?", "+CREG"),
        ] {
            let Some(lines) = self.query(command, QUERY_TIMEOUT)? else {
                continue;
            };
            let Some(r) = parse::registration(&lines, prefix) else {
                continue;
            };
            match &best {
                Some(b) if b.state.is_registered() => {}
                _ if r.state.is_registered() || best.is_none() => best = Some(r),
                _ => {}
            }
        }
        if let Some(r) = best {
            s.registration = Some(r.state);
            s.lac_tac = r.area;
            s.cell_id = r.cell_id;
            if r.access_technology.is_some() {
                s.access_technology = r.access_technology;
            }
        }
        self.contexts(&mut s)?;
        self.serving_cell(&mut s)?;
        s.power_saving = self.power_saving()?;
        if self.gnss && s.vendor == Some(Vendor::Quectel) {
            s.gnss_fix = self
                .query(gnss::QUECTEL_LOCATION, QUERY_TIMEOUT)?
                .and_then(|l| gnss::quectel_qgpsloc(&l));
        }
        Ok(s)
    }

    fn power_saving(&mut self) -> Result<Option<PowerSaving>, AtError> {
        let mut p = PowerSaving::default();
        if let Some((enabled, tau, active)) = self
            .query("AT+CPSMS?", QUERY_TIMEOUT)?
            .and_then(|l| power_saving::cpsms(&l))
        {
            p.psm_supported = true;
            p.psm_enabled = enabled;
            p.psm_timer = tau.and_then(power_saving::t3412_ext_seconds);
            p.active_timer = active.and_then(power_saving::t3324_seconds);
        }
        if let Some(lines) = self.query("AT+CEDRXS?", QUERY_TIMEOUT)? {
            p.edrx_supported = true;
            let ptw = match self.query("AT+CEDRXRDP", QUERY_TIMEOUT)? {
                Some(l) => power_saving::cedrxrdp_ptw(&l),
                None => Vec::new(),
            };
            p.edrx = power_saving::cedrxs(&lines)
                .into_iter()
                .map(|(act, value)| {
                    let window = ptw.iter().find(|(a, _)| *a == act).map_or(0, |(_, w)| *w);
                    (act, (window << 4) | value)
                })
                .collect();
        }
        Ok((p.psm_supported || p.edrx_supported).then_some(p))
    }

    /// Carries out a server's change of the power saving settings. The outcome shows in
    /// the next poll: what the modem then reports is what it took.
    pub fn apply(&mut self, change: PowerSavingChange) -> Result<(), AtError> {
        self.port.ensure_open()?;
        let command = match change {
            // AT+CPSMS= sets both timers at once: the one not written is kept.
            PowerSavingChange::PsmTimer(secs) => {
                let (enabled, _, active) = self.psm_settings()?;
                power_saving::cpsms_command(enabled, power_saving::t3412_ext_octet(secs), active)
            }
            PowerSavingChange::ActiveTimer(secs) => {
                let (enabled, tau, _) = self.psm_settings()?;
                power_saving::cpsms_command(enabled, tau, power_saving::t3324_octet(secs))
            }
            PowerSavingChange::Edrx { act, octet } => power_saving::cedrxs_command(act, octet),
            PowerSavingChange::Modes { psm, edrx } => {
                let (enabled, tau, active) = self.psm_settings()?;
                if enabled != psm {
                    self.set(&power_saving::cpsms_command(psm, tau, active))?;
                }
                if !edrx {
                    let on = match self.query("AT+CEDRXS?", QUERY_TIMEOUT)? {
                        Some(l) => power_saving::cedrxs(&l),
                        None => Vec::new(),
                    };
                    for (act, _) in on {
                        self.set(&power_saving::cedrxs_off_command(act))?;
                    }
                }
                return Ok(());
            }
        };
        self.set(&command)
    }

    /// PSM's mode and timers as the modem has them; a modem that does not say is taken
    /// as having PSM on with no timers of its own.
    fn psm_settings(&mut self) -> Result<(bool, Option<u8>, Option<u8>), AtError> {
        Ok(self
            .query("AT+CPSMS?", QUERY_TIMEOUT)?
            .and_then(|l| power_saving::cpsms(&l))
            .unwrap_or((true, None, None)))
    }

    /// A setting command: its refusal is logged, the port's failures returned.
    fn set(&mut self, command: &str) -> Result<(), AtError> {
        match self.port.command(command, QUERY_TIMEOUT) {
            Ok(_) => {
                tracing::info!(port = %self.port.path().display(), "{command}: OK");
                Ok(())
            }
            Err(AtError::Command { command, error }) => {
                tracing::warn!(port = %self.port.path().display(), "{command}: {error}");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Carries out a server's change of the data connection. A refused activation
    /// returns the refusal; the previous definition of the context is then restored and
    /// activated again, so that a modem left without data gets its old connection back.
    pub fn change_data(&mut self, change: DataChange) -> Option<ConnectOutcome> {
        match change {
            DataChange::Connect { id, settings } => {
                let result = self.connect(&settings);
                match &result {
                    Ok(()) => tracing::info!(
                        port = %self.port.path().display(),
                        apn = %settings.apn,
                        "data connection made"
                    ),
                    Err(e) => tracing::warn!(
                        port = %self.port.path().display(),
                        apn = %settings.apn,
                        "data connection refused: {e}"
                    ),
                }
                Some(ConnectOutcome { id, result })
            }
            DataChange::Disconnect => {
                let command = pdp::cgact_command(self.data_cid, false);
                if let Err(e) = self.set(&command) {
                    tracing::warn!("modem: {e}");
                }
                None
            }
        }
    }

    fn connect(&mut self, settings: &crate::modem::ApnSettings) -> Result<(), ConnectError> {
        let port = |e: AtError| ConnectError::Port(e.to_string());
        self.port.ensure_open().map_err(port)?;
        if self.setup_for != Some(self.port.generation()) {
            self.setup().map_err(port)?;
        }
        let cid = self.data_cid;
        let previous = self
            .query("AT+CGDCONT?", QUERY_TIMEOUT)
            .map_err(port)?
            .map(|l| parse::cgdcont(&l))
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.cid == cid);
        let pdp_type = pdp::pdp_type_for(previous.as_ref().map(|c| c.pdp_type.as_str()));
        // Every value is checked before anything is sent.
        let define = pdp::cgdcont_command(cid, pdp_type, &settings.apn)?;
        let authenticate = pdp::cgauth_command(cid, settings)?;

        self.required(&define, QUERY_TIMEOUT)?;
        let result = match self.required(&authenticate, QUERY_TIMEOUT) {
            // A modem without AT+CGAUTH can still connect where none is needed.
            Err(e) if settings.auth != crate::modem::ApnAuth::None => Err(e),
            _ => self.reactivate(cid),
        };
        if result.is_err() {
            self.restore(cid, previous.as_ref());
        } else {
            self.connected_with = Some(settings.clone());
        }
        result
    }

    /// Deactivates and activates `cid` so that its new definition takes effect. A modem
    /// that will not deactivate its last context (LTE keeps one while attached) is
    /// detached and attached again instead.
    fn reactivate(&mut self, cid: u32) -> Result<(), ConnectError> {
        if let Err(e) = self.required(&pdp::cgact_command(cid, false), ACTIVATION_TIMEOUT) {
            tracing::info!(port = %self.port.path().display(), "{e}: detaching instead");
            self.required("AT+CGATT=0", ACTIVATION_TIMEOUT)?;
            self.required("AT+CGATT=1", ACTIVATION_TIMEOUT)?;
        }
        self.required(&pdp::cgact_command(cid, true), ACTIVATION_TIMEOUT)
    }

    /// Puts back the context as it was before a failed change, as far as it is known:
    /// the authentication only when it was set here before (the modem never reads its
    /// secret back).
    fn restore(&mut self, cid: u32, previous: Option<&parse::PdpContext>) {
        let Some(previous) = previous else {
            return;
        };
        let commands =
            pdp::cgdcont_command(cid, &previous.pdp_type, &previous.apn).and_then(|define| {
                let auth = match self.connected_with.as_ref() {
                    Some(s) if s.apn == previous.apn => Some(pdp::cgauth_command(cid, s)?),
                    _ => None,
                };
                Ok((define, auth))
            });
        let Ok((define, auth)) = commands else {
            return;
        };
        let restored = self
            .required(&define, QUERY_TIMEOUT)
            .and_then(|()| match &auth {
                Some(a) => self.required(a, QUERY_TIMEOUT),
                None => Ok(()),
            })
            .and_then(|()| self.required(&pdp::cgact_command(cid, true), ACTIVATION_TIMEOUT));
        match restored {
            Ok(()) => tracing::info!(
                port = %self.port.path().display(),
                apn = %previous.apn,
                "previous data connection restored"
            ),
            Err(e) => tracing::warn!(
                port = %self.port.path().display(),
                apn = %previous.apn,
                "previous data connection not restored: {e}"
            ),
        }
    }

    /// A command whose refusal fails the change. AT+CGAUTH's text holds the secret, so
    /// errors name only the command's beginning.
    fn required(&mut self, command: &str, timeout: Duration) -> Result<(), ConnectError> {
        let shown = || pdp::redacted(command).into_owned();
        match self.port.command(command, timeout) {
            Ok(_) => {
                tracing::debug!(port = %self.port.path().display(), "{}: OK", shown());
                Ok(())
            }
            Err(AtError::Command { error, .. }) => Err(ConnectError::Refused {
                command: shown(),
                error,
            }),
            Err(AtError::Timeout { .. }) => {
                Err(ConnectError::Port(format!("{}: no answer", shown())))
            }
            Err(e) => Err(ConnectError::Port(e.to_string())),
        }
    }

    /// Identity and the settings the queries rely on, once per open port.
    fn setup(&mut self) -> Result<(), AtError> {
        // Echo off and numeric +CME ERROR codes; both are handled if they do not take.
        self.query("ATE0", QUERY_TIMEOUT)?;
        self.query("AT+CMEE=1", QUERY_TIMEOUT)?;
        let mut id = AtModemStatus::default();
        if let Some(lines) = self.query("AT+CGMI", QUERY_TIMEOUT)? {
            id.manufacturer = parse::manufacturer(&lines);
        }
        let vendor = id
            .manufacturer
            .as_deref()
            .map_or(Vendor::Other, Vendor::from_manufacturer);
        id.vendor = Some(vendor);
        if let Some(lines) = self.query("AT+CGSN", QUERY_TIMEOUT)? {
            id.imei = parse::imei(&lines);
        }
        if let Some(lines) = self.query("AT+CIMI", QUERY_TIMEOUT)? {
            id.imsi = parse::imsi(&lines);
        }
        id.iccid = match self.query("AT+CCID", QUERY_TIMEOUT)? {
            Some(lines) => parse::iccid(&lines),
            None => None,
        };
        if id.iccid.is_none() {
            let alternative = match vendor {
                Vendor::Quectel => Some("AT+QCCID"),
                Vendor::Simcom => Some("AT+CICCID"),
                Vendor::Ublox | Vendor::Other => None,
            };
            if let Some(command) = alternative {
                if let Some(lines) = self.query(command, QUERY_TIMEOUT)? {
                    id.iccid = parse::iccid(&lines);
                }
            }
        }
        // Registration queries report area and cell only in mode 2; the unsolicited
        // codes this also turns on are set aside by the exchange.
        for command in ["AT+CREG=2", "AT+CEREG=2", "AT+C5GREG=2"] {
            self.query(command, QUERY_TIMEOUT)?;
        }
        if vendor == Vendor::Ublox {
            self.query("AT+UCGED=2", QUERY_TIMEOUT)?;
        }
        if self.gnss {
            if vendor == Vendor::Quectel {
                self.query(gnss::QUECTEL_START, QUERY_TIMEOUT)?;
            } else {
                tracing::warn!(
                    manufacturer = id.manufacturer.as_deref().unwrap_or("?"),
                    "GNSS positions are read over AT from Quectel modules only"
                );
            }
        }
        tracing::info!(
            port = %self.port.path().display(),
            manufacturer = id.manufacturer.as_deref().unwrap_or("?"),
            imei = id.imei.as_deref().unwrap_or("?"),
            "modem identified"
        );
        self.identity = id;
        self.setup_for = Some(self.port.generation());
        Ok(())
    }

    fn contexts(&mut self, s: &mut AtModemStatus) -> Result<(), AtError> {
        let defined = match self.query("AT+CGDCONT?", QUERY_TIMEOUT)? {
            Some(lines) => parse::cgdcont(&lines),
            None => Vec::new(),
        };
        let addresses = match self.query("AT+CGPADDR", QUERY_TIMEOUT)? {
            Some(lines) => parse::cgpaddr(&lines),
            None => Vec::new(),
        };
        let dynamic = match self.query("AT+CGCONTRDP", QUERY_TIMEOUT)? {
            Some(lines) => parse::cgcontrdp(&lines),
            None => Vec::new(),
        };
        s.ip_addresses = addresses.iter().flat_map(|(_, a)| a.clone()).collect();
        for d in &dynamic {
            if let Some(a) = d.address {
                if !s.ip_addresses.contains(&a) {
                    s.ip_addresses.push(a);
                }
            }
        }
        let connected = addresses
            .iter()
            .find(|(_, a)| !a.is_empty())
            .map(|(cid, _)| *cid);
        if let Some(cid) = connected {
            self.data_cid = cid;
        }
        s.apn = dynamic
            .iter()
            .find(|d| Some(d.cid) == connected || connected.is_none())
            .map(|d| d.apn.clone())
            .filter(|a| !a.is_empty())
            .or_else(|| {
                defined
                    .iter()
                    .find(|c| Some(c.cid) == connected)
                    .or_else(|| defined.iter().find(|c| !c.apn.is_empty()))
                    .map(|c| c.apn.clone())
            })
            .filter(|a| !a.is_empty());
        s.gateway = dynamic.iter().find_map(|d| d.gateway);
        Ok(())
    }

    /// Fills what 27.007 left open from the vendor's serving-cell report.
    fn serving_cell(&mut self, s: &mut AtModemStatus) -> Result<(), AtError> {
        let mut reports = Vec::new();
        match s.vendor.unwrap_or(Vendor::Other) {
            Vendor::Quectel => {
                if let Some(lines) = self.query("AT+QENG=\"servingcell\"", QUERY_TIMEOUT)? {
                    reports.extend(vendor::quectel_qeng(&lines));
                }
                if let Some(lines) = self.query("AT+QCSQ", QUERY_TIMEOUT)? {
                    reports.extend(vendor::quectel_qcsq(&lines));
                }
            }
            Vendor::Simcom => {
                if let Some(lines) = self.query("AT+CPSI?", QUERY_TIMEOUT)? {
                    reports.extend(vendor::simcom_cpsi(&lines));
                }
            }
            Vendor::Ublox => {
                if let Some(lines) = self.query("AT+UCGED?", QUERY_TIMEOUT)? {
                    reports.extend(vendor::ublox_ucged(&lines));
                }
            }
            Vendor::Other => {}
        }
        // The first report that has a value gives it (QENG before QCSQ).
        let mut v = vendor::ServingCell::default();
        for r in reports {
            v.rsrp_dbm = v.rsrp_dbm.or(r.rsrp_dbm);
            v.rsrq_db = v.rsrq_db.or(r.rsrq_db);
            v.snr_db = v.snr_db.or(r.snr_db);
            v.rssi_dbm = v.rssi_dbm.or(r.rssi_dbm);
            v.cell_id = v.cell_id.or(r.cell_id);
            v.area = v.area.or(r.area);
            v.mcc = v.mcc.or(r.mcc);
            v.mnc = v.mnc.or(r.mnc);
            v.access_technology = v.access_technology.or(r.access_technology);
        }
        // The vendor's figures are measured, CESQ's are coarse indexes: they win.
        s.rsrp_dbm = v.rsrp_dbm.or(s.rsrp_dbm);
        s.rsrq_db = v.rsrq_db.or(s.rsrq_db);
        s.snr_db = v.snr_db.or(s.snr_db);
        if s.rssi_dbm.is_none() {
            s.rssi_dbm = v.rssi_dbm.map(|x| x.round() as i32);
        }
        // Identities from 27.007 where it gave them.
        s.cell_id = s.cell_id.or(v.cell_id);
        s.lac_tac = s.lac_tac.or(v.area);
        s.mcc = s.mcc.or(v.mcc);
        s.mnc = s.mnc.or(v.mnc);
        s.access_technology = s.access_technology.or(v.access_technology);
        Ok(())
    }

    /// A query whose refusal only means "no value": `Ok(None)` on an error result code.
    fn query(&mut self, command: &str, timeout: Duration) -> Result<Option<Vec<String>>, AtError> {
        match self.port.command(command, timeout) {
            Ok(lines) => Ok(Some(lines)),
            Err(AtError::Command { command, error }) => {
                tracing::debug!(port = %self.port.path().display(), "{command}: {error}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// Polls the modem every `interval` on a thread of its own and sends each result until
/// the receiver is dropped. Errors are sent too, so that the consumer can show the
/// modem as absent; they are logged here once per change.
///
/// Changes arriving on `changes` are carried out at once, followed by a poll so that
/// their outcome shows without waiting for the interval.
pub fn watch(
    mut modem: AtModem,
    interval: Duration,
    results: tokio::sync::mpsc::Sender<Result<AtModemStatus, String>>,
    changes: std::sync::mpsc::Receiver<ModemChange>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("at-modem".into())
        .spawn(move || {
            let mut last_error: Option<String> = None;
            let mut outcome = None;
            loop {
                let result = modem
                    .poll()
                    .map(|mut s| {
                        s.connect_outcome = outcome.take();
                        s
                    })
                    .map_err(|e| e.to_string());
                match &result {
                    Err(e) if last_error.as_deref() != Some(e.as_str()) => {
                        tracing::warn!("modem: {e}");
                        last_error = Some(e.clone());
                    }
                    Ok(_) if last_error.is_some() => {
                        tracing::info!("modem: answering again");
                        last_error = None;
                    }
                    _ => {}
                }
                if results.blocking_send(result).is_err() {
                    return;
                }
                match changes.recv_timeout(interval) {
                    Ok(first) => {
                        // A Write of a whole APN profile asks to connect once per
                        // resource: only the last data change is carried out.
                        let pending: Vec<ModemChange> =
                            std::iter::once(first).chain(changes.try_iter()).collect();
                        let mut data = None;
                        for change in pending {
                            match change {
                                ModemChange::PowerSaving(change) => {
                                    if let Err(e) = modem.apply(change) {
                                        tracing::warn!(?change, "modem: {e}");
                                    }
                                }
                                ModemChange::Data(change) => data = Some(change),
                            }
                        }
                        if let Some(change) = data {
                            outcome = modem.change_data(change).or(outcome);
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    // No one left to send changes: poll on the interval alone.
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        std::thread::sleep(interval)
                    }
                }
            }
        })
}
