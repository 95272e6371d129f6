//! BH1750FVI (ROHM datasheet rev. D): instruction set of page 5 (power down/on, reset
//! only when powered on, continuous and one-time modes, one-time returning to power
//! down), 2-byte big-endian result read without a register address.

use super::bus::SimChip;
use crate::sensor::Quantity;

pub struct SimBh1750 {
    /// The count the next conversion yields in H-resolution mode (lux × 1.2).
    pub count: u16,
    powered: bool,
    result: u16,
    pub conversions: u32,
}

impl SimBh1750 {
    pub fn new(count: u16) -> SimBh1750 {
        SimBh1750 {
            count,
            powered: false,
            result: 0,
            conversions: 0,
        }
    }
}

impl SimChip for SimBh1750 {
    fn write(&mut self, data: &[u8]) -> Result<(), ()> {
        let &[instruction] = data else {
            return Err(());
        };
        match instruction {
            0x00 => self.powered = false,
            0x01 => self.powered = true,
            0x07 if self.powered => self.result = 0,
            // Continuous H, H2, L: keep converting.
            0x10 | 0x11 | 0x13 => {
                self.powered = true;
                self.result = self.count;
                self.conversions += 1;
            }
            // One time H, H2, L: one conversion, then power down.
            0x20 | 0x21 | 0x23 => {
                self.result = self.count;
                self.powered = false;
                self.conversions += 1;
            }
            // Measurement time register (MTreg) high and low bits.
            0x40..=0x47 | 0x60..=0x7f => {}
            _ => return Err(()),
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), ()> {
        for (b, byte) in buf.iter_mut().zip(self.result.to_be_bytes()) {
            *b = byte;
        }
        Ok(())
    }

    fn sense(&mut self, environment: &dyn Fn(Quantity) -> f64) {
        // H-resolution mode: lux = count / 1.2.
        self.count = (environment(Quantity::Illuminance) * 1.2)
            .round()
            .clamp(0.0, 65535.0) as u16;
    }
}
