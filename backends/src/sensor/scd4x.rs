//! Sensirion SCD40/SCD41 through the `scd4x` crate, in periodic mode (a new measurement
//! every 5 s); a sample taken before the next one is ready gives no readings rather than
//! the previous ones again.

use std::fmt;

use embedded_hal::i2c::I2c;
use linux_embedded_hal::Delay;

use super::chip::Chip;
use super::shared::bus_error;
use super::{Quantity, Reading, SensorError};

pub struct Scd4x<I: I2c> {
    driver: scd4x::Scd4x<I, Delay>,
}

impl<I: I2c> Scd4x<I> {
    /// The SCD4x answers on 0x62 only.
    pub fn new(i2c: I) -> Scd4x<I> {
        Scd4x {
            driver: scd4x::Scd4x::new(i2c, Delay),
        }
    }
}

fn error<E: embedded_hal::i2c::Error + fmt::Debug>(e: scd4x::Error<E>) -> SensorError {
    match e {
        scd4x::Error::I2c(e) => bus_error(&e),
        scd4x::Error::Crc => SensorError::Crc,
        _ => SensorError::Invalid,
    }
}

impl<I: I2c> Chip for Scd4x<I>
where
    I::Error: fmt::Debug,
{
    fn init(&mut self) -> Result<(), SensorError> {
        // The chip may still be measuring from before a restart; configuration commands
        // are refused until it is stopped.
        self.driver.stop_periodic_measurement().map_err(error)?;
        self.driver.start_periodic_measurement().map_err(error)
    }

    fn measure(&mut self) -> Result<Vec<Reading>, SensorError> {
        if !self.driver.data_ready_status().map_err(error)? {
            return Ok(Vec::new());
        }
        let m = self.driver.measurement().map_err(error)?;
        Ok(vec![
            Reading {
                quantity: Quantity::Co2,
                value: f64::from(m.co2),
            },
            Reading {
                quantity: Quantity::Temperature,
                value: f64::from(m.temperature),
            },
            Reading {
                quantity: Quantity::Humidity,
                value: f64::from(m.humidity),
            },
        ])
    }
}
