//! Sensirion SHT4x through the `sht4x` crate: high-precision single shot, CRC checked.

use std::fmt;

use embedded_hal::i2c::I2c;
use linux_embedded_hal::Delay;
use sht4x::{Address, Precision};

use super::chip::Chip;
use super::shared::bus_error;
use super::{Quantity, Reading, SensorError};

pub struct Sht4x<I> {
    driver: sht4x::Sht4x<I, Delay>,
}

impl<I: I2c> Sht4x<I> {
    pub fn new(i2c: I, address: u8) -> Sht4x<I> {
        let address = match address {
            0x45 => Address::Address0x45,
            0x46 => Address::Address0x46,
            // The configuration admits only the chip's addresses.
            _ => Address::Address0x44,
        };
        Sht4x {
            driver: sht4x::Sht4x::new_with_address(i2c, address),
        }
    }
}

fn error<E: embedded_hal::i2c::Error + fmt::Debug>(e: sht4x::Error<E>) -> SensorError {
    match e {
        sht4x::Error::I2c(e) => bus_error(&e),
        sht4x::Error::Crc => SensorError::Crc,
        _ => SensorError::Invalid,
    }
}

impl<I: I2c> Chip for Sht4x<I>
where
    I::Error: fmt::Debug,
{
    fn init(&mut self) -> Result<(), SensorError> {
        self.driver.soft_reset(&mut Delay).map_err(error)
    }

    fn measure(&mut self) -> Result<Vec<Reading>, SensorError> {
        let m = self
            .driver
            .measure(Precision::High, &mut Delay)
            .map_err(error)?;
        Ok(vec![
            Reading {
                quantity: Quantity::Temperature,
                value: f64::from(m.temperature_milli_celsius()) / 1000.0,
            },
            Reading {
                quantity: Quantity::Humidity,
                value: f64::from(m.humidity_milli_percent()) / 1000.0,
            },
        ])
    }
}
