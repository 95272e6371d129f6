//! SHT4x (Sensirion datasheet v6.6): single-byte commands (4.5), 6-byte answers of two
//! words each followed by a CRC-8 (4.4: polynomial 0x31, init 0xFF), conversions of 4.6,
//! NACK on a read with no measurement pending.

use super::bus::SimChip;
use crate::sensor::Quantity;

pub fn crc8(data: &[u8]) -> u8 {
    let mut crc = 0xffu8;
    for b in data {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x31
            } else {
                crc << 1
            };
        }
    }
    crc
}

pub struct SimSht4x {
    /// What the sensor measures: degrees Celsius and %RH.
    pub temperature: f64,
    pub humidity: f64,
    /// Corrupts the CRC of the next answers (a noisy bus).
    pub bad_crc: bool,
    pending: Option<[u8; 6]>,
    pub measurements: u32,
}

impl SimSht4x {
    pub fn new(temperature: f64, humidity: f64) -> SimSht4x {
        SimSht4x {
            temperature,
            humidity,
            bad_crc: false,
            pending: None,
            measurements: 0,
        }
    }

    fn answer(&self, a: u16, b: u16) -> [u8; 6] {
        let [a0, a1] = a.to_be_bytes();
        let [b0, b1] = b.to_be_bytes();
        let flip = if self.bad_crc { 0x01 } else { 0 };
        [
            a0,
            a1,
            crc8(&[a0, a1]) ^ flip,
            b0,
            b1,
            crc8(&[b0, b1]) ^ flip,
        ]
    }
}

impl SimChip for SimSht4x {
    fn write(&mut self, data: &[u8]) -> Result<(), ()> {
        match data {
            // Measure at high, medium or low repeatability.
            [0xfd] | [0xf6] | [0xe0] => {
                // Inverse of T = -45 + 175 * S_T / (2^16 - 1), RH = -6 + 125 * S_RH / (2^16 - 1).
                let st = ((self.temperature + 45.0) * 65535.0 / 175.0).round();
                let srh = ((self.humidity + 6.0) * 65535.0 / 125.0).round();
                let word = |v: f64| v.clamp(0.0, 65535.0) as u16;
                self.pending = Some(self.answer(word(st), word(srh)));
                self.measurements += 1;
                Ok(())
            }
            [0x94] => {
                self.pending = None;
                Ok(())
            }
            [0x89] => {
                self.pending = Some(self.answer(0x0bad, 0xcafe));
                Ok(())
            }
            _ => Err(()),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), ()> {
        let data = self.pending.take().ok_or(())?;
        let n = buf.len().min(data.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok(())
    }

    fn sense(&mut self, environment: &dyn Fn(Quantity) -> f64) {
        self.temperature = environment(Quantity::Temperature);
        self.humidity = environment(Quantity::Humidity);
    }
}
