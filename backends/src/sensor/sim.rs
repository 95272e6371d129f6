//! The simulated model: no chip, a deterministic waveform on every quantity. Sample `n`
//! of every simulated sensor gives the same values, so demos and tests can predict them.

use super::chip::Chip;
use super::{Model, Quantity, Reading, SensorError};

/// Samples per period of the waveform.
const PERIOD: u32 = 12;

pub struct Sim {
    /// Shifts the phase so that sensors at different addresses differ.
    phase: u32,
    n: u32,
}

impl Sim {
    pub fn new(address: u8) -> Sim {
        Sim {
            phase: u32::from(address),
            n: 0,
        }
    }
}

/// The value of a quantity at step `k`: a sine around a typical indoor value, rounded
/// to two decimals.
pub fn wave(quantity: Quantity, k: u32) -> f64 {
    let (mid, amplitude) = match quantity {
        Quantity::Temperature => (21.0, 4.0),
        Quantity::Humidity => (45.0, 10.0),
        Quantity::Pressure => (101_325.0, 500.0),
        Quantity::Illuminance => (300.0, 200.0),
        Quantity::AccelerationX => (0.0, 0.5),
        Quantity::AccelerationY => (0.0, 0.25),
        Quantity::AccelerationZ => (9.80665, 0.1),
        Quantity::Voltage => (12.0, 0.5),
        Quantity::InputVoltage(n) => (1.0 + 0.5 * f64::from(n), 0.25),
        Quantity::Current => (1.0, 0.5),
        Quantity::Power => (12.0, 6.0),
        Quantity::Co2 => (600.0, 200.0),
    };
    let angle = f64::from(k % PERIOD) / f64::from(PERIOD) * std::f64::consts::TAU;
    ((mid + amplitude * angle.sin()) * 100.0).round() / 100.0
}

impl Chip for Sim {
    fn init(&mut self) -> Result<(), SensorError> {
        Ok(())
    }

    fn measure(&mut self) -> Result<Vec<Reading>, SensorError> {
        let k = self.n.wrapping_add(self.phase);
        self.n = self.n.wrapping_add(1);
        Ok(Model::Sim
            .spans()
            .iter()
            .map(|s| Reading {
                quantity: s.quantity,
                value: wave(s.quantity, k),
            })
            .collect())
    }
}
