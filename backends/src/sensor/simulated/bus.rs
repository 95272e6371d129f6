//! A simulated I2C bus: chips keyed by address, NACK where no chip answers.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use embedded_hal::i2c::{self, ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};

/// A chip as the bus sees it: write and read transfers after its address was acknowledged.
/// `Err(())` is a NACK of a data byte.
pub trait SimChip: Send + Any {
    fn write(&mut self, data: &[u8]) -> Result<(), ()>;
    fn read(&mut self, buf: &mut [u8]) -> Result<(), ()>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimError(pub ErrorKind);

impl i2c::Error for SimError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

/// Cloning gives another handle on the same bus, so that a test can unplug chips while a
/// sampler uses it.
#[derive(Clone, Default)]
pub struct SimBus {
    chips: Arc<Mutex<BTreeMap<u8, Box<dyn SimChip>>>>,
}

impl SimBus {
    pub fn attach(&self, address: u8, chip: impl SimChip + 'static) {
        self.chips.lock().unwrap().insert(address, Box::new(chip));
    }

    pub fn detach(&self, address: u8) -> Option<Box<dyn SimChip>> {
        self.chips.lock().unwrap().remove(&address)
    }

    pub fn reattach(&self, address: u8, chip: Box<dyn SimChip>) {
        self.chips.lock().unwrap().insert(address, chip);
    }

    /// Runs `f` on the chip at `address` (to change what it measures).
    pub fn with<T: SimChip, R>(&self, address: u8, f: impl FnOnce(&mut T) -> R) -> R {
        let mut chips = self.chips.lock().unwrap();
        let chip = chips.get_mut(&address).expect("no chip at that address");
        let chip: &mut dyn Any = chip.as_mut();
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
        let mut chips = self.chips.lock().unwrap();
        let chip = chips
            .get_mut(&address)
            .ok_or(SimError(ErrorKind::NoAcknowledge(
                NoAcknowledgeSource::Address,
            )))?;
        let nack = SimError(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Data));
        for op in operations {
            match op {
                Operation::Write(data) => chip.write(data).map_err(|()| nack)?,
                Operation::Read(buf) => chip.read(buf).map_err(|()| nack)?,
            }
        }
        Ok(())
    }
}
