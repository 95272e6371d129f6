//! TI INA219 through the `ina219` crate: bus voltage, and current from the shunt voltage
//! across the 0.1 Ω shunt of the common breakout boards; power is their product.

use std::fmt;

use embedded_hal::i2c::I2c;
use ina219::address::Address;
use ina219::calibration::UnCalibrated;
use ina219::errors::{BusVoltageReadError, InitializationErrorReason, ShuntVoltageReadError};
use ina219::SyncIna219;

use super::chip::Chip;
use super::shared::bus_error;
use super::{Quantity, Reading, SensorError};

/// Ohms.
const SHUNT: f64 = 0.1;

pub struct Ina219<I> {
    i2c: I,
    address: u8,
    driver: Option<SyncIna219<I, UnCalibrated>>,
}

impl<I: I2c + Clone> Ina219<I> {
    pub fn new(i2c: I, address: u8) -> Ina219<I> {
        Ina219 {
            i2c,
            address,
            driver: None,
        }
    }
}

impl<I: I2c + Clone> Chip for Ina219<I>
where
    I::Error: fmt::Debug,
{
    fn init(&mut self) -> Result<(), SensorError> {
        self.driver = None;
        let address = Address::from_byte(self.address).map_err(|_| SensorError::WrongChip)?;
        // Resets the chip and checks that the configuration reads back as its default.
        match SyncIna219::new(self.i2c.clone(), address) {
            Ok(d) => {
                self.driver = Some(d);
                Ok(())
            }
            Err(e) => Err(match e.reason {
                InitializationErrorReason::I2cError(e) => bus_error(&e),
                _ => SensorError::WrongChip,
            }),
        }
    }

    fn measure(&mut self) -> Result<Vec<Reading>, SensorError> {
        let d = self.driver.as_mut().ok_or(SensorError::Invalid)?;
        let shunt = d.shunt_voltage().map_err(|e| match e {
            ShuntVoltageReadError::I2cError(e) => bus_error(&e),
            _ => SensorError::Invalid,
        })?;
        let bus = d.bus_voltage().map_err(|e| match e {
            BusVoltageReadError::I2cError(e) => bus_error(&e),
            _ => SensorError::Invalid,
        })?;
        let volts = f64::from(bus.voltage_mv()) / 1000.0;
        let amperes = f64::from(shunt.shunt_voltage_uv()) / 1e6 / SHUNT;
        Ok(vec![
            Reading {
                quantity: Quantity::Voltage,
                value: volts,
            },
            Reading {
                quantity: Quantity::Current,
                value: amperes,
            },
            Reading {
                quantity: Quantity::Power,
                value: volts * amperes,
            },
        ])
    }
}
