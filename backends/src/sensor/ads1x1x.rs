//! TI ADS1115 (16 bits) and ADS1015 (12 bits) through the `ads1x1x` crate: the four
//! single-ended inputs, one-shot conversions at the ±4.096 V full-scale range, so that
//! any input within a 3.3 V supply reads without clipping.

use std::fmt;
use std::thread;
use std::time::Duration;

use ads1x1x::{channel, ic, mode, Ads1x1x, FullScaleRange, TargetAddr};
use embedded_hal::i2c::I2c;

use super::chip::Chip;
use super::shared::bus_error;
use super::{Quantity, Reading, SensorError};

/// Volts at the full-scale code.
pub const FULL_SCALE: f64 = 4.096;

/// A conversion takes 1/128 s on an ADS1115 at its default rate, 1/1600 s on an ADS1015.
const POLL: Duration = Duration::from_millis(1);
const MAX_POLLS: u32 = 100;

fn target(address: u8) -> TargetAddr {
    // ADDR pin strapping (datasheet, address selection); the configuration admits only these addresses.
    match address {
        0x49 => TargetAddr::Vdd,
        0x4a => TargetAddr::Sda,
        0x4b => TargetAddr::Scl,
        _ => TargetAddr::Gnd,
    }
}

fn error<E: embedded_hal::i2c::Error + fmt::Debug>(e: ads1x1x::Error<E>) -> SensorError {
    match e {
        ads1x1x::Error::I2C(e) => bus_error(&e),
        ads1x1x::Error::InvalidInputData => SensorError::Invalid,
    }
}

/// Converts one channel, waiting for the conversion to end.
macro_rules! convert {
    ($driver:expr, $channel:expr) => {{
        let mut polls = 0;
        loop {
            match $driver.read($channel) {
                Ok(code) => break Ok(code),
                Err(nb::Error::WouldBlock) if polls < MAX_POLLS => {
                    polls += 1;
                    thread::sleep(POLL);
                }
                // A conversion that never ends: the chip is not working as specified.
                Err(nb::Error::WouldBlock) => break Err(SensorError::Invalid),
                Err(nb::Error::Other(e)) => break Err(error(e)),
            }
        }
    }};
}

macro_rules! adc {
    ($name:ident, $ic:ty, $resolution:ty, $new:ident, $codes:expr) => {
        pub struct $name<I> {
            driver: Ads1x1x<I, $ic, $resolution, mode::OneShot>,
        }

        impl<I: I2c> $name<I> {
            pub fn new(i2c: I, address: u8) -> $name<I> {
                $name {
                    driver: Ads1x1x::$new(i2c, target(address)),
                }
            }
        }

        impl<I: I2c> Chip for $name<I>
        where
            I::Error: fmt::Debug,
        {
            fn init(&mut self) -> Result<(), SensorError> {
                self.driver
                    .set_full_scale_range(FullScaleRange::Within4_096V)
                    .map_err(error)
            }

            fn measure(&mut self) -> Result<Vec<Reading>, SensorError> {
                let codes: [i16; 4] = [
                    convert!(self.driver, channel::SingleA0)?,
                    convert!(self.driver, channel::SingleA1)?,
                    convert!(self.driver, channel::SingleA2)?,
                    convert!(self.driver, channel::SingleA3)?,
                ];
                Ok((0u8..)
                    .zip(codes)
                    .map(|(n, code)| Reading {
                        quantity: Quantity::InputVoltage(n),
                        value: f64::from(code) * FULL_SCALE / $codes,
                    })
                    .collect())
            }
        }
    };
}

// Codes per full scale: 2^15 on the ADS1115, 2^11 on the ADS1015 (datasheets: full-scale
// range and LSB size).
adc!(
    Ads1115,
    ic::Ads1115,
    ic::Resolution16Bit,
    new_ads1115,
    32768.0
);
adc!(
    Ads1015,
    ic::Ads1015,
    ic::Resolution12Bit,
    new_ads1015,
    2048.0
);
