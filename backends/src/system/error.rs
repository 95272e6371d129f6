use std::fmt;
use std::io;
use std::process::ExitStatus;

/// Why an action on the system failed.
#[derive(Debug)]
pub enum SystemError {
    /// No connection to the bus (no daemon at the address, or authentication refused).
    BusUnreachable { address: String, reason: String },
    /// The service answered the call with a D-Bus error, e.g.
    /// `org.freedesktop.DBus.Error.ServiceUnknown` or `org.freedesktop.DBus.Error.AccessDenied`.
    DBus { name: String, message: String },
    /// The connection failed during the call (closed, timed out, malformed reply).
    Bus { reason: String },
    /// A time that does not fit in the microseconds timedated takes.
    TimeOutOfRange { unix_seconds: i64 },
    /// A command with no program.
    EmptyCommand,
    /// The program could not be started (not found, not executable).
    Spawn { program: String, source: io::Error },
    /// Waiting for the program failed.
    Wait { program: String, source: io::Error },
    /// The program ran longer than it was allowed to, and was killed.
    TimedOut {
        program: String,
        after: std::time::Duration,
    },
    /// The program printed more than it was allowed to, and was killed.
    OutputTooLong { program: String, limit: usize },
    /// The program ran and failed; `stderr_tail` holds the end of what it wrote to stderr.
    CommandFailed {
        program: String,
        status: ExitStatus,
        stderr_tail: String,
    },
}

impl fmt::Display for SystemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BusUnreachable { address, reason } => {
                write!(f, "system bus at {address} unreachable: {reason}")
            }
            Self::DBus { name, message } if message.is_empty() => write!(f, "D-Bus error {name}"),
            Self::DBus { name, message } => write!(f, "D-Bus error {name}: {message}"),
            Self::Bus { reason } => write!(f, "system bus: {reason}"),
            Self::TimeOutOfRange { unix_seconds } => {
                write!(f, "time {unix_seconds} s since the epoch is out of range")
            }
            Self::EmptyCommand => f.write_str("empty command"),
            Self::Spawn { program, source } => write!(f, "cannot start {program}: {source}"),
            Self::Wait { program, source } => write!(f, "cannot wait for {program}: {source}"),
            Self::TimedOut { program, after } => {
                write!(f, "{program} still running after {after:?}: killed")
            }
            Self::OutputTooLong { program, limit } => {
                write!(f, "{program} printed more than {limit} bytes: killed")
            }
            Self::CommandFailed {
                program,
                status,
                stderr_tail,
            } if stderr_tail.is_empty() => write!(f, "{program} failed ({status})"),
            Self::CommandFailed {
                program,
                status,
                stderr_tail,
            } => write!(f, "{program} failed ({status}): {stderr_tail}"),
        }
    }
}

impl std::error::Error for SystemError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Spawn { source, .. } | Self::Wait { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl SystemError {
    /// Sorts a failed method call into a D-Bus error reply or a broken connection.
    pub(super) fn from_call(error: zbus::Error) -> Self {
        use zbus::DBusError;
        match error {
            zbus::Error::MethodError(name, message, _) => Self::DBus {
                name: name.to_string(),
                message: message.unwrap_or_default(),
            },
            zbus::Error::FDO(fdo) => Self::DBus {
                name: fdo.name().to_string(),
                message: fdo.description().unwrap_or_default().to_owned(),
            },
            other => Self::Bus {
                reason: other.to_string(),
            },
        }
    }
}
