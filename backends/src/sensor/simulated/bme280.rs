//! BME280 (datasheet BST-BME280-DS002, rev 1.6): register map of section 5.3, forced
//! mode of 3.3.3, humidity settings latched by a ctrl_meas write (5.4.3), skipped
//! measurements reading 0x80000 / 0x8000 (4.1), soft reset (5.4.2).

use super::bus::SimChip;

const CHIP_ID: u8 = 0x60;
const REG_ID: u8 = 0xd0;
const REG_RESET: u8 = 0xe0;
const REG_CTRL_HUM: u8 = 0xf2;
const REG_STATUS: u8 = 0xf3;
const REG_CTRL_MEAS: u8 = 0xf4;
const REG_CONFIG: u8 = 0xf5;
const REG_DATA: u8 = 0xf7;

/// The trimming parameters of datasheet table 16.
#[derive(Debug, Clone, Copy)]
pub struct Bme280Calibration {
    pub t1: u16,
    pub t2: i16,
    pub t3: i16,
    pub p: (u16, [i16; 8]),
    pub h1: u8,
    pub h2: i16,
    pub h3: u8,
    pub h4: i16,
    pub h5: i16,
    pub h6: i8,
}

/// The BMP280 datasheet's worked example (section 3.12, table 21), whose temperature and
/// pressure compensation the BME280 shares; humidity trimming values of a real BME280.
pub const EXAMPLE: Bme280Calibration = Bme280Calibration {
    t1: 27504,
    t2: 26435,
    t3: -1000,
    p: (36477, [-10685, 3024, 2855, 140, -7, 15500, -14600, 6000]),
    h1: 75,
    h2: 370,
    h3: 0,
    h4: 306,
    h5: 50,
    h6: 30,
};

/// The example's raw temperature and pressure (25.08 °C, 100653.27 Pa), and a humidity.
pub const EXAMPLE_ADC: (u32, u32, u16) = (519888, 415148, 30000);

pub struct SimBme280 {
    regs: [u8; 256],
    pointer: u8,
    /// osrs_h as it takes effect: copied from ctrl_hum on each ctrl_meas write.
    osrs_h: u8,
    /// Raw ADC outputs the next conversion produces (20, 20 and 16 bits).
    pub adc_t: u32,
    pub adc_p: u32,
    pub adc_h: u16,
    pub conversions: u32,
}

impl SimBme280 {
    pub fn new(cal: &Bme280Calibration) -> SimBme280 {
        let mut regs = [0u8; 256];
        let mut put16 = |at: usize, v: u16| {
            regs[at..at + 2].copy_from_slice(&v.to_le_bytes());
        };
        put16(0x88, cal.t1);
        put16(0x8a, cal.t2 as u16);
        put16(0x8c, cal.t3 as u16);
        put16(0x8e, cal.p.0);
        for (n, p) in cal.p.1.iter().enumerate() {
            put16(0x90 + 2 * n, *p as u16);
        }
        put16(0xe1, cal.h2 as u16);
        regs[0xa1] = cal.h1;
        regs[0xe3] = cal.h3;
        // dig_H4 and dig_H5 are 12-bit values sharing 0xE5 (table 16).
        regs[0xe4] = (cal.h4 >> 4) as u8;
        regs[0xe5] = ((cal.h4 & 0x0f) as u8) | (((cal.h5 & 0x0f) as u8) << 4);
        regs[0xe6] = (cal.h5 >> 4) as u8;
        regs[0xe7] = cal.h6 as u8;
        regs[usize::from(REG_ID)] = CHIP_ID;
        let mut chip = SimBme280 {
            regs,
            pointer: 0,
            osrs_h: 0,
            adc_t: 0,
            adc_p: 0,
            adc_h: 0,
            conversions: 0,
        };
        chip.reset();
        chip
    }

    fn reset(&mut self) {
        for r in [REG_CTRL_HUM, REG_STATUS, REG_CTRL_MEAS, REG_CONFIG] {
            self.regs[usize::from(r)] = 0;
        }
        self.osrs_h = 0;
        // Reset values of the data registers (table 18).
        self.regs[0xf7..=0xfe].copy_from_slice(&[0x80, 0, 0, 0x80, 0, 0, 0x80, 0]);
    }

    fn convert(&mut self, ctrl_meas: u8) {
        let osrs_t = ctrl_meas >> 5;
        let osrs_p = (ctrl_meas >> 2) & 0x07;
        let adc20 = |on: bool, v: u32| if on { v & 0xf_ffff } else { 0x8_0000 };
        let p = adc20(osrs_p != 0, self.adc_p);
        let t = adc20(osrs_t != 0, self.adc_t);
        let h = if self.osrs_h != 0 { self.adc_h } else { 0x8000 };
        let d = REG_DATA as usize;
        self.regs[d..d + 3].copy_from_slice(&[
            (p >> 12) as u8,
            (p >> 4) as u8,
            ((p & 0xf) << 4) as u8,
        ]);
        self.regs[d + 3..d + 6].copy_from_slice(&[
            (t >> 12) as u8,
            (t >> 4) as u8,
            ((t & 0xf) << 4) as u8,
        ]);
        self.regs[d + 6..d + 8].copy_from_slice(&h.to_be_bytes());
        self.conversions += 1;
    }

    fn write_register(&mut self, reg: u8, value: u8) {
        match reg {
            REG_RESET if value == 0xb6 => self.reset(),
            REG_CTRL_HUM => self.regs[usize::from(reg)] = value & 0x07,
            REG_CONFIG => self.regs[usize::from(reg)] = value & 0xfd,
            REG_CTRL_MEAS => {
                self.osrs_h = self.regs[usize::from(REG_CTRL_HUM)];
                match value & 0x03 {
                    // Forced mode: one conversion, then back to sleep (3.3.3).
                    0x01 | 0x02 => {
                        self.convert(value);
                        self.regs[usize::from(reg)] = value & !0x03;
                    }
                    0x03 => {
                        self.convert(value);
                        self.regs[usize::from(reg)] = value;
                    }
                    _ => self.regs[usize::from(reg)] = value,
                }
            }
            // Calibration, ID and data registers are read-only.
            _ => {}
        }
    }
}

impl SimChip for SimBme280 {
    fn write(&mut self, data: &[u8]) -> Result<(), ()> {
        // Multi-byte writes are register/value pairs (5.2.1).
        for pair in data.chunks(2) {
            match pair {
                [reg, value] => self.write_register(*reg, *value),
                [reg] => self.pointer = *reg,
                _ => {}
            }
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), ()> {
        for b in buf {
            *b = self.regs[usize::from(self.pointer)];
            self.pointer = self.pointer.wrapping_add(1);
        }
        Ok(())
    }
}
