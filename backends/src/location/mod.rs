//! Where the gateway is: fixes from gpsd, in WGS 84 degrees, metres and seconds.

pub mod gpsd;
pub mod nmea;

/// One position fix. Only latitude and longitude are always there; a receiver reports
/// the rest when it has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    /// Degrees north, WGS 84.
    pub latitude: f64,
    /// Degrees east, WGS 84.
    pub longitude: f64,
    /// Metres above mean sea level.
    pub altitude: Option<f64>,
    /// Horizontal uncertainty in metres (radius of the circle around the point).
    pub radius: Option<f64>,
    /// Ground speed in metres per second.
    pub speed: Option<f64>,
    /// Course over ground in degrees clockwise from true north.
    pub track: Option<f64>,
    /// Vertical speed in metres per second, positive upwards.
    pub climb: Option<f64>,
    /// Unix seconds of the measurement, when the receiver knows the time.
    pub time: Option<i64>,
}
