//! ST LIS3DH through the `lis3dh` crate: high-resolution mode, ±2 g, 400 Hz; readings in
//! m/s² (standard gravity 9.80665).

use std::fmt;

use embedded_hal::i2c::I2c;
use lis3dh::accelerometer::Accelerometer;
use lis3dh::{Lis3dhI2C, SlaveAddr};

use super::chip::Chip;
use super::shared::bus_error;
use super::{Quantity, Reading, SensorError};

const STANDARD_GRAVITY: f64 = 9.80665;

pub struct Lis3dh<I: I2c> {
    i2c: I,
    address: SlaveAddr,
    driver: Option<lis3dh::Lis3dh<Lis3dhI2C<I>>>,
}

impl<I: I2c + Clone> Lis3dh<I> {
    pub fn new(i2c: I, address: u8) -> Lis3dh<I> {
        let address = if address == 0x19 {
            SlaveAddr::Alternate
        } else {
            SlaveAddr::Default
        };
        Lis3dh {
            i2c,
            address,
            driver: None,
        }
    }
}

fn error<E: embedded_hal::i2c::Error + fmt::Debug>(
    e: &lis3dh::Error<E, core::convert::Infallible>,
) -> SensorError {
    match e {
        lis3dh::Error::Bus(e) => bus_error(e),
        lis3dh::Error::WrongAddress => SensorError::WrongChip,
        _ => SensorError::Invalid,
    }
}

impl<I: I2c + Clone> Chip for Lis3dh<I>
where
    I::Error: fmt::Debug,
{
    fn init(&mut self) -> Result<(), SensorError> {
        self.driver = None;
        // Checks WHO_AM_I, then configures mode, rate and axes.
        let d = lis3dh::Lis3dh::new_i2c(self.i2c.clone(), self.address).map_err(|e| error(&e))?;
        self.driver = Some(d);
        Ok(())
    }

    fn measure(&mut self) -> Result<Vec<Reading>, SensorError> {
        let d = self.driver.as_mut().ok_or(SensorError::Invalid)?;
        let g = d
            .accel_norm()
            .map_err(|e| e.cause().map_or(SensorError::Invalid, error))?;
        Ok([
            (Quantity::AccelerationX, g.x),
            (Quantity::AccelerationY, g.y),
            (Quantity::AccelerationZ, g.z),
        ]
        .into_iter()
        .map(|(quantity, g)| Reading {
            quantity,
            value: f64::from(g) * STANDARD_GRAVITY,
        })
        .collect())
    }
}
