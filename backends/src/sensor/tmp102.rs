//! TI TMP102/TMP112 through the `tmp1x2` crate, in its default continuous conversion mode.

use std::fmt;

use embedded_hal::i2c::I2c;
use tmp1x2::{SlaveAddr, Tmp1x2};

use super::chip::Chip;
use super::shared::bus_error;
use super::{Quantity, Reading, SensorError};

pub struct Tmp102<I: I2c> {
    driver: Tmp1x2<I, tmp1x2::marker::mode::Continuous>,
}

impl<I: I2c> Tmp102<I> {
    pub fn new(i2c: I, address: u8) -> Tmp102<I> {
        // ADD0 strapping selects 0x48..=0x4b: the low two bits of the address.
        let addr = SlaveAddr::Alternative(address & 0b10 != 0, address & 0b01 != 0);
        Tmp102 {
            driver: Tmp1x2::new(i2c, addr),
        }
    }
}

fn error<E: embedded_hal::i2c::Error + fmt::Debug>(e: tmp1x2::Error<E>) -> SensorError {
    let tmp1x2::Error::I2C(e) = e;
    bus_error(&e)
}

impl<I: I2c> Chip for Tmp102<I>
where
    I::Error: fmt::Debug,
{
    fn init(&mut self) -> Result<(), SensorError> {
        // Power-on defaults (continuous, 4 Hz, 12 bits) are what is read; a chip that
        // lost power comes back in them.
        self.driver.reset_internal_driver_state();
        Ok(())
    }

    fn measure(&mut self) -> Result<Vec<Reading>, SensorError> {
        let t = self.driver.read_temperature().map_err(error)?;
        Ok(vec![Reading {
            quantity: Quantity::Temperature,
            value: f64::from(t),
        }])
    }
}
