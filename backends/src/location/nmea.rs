//! NMEA 0183 sentences as a receiver (or a modem's GNSS engine, through ModemManager)
//! writes them: a [`Fix`] from the latest GGA, RMC and GST sentences.
//!
//! Sentences with a wrong or missing checksum are ignored, as are talkers and types that
//! carry no position. A receiver without a fix (RMC status `V`, GGA quality 0) gives none.

use super::Fix;

/// Metres per second in a knot.
const KNOT: f64 = 1852.0 / 3600.0;

/// The fix the sentences in `text` describe, the later sentence of a type winning.
pub fn fix(text: &str) -> Option<Fix> {
    let mut gga: Option<Gga> = None;
    let mut rmc: Option<Rmc> = None;
    let mut radius = None;
    for line in text.lines() {
        let Some(fields) = checked(line.trim()) else {
            continue;
        };
        let Some(kind) = fields.first().and_then(|t| t.get(2..)) else {
            continue;
        };
        match kind {
            "GGA" => gga = Gga::parse(&fields).or(gga),
            "RMC" => rmc = Rmc::parse(&fields).or(rmc),
            "GST" => radius = gst_radius(&fields).or(radius),
            _ => {}
        }
    }
    let (latitude, longitude) = match (&gga, &rmc) {
        (Some(g), _) => (g.latitude, g.longitude),
        (None, Some(r)) => (r.latitude, r.longitude),
        (None, None) => return None,
    };
    Some(Fix {
        latitude,
        longitude,
        altitude: gga.as_ref().and_then(|g| g.altitude),
        radius,
        speed: rmc.as_ref().and_then(|r| r.speed),
        track: rmc.as_ref().and_then(|r| r.track),
        climb: None,
        time: rmc.as_ref().and_then(|r| r.time),
    })
}

/// The comma-separated fields of a sentence whose checksum is right (without `$` and
/// `*hh`).
fn checked(line: &str) -> Option<Vec<&str>> {
    let body = line.strip_prefix('$')?;
    let (body, sum) = body.rsplit_once('*')?;
    let sum = u8::from_str_radix(sum.get(..2)?, 16).ok()?;
    if body.bytes().fold(0u8, |a, b| a ^ b) != sum || !body.is_ascii() {
        return None;
    }
    let fields: Vec<&str> = body.split(',').collect();
    // A talker ID of two letters and a type of three.
    (fields.first()?.len() == 5).then_some(fields)
}

struct Gga {
    latitude: f64,
    longitude: f64,
    altitude: Option<f64>,
}

impl Gga {
    fn parse(f: &[&str]) -> Option<Gga> {
        let quality: u8 = f.get(6)?.parse().ok()?;
        if quality == 0 {
            return None;
        }
        let latitude = coordinate(f.get(2)?, f.get(3)?, 2, 'N', 'S')?;
        let longitude = coordinate(f.get(4)?, f.get(5)?, 3, 'E', 'W')?;
        // Above mean sea level, in metres ("M").
        let altitude = match (f.get(9), f.get(10)) {
            (Some(a), Some(&"M")) => a.parse::<f64>().ok().filter(|a| a.is_finite()),
            _ => None,
        };
        Some(Gga {
            latitude,
            longitude,
            altitude,
        })
    }
}

struct Rmc {
    latitude: f64,
    longitude: f64,
    speed: Option<f64>,
    track: Option<f64>,
    time: Option<i64>,
}

impl Rmc {
    fn parse(f: &[&str]) -> Option<Rmc> {
        if *f.get(2)? != "A" {
            return None;
        }
        let number = |i: usize| {
            f.get(i)
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|x| x.is_finite() && *x >= 0.0)
        };
        Some(Rmc {
            latitude: coordinate(f.get(3)?, f.get(4)?, 2, 'N', 'S')?,
            longitude: coordinate(f.get(5)?, f.get(6)?, 3, 'E', 'W')?,
            speed: number(7).map(|knots| knots * KNOT),
            track: number(8).filter(|t| *t < 360.0),
            time: time_of(f.get(1)?, f.get(9)?),
        })
    }
}

/// GST: standard deviations of latitude and longitude error in metres; the radius is
/// their combined horizontal error.
fn gst_radius(f: &[&str]) -> Option<f64> {
    let lat: f64 = f.get(6)?.parse().ok()?;
    let lon: f64 = f.get(7)?.parse().ok()?;
    let r = lat.hypot(lon);
    (r.is_finite() && lat >= 0.0 && lon >= 0.0).then_some(r)
}

