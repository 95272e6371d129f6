//! INA219 (TI datasheet SBOS448): register map of 8.6 (configuration resetting to 0x399F
//! and self-clearing reset bit 15, shunt voltage in 10 µV steps, bus voltage in bits 15..3
//! with 4 mV steps and the conversion-ready flag in bit 1), current and power registers
//! computed from the calibration register as in 8.5.1.

use super::bus::SimChip;
use crate::sensor::Quantity;

const CONFIG_DEFAULT: u16 = 0x399f;

pub struct SimIna219 {
    /// What the chip measures: shunt voltage in 10 µV steps, bus voltage in millivolts.
    pub shunt_10uv: i16,
    pub bus_mv: u16,
    config: u16,
    calibration: u16,
    pointer: u8,
}

impl SimIna219 {
    pub fn new(shunt_10uv: i16, bus_mv: u16) -> SimIna219 {
        SimIna219 {
            shunt_10uv,
            bus_mv,
            config: CONFIG_DEFAULT,
            calibration: 0,
            pointer: 0,
        }
    }

    fn register(&self, pointer: u8) -> u16 {
        let bus = (self.bus_mv / 4) << 3 | 0b10;
        // Equations 4 and 5: current = shunt × cal / 4096, power = current × bus / 5000.
        let current = i32::from(self.shunt_10uv) * i32::from(self.calibration) / 4096;
        let power = current * i32::from(self.bus_mv / 4) / 5000;
        match pointer {
            0 => self.config,
            1 => self.shunt_10uv as u16,
            2 => bus,
            3 => power as u16,
            4 => current as u16,
            _ => self.calibration,
        }
    }
}

impl SimChip for SimIna219 {
    fn write(&mut self, data: &[u8]) -> Result<(), ()> {
        let Some((&pointer, value)) = data.split_first() else {
            return Ok(());
        };
        if pointer > 5 {
            return Err(());
        }
        self.pointer = pointer;
        if let [msb, lsb] = value {
            let v = u16::from_be_bytes([*msb, *lsb]);
            match pointer {
                0 if v & 0x8000 != 0 => {
                    self.config = CONFIG_DEFAULT;
                    self.calibration = 0;
                }
                0 => self.config = v,
                5 => self.calibration = v & 0xfffe,
                _ => {}
            }
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), ()> {
        let v = self.register(self.pointer);
        for (b, byte) in buf.iter_mut().zip(v.to_be_bytes()) {
            *b = byte;
        }
        Ok(())
    }

    fn sense(&mut self, environment: &dyn Fn(Quantity) -> f64) {
        // The 0.1 Ω shunt of the common boards: 10 µV per 100 µA.
        let shunt = environment(Quantity::Current) * 0.1 / 10e-6;
        self.shunt_10uv = shunt.round().clamp(-32000.0, 32000.0) as i16;
        self.bus_mv = (environment(Quantity::Voltage) * 1000.0)
            .round()
            .clamp(0.0, 32000.0) as u16;
    }
}
