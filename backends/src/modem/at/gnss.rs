//! The GNSS receiver of a Quectel module over its AT port (Quectel GNSS AT commands
//! manual: AT+QGPS starts the engine, AT+QGPSLOC=2 reads the fix in decimal degrees).

use super::fields::after_prefix;
use crate::location::{nmea, Fix};

/// Starts the GNSS engine; `+CME ERROR: 504` (session ongoing) means it already runs.
pub const QUECTEL_START: &str = "AT+QGPS=1";
pub const QUECTEL_LOCATION: &str = "AT+QGPSLOC=2";

/// `+QGPSLOC: <UTC>,<lat>,<lon>,<HDOP>,<altitude>,<fix>,<COG>,<spkm>,<spkn>,<date>,<nsat>`
/// with latitude and longitude in signed degrees (mode 2), the course as `ddd.mm`
/// (degrees and minutes), speed in km/h and knots. Without a fix the module answers
/// `+CME ERROR: 516` instead. The HDOP is no distance, so the fix has no radius.
pub fn quectel_qgpsloc(lines: &[String]) -> Option<Fix> {
    lines.iter().find_map(|l| {
        let f = after_prefix(l, "+QGPSLOC")?;
        let number = |i: usize| f.get(i)?.float();
        let latitude = number(1).filter(|x| (-90.0..=90.0).contains(x))?;
        let longitude = number(2).filter(|x| (-180.0..=180.0).contains(x))?;
        let fix_mode = f.get(5)?.uint()?;
        if !(2..=3).contains(&fix_mode) {
            return None;
        }
        // Altitude only from a 3D fix.
        let altitude = number(4).filter(|_| fix_mode == 3);
        let track = number(6).and_then(|c| {
            let degrees = c.trunc();
            let minutes = (c - degrees) * 100.0;
            let t = degrees + minutes / 60.0;
            (c >= 0.0 && minutes < 60.0 && t < 360.0).then_some(t)
        });
        let speed = number(7).filter(|s| *s >= 0.0).map(|kmh| kmh / 3.6);
        let time = nmea::time_of(f.first()?.text, f.get(9)?.text);
        Some(Fix {
            latitude,
            longitude,
            altitude,
            radius: None,
            speed,
            track,
            climb: None,
            time,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_3d_fix() {
        // The manual's example, mode 2.
        let f = quectel_qgpsloc(&lines(&[
            "+QGPSLOC: 061951.000,31.16734,121.36458,1.1,40.0,3,12.30,3.6,1.9,110513,09",
            "OK",
        ]))
        .unwrap();
        assert_eq!(
            (f.latitude, f.longitude, f.altitude),
            (31.16734, 121.36458, Some(40.0))
        );
        assert!((f.track.unwrap() - 12.5).abs() < 1e-9, "12° 30'");
        assert!((f.speed.unwrap() - 1.0).abs() < 1e-9, "3.6 km/h");
        // 11 May 2013 06:19:51 UTC.
        assert_eq!(f.time, Some(1_368_253_191));
        assert_eq!(f.radius, None);
    }

    #[test]
    fn a_2d_fix_has_no_altitude_and_bad_answers_no_fix() {
        let f = quectel_qgpsloc(&lines(&[
            "+QGPSLOC: 061951.000,-31.5,-121.25,1.1,40.0,2,0.00,0.0,0.0,110513,04",
        ]))
        .unwrap();
        assert_eq!(
            (f.latitude, f.longitude, f.altitude),
            (-31.5, -121.25, None)
        );
        for bad in [
            "+CME ERROR: 516",
            "+QGPSLOC: 061951.000,91.0,121.36458,1.1,40.0,3,0.00,0.0,0.0,110513,09",
            "+QGPSLOC: 061951.000,31.1,121.3,1.1,40.0,1,0.00,0.0,0.0,110513,09",
            "+QGPSLOC: 061951.000,N,E",
            "+QGPSLOC:",
        ] {
            assert_eq!(quectel_qgpsloc(&lines(&[bad])), None, "{bad}");
        }
    }
}
