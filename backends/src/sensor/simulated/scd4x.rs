//! SCD4x (Sensirion datasheet v1.6): 16-bit commands (3.5), answers of words each with a
//! CRC-8 as the SHT4x's, periodic mode with a new measurement every 5 s (3.6), data-ready
//! status in the low 11 bits (3.9.2), commands other than read/stop/status refused while
//! measuring.

use super::bus::SimChip;
use super::sht4x::crc8;
use crate::sensor::Quantity;
use std::time::{Duration, Instant};

pub struct SimScd4x {
    /// Raw words of the next measurement: CO2 in ppm, temperature and humidity ticks.
    pub words: [u16; 3],
    periodic: bool,
    /// A measurement is waiting in the buffer.
    ready: bool,
    pending: Vec<u8>,
    /// When periodic measurement started or last produced a measurement.
    since: Instant,
}

impl SimScd4x {
    pub fn new(words: [u16; 3]) -> SimScd4x {
        SimScd4x {
            words,
            periodic: false,
            ready: false,
            pending: Vec::new(),
            since: Instant::now(),
        }
    }

    /// Five seconds pass: the next periodic measurement lands in the buffer.
    pub fn tick(&mut self) {
        self.ready = self.periodic;
    }

    fn answer(&mut self, words: &[u16]) {
        self.pending.clear();
        for w in words {
            let [a, b] = w.to_be_bytes();
            self.pending.extend_from_slice(&[a, b, crc8(&[a, b])]);
        }
    }
}

impl SimChip for SimScd4x {
    fn write(&mut self, data: &[u8]) -> Result<(), ()> {
        let [hi, lo, ..] = data else {
            return Err(());
        };
        match (u16::from_be_bytes([*hi, *lo]), self.periodic) {
            (0x21b1, false) => self.periodic = true,
            (0x3f86, _) => {
                self.periodic = false;
                self.ready = false;
            }
            (0xe4b8, _) => self.answer(&[if self.ready { 0x8006 } else { 0x8000 }]),
            (0xec05, _) => {
                if !self.ready {
                    // Nothing to read: the read header is not acknowledged.
                    self.pending.clear();
                    return Ok(());
                }
                self.ready = false;
                let words = self.words;
                self.answer(&words);
            }
            (0x3682, false) => self.answer(&[0x0123, 0x4567, 0x89ab]),
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
        // Datasheet 3.6.2: CO2 in ppm, T = -45 + 175 * word / 65535,
        // RH = 100 * word / 65535.
        let word = |v: f64| v.round().clamp(0.0, 65535.0) as u16;
        self.words = [
            word(environment(Quantity::Co2)),
            word((environment(Quantity::Temperature) + 45.0) * 65535.0 / 175.0),
            word(environment(Quantity::Humidity) * 65535.0 / 100.0),
        ];
        // A periodic measurement every 5 s.
        let now = Instant::now();
        if !self.periodic {
            self.since = now;
        } else if now.duration_since(self.since) >= Duration::from_secs(5) {
            self.since = now;
            self.tick();
        }
    }
}
