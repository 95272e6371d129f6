//! TMP102 (TI datasheet SBOS397): pointer register (7.5.1), 12-bit left-justified
//! two's-complement temperature in 0.0625 °C steps (7.3.1, table 7-2), configuration
//! register resetting to 0x60A0 (7.5.3).

use super::bus::SimChip;
use crate::sensor::Quantity;

pub struct SimTmp102 {
    /// Temperature register content, 12 bits (table 7-2's "digital output").
    pub raw: u16,
    config: u16,
    t_low: u16,
    t_high: u16,
    pointer: u8,
}

impl SimTmp102 {
    pub fn new(raw: u16) -> SimTmp102 {
        SimTmp102 {
            raw,
            config: 0x60a0,
            t_low: 0x4b00,
            t_high: 0x5000,
            pointer: 0,
        }
    }

    /// The register for a temperature, rounded to the chip's resolution.
    pub fn raw_for(celsius: f64) -> u16 {
        ((celsius / 0.0625).round() as i16 as u16) & 0x0fff
    }
}

impl SimChip for SimTmp102 {
    fn write(&mut self, data: &[u8]) -> Result<(), ()> {
        let Some((&pointer, value)) = data.split_first() else {
            return Ok(());
        };
        if pointer > 3 {
            return Err(());
        }
        self.pointer = pointer;
        if let [msb, lsb] = value {
            let v = u16::from_be_bytes([*msb, *lsb]);
            match pointer {
                1 => self.config = v,
                2 => self.t_low = v,
                3 => self.t_high = v,
                _ => {}
            }
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), ()> {
        let v = match self.pointer {
            0 => self.raw << 4,
            1 => self.config,
            2 => self.t_low,
            _ => self.t_high,
        };
        for (b, byte) in buf.iter_mut().zip(v.to_be_bytes().iter().cycle()) {
            *b = *byte;
        }
        Ok(())
    }

    fn sense(&mut self, environment: &dyn Fn(Quantity) -> f64) {
        self.raw = Self::raw_for(environment(Quantity::Temperature));
    }
}
