//! The drivers against the simulated chips, with the datasheets' worked examples.
#![cfg(test)]

use std::cell::RefCell;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource};

use super::sht4x::crc8;
use super::*;
use crate::sensor::chip::driver;
use crate::sensor::sampler::{run, ChipSpec, Command, Report};
use crate::sensor::{Model, Quantity, Reading, SensorError};

use super::bme280::{EXAMPLE, EXAMPLE_ADC};

const ADC_T: u32 = EXAMPLE_ADC.0;
const ADC_P: u32 = EXAMPLE_ADC.1;
const ADC_H: u16 = EXAMPLE_ADC.2;

/// BME280 datasheet 4.2.3: t_fine and humidity by the 32-bit integer formulas, as an
/// independent check of the driver's floating-point ones.
fn datasheet_humidity(cal: &Bme280Calibration, adc_t: i64, adc_h: i64) -> f64 {
    let (t1, t2, t3) = (i64::from(cal.t1), i64::from(cal.t2), i64::from(cal.t3));
    let var1 = (((adc_t >> 3) - (t1 << 1)) * t2) >> 11;
    let var2 = (((((adc_t >> 4) - t1) * ((adc_t >> 4) - t1)) >> 12) * t3) >> 14;
    let t_fine = var1 + var2;
    let (h1, h2, h3) = (i64::from(cal.h1), i64::from(cal.h2), i64::from(cal.h3));
    let (h4, h5, h6) = (i64::from(cal.h4), i64::from(cal.h5), i64::from(cal.h6));
    let mut v = t_fine - 76800;
    v = (((adc_h << 14) - (h4 << 20) - (h5 * v)) + 16384) >> 15;
    let w = t_fine - 76800;
    v *= ((((((w * h6) >> 10) * (((w * h3) >> 11) + 32768)) >> 10) + 2097152) * h2 + 8192) >> 14;
    v -= ((((v >> 15) * (v >> 15)) >> 7) * h1) >> 4;
    v = v.clamp(0, 419430400);
    (v >> 12) as f64 / 1024.0
}

fn value(readings: &[Reading], q: Quantity) -> f64 {
    readings
        .iter()
        .find(|r| r.quantity == q)
        .expect("quantity")
        .value
}

fn nack_address() -> String {
    format!("{}", ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address))
}

#[test]
fn bme280_gives_the_datasheet_example() {
    let bus = SimBus::default();
    let mut chip = SimBme280::new(&EXAMPLE);
    (chip.adc_t, chip.adc_p, chip.adc_h) = (ADC_T, ADC_P, ADC_H);
    bus.attach(0x76, chip);
    let slot = RefCell::new(Some(bus.clone()));
    let mut d = driver(Model::Bme280, 0x76, &slot);
    d.init().unwrap();
    // Nothing converted before a forced-mode request.
    assert_eq!(bus.with(0x76, |c: &mut SimBme280| c.conversions), 0);
    let r = d.measure().unwrap();
    assert_eq!(bus.with(0x76, |c: &mut SimBme280| c.conversions), 1);
    // Datasheet: 25.08 °C and 100653.27 Pa.
    assert!(
        (value(&r, Quantity::Temperature) - 25.08).abs() < 0.01,
        "{r:?}"
    );
    assert!(
        (value(&r, Quantity::Pressure) - 100_653.27).abs() < 1.0,
        "{r:?}"
    );
    let h = datasheet_humidity(&EXAMPLE, ADC_T.into(), ADC_H.into());
    assert!((10.0..90.0).contains(&h), "{h}");
    assert!(
        (value(&r, Quantity::Humidity) - h).abs() < 0.05,
        "{r:?} vs {h}"
    );
    // A second measurement triggers a second conversion with the new raw values.
    bus.with(0x76, |c: &mut SimBme280| c.adc_t = 0x80000 + 0x1000);
    let r2 = d.measure().unwrap();
    assert_eq!(bus.with(0x76, |c: &mut SimBme280| c.conversions), 2);
    assert!(value(&r2, Quantity::Temperature) > 25.08, "{r2:?}");
}

