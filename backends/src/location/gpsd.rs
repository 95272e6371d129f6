//! gpsd's JSON protocol over TCP (gpsd_json(5)): `?WATCH` turns on a stream of reports,
//! one JSON object per line; TPV reports carry the fix.
//!
//! gpsd restarts, receivers come and go: [`watch`] reconnects with a growing delay and
//! reports each change of state once.

use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::Fix;

/// gpsd's port (IANA).
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:2947";

const WATCH: &[u8] = b"?WATCH={\"enable\":true,\"json\":true};\n";
/// gpsd lines are a few hundred bytes (SKY reports with many satellites reach ~4 kB);
/// anything longer is not gpsd talking.
const MAX_LINE: usize = 16 * 1024;
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// What the watcher reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Fix(Fix),
    /// The receiver reports no fix (mode 0 or 1), or gpsd went away.
    NoFix,
}

/// The parts of a TPV report used here (gpsd_json(5), "TPV").
#[derive(Debug, Deserialize)]
struct Tpv {
    class: String,
    #[serde(default)]
    mode: u8,
    time: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    #[serde(rename = "altMSL")]
    alt_msl: Option<f64>,
    /// Before gpsd 3.20 the only altitude, MSL; later deprecated in favour of altMSL.
    alt: Option<f64>,
    eph: Option<f64>,
    epx: Option<f64>,
    epy: Option<f64>,
    speed: Option<f64>,
    track: Option<f64>,
    climb: Option<f64>,
}

/// Parses one line from gpsd. `None` for lines that are not TPV reports (VERSION,
/// DEVICES, SKY, ...) or are not JSON; `Some(NoFix)` for a TPV without a position.
pub fn parse_line(line: &str) -> Option<Event> {
    let tpv: Tpv = serde_json::from_str(line).ok()?;
    if tpv.class != "TPV" {
        return None;
    }
    let finite = |x: Option<f64>| x.filter(|v| v.is_finite());
    let (Some(latitude), Some(longitude)) = (finite(tpv.lat), finite(tpv.lon)) else {
        return Some(Event::NoFix);
    };
    if tpv.mode < 2 || !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude)
    {
        return Some(Event::NoFix);
    }
    // 3.22 reports eph; older versions only the per-axis estimates.
    let radius = finite(tpv.eph).or_else(|| match (finite(tpv.epx), finite(tpv.epy)) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    });
    Some(Event::Fix(Fix {
        latitude,
        longitude,
        // A 2D fix has no altitude worth reporting even if a stale one is sent.
        altitude: if tpv.mode >= 3 {
            finite(tpv.alt_msl).or(finite(tpv.alt))
        } else {
            None
        },
        radius: radius.filter(|r| *r >= 0.0),
        speed: finite(tpv.speed).filter(|s| *s >= 0.0),
        track: finite(tpv.track),
        climb: finite(tpv.climb),
        time: tpv.time.as_deref().and_then(parse_iso8601),
    }))
}

/// `2026-11-25T12:35:01.000Z` to Unix seconds (fraction dropped). gpsd always sends UTC
/// with a `Z`.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let time = time.split_once('.').map_or(time, |(t, _)| t);
    let mut t = time.splitn(3, ':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let second: i64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..=60).contains(&second)
        || !(1970..=9999).contains(&year)
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Why a connection to gpsd ended.
#[derive(Debug)]
pub enum GpsdError {
    Connect(std::io::Error),
    Io(std::io::Error),
    Closed,
    LineTooLong,
}

impl std::fmt::Display for GpsdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpsdError::Connect(e) => write!(f, "cannot connect: {e}"),
            GpsdError::Io(e) => write!(f, "connection lost: {e}"),
            GpsdError::Closed => write!(f, "gpsd closed the connection"),
            GpsdError::LineTooLong => write!(f, "a line longer than {MAX_LINE} bytes"),
        }
    }
}

impl std::error::Error for GpsdError {}

/// Watches gpsd at `address` until `events` is closed, reconnecting with backoff. Sends
/// every fix, and `NoFix` when the fix is lost or gpsd goes away.
pub async fn watch(address: String, events: mpsc::Sender<Event>) {
    let mut delay = RETRY_FIRST;
    let mut last_error: Option<String> = None;
    loop {
        let mut connected = false;
        let result = session(&address, &events, &mut connected).await;
        if events.is_closed() {
            return;
        }
        if connected {
            delay = RETRY_FIRST;
        }
        let message = match result {
            Ok(()) => return,
            Err(e) => e.to_string(),
        };
        // Log once per state change: a gpsd that stays down would otherwise fill the journal.
        if last_error.as_deref() != Some(message.as_str()) {
            tracing::warn!(%address, "gpsd: {message}; retrying");
            last_error = Some(message);
        }
        if events.send(Event::NoFix).await.is_err() {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RETRY_MAX);
    }
}

