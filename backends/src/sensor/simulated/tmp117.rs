//! TMP117 (TI datasheet SNOSD82): register map (temperature resetting to 0x8000,
//! configuration to 0x0220, limits 0x6000/0x8000, offset, device ID 0x0117), 16-bit
//! two's-complement temperature in 7.8125 m°C steps (temperature data format table) with the offset register
//! added, read-only flags in configuration bits 15..12, Data_Ready cleared by a read of
//! the temperature or configuration register, one-shot conversions lasting as the
//! averaging mode says and then returning to shutdown, soft reset in bit 1.

use std::time::{Duration, Instant};

use super::bus::SimChip;
use crate::sensor::Quantity;

const CONFIG_RESET: u16 = 0x0220;
const DATA_READY: u16 = 1 << 13;
const MODE: u16 = 0b11 << 10;
const SHUTDOWN: u16 = 0b01 << 10;
const ONE_SHOT: u16 = 0b11 << 10;

pub struct SimTmp117 {
    /// What a conversion yields, before the offset: the data format table's 16-bit output.
    pub raw: i16,
    temperature: u16,
    config: u16,
    high: u16,
    low: u16,
    eeprom: [u16; 3],
    offset: u16,
    pointer: u8,
    /// When the running one-shot conversion ends.
    converting: Option<Instant>,
    pub conversions: u32,
}

impl SimTmp117 {
    pub fn new(raw: i16) -> SimTmp117 {
        SimTmp117 {
            raw,
            temperature: 0x8000,
            config: CONFIG_RESET,
            high: 0x6000,
            low: 0x8000,
            eeprom: [0; 3],
            offset: 0,
            pointer: 0,
            converting: None,
            conversions: 0,
        }
    }

    /// The output for a temperature, rounded to the chip's 7.8125 m°C.
    pub fn raw_for(celsius: f64) -> i16 {
        (celsius / 0.0078125).round().clamp(-32768.0, 32767.0) as i16
    }

    fn convert(&mut self) {
        self.temperature = (self.raw as u16).wrapping_add(self.offset);
        self.config |= DATA_READY;
        self.conversions += 1;
    }

    /// Brings the registers up to date: a finished one-shot conversion, or the latest
    /// result in continuous mode (MOD 00 or 10).
    fn update(&mut self) {
        if let Some(end) = self.converting {
            if Instant::now() >= end {
                self.converting = None;
                self.convert();
                self.config = (self.config & !MODE) | SHUTDOWN;
            }
        } else if self.config & (0b01 << 10) == 0 {
            self.convert();
        }
    }
}

impl SimChip for SimTmp117 {
    fn write(&mut self, data: &[u8]) -> Result<(), ()> {
        let Some((&pointer, value)) = data.split_first() else {
            return Ok(());
        };
        if !matches!(pointer, 0x00..=0x08 | 0x0f) {
            return Err(());
        }
        self.pointer = pointer;
        let &[msb, lsb] = value else {
            return if value.is_empty() { Ok(()) } else { Err(()) };
        };
        let v = u16::from_be_bytes([msb, lsb]);
        match pointer {
            0x01 if v & 0x0002 != 0 => *self = SimTmp117::new(self.raw),
            0x01 => {
                self.config = (self.config & 0xf000) | (v & 0x0ffc);
                self.converting = None;
                if v & MODE == ONE_SHOT {
                    // Active conversion time by AVG (bits 6..5).
                    let ms = [16, 125, 500, 1000][usize::from((v >> 5) & 0b11)];
                    self.converting = Some(Instant::now() + Duration::from_millis(ms));
                }
            }
            0x02 => self.high = v,
            0x03 => self.low = v,
            0x05..=0x07 => self.eeprom[usize::from(pointer - 0x05)] = v,
            0x08 => self.offset = v,
            // Temperature, EEPROM unlock and device ID are not written here.
            _ => return Err(()),
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), ()> {
        self.update();
        let v = match self.pointer {
            0x00 => self.temperature,
            0x01 => self.config,
            0x02 => self.high,
            0x03 => self.low,
            0x04 => 0,
            0x05..=0x07 => self.eeprom[usize::from(self.pointer - 0x05)],
            0x08 => self.offset,
            _ => 0x0117,
        };
        if self.pointer <= 0x01 {
            self.config &= !DATA_READY;
        }
        for (b, byte) in buf.iter_mut().zip(v.to_be_bytes()) {
            *b = byte;
        }
        Ok(())
    }

    fn sense(&mut self, environment: &dyn Fn(Quantity) -> f64) {
        self.raw = Self::raw_for(environment(Quantity::Temperature));
    }
}
