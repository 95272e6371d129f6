//! The sampling thread of one bus. I2C transfers block in the kernel for milliseconds and
//! drivers wait for conversions by sleeping, so each bus gets a plain thread of its own;
//! every transaction on a bus happens on that thread, one after the other.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::mem::discriminant;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use embedded_hal::i2c::{self, ErrorKind, ErrorType, I2c, Operation, SevenBitAddress};
use linux_embedded_hal::{I2CError, I2cdev};

use super::chip::{self, Chip};
use super::shared::Slot;
use super::simulated::{self, SimBus, SimError};
use super::{check_plausible, Model, Reading, SensorError};

/// Small: the thread only runs drivers with fixed-size buffers.
const STACK_SIZE: usize = 128 * 1024;

/// One chip on the bus.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChipSpec {
    pub model: Model,
    pub address: u8,
    pub interval: Duration,
}

/// What the thread tells its owner; `chip` is the index in the list given to `spawn`.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Readings {
        chip: usize,
        readings: Vec<Reading>,
    },
    /// The chip stopped answering properly. Sent once per fault; the next `Readings`
    /// means it recovered.
    Failed {
        chip: usize,
        error: SensorError,
    },
}

pub(crate) enum Command {
    Interval { chip: usize, interval: Duration },
}

/// Owned by whoever started the thread; dropping it stops the thread.
pub struct BusHandle {
    commands: Sender<Command>,
}

impl BusHandle {
    /// Changes how often a chip is sampled, from now on.
    pub fn set_interval(&self, chip: usize, interval: Duration) {
        let _ = self.commands.send(Command::Interval { chip, interval });
    }
}

/// Starts sampling the chips on the bus device `bus` (`/dev/i2c-1`), or on a simulated
/// bus (`sim`, `sim:DIR`: see `simulated::SimBus`). The device is opened only if a chip
/// needs it, and reopened after failures, so a bus missing at start is retried rather
/// than fatal. `sink` gets every report and returns false to stop.
pub fn spawn<S>(bus: String, chips: Vec<ChipSpec>, sink: S) -> io::Result<BusHandle>
where
    S: FnMut(Report) -> bool + Send + 'static,
{
    let (commands, rx) = mpsc::channel();
    let sim = simulated::is_simulated(&bus).then(|| {
        let models: Vec<(Model, u8)> = chips.iter().map(|c| (c.model, c.address)).collect();
        SimBus::configured(&bus, &models)
    });
    thread::Builder::new()
        .name("i2c".into())
        .stack_size(STACK_SIZE)
        .spawn(move || {
            let open = || match &sim {
                Some(sim) => Ok(AnyBus::Sim(sim.clone())),
                None => I2cdev::new(&bus)
                    .map(AnyBus::Dev)
                    .map_err(|e| SensorError::Open(format!("{bus}: {e}"))),
            };
            run(&bus, open, &chips, &rx, sink);
        })?;
    Ok(BusHandle { commands })
}

/// A device or a simulated bus, so that the drivers are built once for both.
enum AnyBus {
    Dev(I2cdev),
    Sim(SimBus),
}

enum AnyError {
    Dev(I2CError),
    Sim(SimError),
}

impl fmt::Debug for AnyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyError::Dev(e) => write!(f, "{}", e.inner()),
            AnyError::Sim(_) => write!(f, "simulated bus"),
        }
    }
}

impl i2c::Error for AnyError {
    fn kind(&self) -> ErrorKind {
        match self {
            AnyError::Dev(e) => e.kind(),
            AnyError::Sim(e) => e.kind(),
        }
    }
}

impl ErrorType for AnyBus {
    type Error = AnyError;
}

impl I2c for AnyBus {
    fn transaction(
        &mut self,
        address: SevenBitAddress,
        operations: &mut [Operation<'_>],
    ) -> Result<(), AnyError> {
        match self {
            AnyBus::Dev(bus) => bus.transaction(address, operations).map_err(AnyError::Dev),
            AnyBus::Sim(bus) => bus.transaction(address, operations).map_err(AnyError::Sim),
        }
    }
}

struct Sampled<'a> {
    spec: ChipSpec,
    chip: Box<dyn Chip + 'a>,
    interval: Duration,
    due: Instant,
    ready: bool,
    failing: Option<SensorError>,
}

