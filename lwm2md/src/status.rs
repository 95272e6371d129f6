//! `lwm2md status`: asks the running daemon over the system bus and prints what it says.

use std::process::ExitCode;

use serde::Serialize;

use crate::cli::{OutputFormat, EX_NOT_RUNNING};
use crate::dbus_api::{Daemon1ClientProxy, ServerStatus, BUS_NAME};

#[derive(Debug, Serialize)]
struct Status {
    endpoint: String,
    version: String,
    observations: u64,
    servers: Vec<ServerStatus>,
}

#[derive(Debug)]
enum StatusError {
    /// No connection to the bus at all.
    Bus { address: String, error: zbus::Error },
    /// The bus is there, the daemon is not on it.
    NotRunning,
    /// The daemon (or the bus policy) refused or failed the call.
    Call(zbus::Error),
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusError::Bus { address, error } => {
                write!(f, "cannot connect to the system bus at {address}: {error}")
            }
            StatusError::NotRunning => write!(
                f,
                "the daemon is not running: nobody owns {BUS_NAME} on the system bus \
                 (systemctl status lwm2md)"
            ),
            StatusError::Call(e) if is_access_denied(e) => write!(
                f,
                "the bus policy does not let this user ask the daemon; run as root or as a \
                 member of the group lwm2md ({e})"
            ),
            StatusError::Call(e) => write!(f, "asking the daemon: {e}"),
        }
    }
}

/// The bus refused the call (its policy): as a reply error or, through a proxy, as the
/// standard error it maps to.
fn is_access_denied(e: &zbus::Error) -> bool {
    match e {
        zbus::Error::MethodError(name, ..) => {
            name.as_str() == "org.freedesktop.DBus.Error.AccessDenied"
        }
        zbus::Error::FDO(fdo) => matches!(**fdo, zbus::fdo::Error::AccessDenied(_)),
        _ => false,
    }
}

pub async fn run(output: OutputFormat) -> ExitCode {
    let status = match query().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lwm2md: {e}");
            return match e {
                StatusError::NotRunning => ExitCode::from(EX_NOT_RUNNING),
                _ => ExitCode::FAILURE,
            };
        }
    };
    match output {
        OutputFormat::Json => match serde_json::to_string_pretty(&status) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("lwm2md: {e}");
                return ExitCode::FAILURE;
            }
        },
        OutputFormat::Human => print!("{}", human(&status, crate::objects::device::system_clock())),
    }
    ExitCode::SUCCESS
}

async fn query() -> Result<Status, StatusError> {
    let address = backends::system::SystemBus::from_env().address().to_owned();
    let connection = async {
        zbus::connection::Builder::address(address.as_str())?
            .build()
            .await
    }
    .await
    .map_err(|error| StatusError::Bus {
        address: address.clone(),
        error,
    })?;
    let dbus = zbus::fdo::DBusProxy::new(&connection)
        .await
        .map_err(StatusError::Call)?;
    let name = zbus::names::BusName::try_from(BUS_NAME).map_err(|e| StatusError::Call(e.into()))?;
    if !dbus
        .name_has_owner(name)
        .await
        .map_err(|e| StatusError::Call(e.into()))?
    {
        return Err(StatusError::NotRunning);
    }
    let proxy = Daemon1ClientProxy::builder(&connection)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(StatusError::Call)?;
    let servers = proxy.servers().await.map_err(StatusError::Call)?;
    Ok(Status {
        endpoint: proxy.endpoint().await.map_err(StatusError::Call)?,
        version: proxy.version().await.map_err(StatusError::Call)?,
        observations: servers.iter().map(|s| u64::from(s.observations)).sum(),
        servers,
    })
}

/// A heading line, then one line per server.
fn human(status: &Status, unix_now: i64) -> String {
    let mut out = format!(
        "lwm2md {}, endpoint {}, {} observation{}\n",
        status.version,
        status.endpoint,
        status.observations,
        if status.observations == 1 { "" } else { "s" }
    );
    for s in &status.servers {
        let mut line = format!("server {} {}: ", s.short_server_id, s.uri);
        if s.registered {
            line.push_str("registered");
        } else {
            line.push_str("not registered");
        }
        if s.last_registration > 0 {
            let ago = unix_now.saturating_sub(s.last_registration).max(0);
            line.push_str(&format!(
                ", last registration {} ({ago} s ago)",
                utc(s.last_registration)
            ));
        }
        line.push_str(&format!(", lifetime {} s", s.lifetime));
        if s.next_update_in >= 0 {
            line.push_str(&format!(", next update in {} s", s.next_update_in));
        }
        line.push_str(&format!(", {} observations", s.observations));
        if !s.last_error.is_empty() {
            line.push_str(&format!(", last error: {}", s.last_error));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian calendar).
fn utc(unix: i64) -> String {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn one_line_per_server() {
        let status = Status {
            endpoint: "gw-1".into(),
            version: "0.1.0".into(),
            observations: 2,
            servers: vec![
                ServerStatus {
                    short_server_id: 1,
                    uri: "coap://a".into(),
                    registered: true,
                    last_registration: 1_800_000_000,
                    lifetime: 300,
                    next_update_in: 250,
                    last_error: String::new(),
                    observations: 2,
                },
                ServerStatus {
                    short_server_id: 2,
                    uri: "coaps://b".into(),
                    registered: false,
                    last_registration: 0,
                    lifetime: 86400,
                    next_update_in: -1,
                    last_error: "timeout".into(),
                    observations: 0,
                },
            ],
        };
        let text = human(&status, 1_800_000_010);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "lwm2md 0.1.0, endpoint gw-1, 2 observations");
        assert_eq!(
            lines[1],
            "server 1 coap://a: registered, last registration 2027-01-15T08:00:00Z (10 s ago), \
             lifetime 300 s, next update in 250 s, 2 observations"
        );
        assert_eq!(
            lines[2],
            "server 2 coaps://b: not registered, lifetime 86400 s, 0 observations, last error: timeout"
        );
    }
}
