//! One bus, many drivers: each driver gets a handle that borrows the bus for the length
//! of one transaction. All of them run on the bus's own thread, so transactions never
//! interleave.

use std::cell::RefCell;
use std::fmt;

use embedded_hal::i2c::{self, ErrorKind, ErrorType, I2c, Operation, SevenBitAddress};

/// The bus, or nothing while its device cannot be opened.
pub type Slot<B> = RefCell<Option<B>>;

pub struct Shared<'a, B> {
    bus: &'a Slot<B>,
}

// Not derived: a handle is copyable whatever the bus type.
impl<B> Clone for Shared<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B> Copy for Shared<'_, B> {}

impl<'a, B> Shared<'a, B> {
    pub fn new(bus: &'a Slot<B>) -> Shared<'a, B> {
        Shared { bus }
    }
}

pub enum SharedError<E> {
    /// The bus device is not open.
    Closed,
    Bus(E),
}

// The bus's own error, as a log line shows it after the error's kind.
impl<E: fmt::Debug> fmt::Debug for SharedError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharedError::Closed => write!(f, "the bus is not open"),
            SharedError::Bus(e) => write!(f, "{e:?}"),
        }
    }
}

impl<E: fmt::Debug> fmt::Display for SharedError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharedError::Closed => write!(f, "the bus is not open"),
            SharedError::Bus(e) => write!(f, "{e:?}"),
        }
    }
}

impl<E: i2c::Error> i2c::Error for SharedError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            SharedError::Closed => ErrorKind::Other,
            SharedError::Bus(e) => e.kind(),
        }
    }
}

impl<B: I2c> ErrorType for Shared<'_, B> {
    type Error = SharedError<B::Error>;
}

impl<B: I2c> I2c for Shared<'_, B> {
    fn transaction(
        &mut self,
        address: SevenBitAddress,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        // The bus thread is the only user and never re-enters a driver, so the borrow
        // cannot conflict; a conflict is still answered as an error rather than a panic.
        let mut slot = self.bus.try_borrow_mut().map_err(|_| SharedError::Closed)?;
        let bus = slot.as_mut().ok_or(SharedError::Closed)?;
        bus.transaction(address, operations)
            .map_err(SharedError::Bus)
    }
}

/// A transaction error as the cause a log line shows: the HAL's kind, then its detail.
pub fn bus_error<E: i2c::Error + fmt::Debug>(e: &E) -> super::SensorError {
    super::SensorError::Bus(format!("{} ({e:?})", e.kind()))
}
