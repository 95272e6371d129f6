//! LM75 (NXP LM75A, TI LM75B and compatibles) through the `lm75` crate: 9-bit readings in
//! continuous conversion.

use std::fmt;

use embedded_hal::i2c::I2c;

use super::chip::Chip;
use super::shared::bus_error;
use super::{Quantity, Reading, SensorError};

pub struct Lm75<I> {
    driver: lm75::Lm75<I, lm75::ic::Lm75>,
}

impl<I: I2c> Lm75<I> {
    pub fn new(i2c: I, address: u8) -> Lm75<I> {
        Lm75 {
            driver: lm75::Lm75::new(i2c, address),
        }
    }
}

fn error<E: embedded_hal::i2c::Error + fmt::Debug>(e: lm75::Error<E>) -> SensorError {
    match e {
        lm75::Error::I2C(e) => bus_error(&e),
        lm75::Error::InvalidInputData => SensorError::Invalid,
    }
}

impl<I: I2c> Chip for Lm75<I>
where
    I::Error: fmt::Debug,
{
    fn init(&mut self) -> Result<(), SensorError> {
        // Out of shutdown, comparator mode, fault queue 1: the power-on configuration.
        self.driver.enable().map_err(error)
    }

    fn measure(&mut self) -> Result<Vec<Reading>, SensorError> {
        let t = self.driver.read_temperature().map_err(error)?;
        Ok(vec![Reading {
            quantity: Quantity::Temperature,
            value: f64::from(t),
        }])
    }
}