#[test]
fn bme280_on_a_wrong_address_is_a_nack() {
    let bus = SimBus::default();
    bus.attach(0x76, SimBme280::new(&EXAMPLE));
    let slot = RefCell::new(Some(bus));
    let mut d = driver(Model::Bme280, 0x77, &slot);
    match d.init() {
        Err(SensorError::Bus(why)) => assert!(why.contains(&nack_address()), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bme280_driver_refuses_another_chip() {
    // A TMP102 strapped to 0x76's place NACKs the ID register's pointer.
    let bus = SimBus::default();
    bus.attach(0x76, SimTmp102::new(0));
    let slot = RefCell::new(Some(bus));
    let mut d = driver(Model::Bme280, 0x76, &slot);
    assert!(matches!(d.init(), Err(SensorError::Bus(_))));
}

#[test]
fn sht4x_crc_matches_the_datasheet_example() {
    // Datasheet 4.4: CRC(0xBEEF) = 0x92.
    assert_eq!(crc8(&[0xbe, 0xef]), 0x92);
}

#[test]
fn sht4x_converts_and_checks_crc() {
    let bus = SimBus::default();
    bus.attach(0x44, SimSht4x::new(25.0, 50.0));
    let slot = RefCell::new(Some(bus.clone()));
    let mut d = driver(Model::Sht4x, 0x44, &slot);
    d.init().unwrap();
    let r = d.measure().unwrap();
    assert!(
        (value(&r, Quantity::Temperature) - 25.0).abs() < 0.01,
        "{r:?}"
    );
    assert!((value(&r, Quantity::Humidity) - 50.0).abs() < 0.01, "{r:?}");
    bus.with(0x44, |c: &mut SimSht4x| c.bad_crc = true);
    assert_eq!(d.measure(), Err(SensorError::Crc));
    // The SHT4x at 0x45 is absent.
    let mut other = driver(Model::Sht4x, 0x45, &slot);
    assert!(matches!(other.init(), Err(SensorError::Bus(_))));
}

#[test]
fn tmp102_follows_the_datasheet_table() {
    // Table 7-2: 12-bit digital output and temperature.
    let table = [
        (0x7ff, 127.9375),
        (0x640, 100.0),
        (0x190, 25.0),
        (0x004, 0.25),
        (0x000, 0.0),
        (0xffc, -0.25),
        (0xe70, -25.0),
        (0xc90, -55.0),
    ];
    let bus = SimBus::default();
    bus.attach(0x49, SimTmp102::new(0));
    let slot = RefCell::new(Some(bus.clone()));
    let mut d = driver(Model::Tmp102, 0x49, &slot);
    d.init().unwrap();
    for (raw, celsius) in table {
        bus.with(0x49, |c: &mut SimTmp102| c.raw = raw);
        let r = d.measure().unwrap();
        assert_eq!(value(&r, Quantity::Temperature), celsius, "{raw:#x}");
        assert_eq!(SimTmp102::raw_for(celsius), raw);
    }
}

#[test]
fn sht3x_converts_the_datasheet_formulas_and_checks_crc() {
    // Datasheet 4.12: CRC(0xBEEF) = 0x92; 4.13: T = -45 + 175 * S_T / 65535,
    // RH = 100 * S_RH / 65535, at both ends of the scale and in between.
    assert_eq!(crc8(&[0xbe, 0xef]), 0x92);
    let bus = SimBus::default();
    bus.attach(0x45, SimSht3x::new(0.0, 0.0));
    let slot = RefCell::new(Some(bus.clone()));
    let mut d = driver(Model::Sht3x, 0x45, &slot);
    d.init().unwrap();
    for ((t, rh), (st, srh)) in [
        ((-45.0, 0.0), (0x0000, 0x0000)),
        ((130.0, 100.0), (0xffff, 0xffff)),
        ((25.0, 50.0), (0x6666, 0x8000)),
    ] {
        assert_eq!(SimSht3x::ticks(t, rh), (st, srh));
        bus.with(0x45, |c: &mut SimSht3x| {
            (c.temperature, c.humidity) = (t, rh)
        });
        let r = d.measure().unwrap();
        let want_t = -45.0 + 175.0 * f64::from(st) / 65535.0;
        let want_rh = 100.0 * f64::from(srh) / 65535.0;
        assert!(
            (value(&r, Quantity::Temperature) - want_t).abs() < 1e-3,
            "{r:?}"
        );
        assert!(
            (value(&r, Quantity::Humidity) - want_rh).abs() < 1e-3,
            "{r:?}"
        );
    }
    bus.with(0x45, |c: &mut SimSht3x| c.bad_crc = true);
    assert_eq!(d.measure(), Err(SensorError::Crc));
    // The other strapping is absent.
    let mut absent = driver(Model::Sht3x, 0x44, &slot);
    assert!(matches!(absent.init(), Err(SensorError::Bus(_))));
}

#[test]
fn tmp117_follows_the_datasheet_table() {
    // The datasheet's temperature data format: 16-bit output and temperature,
    // 7.8125 m°C per bit.
    let table = [
        (0x4b00, 150.0),
        (0x3200, 100.0),
        (0x0c80, 25.0),
        (0x0001, 0.0078125),
        (0x0000, 0.0),
        (0xffff_u16 as i16, -0.0078125),
        (0xf380_u16 as i16, -25.0),
        (0xe480_u16 as i16, -55.0),
    ];
    let bus = SimBus::default();
    bus.attach(0x4a, SimTmp117::new(0));
    let slot = RefCell::new(Some(bus.clone()));
    let mut d = driver(Model::Tmp117, 0x4a, &slot);
    d.init().unwrap();
    // Reset puts the chip in continuous conversion until the driver shuts it down.
    let before = bus.with(0x4a, |c: &mut SimTmp117| c.conversions);
    for (n, (raw, celsius)) in table.into_iter().enumerate() {
        bus.with(0x4a, |c: &mut SimTmp117| c.raw = raw);
        let r = d.measure().unwrap();
        assert_eq!(value(&r, Quantity::Temperature), celsius, "{raw:#x}");
        assert_eq!(SimTmp117::raw_for(celsius), raw);
        // One one-shot conversion per measurement, none in between.
        let conversions = bus.with(0x4a, |c: &mut SimTmp117| c.conversions);
        assert_eq!(conversions, before + n as u32 + 1);
    }
    // A TMP102 does not have the device ID register: its pointer is not acknowledged.
    let other = SimBus::default();
    other.attach(0x48, SimTmp102::new(0));
    let slot = RefCell::new(Some(other));
    assert!(matches!(
        driver(Model::Tmp117, 0x48, &slot).init(),
        Err(SensorError::Bus(_))
    ));
}

#[test]
fn lm75_follows_the_datasheet_table() {
    // The LM75B datasheet's temperature data format: 9-bit output and temperature,
    // 0.5 °C per bit.
    let table = [
        (0x0fa, 125.0),
        (0x032, 25.0),
        (0x001, 0.5),
        (0x000, 0.0),
        (0x1ff, -0.5),
        (0x1ce, -25.0),
        (0x192, -55.0),
    ];
    let bus = SimBus::default();
    bus.attach(0x4f, SimLm75::new(0));
    let slot = RefCell::new(Some(bus.clone()));
    let mut d = driver(Model::Lm75, 0x4f, &slot);
    d.init().unwrap();
    for (raw, celsius) in table {
        bus.with(0x4f, |c: &mut SimLm75| c.raw = raw);
        let r = d.measure().unwrap();
        assert_eq!(value(&r, Quantity::Temperature), celsius, "{raw:#x}");
        assert_eq!(SimLm75::raw_for(celsius), raw);
    }
    let mut absent = driver(Model::Lm75, 0x48, &slot);
    assert!(matches!(absent.init(), Err(SensorError::Bus(_))));
}

#[test]
fn ads1115_and_ads1015_follow_the_datasheet_codes() {
    // The datasheets' full-scale ranges: 125 µV per code (ADS1115) and 2 mV (ADS1015) at
    // ±4.096 V; ideal output codes:
    // one code, and clipping at +FS (2^15 - 1) / 2^15 (0x7FFF) and 2^11 - 1 codes.
    let inputs = [1.0, 3.3, 0.002, 5.0];
    let cases = [
        (
            Model::Ads1115,
            SimAds1x1x::ads1115(inputs),
            [1.0, 3.3, 0.002, 4.095875],
        ),
        (
            Model::Ads1015,
            SimAds1x1x::ads1015(inputs),
            [1.0, 3.3, 0.002, 4.094],
        ),
    ];
    for (model, chip, want) in cases {
        let bus = SimBus::default();
        bus.attach(0x49, chip);
        let slot = RefCell::new(Some(bus.clone()));
        let mut d = driver(model, 0x49, &slot);
        d.init().unwrap();
        let r = d.measure().unwrap();
        for (n, v) in (0u8..).zip(want) {
            let got = value(&r, Quantity::InputVoltage(n));
            assert!((got - v).abs() < 1e-9, "{model:?} AIN{n}: {got} vs {v}");
        }
        let mut absent = driver(model, 0x48, &slot);
        assert!(matches!(absent.init(), Err(SensorError::Bus(_))));
    }
    // One code above and below zero, and clipping at -FS (0x8000).
    let bus = SimBus::default();
    bus.attach(0x48, SimAds1x1x::ads1115([0.000125, -0.000125, 0.0, -5.0]));
    let slot = RefCell::new(Some(bus));
    let mut d = driver(Model::Ads1115, 0x48, &slot);
    d.init().unwrap();
    let r = d.measure().unwrap();
    for (n, v) in (0u8..).zip([0.000125, -0.000125, 0.0, -4.096]) {
        assert!(
            (value(&r, Quantity::InputVoltage(n)) - v).abs() < 1e-9,
            "{r:?}"
        );
    }
}

#[test]
fn bh1750_gives_the_datasheet_example() {
    // Datasheet page 7: a count of 1000_0011_1001_0000 is (2^15 + 2^9 + 2^8 + 2^7 + 2^4)
    // / 1.2 = 28067 lx.
    let bus = SimBus::default();
    bus.attach(0x5c, SimBh1750::new(0b1000_0011_1001_0000));
    let slot = RefCell::new(Some(bus.clone()));
    let mut d = driver(Model::Bh1750, 0x5c, &slot);
    d.init().unwrap();
    let r = d.measure().unwrap();
    assert!(
        (value(&r, Quantity::Illuminance) - 28067.0).abs() < 1.0,
        "{r:?}"
    );
    assert_eq!(bus.with(0x5c, |c: &mut SimBh1750| c.conversions), 1);
    // Darkness is a measurement, not a fault.
    bus.with(0x5c, |c: &mut SimBh1750| c.count = 0);
    assert_eq!(value(&d.measure().unwrap(), Quantity::Illuminance), 0.0);
    let mut absent = driver(Model::Bh1750, 0x23, &slot);
    assert!(matches!(absent.init(), Err(SensorError::Bus(_))));
}

#[test]
fn scd4x_gives_the_datasheet_example() {
    // Datasheet 3.6.2: the read_measurement answer 01 F4 33 66 67 A2 5E B9 3C is
    // 500 ppm, 25 °C and 37 %RH, with those CRC bytes.
    assert_eq!(crc8(&[0x01, 0xf4]), 0x33);
    assert_eq!(crc8(&[0x66, 0x67]), 0xa2);
    assert_eq!(crc8(&[0x5e, 0xb9]), 0x3c);
    let bus = SimBus::default();
    bus.attach(0x62, SimScd4x::new([0x01f4, 0x6667, 0x5eb9]));
    let slot = RefCell::new(Some(bus.clone()));
    let mut d = driver(Model::Scd4x, 0x62, &slot);
    d.init().unwrap();
    // Started, but the first measurement is not in yet: nothing rather than old values.
    assert_eq!(d.measure().unwrap(), vec![]);
    bus.with(0x62, |c: &mut SimScd4x| c.tick());
    let r = d.measure().unwrap();
    assert_eq!(value(&r, Quantity::Co2), 500.0);
    assert!(
        (value(&r, Quantity::Temperature) - 25.0).abs() < 0.01,
        "{r:?}"
    );
    assert!((value(&r, Quantity::Humidity) - 37.0).abs() < 0.01, "{r:?}");
    assert_eq!(d.measure().unwrap(), vec![]);
    // Restarting the driver while the chip measures stops it first.
    d.init().unwrap();
}

#[test]
fn ina219_reads_voltage_current_and_power() {
    // 12.5 V on the bus, 87.5 mV across the 0.1 Ω shunt: 0.875 A, 10.9375 W.
    let bus = SimBus::default();
    bus.attach(0x41, SimIna219::new(8750, 12_500));
    let slot = RefCell::new(Some(bus.clone()));
    let mut d = driver(Model::Ina219, 0x41, &slot);
    d.init().unwrap();
    let r = d.measure().unwrap();
    assert_eq!(value(&r, Quantity::Voltage), 12.5);
    assert!((value(&r, Quantity::Current) - 0.875).abs() < 1e-9, "{r:?}");
    assert!((value(&r, Quantity::Power) - 10.9375).abs() < 1e-9, "{r:?}");
    // Current flowing backwards through the shunt.
    bus.with(0x41, |c: &mut SimIna219| c.shunt_10uv = -2000);
    let r = d.measure().unwrap();
    assert!((value(&r, Quantity::Current) + 0.2).abs() < 1e-9, "{r:?}");
    let mut absent = driver(Model::Ina219, 0x40, &slot);
    assert!(matches!(absent.init(), Err(SensorError::Bus(_))));
}

#[test]
fn lis3dh_reads_gravity_in_high_resolution() {
    // Flat on a table: 1 g on Z; tilted a little on X and Y.
    let bus = SimBus::default();
    bus.attach(0x19, SimLis3dh::new([-250, 125, 1000]));
    let slot = RefCell::new(Some(bus.clone()));
    let mut d = driver(Model::Lis3dh, 0x19, &slot);
    d.init().unwrap();
    let r = d.measure().unwrap();
    // High resolution at ±2 g: 1 mg/digit (table 4).
    let g = 9.80665;
    for (q, want) in [
        (Quantity::AccelerationX, -0.25 * g),
        (Quantity::AccelerationY, 0.125 * g),
        (Quantity::AccelerationZ, g),
    ] {
        assert!((value(&r, q) - want).abs() < 1e-4, "{q:?}: {r:?}");
    }
    // Another chip at the address (a TMP102 NACKs the WHO_AM_I pointer) is refused.
    let other = SimBus::default();
    other.attach(0x18, SimTmp102::new(0));
    let slot = RefCell::new(Some(other));
    assert!(driver(Model::Lis3dh, 0x18, &slot).init().is_err());
}

/// Runs a sampler over `bus` in a thread; reports arrive on the returned receiver.
fn sampler(
    bus: SimBus,
    specs: Vec<ChipSpec>,
    fail_first_opens: u32,
) -> (mpsc::Sender<Command>, mpsc::Receiver<Report>) {
    let (cmd_tx, cmd_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut failures = fail_first_opens;
        let open = move || {
            if failures > 0 {
                failures -= 1;
                return Err(SensorError::Open(
                    "/dev/i2c-7: No such file or directory".into(),
                ));
            }
            Ok(bus.clone())
        };
        run("/dev/i2c-7", open, &specs, &cmd_rx, move |r| {
            tx.send(r).is_ok()
        });
    });
    (cmd_tx, rx)
}

fn wait_for(rx: &mpsc::Receiver<Report>, what: &str, mut f: impl FnMut(&Report) -> bool) -> Report {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let r = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no report: {what}"));
        if f(&r) {
            return r;
        }
    }
}

fn spec(model: Model, address: u8) -> ChipSpec {
    ChipSpec {
        model,
        address,
        interval: Duration::from_millis(20),
    }
}

#[test]
fn one_bus_samples_its_chips_and_survives_a_chip_removed_and_restored() {
    let bus = SimBus::default();
    bus.attach(0x76, SimBme280::new(&EXAMPLE));
    bus.with(0x76, |c: &mut SimBme280| {
        (c.adc_t, c.adc_p, c.adc_h) = (ADC_T, ADC_P, ADC_H)
    });
    bus.attach(0x44, SimSht4x::new(21.5, 40.0));
    bus.attach(0x48, SimTmp102::new(SimTmp102::raw_for(19.0)));
    let specs = vec![
        spec(Model::Bme280, 0x76),
        spec(Model::Sht4x, 0x44),
        spec(Model::Tmp102, 0x48),
        spec(Model::Sim, 0x10),
    ];
    let (_cmd, rx) = sampler(bus.clone(), specs, 1);
    // The bus device is missing at the first attempt, then appears.
    let r = wait_for(&rx, "open failure", |_| true);
    assert!(
        matches!(
            r,
            Report::Failed {
                chip: 0,
                error: SensorError::Open(_)
            }
        ),
        "{r:?}"
    );
    let mut seen = [false; 4];
    wait_for(&rx, "all chips", |r| {
        if let Report::Readings { chip, .. } = r {
            seen[*chip] = true;
        }
        seen.iter().all(|s| *s)
    });
    let r = wait_for(&rx, "sht4x", |r| {
        matches!(r, Report::Readings { chip: 1, .. })
    });
    let Report::Readings { readings, .. } = r else {
        unreachable!()
    };
    assert!((value(&readings, Quantity::Temperature) - 21.5).abs() < 0.01);

    let unplugged = bus.detach(0x44).unwrap();
    let r = wait_for(&rx, "sht4x failure", |r| {
        matches!(r, Report::Failed { chip: 1, .. })
    });
    match r {
        Report::Failed {
            error: SensorError::Bus(why),
            ..
        } => {
            assert!(why.contains(&nack_address()), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // Other chips on the bus go on meanwhile.
    wait_for(&rx, "tmp102 meanwhile", |r| {
        matches!(r, Report::Readings { chip: 2, .. })
    });
    bus.reattach(0x44, unplugged);
    wait_for(&rx, "sht4x back", |r| {
        matches!(r, Report::Readings { chip: 1, .. })
    });
}

#[test]
fn implausible_values_are_faults() {
    let bus = SimBus::default();
    // 130 °C is within the SHT4x's raw scale but beyond its specified range.
    bus.attach(0x44, SimSht4x::new(130.0, 40.0));
    let (_cmd, rx) = sampler(bus.clone(), vec![spec(Model::Sht4x, 0x44)], 0);
    let r = wait_for(&rx, "implausible", |_| true);
    assert!(
        matches!(
            r,
            Report::Failed {
                error: SensorError::Implausible {
                    quantity: Quantity::Temperature,
                    ..
                },
                ..
            }
        ),
        "{r:?}"
    );
    bus.with(0x44, |c: &mut SimSht4x| c.temperature = 30.0);
    wait_for(&rx, "recovered", |r| matches!(r, Report::Readings { .. }));
}

#[test]
fn interval_changes_take_effect() {
    let bus = SimBus::default();
    let slow = ChipSpec {
        model: Model::Sim,
        address: 0,
        interval: Duration::from_secs(3600),
    };
    let (cmd, rx) = sampler(bus, vec![slow], 0);
    wait_for(&rx, "first sample", |_| true);
    // Without the change the next sample would be an hour away.
    cmd.send(Command::Interval {
        chip: 0,
        interval: Duration::from_millis(10),
    })
    .unwrap();
    wait_for(&rx, "second sample", |_| true);
}

#[test]
fn a_configured_simulated_bus_runs_every_model_and_unplugs_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let models = [
        (Model::Bme280, 0x76),
        (Model::Sht3x, 0x44),
        (Model::Sht4x, 0x45),
        (Model::Tmp102, 0x48),
        (Model::Tmp117, 0x49),
        (Model::Lm75, 0x4c),
        (Model::Bh1750, 0x23),
        (Model::Ina219, 0x40),
        (Model::Lis3dh, 0x18),
        (Model::Ads1115, 0x4a),
    ];
    let name = format!("sim:{}", dir.path().display());
    let bus = SimBus::configured(&name, &models);
    let specs: Vec<ChipSpec> = models.iter().map(|(m, a)| spec(*m, *a)).collect();
    let (cmd_tx, cmd_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let open = move || Ok(bus.clone());
        run("sim", open, &specs, &cmd_rx, move |r| tx.send(r).is_ok());
    });
    // Every chip's driver reads plausible values (checked by the sampler) off its
    // simulation.
    let mut seen = [false; 10];
    wait_for(&rx, "all chips", |r| {
        match r {
            Report::Readings { chip, .. } => seen[*chip] = true,
            Report::Failed { chip, error } => panic!("{:?}: {error}", models[*chip]),
        }
        seen.iter().all(|s| *s)
    });
    let unplug = dir.path().join("unplug-0x44");
    std::fs::write(&unplug, b"").unwrap();
    let r = wait_for(&rx, "sht3x unplugged", |r| {
        matches!(r, Report::Failed { .. })
    });
    match r {
        Report::Failed {
            chip: 1,
            error: SensorError::Bus(why),
        } => assert!(why.contains(&nack_address()), "{why}"),
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(&unplug).unwrap();
    wait_for(&rx, "sht3x back", |r| {
        matches!(r, Report::Readings { chip: 1, .. })
    });
    drop(cmd_tx);
}