/// One connection. `Ok` only when the receiver of events is gone.
async fn session(
    address: &str,
    events: &mpsc::Sender<Event>,
    connected: &mut bool,
) -> Result<(), GpsdError> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(GpsdError::Connect)?;
    stream.write_all(WATCH).await.map_err(GpsdError::Io)?;
    *connected = true;
    tracing::info!(%address, "gpsd: watching");
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let mut had_fix = None;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
            .map_err(GpsdError::Io)?;
        if n == 0 {
            return Err(GpsdError::Closed);
        }
        if line.len() > MAX_LINE {
            return Err(GpsdError::LineTooLong);
        }
        let Some(event) = std::str::from_utf8(&line).ok().and_then(parse_line) else {
            continue;
        };
        let fix = matches!(event, Event::Fix(_));
        if had_fix != Some(fix) {
            if fix {
                tracing::info!(%address, "gpsd: position fix");
            } else {
                tracing::info!(%address, "gpsd: no fix");
            }
            had_fix = Some(fix);
        }
        if events.send(event).await.is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpv_from_gpsd_3_22() {
        let line = r#"{"class":"TPV","device":"/dev/pts/2","mode":3,"time":"2026-11-25T12:35:01.000Z","ept":0.005,"lat":52.520000000,"lon":13.405000000,"altHAE":81.4000,"altMSL":34.5000,"alt":34.5000,"epv":34.500,"track":84.4000,"magtrack":88.4590,"magvar":4.1,"speed":5.144,"climb":0.000,"epc":69.00,"geoidSep":46.900,"eph":17.100,"sep":34.200}"#;
        let Some(Event::Fix(fix)) = parse_line(line) else {
            panic!("no fix from {line}");
        };
        assert_eq!(fix.latitude, 52.52);
        assert_eq!(fix.longitude, 13.405);
        assert_eq!(fix.altitude, Some(34.5));
        assert_eq!(fix.radius, Some(17.1));
        assert_eq!(fix.speed, Some(5.144));
        assert_eq!(fix.track, Some(84.4));
        assert_eq!(fix.climb, Some(0.0));
        assert_eq!(fix.time, Some(1_795_610_101));
    }

    #[test]
    fn tpv_from_old_gpsd_and_2d_fix() {
        // gpsd 3.17: alt is MSL, no eph.
        let line = r#"{"class":"TPV","device":"/dev/ttyUSB0","mode":2,"time":"2017-01-01T00:00:00Z","lat":-43.5723,"lon":153.2176,"alt":12.0,"epx":8.0,"epy":11.5}"#;
        let Some(Event::Fix(fix)) = parse_line(line) else {
            panic!("no fix");
        };
        assert_eq!(fix.latitude, -43.5723);
        assert_eq!(fix.altitude, None);
        assert_eq!(fix.radius, Some(11.5));
        assert_eq!(fix.time, Some(1_483_228_800));
    }

    #[test]
    fn not_a_fix() {
        assert_eq!(
            parse_line(r#"{"class":"TPV","device":"/dev/ttyUSB0","mode":1}"#),
            Some(Event::NoFix)
        );
        assert_eq!(
            parse_line(r#"{"class":"TPV","mode":3,"lat":95.0,"lon":0.0}"#),
            Some(Event::NoFix)
        );
        assert_eq!(parse_line(r#"{"class":"VERSION","release":"3.22"}"#), None);
        assert_eq!(parse_line(r#"{"class":"TPV","mode":"x"}"#), None);
        assert_eq!(parse_line("not json"), None);
        assert_eq!(parse_line(""), None);
    }

    #[test]
    fn iso8601() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso8601("2000-03-01T00:00:00.5Z"), Some(951_868_800));
        assert_eq!(parse_iso8601("2024-02-29T23:59:59Z"), Some(1_709_251_199));
        assert_eq!(parse_iso8601("2024-02-29T23:59:59"), None);
        assert_eq!(parse_iso8601("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_iso8601("99999999999999999999-01-01T00:00:00Z"), None);
        assert_eq!(parse_iso8601("T"), None);
    }
}
