//! Object 6, Location. Fixes come from gpsd or from the configuration through the feed;
//! the object only holds the latest values, all read-only for servers.

use crate::model::registry;
use crate::objects::reported::Reported;
use crate::value::Value;

pub const LATITUDE: u16 = 0;
pub const LONGITUDE: u16 = 1;
pub const ALTITUDE: u16 = 2;
pub const RADIUS: u16 = 3;
pub const VELOCITY: u16 = 4;
pub const TIMESTAMP: u16 = 5;
pub const SPEED: u16 = 6;

/// Object 6 as the device reports it; its resources appear with the first position.
pub fn new() -> Reported {
    Reported::new(&registry::LOCATION)
}

/// A position as the object's resources, ready for the feed. Absent optional values are
/// left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub latitude: f64,
    pub longitude: f64,
    pub altitude: Option<f64>,
    pub radius: Option<f64>,
    /// Metres per second.
    pub speed: Option<f64>,
    /// Degrees clockwise from true north.
    pub bearing: Option<f64>,
    /// Metres per second, positive upwards.
    pub climb: Option<f64>,
    /// Unix seconds of the measurement.
    pub timestamp: i64,
}

impl Position {
    /// `(resource, value)` pairs of instance 0.
    pub fn resources(&self) -> Vec<(u16, Value)> {
        let mut out = vec![
            (LATITUDE, Value::Float(self.latitude)),
            (LONGITUDE, Value::Float(self.longitude)),
        ];
        if let Some(a) = self.altitude {
            out.push((ALTITUDE, Value::Float(a)));
        }
        if let Some(r) = self.radius {
            out.push((RADIUS, Value::Float(r)));
        }
        if let (Some(speed), Some(bearing)) = (self.speed, self.bearing) {
            out.push((
                VELOCITY,
                Value::Opaque(velocity(speed, bearing, self.climb)),
            ));
        }
        out.push((TIMESTAMP, Value::Time(self.timestamp)));
        if let Some(s) = self.speed {
            out.push((SPEED, Value::Float(s)));
        }
        out
    }
}

/// Velocity as 3GPP TS 23.032 clause 8 encodes it: "Horizontal Velocity" (type 0, 4
/// octets) or, with a vertical speed, "Horizontal with Vertical Velocity" (type 1, 5
/// octets). Bearing in whole degrees (9 bits), speeds in km/h rounded to the nearest
/// (16 bits horizontal, 8 bits vertical), saturating at the largest code.
pub fn velocity(speed_mps: f64, bearing_deg: f64, climb_mps: Option<f64>) -> Vec<u8> {
    let bearing = if bearing_deg.is_finite() {
        // N <= x < N+1 encodes as N (23.032 6.2); 360° is north again.
        (bearing_deg.rem_euclid(360.0).floor() as u16).min(359)
    } else {
        0
    };
    let horizontal = km_per_hour_code(speed_mps, u16::MAX.into()) as u16;
    let [b_hi, b_lo] = bearing.to_be_bytes();
    let [h_hi, h_lo] = horizontal.to_be_bytes();
    match climb_mps.filter(|c| c.is_finite()) {
        None => vec![b_hi & 1, b_lo, h_hi, h_lo],
        Some(climb) => {
            // Bit 2 of the first octet: 0 upward, 1 downward.
            let down = if climb < 0.0 { 0b10 } else { 0 };
            let vertical = km_per_hour_code(climb.abs(), u8::MAX.into()) as u8;
            vec![0x10 | down | (b_hi & 1), b_lo, h_hi, h_lo, vertical]
        }
    }
}

/// Speed in m/s to whole km/h, rounded to the nearest and clamped to `0..=max`.
fn km_per_hour_code(mps: f64, max: u32) -> u32 {
    if !mps.is_finite() || mps <= 0.0 {
        return 0;
    }
    let kmh = (mps * 3.6).round();
    if kmh >= f64::from(max) {
        max
    } else {
        kmh as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DmError, Object};
    use crate::value::ResourceValue;

    #[test]
    fn horizontal_velocity() {
        // 10 knots = 18.52 km/h -> 19, bearing 84.4° -> 84.
        assert_eq!(velocity(5.144, 84.4, None), vec![0x00, 84, 0x00, 19]);
        // Bearing 359.9 -> 359: the ninth bit lands in the first octet.
        assert_eq!(velocity(0.0, 359.9, None), vec![0x01, 0x67, 0x00, 0x00]);
        assert_eq!(velocity(0.0, 360.0, None), vec![0x00, 0x00, 0x00, 0x00]);
        // Saturates: 2^16-1 km/h.
        assert_eq!(velocity(1e9, 0.0, None), vec![0x00, 0x00, 0xff, 0xff]);
        assert_eq!(
            velocity(f64::NAN, f64::INFINITY, None),
            vec![0x00, 0x00, 0x00, 0x00]
        );
    }

    #[test]
    fn horizontal_with_vertical_velocity() {
        // 100 km/h at 270°, climbing 5 m/s = 18 km/h.
        let v = velocity(100.0 / 3.6, 270.0, Some(5.0));
        assert_eq!(v, vec![0x11, 0x0e, 0x00, 100, 18]);
        // Descending sets the direction bit.
        let v = velocity(0.0, 0.0, Some(-1.0));
        assert_eq!(v, vec![0x12, 0x00, 0x00, 0x00, 4]);
        assert_eq!(velocity(0.0, 0.0, Some(-1e6))[4], 0xff);
    }

    #[test]
    fn position_resources() {
        let p = Position {
            latitude: -43.5723,
            longitude: 153.2176,
            altitude: None,
            radius: Some(5.0),
            speed: Some(1.0),
            bearing: None,
            climb: None,
            timestamp: 1_700_000_000,
        };
        let ids: Vec<u16> = p.resources().iter().map(|(r, _)| *r).collect();
        assert_eq!(ids, vec![LATITUDE, LONGITUDE, RADIUS, TIMESTAMP, SPEED]);
    }

    #[test]
    fn servers_cannot_write() {
        let mut l = new();
        let v = ResourceValue::Single(Value::Float(1.0));
        assert!(l.write(0, LATITUDE, v.clone(), false).is_ok());
        assert_eq!(
            l.write(0, LATITUDE, v.clone(), true),
            Err(DmError::MethodNotAllowed)
        );
        assert_eq!(l.read(0, LATITUDE), Some(v));
        assert_eq!(l.instances(), vec![0]);
    }
}
