//! Register-level simulations of the supported chips behind embedded-hal's `I2c`, built
//! from their datasheets (register maps, conversion formulas, CRC, NACK on a wrong
//! address). The drivers are tested against them, and a configured simulated bus
//! (`bus = "sim"`) runs the real drivers against them for demos.

mod ads1x1x;
mod bh1750;
mod bme280;
mod bus;
mod ina219;
mod lis3dh;
mod lm75;
mod scd4x;
mod sht3x;
mod sht4x;
#[cfg(test)]
mod tests;
mod tmp102;
mod tmp117;

pub use ads1x1x::SimAds1x1x;
pub use bh1750::SimBh1750;
#[cfg(test)]
pub use bme280::Bme280Calibration;
pub use bme280::SimBme280;
pub use bus::{is_simulated, SimBus, SimChip, SimError};
pub use ina219::SimIna219;
pub use lis3dh::SimLis3dh;
pub use lm75::SimLm75;
pub use scd4x::SimScd4x;
pub use sht3x::SimSht3x;
pub use sht4x::SimSht4x;
pub use tmp102::SimTmp102;
pub use tmp117::SimTmp117;

use super::sim::wave;
use super::Model;

/// A chip of the model just powered on, measuring the start of the `sim` waveform; none
/// for the model without a chip.
pub fn chip_for(model: Model) -> Option<Box<dyn SimChip>> {
    let at = |q| wave(q, 0);
    let mut chip: Box<dyn SimChip> = match model {
        Model::Bme280 => {
            // The BME280 has no closed inverse of its compensation: it keeps measuring
            // the datasheet's example.
            let mut chip = SimBme280::new(&bme280::EXAMPLE);
            (chip.adc_t, chip.adc_p, chip.adc_h) = bme280::EXAMPLE_ADC;
            Box::new(chip)
        }
        Model::Sht3x => Box::new(SimSht3x::new(0.0, 0.0)),
        Model::Sht4x => Box::new(SimSht4x::new(0.0, 0.0)),
        Model::Tmp102 => Box::new(SimTmp102::new(0)),
        Model::Tmp117 => Box::new(SimTmp117::new(0)),
        Model::Lm75 => Box::new(SimLm75::new(0)),
        Model::Bh1750 => Box::new(SimBh1750::new(0)),
        Model::Scd4x => Box::new(SimScd4x::new([0; 3])),
        Model::Ina219 => Box::new(SimIna219::new(0, 0)),
        Model::Lis3dh => Box::new(SimLis3dh::new([0; 3])),
        Model::Ads1115 => Box::new(SimAds1x1x::ads1115([0.0; 4])),
        Model::Ads1015 => Box::new(SimAds1x1x::ads1015([0.0; 4])),
        Model::Sim => return None,
    };
    chip.sense(&at);
    Some(chip)
}