/// The sampling loop; returns when the handle is dropped or the sink refuses a report.
pub(crate) fn run<B, O, S>(
    name: &str,
    mut open: O,
    specs: &[ChipSpec],
    commands: &Receiver<Command>,
    mut sink: S,
) where
    B: I2c,
    B::Error: fmt::Debug,
    O: FnMut() -> Result<B, SensorError>,
    S: FnMut(Report) -> bool,
{
    let bus: Slot<B> = RefCell::new(None);
    let start = Instant::now();
    let mut chips: Vec<Sampled<'_>> = specs
        .iter()
        .map(|spec| Sampled {
            spec: *spec,
            chip: chip::driver(spec.model, spec.address, &bus),
            interval: spec.interval,
            due: start,
            ready: false,
            failing: None,
        })
        .collect();
    loop {
        let now = Instant::now();
        let mut bus_faults = false;
        for (index, c) in chips.iter_mut().enumerate() {
            if c.due > now {
                continue;
            }
            c.due = now + c.interval;
            let result = sample(c, &bus, &mut open);
            let report = match result {
                Ok(readings) => {
                    if let Some(was) = c.failing.take() {
                        tracing::info!(
                            bus = name,
                            address = format_args!("{:#04x}", c.spec.address),
                            "{} answers again (it failed with: {was})",
                            c.spec.model.name()
                        );
                    }
                    Report::Readings {
                        chip: index,
                        readings,
                    }
                }
                Err(error) => {
                    c.ready = false;
                    bus_faults |= matches!(error, SensorError::Bus(_));
                    let known = c
                        .failing
                        .as_ref()
                        .is_some_and(|f| discriminant(f) == discriminant(&error));
                    c.failing = Some(error.clone());
                    if known {
                        continue;
                    }
                    tracing::warn!(
                        bus = name,
                        address = format_args!("{:#04x}", c.spec.address),
                        "{}: {error}; retrying every {} s",
                        c.spec.model.name(),
                        c.interval.as_secs_f64()
                    );
                    Report::Failed { chip: index, error }
                }
            };
            if !sink(report) {
                return;
            }
        }
        // An adapter that went away leaves a dead file descriptor: when no chip on the
        // bus answers, close it so that the next attempt opens the device anew.
        let on_bus = || chips.iter().filter(|c| c.spec.model.uses_bus());
        if bus_faults && on_bus().all(|c| c.failing.is_some()) {
            if let Ok(mut slot) = bus.try_borrow_mut() {
                *slot = None;
            }
        }
        let next = chips.iter().map(|c| c.due).min();
        let received = match next {
            Some(t) => commands.recv_timeout(t.saturating_duration_since(Instant::now())),
            None => commands.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(Command::Interval { chip, interval }) => {
                if let Some(c) = chips.get_mut(chip) {
                    // Keep the phase: the next sample comes `interval` after the last one.
                    let last = c.due.checked_sub(c.interval).unwrap_or(c.due);
                    c.due = last + interval;
                    c.interval = interval;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn sample<B, O>(
    c: &mut Sampled<'_>,
    bus: &Slot<B>,
    open: &mut O,
) -> Result<Vec<Reading>, SensorError>
where
    O: FnMut() -> Result<B, SensorError>,
{
    if c.spec.model.uses_bus() {
        let closed = bus.try_borrow().map(|b| b.is_none()).unwrap_or(false);
        if closed {
            let opened = open()?;
            if let Ok(mut slot) = bus.try_borrow_mut() {
                *slot = Some(opened);
            }
        }
    }
    if !c.ready {
        c.chip.init()?;
        c.ready = true;
    }
    let readings = c.chip.measure()?;
    check_plausible(c.spec.model, &readings)?;
    Ok(readings)
}
