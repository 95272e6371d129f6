//! Bosch BME280 through the `bme280` crate: forced mode, one conversion per sample.

use std::fmt;

use embedded_hal::i2c::I2c;
use linux_embedded_hal::Delay;

use super::chip::Chip;
use super::shared::bus_error;
use super::{Quantity, Reading, SensorError};

pub struct Bme280<I> {
    driver: bme280::i2c::BME280<I>,
    ready: bool,
}

impl<I: I2c> Bme280<I> {
    pub fn new(i2c: I, address: u8) -> Bme280<I> {
        Bme280 {
            driver: bme280::i2c::BME280::new(i2c, address),
            ready: false,
        }
    }
}

fn error<E: embedded_hal::i2c::Error + fmt::Debug>(e: bme280::Error<E>) -> SensorError {
    match e {
        bme280::Error::Bus(e) => bus_error(&e),
        bme280::Error::UnsupportedChip => SensorError::WrongChip,
        bme280::Error::CompensationFailed
        | bme280::Error::InvalidData
        | bme280::Error::NoCalibrationData
        | bme280::Error::Delay => SensorError::Invalid,
    }
}

impl<I: I2c> Chip for Bme280<I>
where
    I::Error: fmt::Debug,
{
    fn init(&mut self) -> Result<(), SensorError> {
        self.ready = false;
        self.driver.init(&mut Delay).map_err(error)?;
        self.ready = true;
        Ok(())
    }

    fn measure(&mut self) -> Result<Vec<Reading>, SensorError> {
        if !self.ready {
            return Err(SensorError::Invalid);
        }
        let m = self.driver.measure(&mut Delay).map_err(error)?;
        Ok(vec![
            Reading {
                quantity: Quantity::Temperature,
                value: f64::from(m.temperature),
            },
            Reading {
                quantity: Quantity::Humidity,
                value: f64::from(m.humidity),
            },
            Reading {
                quantity: Quantity::Pressure,
                value: f64::from(m.pressure),
            },
        ])
    }
}
