//! SHT3x-DIS (Sensirion datasheet v6): 16-bit commands (section 4), single shot with and
//! without clock stretching, answers of words each followed by the CRC-8 of
//! 4.12 (the SHT4x's), conversions of 4.13, status register of 4.11 (0x8010 after a
//! reset), NACK on a read with no data pending and on unknown commands.

use super::bus::SimChip;
use super::sht4x::crc8;
use crate::sensor::Quantity;

const STATUS_AFTER_RESET: u16 = 0x8010;

pub struct SimSht3x {
    /// What the sensor measures: degrees Celsius and %RH.
    pub temperature: f64,
    pub humidity: f64,
    /// Corrupts the CRC of the humidity word in the next answers (a noisy bus).
    pub bad_crc: bool,
    status: u16,
    pending: Vec<u8>,
}

impl SimSht3x {
    pub fn new(temperature: f64, humidity: f64) -> SimSht3x {
        SimSht3x {
            temperature,
            humidity,
            bad_crc: false,
            status: STATUS_AFTER_RESET,
            pending: Vec::new(),
        }
    }

    /// Ticks as 4.13 defines them: T = -45 + 175 * S_T / (2^16 - 1),
    /// RH = 100 * S_RH / (2^16 - 1), inverted and rounded.
    pub fn ticks(temperature: f64, humidity: f64) -> (u16, u16) {
        let word = |v: f64| v.round().clamp(0.0, 65535.0) as u16;
        (
            word((temperature + 45.0) * 65535.0 / 175.0),
            word(humidity * 65535.0 / 100.0),
        )
    }

    fn answer(&mut self, words: &[u16]) {
        self.pending.clear();
        for (n, w) in words.iter().enumerate() {
            let [a, b] = w.to_be_bytes();
            let flip = u8::from(self.bad_crc && n == 1);
            self.pending
                .extend_from_slice(&[a, b, crc8(&[a, b]) ^ flip]);
        }
    }
}

impl SimChip for SimSht3x {
    fn write(&mut self, data: &[u8]) -> Result<(), ()> {
        let &[hi, lo] = data else {
            return Err(());
        };
        match u16::from_be_bytes([hi, lo]) {
            // Single shot, clock stretching or not, high/medium/low repeatability.
            0x2c06 | 0x2c0d | 0x2c10 | 0x2400 | 0x240b | 0x2416 => {
                let (t, rh) = Self::ticks(self.temperature, self.humidity);
                self.answer(&[t, rh]);
            }
            0x30a2 => {
                self.status = STATUS_AFTER_RESET;
                self.pending.clear();
            }
            // Heater on and off: bit 13.
            0x306d => self.status |= 1 << 13,
            0x3066 => self.status &= !(1 << 13),
            0xf32d => {
                let status = self.status;
                self.answer(&[status]);
            }
            // Clear status: alert pending, the two tracking alerts and reset detected.
            0x3041 => self.status &= !0x8c10,
            _ => return Err(()),
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), ()> {
        if self.pending.len() < buf.len() {
            return Err(());
        }
        buf.copy_from_slice(&self.pending[..buf.len()]);
        self.pending.clear();
        Ok(())
    }

    fn sense(&mut self, environment: &dyn Fn(Quantity) -> f64) {
        self.temperature = environment(Quantity::Temperature);
        self.humidity = environment(Quantity::Humidity);
    }
}