/// `ddmm.mmmm` (or `dddmm.mmmm`) and a hemisphere as signed degrees.
fn coordinate(
    value: &str,
    hemisphere: &str,
    degree_digits: usize,
    plus: char,
    minus: char,
) -> Option<f64> {
    let degrees: f64 = value.get(..degree_digits)?.parse().ok()?;
    let minutes: f64 = value.get(degree_digits..)?.parse().ok()?;
    if !(0.0..60.0).contains(&minutes)
        || !value
            .get(..degree_digits)?
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let x = degrees + minutes / 60.0;
    let limit = if degree_digits == 2 { 90.0 } else { 180.0 };
    if x > limit {
        return None;
    }
    match hemisphere.chars().next()? {
        c if c == plus => Some(x),
        c if c == minus => Some(-x),
        _ => None,
    }
}

/// `hhmmss[.ss]` and `ddmmyy` as Unix seconds; two-digit years are 2000..2099 (RMC has
/// no century; receivers of the last century are not expected).
pub(crate) fn time_of(hms: &str, dmy: &str) -> Option<i64> {
    let two = |s: &str, i: usize| -> Option<u32> {
        let d = s.get(i..i + 2)?;
        d.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| d.parse().ok())?
    };
    let (hour, minute, second) = (two(hms, 0)?, two(hms, 2)?, two(hms, 4)?);
    let (day, month, year) = (two(dmy, 0)?, two(dmy, 2)?, two(dmy, 4)?);
    let text = format!(
        "{:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z",
        2000 + year
    );
    super::gpsd::parse_iso8601(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    // NMEA 0183 examples (gpsd's test logs have the same shape).
    const GGA: &str = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47";
    const RMC: &str = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A";

    #[test]
    fn gga_and_rmc_make_one_fix() {
        let f = fix(&format!("{GGA}\r\n{RMC}\r\n")).unwrap();
        assert!((f.latitude - 48.1173).abs() < 1e-9, "{}", f.latitude);
        assert!(
            (f.longitude - 11.516_666_666).abs() < 1e-6,
            "{}",
            f.longitude
        );
        assert_eq!(f.altitude, Some(545.4));
        assert!((f.speed.unwrap() - 22.4 * KNOT).abs() < 1e-9);
        assert_eq!(f.track, Some(84.4));
        // 23 March 2094 12:35:19 UTC: RMC's two-digit year read in this century.
        assert_eq!(f.time, Some(3_920_186_119));
        assert_eq!(f.radius, None);
    }

    fn sentence(body: &str) -> String {
        let sum = body.bytes().fold(0u8, |a, b| a ^ b);
        format!("${body}*{sum:02X}")
    }

    #[test]
    fn southern_and_western_and_gst_radius() {
        let text = [
            sentence("GNGGA,092750.000,3353.1234,S,15112.5678,W,1,8,1.03,61.7,M,55.2,M,,"),
            sentence("GNGST,092750.000,1.0,3.0,4.0,30.0,3.0,4.0,5.0"),
        ]
        .join("\n");
        let f = fix(&text).unwrap();
        assert!(f.latitude < -33.88 && f.longitude < -151.2);
        assert_eq!(f.radius, Some(5.0));
        assert_eq!(f.time, None);
    }

    #[test]
    fn no_fix_bad_checksums_and_garbage_give_nothing() {
        for text in [
            String::new(),
            sentence("GPGGA,123519,,,,,0,00,,,M,,M,,"),
            sentence("GPRMC,123519,V,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"),
            sentence("GPGGA,123519,4807.038,Q,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
            sentence("GPGGA,123519,48,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
            sentence("GPGGA,123519"),
            // GGA with one digit changed and the old checksum.
            GGA.replace("545.4", "545.5"),
            GGA.replace("*47", ""),
            "garbage\r\n$*00\r\n$GP*".into(),
            "$GPGGA,1*,9*".into(),
        ] {
            assert_eq!(fix(&text), None, "{text:?}");
        }
    }

    #[test]
    fn out_of_range_coordinates_are_refused() {
        assert_eq!(coordinate("9107.038", "N", 2, 'N', 'S'), None);
        assert_eq!(coordinate("4867.038", "N", 2, 'N', 'S'), None);
        assert_eq!(coordinate("4807.038", "X", 2, 'N', 'S'), None);
        assert_eq!(coordinate("", "N", 2, 'N', 'S'), None);
        assert_eq!(coordinate("-107.038", "N", 2, 'N', 'S'), None);
    }
}
