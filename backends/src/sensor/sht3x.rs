//! Sensirion SHT3x through the `embedded-sht3x` crate: single shot at high repeatability
//! with clock stretching, CRC checked.

use std::fmt;

use embedded_hal::i2c::I2c;
use embedded_sht3x::Repeatability;
use linux_embedded_hal::Delay;

use super::chip::Chip;
use super::shared::bus_error;
use super::{Quantity, Reading, SensorError};

pub struct Sht3x<I> {
    i2c: I,
    address: u8,
    driver: Option<embedded_sht3x::Sht3x<I, Delay>>,
}

impl<I: I2c + Clone> Sht3x<I> {
    pub fn new(i2c: I, address: u8) -> Sht3x<I> {
        Sht3x {
            i2c,
            address,
            driver: None,
        }
    }
}

fn error<E: embedded_hal::i2c::Error + fmt::Debug>(e: embedded_sht3x::Error<E>) -> SensorError {
    match e {
        embedded_sht3x::Error::I2c(e) => bus_error(&e),
        embedded_sht3x::Error::BadCrc => SensorError::Crc,
    }
}

impl<I: I2c + Clone> Chip for Sht3x<I>
where
    I::Error: fmt::Debug,
{
    fn init(&mut self) -> Result<(), SensorError> {
        self.driver = None;
        // Soft reset, then the status register must come with a valid CRC.
        let mut d =
            embedded_sht3x::Sht3x::new(self.i2c.clone(), self.address, Delay).map_err(error)?;
        d.get_status().map_err(error)?;
        d.repeatability = Repeatability::High;
        self.driver = Some(d);
        Ok(())
    }

    fn measure(&mut self) -> Result<Vec<Reading>, SensorError> {
        let d = self.driver.as_mut().ok_or(SensorError::Invalid)?;
        let m = d.single_measurement().map_err(error)?;
        Ok(vec![
            Reading {
                quantity: Quantity::Temperature,
                value: f64::from(m.temperature.0),
            },
            Reading {
                quantity: Quantity::Humidity,
                value: f64::from(m.relative_humidity.value()),
            },
        ])
    }
}
