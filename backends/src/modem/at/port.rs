//! The AT command port: a serial device that may vanish (USB re-enumeration, a modem
//! reset) and come back under the same name. Blocking; run it on a thread of its own.

use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::response::{CommandError, Exchange, Line};

const REOPEN_FIRST: Duration = Duration::from_secs(1);
const REOPEN_MAX: Duration = Duration::from_secs(30);
/// Longest line kept; anything longer is noise from a wrong baud rate or a data session.
const MAX_LINE: usize = 4096;
/// Unsolicited codes kept between two `take_unsolicited` calls.
const MAX_UNSOLICITED: usize = 64;
/// How long a read waits before the deadline is checked again.
const READ_SLICE: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub enum AtError {
    /// The port is closed and the next attempt to open it is not due yet.
    Unavailable { path: PathBuf, reason: String },
    /// Opening, reading or writing the port failed; it is closed and will be reopened.
    Port {
        path: PathBuf,
        error: std::io::Error,
    },
    /// No final result code within the command's timeout.
    Timeout { command: String },
    /// The modem answered with an error result code.
    Command {
        command: String,
        error: CommandError,
    },
}

impl std::fmt::Display for AtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AtError::Unavailable { path, reason } => {
                write!(f, "{}: not open ({reason})", path.display())
            }
            AtError::Port { path, error } => write!(f, "{}: {error}", path.display()),
            AtError::Timeout { command } => write!(f, "{command}: no answer"),
            AtError::Command { command, error } => write!(f, "{command}: {error}"),
        }
    }
}

impl std::error::Error for AtError {}

/// Opens a serial device. A parameter so that the engine does not care what the
/// device is.
pub trait Opener: Send {
    fn open(&mut self, path: &Path, baud: u32) -> std::io::Result<Box<dyn Device>>;
}

pub trait Device: Read + Write + Send {}
impl<T: Read + Write + Send> Device for T {}

/// Real serial ports through the `serialport` crate (no libudev).
pub struct SerialOpener;

impl Opener for SerialOpener {
    fn open(&mut self, path: &Path, baud: u32) -> std::io::Result<Box<dyn Device>> {
        let port = serialport::new(path.to_string_lossy(), baud)
            .timeout(READ_SLICE)
            .open_native()
            .map_err(std::io::Error::from)?;
        Ok(Box::new(port))
    }
}

pub struct AtPort {
    path: PathBuf,
    baud: u32,
    opener: Box<dyn Opener>,
    device: Option<Box<dyn Device>>,
    /// Bytes after the last line ending.
    partial: Vec<u8>,
    /// Complete lines read past the end of the previous exchange.
    unsolicited: Vec<String>,
    next_open: Instant,
    reopen_delay: Duration,
    last_open_error: Option<String>,
    /// Incremented on every successful open, so that callers know to set the modem up again.
    generation: u64,
    /// A command timed out: its answer may still arrive and must not be taken for the next one's.
    resync: bool,
}

impl AtPort {
    pub fn new(path: PathBuf, baud: u32) -> AtPort {
        AtPort::with_opener(path, baud, Box::new(SerialOpener))
    }

