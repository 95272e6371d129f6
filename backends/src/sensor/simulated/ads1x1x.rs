//! ADS1115 and ADS1015 (TI datasheets SBAS444, SBAS473): pointer register (bits 7..2 zero),
//! configuration register resetting to 0x8583 (OS, MUX, PGA, MODE, DR),
//! single-shot conversions started by writing OS and lasting one data-rate period, OS
//! reading 0 meanwhile; ideal output codes, clipped at the full scale, 12-bit
//! codes left-justified on the ADS1015.

use std::time::{Duration, Instant};

use super::bus::SimChip;
use crate::sensor::Quantity;

const OS: u16 = 1 << 15;
const MODE_SINGLE: u16 = 1 << 8;

pub struct SimAds1x1x {
    /// Volts at AIN0 to AIN3.
    pub inputs: [f64; 4],
    bits: u32,
    rates: [u64; 8],
    conversion: u16,
    config: u16,
    low: u16,
    high: u16,
    pointer: u8,
    converting: Option<Instant>,
}

impl SimAds1x1x {
    pub fn ads1115(inputs: [f64; 4]) -> SimAds1x1x {
        SimAds1x1x::new(inputs, 16, [8, 16, 32, 64, 128, 250, 475, 860])
    }

    pub fn ads1015(inputs: [f64; 4]) -> SimAds1x1x {
        SimAds1x1x::new(inputs, 12, [128, 250, 490, 920, 1600, 2400, 3300, 3300])
    }

    fn new(inputs: [f64; 4], bits: u32, rates: [u64; 8]) -> SimAds1x1x {
        SimAds1x1x {
            inputs,
            bits,
            rates,
            conversion: 0,
            config: 0x8583,
            low: 0x8000,
            high: 0x7fff,
            pointer: 0,
            converting: None,
        }
    }

    /// The conversion register for the input the multiplexer selects.
    fn convert(&self) -> u16 {
        let [a0, a1, a2, a3] = self.inputs;
        let v = match (self.config >> 12) & 0b111 {
            0b000 => a0 - a1,
            0b001 => a0 - a3,
            0b010 => a1 - a3,
            0b011 => a2 - a3,
            0b100 => a0,
            0b101 => a1,
            0b110 => a2,
            _ => a3,
        };
        let fsr = [6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256]
            [usize::from((self.config >> 9) & 0b111)];
        let full = f64::from(1u32 << (self.bits - 1));
        let code = (v * full / fsr).round().clamp(-full, full - 1.0) as i16;
        (code as u16) << (16 - self.bits)
    }

    fn update(&mut self) {
        match self.converting {
            Some(end) if Instant::now() >= end => {
                self.converting = None;
                self.conversion = self.convert();
                self.config |= OS;
            }
            None if self.config & MODE_SINGLE == 0 => self.conversion = self.convert(),
            _ => {}
        }
    }
}

impl SimChip for SimAds1x1x {
    fn write(&mut self, data: &[u8]) -> Result<(), ()> {
        let Some((&pointer, value)) = data.split_first() else {
            return Ok(());
        };
        if pointer > 3 {
            return Err(());
        }
        self.pointer = pointer;
        let &[msb, lsb] = value else {
            return if value.is_empty() { Ok(()) } else { Err(()) };
        };
        let v = u16::from_be_bytes([msb, lsb]);
        match pointer {
            0 => return Err(()),
            1 => {
                self.update();
                let start = v & OS != 0 && v & MODE_SINGLE != 0 && self.converting.is_none();
                // OS reads back as the converter's state, not as written.
                self.config = (v & !OS) | (self.config & OS);
                if start {
                    let rate = self.rates[usize::from((v >> 5) & 0b111)];
                    self.config &= !OS;
                    self.converting =
                        Some(Instant::now() + Duration::from_micros(1_000_000 / rate));
                }
            }
            2 => self.low = v,
            _ => self.high = v,
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), ()> {
        self.update();
        let v = match self.pointer {
            0 => self.conversion,
            1 => self.config,
            2 => self.low,
            _ => self.high,
        };
        for (b, byte) in buf.iter_mut().zip(v.to_be_bytes()) {
            *b = byte;
        }
        Ok(())
    }

    fn sense(&mut self, environment: &dyn Fn(Quantity) -> f64) {
        for (n, input) in (0u8..).zip(self.inputs.iter_mut()) {
            *input = environment(Quantity::InputVoltage(n));
        }
    }
}
