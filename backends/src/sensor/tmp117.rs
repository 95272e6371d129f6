//! TI TMP117 through the `tmp117` crate: one-shot conversions averaging 8 samples, the
//! chip shut down in between.

use std::fmt;

use embedded_hal::i2c::I2c;
use linux_embedded_hal::Delay;
use tmp117::register::Average;

use super::chip::Chip;
use super::shared::bus_error;
use super::{Quantity, Reading, SensorError};

/// The device ID register's value (datasheet register map).
const DEVICE_ID: u16 = 0x117;

pub struct Tmp117<I: I2c> {
    driver: tmp117::Tmp117<I, I::Error, Delay>,
}

impl<I: I2c> Tmp117<I> {
    pub fn new(i2c: I, address: u8) -> Tmp117<I> {
        Tmp117 {
            driver: tmp117::Tmp117::new(i2c, address, Delay),
        }
    }
}

fn error<E: embedded_hal::i2c::Error + fmt::Debug>(e: tmp117::Error<E>) -> SensorError {
    match e {
        tmp117::Error::Bus(e) => bus_error(&e),
        // A conversion that never completes is a chip not working as specified.
        _ => SensorError::Invalid,
    }
}

impl<I: I2c> Chip for Tmp117<I>
where
    I::Error: fmt::Debug,
{
    fn init(&mut self) -> Result<(), SensorError> {
        self.driver.reset().map_err(error)?;
        if self.driver.id().map_err(error)?.device != DEVICE_ID {
            return Err(SensorError::WrongChip);
        }
        Ok(())
    }

    fn measure(&mut self) -> Result<Vec<Reading>, SensorError> {
        let t = self.driver.oneshot(Average::Avg8).map_err(error)?;
        Ok(vec![Reading {
            quantity: Quantity::Temperature,
            value: f64::from(t),
        }])
    }
}
