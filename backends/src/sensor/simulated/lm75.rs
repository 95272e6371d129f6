//! LM75B (TI datasheet SNOS830): pointer register (temperature, configuration,
//! T_HYST, T_OS; others NACKed), 9-bit two's-complement temperature left-justified in
//! 0.5 °C steps (the temperature data format table), configuration resetting to 0 with shutdown in bit 0 (the
//! temperature register then keeps its last conversion), T_HYST 75 °C and T_OS 80 °C.

use super::bus::SimChip;
use crate::sensor::Quantity;

pub struct SimLm75 {
    /// What the next conversion yields: 9 bits, as the data format table's "digital output".
    pub raw: u16,
    /// The temperature register.
    register: u16,
    config: u8,
    hysteresis: u16,
    overtemperature: u16,
    pointer: u8,
}

impl SimLm75 {
    pub fn new(raw: u16) -> SimLm75 {
        SimLm75 {
            raw,
            register: (raw & 0x1ff) << 7,
            config: 0,
            hysteresis: 0x4b00,
            overtemperature: 0x5000,
            pointer: 0,
        }
    }

    /// The 9-bit output for a temperature, rounded to the chip's 0.5 °C.
    pub fn raw_for(celsius: f64) -> u16 {
        ((celsius * 2.0).round() as i16 as u16) & 0x1ff
    }
}

impl SimChip for SimLm75 {
    fn write(&mut self, data: &[u8]) -> Result<(), ()> {
        let Some((&pointer, value)) = data.split_first() else {
            return Ok(());
        };
        if pointer > 3 {
            return Err(());
        }
        self.pointer = pointer;
        match (pointer, value) {
            (_, []) => {}
            (1, [config]) => self.config = *config,
            (2, [msb, lsb]) => self.hysteresis = u16::from_be_bytes([*msb, *lsb]) & 0xff80,
            (3, [msb, lsb]) => self.overtemperature = u16::from_be_bytes([*msb, *lsb]) & 0xff80,
            // The temperature register is read-only; other lengths are not a register.
            _ => return Err(()),
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), ()> {
        if self.config & 0x01 == 0 {
            self.register = (self.raw & 0x1ff) << 7;
        }
        let v = match self.pointer {
            0 => self.register,
            1 => u16::from(self.config) << 8,
            2 => self.hysteresis,
            _ => self.overtemperature,
        };
        let bytes = v.to_be_bytes();
        // The configuration register is one byte; the others two.
        let len = if self.pointer == 1 { 1 } else { 2 };
        for (b, byte) in buf.iter_mut().zip(bytes[..len].iter().cycle()) {
            *b = *byte;
        }
        Ok(())
    }

    fn sense(&mut self, environment: &dyn Fn(Quantity) -> f64) {
        self.raw = Self::raw_for(environment(Quantity::Temperature));
    }
}
