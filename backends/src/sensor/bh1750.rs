//! ROHM BH1750FVI through the `bh1750` crate: one-time H-resolution measurements, so the
//! chip powers down between samples.

use std::fmt;

use bh1750::{BH1750Error, Resolution, BH1750};
use embedded_hal::i2c::I2c;
use linux_embedded_hal::Delay;

use super::chip::Chip;
use super::shared::bus_error;
use super::{Quantity, Reading, SensorError};

pub struct Bh1750<I> {
    driver: BH1750<I, Delay>,
}

impl<I: I2c> Bh1750<I> {
    pub fn new(i2c: I, address: u8) -> Bh1750<I> {
        Bh1750 {
            driver: BH1750::new_custom_address(i2c, Delay, address),
        }
    }
}

fn error<E: embedded_hal::i2c::Error + fmt::Debug>(e: BH1750Error<E>) -> SensorError {
    match e {
        BH1750Error::I2C(e) => bus_error(&e),
        BH1750Error::MeasurementTimeOutOfRange => SensorError::Invalid,
    }
}

impl<I: I2c> Chip for Bh1750<I>
where
    I::Error: fmt::Debug,
{
    fn init(&mut self) -> Result<(), SensorError> {
        // Reset clears the data register; it is accepted only when powered on.
        self.driver.power_on().map_err(error)?;
        self.driver.reset().map_err(error)
    }

    fn measure(&mut self) -> Result<Vec<Reading>, SensorError> {
        let lux = self
            .driver
            .get_one_time_measurement(Resolution::High)
            .map_err(error)?;
        Ok(vec![Reading {
            quantity: Quantity::Illuminance,
            value: f64::from(lux),
        }])
    }
}
