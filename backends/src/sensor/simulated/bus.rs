//! A simulated I2C bus: chips keyed by address, NACK where no chip answers.
//!
//! As a configured bus (`sim` or `sim:DIR`) it carries a register-level simulation of each
//! configured chip, measuring the `sim` model's waveform (one step a second); with a
//! directory, the chip at `0x44` is unplugged while a file `DIR/unplug-0x44` exists, and
//! comes back in its power-on state when the file is removed.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use embedded_hal::i2c::{self, ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};

use crate::sensor::{sim::wave, Model, Quantity};

/// A chip as the bus sees it: write and read transfers after its address was acknowledged.
/// `Err(())` is a NACK of a data byte.
pub trait SimChip: Send + Any {
    fn write(&mut self, data: &[u8]) -> Result<(), ()>;
    fn read(&mut self, buf: &mut [u8]) -> Result<(), ()>;

    /// Takes on the conditions the chip measures, in the quantities' own units.
    fn sense(&mut self, _environment: &dyn Fn(Quantity) -> f64) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimError(pub ErrorKind);

impl i2c::Error for SimError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

struct Socket {
    chip: Box<dyn SimChip>,
    /// What to put back, powered on afresh, when the chip is plugged in again.
    model: Option<Model>,
    unplugged: bool,
}

#[derive(Default)]
struct Inner {
    sockets: BTreeMap<u8, Socket>,
    /// Where the unplug files are looked for.
    unplug_dir: Option<PathBuf>,
    /// When the environment's waveform started; none when the chips' values are set by
    /// hand.
    started: Option<Instant>,
}

/// Cloning gives another handle on the same bus, so that chips can be unplugged while a
/// sampler uses it.
#[derive(Clone, Default)]
pub struct SimBus {
    inner: Arc<Mutex<Inner>>,
}

/// Whether a configured bus name is a simulated bus rather than a device.
pub fn is_simulated(bus: &str) -> bool {
    bus == "sim" || bus.starts_with("sim:")
}

impl SimBus {
    /// The bus a configuration names (`sim` or `sim:DIR`), with a simulated chip of each
    /// of `models` at its address.
    pub fn configured(bus: &str, models: &[(Model, u8)]) -> SimBus {
        let dir = bus.strip_prefix("sim:").filter(|d| !d.is_empty());
        let mut inner = Inner {
            sockets: BTreeMap::new(),
            unplug_dir: dir.map(PathBuf::from),
            started: Some(Instant::now()),
        };
        for (model, address) in models {
            if let Some(chip) = super::chip_for(*model) {
                inner.sockets.insert(
                    *address,
                    Socket {
                        chip,
                        model: Some(*model),
                        unplugged: false,
                    },
                );
            }
        }
        SimBus {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere leaves the chips as they were; they stay usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    pub fn attach(&self, address: u8, chip: impl SimChip + 'static) {
        self.reattach(address, Box::new(chip));
    }

    #[cfg(test)]
    pub fn detach(&self, address: u8) -> Option<Box<dyn SimChip>> {
        self.lock().sockets.remove(&address).map(|s| s.chip)
    }

    #[cfg(test)]
    pub fn reattach(&self, address: u8, chip: Box<dyn SimChip>) {
        let socket = Socket {
            chip,
            model: None,
            unplugged: false,
        };
        self.lock().sockets.insert(address, socket);
    }

    /// Runs `f` on the chip at `address` (to change what it measures).
    #[cfg(test)]
    pub fn with<T: SimChip, R>(&self, address: u8, f: impl FnOnce(&mut T) -> R) -> R {
        let mut inner = self.lock();
        let socket = inner
            .sockets
            .get_mut(&address)
            .expect("no chip at that address");
        let chip: &mut dyn Any = socket.chip.as_mut();
        f(chip.downcast_mut::<T>().expect("a chip of another type"))
    }
}

impl ErrorType for SimBus {
    type Error = SimError;
}

impl I2c for SimBus {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), SimError> {
        let mut inner = self.lock();
        let Inner {
            sockets,
            unplug_dir,
            started,
        } = &mut *inner;
        let nack_address = SimError(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
        let socket = sockets.get_mut(&address).ok_or(nack_address)?;
        if let Some(dir) = unplug_dir {
            if dir.join(format!("unplug-{address:#04x}")).exists() {
                socket.unplugged = true;
                return Err(nack_address);
            }
            if socket.unplugged {
                socket.unplugged = false;
                if let Some(chip) = socket.model.and_then(super::chip_for) {
                    socket.chip = chip;
                }
            }
        }
        if let Some(t0) = started {
            let step = u32::try_from(t0.elapsed().as_secs()).unwrap_or(u32::MAX);
            // Chips at different addresses are at different phases of the waveform.
            let k = step.wrapping_add(u32::from(address));
            socket.chip.sense(&|q| wave(q, k));
        }
        let nack = SimError(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Data));
        for op in operations {
            match op {
                Operation::Write(data) => socket.chip.write(data).map_err(|()| nack)?,
                Operation::Read(buf) => socket.chip.read(buf).map_err(|()| nack)?,
            }
        }
        Ok(())
    }
}
