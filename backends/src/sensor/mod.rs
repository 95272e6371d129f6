//! I2C sensors: chip drivers behind one small trait, and a sampling thread per bus that
//! serialises every transaction on that bus.
//!
//! Readings are in the quantity's own unit (degrees Celsius, %RH, pascals, lux, m/s²,
//! volts, amperes, watts, ppm); the mapping to LwM2M objects lives in `lwm2md`.

mod ads1x1x;
mod bh1750;
mod bme280;
mod chip;
mod ina219;
mod lis3dh;
mod lm75;
mod sampler;
mod scd4x;
mod shared;
mod sht3x;
mod sht4x;
mod sim;
mod simulated;
mod tmp102;
mod tmp117;

use std::fmt;

pub use sampler::{spawn, BusHandle, ChipSpec, Report};
pub use simulated::is_simulated as is_simulated_bus;

/// What a chip measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quantity {
    /// Degrees Celsius.
    Temperature,
    /// Percent relative humidity.
    Humidity,
    /// Pascals.
    Pressure,
    /// Lux.
    Illuminance,
    /// Metres per second squared, on each axis.
    AccelerationX,
    AccelerationY,
    AccelerationZ,
    /// Volts.
    Voltage,
    /// Volts at an analog-to-digital converter's input, numbered from 0.
    InputVoltage(u8),
    /// Amperes.
    Current,
    /// Watts.
    Power,
    /// Parts per million of CO2.
    Co2,
}

/// One measured value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub quantity: Quantity,
    pub value: f64,
}

/// A quantity a model reports and the range its datasheet specifies for it; a value
/// outside is taken as a fault, not as a measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub quantity: Quantity,
    pub min: f64,
    pub max: f64,
}

const fn span(quantity: Quantity, min: f64, max: f64) -> Span {
    Span { quantity, min, max }
}

use Quantity::*;

// BME280 datasheet 1.6, table 1: operating range.
const BME280_SPANS: &[Span] = &[
    span(Temperature, -40.0, 85.0),
    span(Humidity, 0.0, 100.0),
    span(Pressure, 30_000.0, 110_000.0),
];
// SHT3x-DIS datasheet, tables 1 and 2: specified ranges.
const SHT3X_SPANS: &[Span] = &[span(Temperature, -40.0, 125.0), span(Humidity, 0.0, 100.0)];
// SHT4x datasheet, tables 1 and 2: specified ranges.
const SHT4X_SPANS: &[Span] = &[span(Temperature, -40.0, 125.0), span(Humidity, 0.0, 100.0)];
// BH1750FVI datasheet, page 1: measurement range.
const BH1750_SPANS: &[Span] = &[span(Illuminance, 0.0, 65_535.0)];
// SCD4x datasheet 1.1 to 1.3: output range of CO2, specified T and RH ranges.
const SCD4X_SPANS: &[Span] = &[
    span(Co2, 0.0, 40_000.0),
    span(Temperature, -10.0, 60.0),
    span(Humidity, 0.0, 100.0),
];
// INA219 datasheet 1 and 8.5: bus 0 to 26 V; ±320 mV across the 0.1 Ω shunt.
const INA219_SPANS: &[Span] = &[
    span(Voltage, 0.0, 26.0),
    span(Current, -3.2, 3.2),
    span(Power, -83.2, 83.2),
];
// LIS3DH datasheet table 4: ±2 g full scale (12 bits: -2048 to +2047 mg).
const LIS3DH_SPANS: &[Span] = &[
    span(AccelerationX, -20.09, 20.09),
    span(AccelerationY, -20.09, 20.09),
    span(AccelerationZ, -20.09, 20.09),
];
// ADS1115/ADS1015 datasheets: the ±4.096 V full-scale range the driver sets.
const ADS1X1X_SPANS: &[Span] = &[
    span(InputVoltage(0), -4.096, 4.096),
    span(InputVoltage(1), -4.096, 4.096),
    span(InputVoltage(2), -4.096, 4.096),
    span(InputVoltage(3), -4.096, 4.096),
];
// TMP102 datasheet 7.3: operating range.
const TMP102_SPANS: &[Span] = &[span(Temperature, -55.0, 150.0)];
// TMP117 datasheet: specified operating range.
const TMP117_SPANS: &[Span] = &[span(Temperature, -55.0, 150.0)];
// LM75B datasheet: specified operating range.
const LM75_SPANS: &[Span] = &[span(Temperature, -55.0, 125.0)];
const SIM_SPANS: &[Span] = &[
    span(Temperature, -40.0, 125.0),
    span(Humidity, 0.0, 100.0),
    span(Pressure, 30_000.0, 110_000.0),
    span(Illuminance, 0.0, 65_535.0),
    span(AccelerationX, -19.6133, 19.6133),
    span(AccelerationY, -19.6133, 19.6133),
    span(AccelerationZ, -19.6133, 19.6133),
    span(Voltage, 0.0, 26.0),
    span(Current, -3.2, 3.2),
    span(Power, 0.0, 83.2),
    span(Co2, 0.0, 40_000.0),
];