    pub fn with_opener(path: PathBuf, baud: u32, opener: Box<dyn Opener>) -> AtPort {
        AtPort {
            path,
            baud,
            opener,
            device: None,
            partial: Vec::new(),
            unsolicited: Vec::new(),
            next_open: Instant::now(),
            reopen_delay: REOPEN_FIRST,
            last_open_error: None,
            generation: 0,
            resync: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes with every (re)open of the device.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn is_open(&self) -> bool {
        self.device.is_some()
    }

    /// Unsolicited result codes received since the last call, oldest first.
    pub fn take_unsolicited(&mut self) -> Vec<String> {
        std::mem::take(&mut self.unsolicited)
    }

    /// Opens the device if it is closed and a new attempt is due.
    pub fn ensure_open(&mut self) -> Result<(), AtError> {
        if self.device.is_some() {
            return Ok(());
        }
        let now = Instant::now();
        if now < self.next_open {
            return Err(AtError::Unavailable {
                path: self.path.clone(),
                reason: self
                    .last_open_error
                    .clone()
                    .unwrap_or_else(|| "waiting to reopen".into()),
            });
        }
        match self.opener.open(&self.path, self.baud) {
            Ok(device) => {
                self.device = Some(device);
                self.partial.clear();
                self.reopen_delay = REOPEN_FIRST;
                self.last_open_error = None;
                self.generation = self.generation.wrapping_add(1);
                // Whatever the last session left half-said is not ours.
                self.resync = true;
                tracing::info!(port = %self.path.display(), "AT port open");
                Ok(())
            }
            Err(error) => {
                let message = error.to_string();
                if self.last_open_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(port = %self.path.display(), "cannot open the AT port: {message}");
                }
                self.last_open_error = Some(message);
                self.next_open = now + self.reopen_delay;
                self.reopen_delay = (self.reopen_delay * 2).min(REOPEN_MAX);
                Err(AtError::Port {
                    path: self.path.clone(),
                    error,
                })
            }
        }
    }

    /// Closes the device after an I/O failure; the next command reopens it after a delay.
    fn lost(&mut self, error: std::io::Error) -> AtError {
        tracing::warn!(port = %self.path.display(), "AT port lost: {error}");
        self.device = None;
        self.next_open = Instant::now() + self.reopen_delay;
        self.reopen_delay = (self.reopen_delay * 2).min(REOPEN_MAX);
        AtError::Port {
            path: self.path.clone(),
            error,
        }
    }

    /// Sends `command` (without the trailing CR) and returns its information lines once
    /// OK arrives.
    pub fn command(&mut self, command: &str, timeout: Duration) -> Result<Vec<String>, AtError> {
        self.ensure_open()?;
        if self.resync {
            self.sync()?;
        }
        self.exchange(command, timeout)
    }

    /// Brings the exchange back in step after a timeout or a reopen. A stale OK cannot
    /// be told from a fresh one, so the probe is a query with an answer line of its
    /// own: its final result code counts only after that line.
    fn sync(&mut self) -> Result<(), AtError> {
        const PROBE: &str = "AT+CMEE?";
        let mut alive = false;
        for _ in 0..3 {
            self.drain()?;
            let Some(device) = self.device.as_mut() else {
                break;
            };
            if let Err(e) = device
                .write_all(b"AT+CMEE?\r")
                .and_then(|()| device.flush())
            {
                return Err(self.lost(e));
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut exchange = Exchange::new(PROBE);
            let mut answered = false;
            while let Some(line) = self.read_line(deadline)? {
                match exchange.line(&line) {
                    Line::Answer => answered = true,
                    Line::Unsolicited => self.keep_unsolicited(line),
                    Line::Final(_) if answered => {
                        self.resync = false;
                        return Ok(());
                    }
                    // Someone's late result code, or a modem without +CMEE?.
                    Line::Final(_) => alive = true,
                    Line::Echo | Line::Ignored => {}
                }
            }
        }
        if alive {
            // It answers, only not to the probe: in step as far as can be known.
            self.resync = false;
            return Ok(());
        }
        let error = std::io::Error::new(ErrorKind::TimedOut, "the modem does not answer");
        Err(self.lost(error))
    }

    /// Reads until the line is quiet for a moment, keeping unsolicited codes.
    fn drain(&mut self) -> Result<(), AtError> {
        let mut exchange = Exchange::new("");
        let until = Instant::now() + Duration::from_secs(1);
        while let Some(line) = self.read_line(Instant::now() + Duration::from_millis(200))? {
            if let Line::Unsolicited = exchange.line(&line) {
                self.keep_unsolicited(line);
            }
            if Instant::now() >= until {
                break;
            }
        }
        self.partial.clear();
        Ok(())
    }

    fn exchange(&mut self, command: &str, timeout: Duration) -> Result<Vec<String>, AtError> {
        let Some(device) = self.device.as_mut() else {
            return Err(AtError::Unavailable {
                path: self.path.clone(),
                reason: "closed".into(),
            });
        };
        tracing::trace!(port = %self.path.display(), command = %super::pdp::redacted(command), "AT >");
        let written = device
            .write_all(command.as_bytes())
            .and_then(|()| device.write_all(b"\r"))
            .and_then(|()| device.flush());
        if let Err(e) = written {
            return Err(self.lost(e));
        }
        let deadline = Instant::now() + timeout;
        let mut exchange = Exchange::new(command);
        loop {
            let Some(line) = self.read_line(deadline)? else {
                self.resync = true;
                return Err(AtError::Timeout {
                    command: super::pdp::redacted(command).into_owned(),
                });
            };
            tracing::trace!(port = %self.path.display(), line = %super::pdp::redacted(&line), "AT <");
            match exchange.line(&line) {
                Line::Final(result) => {
                    let (answer, unsolicited) = exchange.into_parts();
                    for u in unsolicited {
                        self.keep_unsolicited(u);
                    }
                    return match result {
                        Ok(()) => Ok(answer),
                        Err(error) => Err(AtError::Command {
                            command: super::pdp::redacted(command).into_owned(),
                            error,
                        }),
                    };
                }
                Line::Ignored => {
                    tracing::debug!(
                        port = %self.path.display(),
                        command = %super::pdp::redacted(command),
                        line = %super::pdp::redacted(&line),
                        "AT line ignored"
                    )
                }
                Line::Echo | Line::Answer | Line::Unsolicited => {}
            }
        }
    }

    fn keep_unsolicited(&mut self, line: String) {
        if self.unsolicited.len() >= MAX_UNSOLICITED {
            self.unsolicited.remove(0);
        }
        self.unsolicited.push(line);
    }

    /// The next non-empty line, or `None` at the deadline.
    fn read_line(&mut self, deadline: Instant) -> Result<Option<String>, AtError> {
        loop {
            if let Some(line) = self.split_line() {
                if line.trim().is_empty() {
                    continue;
                }
                return Ok(Some(line));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let Some(device) = self.device.as_mut() else {
                return Ok(None);
            };
            let mut buf = [0u8; 512];
            match device.read(&mut buf) {
                // A tty reads 0 bytes only when it hung up.
                Ok(0) => {
                    let e = std::io::Error::new(ErrorKind::BrokenPipe, "hung up");
                    return Err(self.lost(e));
                }
                Ok(n) => {
                    self.partial
                        .extend_from_slice(buf.get(..n).unwrap_or_default());
                    if self.partial.len() > MAX_LINE
                        && !self.partial.iter().any(|b| *b == b'\r' || *b == b'\n')
                    {
                        self.partial.clear();
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(self.lost(e)),
            }
        }
    }

    /// Takes one line (ended by CR or LF) off the buffer.
    fn split_line(&mut self) -> Option<String> {
        let end = self
            .partial
            .iter()
            .position(|b| *b == b'\r' || *b == b'\n')?;
        let line: Vec<u8> = self.partial.drain(..=end).collect();
        let text = line.get(..end).unwrap_or_default();
        Some(String::from_utf8_lossy(text).into_owned())
    }
}
