//! The command line: `lwm2md [--config PATH] [run | check | status]`.
//!
//! Kept in the library so that the manual page and shell completions are generated from
//! the same definitions (`cargo run -p lwm2md --example docs`).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config;

/// sysexits.h: EX_USAGE, for a command line that cannot be understood.
pub const EX_USAGE: u8 = 64;
/// sysexits.h: EX_CONFIG, for a configuration that cannot be used. The unit does not
/// restart on it (RestartPreventExitStatus=78).
pub const EX_CONFIG: u8 = 78;
/// `lwm2md status` when no daemon answers (as LSB init scripts' "program is not running").
pub const EX_NOT_RUNNING: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "lwm2md",
    version,
    disable_help_subcommand = true,
    about = "OMA LwM2M client daemon for Linux gateways",
    long_about = "OMA LwM2M client daemon for Linux gateways.\n\n\
        Without a command, runs the daemon in the foreground (as systemd starts it). \
        `lwm2md check` tests the configuration, secrets, state directory, servers and \
        backends; `lwm2md status` asks the running daemon over the system bus.",
    after_help = "Exit status: 0 on success, 64 for a bad command line, 78 for a configuration \
        error (the daemon), 1 when `check` found errors, 3 when `status` finds no daemon."
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, value_name = "PATH", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (the default).
    Run,
    /// Check the configuration, key files, state directory, each server (name resolution,
    /// CoAP ping, DTLS handshake) and each backend; exit non-zero on errors.
    Check {
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Show the running daemon's state (endpoint, each server's registration) over D-Bus.
    Status {
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: OutputFormat,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One line per item, for people.
    #[default]
    Human,
    /// One JSON document, for programs.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_is_the_default() {
        let cli = Cli::try_parse_from(["lwm2md", "--config", "/x.toml"]).unwrap();
        assert_eq!(cli.command, None);
        assert_eq!(cli.config, PathBuf::from("/x.toml"));
        let cli = Cli::try_parse_from(["lwm2md"]).unwrap();
        assert_eq!(cli.config, PathBuf::from(config::DEFAULT_PATH));
    }

    #[test]
    fn config_before_or_after_the_command() {
        for argv in [
            &["lwm2md", "--config", "/c", "check", "-o", "json"][..],
            &["lwm2md", "check", "--config", "/c", "--output", "json"][..],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap();
            assert_eq!(cli.config, PathBuf::from("/c"));
            assert_eq!(
                cli.command,
                Some(Command::Check {
                    output: OutputFormat::Json
                })
            );
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        for argv in [
            &["lwm2md", "--config"][..],
            &["lwm2md", "--bogus"][..],
            &["lwm2md", "status", "-o", "xml"][..],
            &["lwm2md", "frobnicate"][..],
        ] {
            assert!(Cli::try_parse_from(argv).is_err(), "{argv:?}");
        }
    }
}