/// The supported chips, named in configuration files as in lowercase (`model = "bme280"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// Bosch BME280: temperature, humidity, pressure.
    Bme280,
    /// Sensirion SHT30/31/35: temperature, humidity.
    Sht3x,
    /// Sensirion SHT40/41/43/45: temperature, humidity.
    Sht4x,
    /// TI TMP102 (and TMP112): temperature.
    Tmp102,
    /// TI TMP117: temperature.
    Tmp117,
    /// LM75 (NXP LM75A, TI LM75B and compatibles): temperature.
    Lm75,
    /// ROHM BH1750FVI: illuminance.
    Bh1750,
    /// Sensirion SCD40/SCD41: CO2, temperature, humidity.
    Scd4x,
    /// TI INA219: voltage, current, power.
    Ina219,
    /// ST LIS3DH: acceleration on three axes.
    Lis3dh,
    /// TI ADS1115: four 16-bit analog inputs.
    Ads1115,
    /// TI ADS1015: four 12-bit analog inputs.
    Ads1015,
    /// No chip: a deterministic waveform on every quantity, for demos and tests.
    Sim,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::Bme280 => "bme280",
            Model::Sht3x => "sht3x",
            Model::Sht4x => "sht4x",
            Model::Tmp102 => "tmp102",
            Model::Tmp117 => "tmp117",
            Model::Lm75 => "lm75",
            Model::Bh1750 => "bh1750",
            Model::Scd4x => "scd4x",
            Model::Ina219 => "ina219",
            Model::Lis3dh => "lis3dh",
            Model::Ads1115 => "ads1115",
            Model::Ads1015 => "ads1015",
            Model::Sim => "sim",
        }
    }

    /// What the model reports, with the datasheet's operating ranges.
    pub fn spans(self) -> &'static [Span] {
        match self {
            Model::Bme280 => BME280_SPANS,
            Model::Sht3x => SHT3X_SPANS,
            Model::Sht4x => SHT4X_SPANS,
            Model::Tmp102 => TMP102_SPANS,
            Model::Tmp117 => TMP117_SPANS,
            Model::Lm75 => LM75_SPANS,
            Model::Bh1750 => BH1750_SPANS,
            Model::Scd4x => SCD4X_SPANS,
            Model::Ina219 => INA219_SPANS,
            Model::Lis3dh => LIS3DH_SPANS,
            Model::Ads1115 | Model::Ads1015 => ADS1X1X_SPANS,
            Model::Sim => SIM_SPANS,
        }
    }

    /// The 7-bit addresses the chip can be strapped to.
    pub fn addresses(self) -> &'static [u8] {
        match self {
            Model::Bme280 => &[0x76, 0x77],
            Model::Sht3x => &[0x44, 0x45],
            Model::Sht4x => &[0x44, 0x45, 0x46],
            Model::Tmp102 | Model::Tmp117 | Model::Ads1115 | Model::Ads1015 => {
                &[0x48, 0x49, 0x4a, 0x4b]
            }
            Model::Lm75 => &[0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f],
            Model::Bh1750 => &[0x23, 0x5c],
            Model::Scd4x => &[0x62],
            Model::Lis3dh => &[0x18, 0x19],
            Model::Ina219 => &[
                0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d,
                0x4e, 0x4f,
            ],
            Model::Sim => &[],
        }
    }

    /// Whether the model talks to a real bus (the simulated one does not).
    pub fn uses_bus(self) -> bool {
        self != Model::Sim
    }

    /// Checks a configured address: one the chip can answer on (any 7-bit address for
    /// the simulated model).
    pub fn check_address(self, address: u16) -> Result<u8, String> {
        let a = u8::try_from(address)
            .ok()
            .filter(|a| *a <= 0x7f)
            .ok_or_else(|| format!("address {address:#x} is not a 7-bit I2C address"))?;
        let allowed = self.addresses();
        if allowed.is_empty() || allowed.contains(&a) {
            return Ok(a);
        }
        let list: Vec<String> = allowed.iter().map(|a| format!("{a:#04x}")).collect();
        Err(format!(
            "a {} answers only on {}, not on {a:#04x}",
            self.name(),
            list.join(", ")
        ))
    }
}

/// Why a chip gave no reading.
#[derive(Debug, Clone, PartialEq)]
pub enum SensorError {
    /// The bus device could not be opened (`/dev/i2c-N` missing or not permitted).
    Open(String),
    /// A transaction failed: NACK, arbitration loss, a vanished adapter.
    Bus(String),
    /// The checksum the chip sent with its data does not match.
    Crc,
    /// The chip at the address is not the configured model (wrong ID register).
    WrongChip,
    /// The chip answered with data that cannot be a measurement.
    Invalid,
    /// A value outside the datasheet's range.
    Implausible { quantity: Quantity, value: f64 },
}

impl fmt::Display for SensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SensorError::Open(why) => write!(f, "cannot open the bus: {why}"),
            SensorError::Bus(why) => write!(f, "bus error: {why}"),
            SensorError::Crc => write!(f, "CRC mismatch in the chip's data"),
            SensorError::WrongChip => write!(f, "the chip's ID is not the configured model's"),
            SensorError::Invalid => write!(f, "the chip returned invalid data"),
            SensorError::Implausible { quantity, value } => {
                write!(f, "{quantity:?} {value} is outside the datasheet's range")
            }
        }
    }
}

impl std::error::Error for SensorError {}

/// Checks readings against the model's datasheet ranges.
pub fn check_plausible(model: Model, readings: &[Reading]) -> Result<(), SensorError> {
    for r in readings {
        let within = model
            .spans()
            .iter()
            .find(|s| s.quantity == r.quantity)
            .is_some_and(|s| r.value.is_finite() && s.min <= r.value && r.value <= s.max);
        if !within {
            return Err(SensorError::Implausible {
                quantity: r.quantity,
                value: r.value,
            });
        }
    }
    Ok(())
}
