//! LIS3DH (ST datasheet DocID17530 rev 2): WHO_AM_I 0x33 (8.6), CTRL_REG1 resetting to
//! 0x07 and CTRL_REG4 (8.8, 8.11), outputs left-justified two's complement of 8, 10 or
//! 12 bits by mode with the sensitivities of table 4, sub-address auto-increment only
//! with its MSB set (6.1.1), no new data while powered down (ODR 0).

use super::bus::SimChip;
use crate::sensor::Quantity;

const WHO_AM_I: u8 = 0x0f;
const CTRL_REG1: u8 = 0x20;
const CTRL_REG4: u8 = 0x23;
const STATUS_REG: u8 = 0x27;
const OUT_X_L: u8 = 0x28;

pub struct SimLis3dh {
    /// What the chip feels, in milli-g per axis.
    pub mg: [i32; 3],
    regs: [u8; 0x40],
    pointer: u8,
    increment: bool,
}

impl SimLis3dh {
    pub fn new(mg: [i32; 3]) -> SimLis3dh {
        let mut regs = [0u8; 0x40];
        regs[usize::from(WHO_AM_I)] = 0x33;
        regs[usize::from(CTRL_REG1)] = 0x07;
        SimLis3dh {
            mg,
            regs,
            pointer: 0,
            increment: false,
        }
    }

    /// A conversion at the configured rate, mode and full scale.
    fn convert(&mut self) {
        let ctrl1 = self.regs[usize::from(CTRL_REG1)];
        let ctrl4 = self.regs[usize::from(CTRL_REG4)];
        if ctrl1 >> 4 == 0 {
            return;
        }
        let low_power = ctrl1 & 0x08 != 0;
        let high_res = ctrl4 & 0x08 != 0;
        let fs = (ctrl4 >> 4) & 0x03;
        // Table 4: sensitivity in mg/digit by mode and full scale, and the data width.
        let (sensitivity, bits) = match (low_power, high_res) {
            (false, true) => ([1, 2, 4, 12][usize::from(fs)], 12),
            (false, false) => ([4, 8, 16, 48][usize::from(fs)], 10),
            (true, _) => ([16, 32, 64, 192][usize::from(fs)], 8),
        };
        let limit = 1i32 << (bits - 1);
        for (axis, mg) in self.mg.iter().enumerate() {
            let digits = (mg / sensitivity).clamp(-limit, limit - 1);
            let raw = ((digits << (16 - bits)) as i16).to_le_bytes();
            let at = usize::from(OUT_X_L) + 2 * axis;
            self.regs[at..at + 2].copy_from_slice(&raw);
        }
        self.regs[usize::from(STATUS_REG)] |= 0x08;
    }
}

impl SimChip for SimLis3dh {
    fn write(&mut self, data: &[u8]) -> Result<(), ()> {
        let Some((&sub, values)) = data.split_first() else {
            return Ok(());
        };
        let reg = sub & 0x7f;
        if usize::from(reg) >= self.regs.len() {
            return Err(());
        }
        self.pointer = reg;
        self.increment = sub & 0x80 != 0;
        for v in values {
            // Only the control registers are writable.
            if (0x1e..=0x3f).contains(&self.pointer) && !(0x27..=0x2d).contains(&self.pointer) {
                self.regs[usize::from(self.pointer)] = *v;
            }
            if self.increment {
                self.pointer = (self.pointer + 1) & 0x3f;
            }
        }
        if values.is_empty() && reg == STATUS_REG {
            self.convert();
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), ()> {
        if self.pointer == OUT_X_L {
            self.convert();
        }
        for b in buf {
            *b = self.regs[usize::from(self.pointer)];
            if self.increment {
                self.pointer = (self.pointer + 1) & 0x3f;
            }
        }
        Ok(())
    }

    fn sense(&mut self, environment: &dyn Fn(Quantity) -> f64) {
        let axes = [
            Quantity::AccelerationX,
            Quantity::AccelerationY,
            Quantity::AccelerationZ,
        ];
        for (mg, q) in self.mg.iter_mut().zip(axes) {
            *mg = (environment(q) / 9.80665 * 1000.0).round() as i32;
        }
    }
}
