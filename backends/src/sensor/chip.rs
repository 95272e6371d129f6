//! The interface every chip driver offers the sampler.

use embedded_hal::i2c::I2c;

use super::shared::{Shared, Slot};
use super::{Model, Reading, SensorError};

pub trait Chip {
    /// Brings the chip into a known state (reset, calibration, configuration). Called
    /// before the first measurement and again after any failure.
    fn init(&mut self) -> Result<(), SensorError>;

    /// Takes one measurement of every quantity the chip has.
    fn measure(&mut self) -> Result<Vec<Reading>, SensorError>;
}

/// The driver for a model at an address (checked against `Model::addresses`).
pub fn driver<'a, B: I2c + 'a>(model: Model, address: u8, bus: &'a Slot<B>) -> Box<dyn Chip + 'a> {
    let i2c = Shared::new(bus);
    match model {
        Model::Bme280 => Box::new(super::bme280::Bme280::new(i2c, address)),
        Model::Sht3x => Box::new(super::sht3x::Sht3x::new(i2c, address)),
        Model::Sht4x => Box::new(super::sht4x::Sht4x::new(i2c, address)),
        Model::Tmp102 => Box::new(super::tmp102::Tmp102::new(i2c, address)),
        Model::Tmp117 => Box::new(super::tmp117::Tmp117::new(i2c, address)),
        Model::Lm75 => Box::new(super::lm75::Lm75::new(i2c, address)),
        Model::Bh1750 => Box::new(super::bh1750::Bh1750::new(i2c, address)),
        Model::Scd4x => Box::new(super::scd4x::Scd4x::new(i2c)),
        Model::Ina219 => Box::new(super::ina219::Ina219::new(i2c, address)),
        Model::Lis3dh => Box::new(super::lis3dh::Lis3dh::new(i2c, address)),
        Model::Ads1115 => Box::new(super::ads1x1x::Ads1115::new(i2c, address)),
        Model::Ads1015 => Box::new(super::ads1x1x::Ads1015::new(i2c, address)),
        Model::Sim => Box::new(super::sim::Sim::new(address)),
    }
}
