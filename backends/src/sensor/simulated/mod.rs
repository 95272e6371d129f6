//! Register-level simulations of the supported chips behind embedded-hal's `I2c`, built
//! from their datasheets (register maps, conversion formulas, CRC, NACK on a wrong
//! address), so that the real drivers can be exercised without hardware.

mod bh1750;
mod bme280;
mod bus;
mod ina219;
mod lis3dh;
mod scd4x;
mod sht4x;
mod tests;
mod tmp102;

pub use bh1750::SimBh1750;
pub use bme280::{Bme280Calibration, SimBme280};
pub use bus::SimBus;
pub use ina219::SimIna219;
pub use lis3dh::SimLis3dh;
pub use scd4x::SimScd4x;
pub use sht4x::SimSht4x;
pub use tmp102::SimTmp102;
