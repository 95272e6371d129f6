//! `lwm2md [--config PATH] [run | check | status]`: the LwM2M client daemon in the
//! foreground, or the operator's commands around it.

use std::path::Path;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use lwm2md::cli::{Cli, Command, EX_CONFIG, EX_USAGE};
use lwm2md::config::Config;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and succeed; anything else is a usage error.
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(EX_USAGE),
            };
        }
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(&cli.config),
        Command::Check { output } => block_on(lwm2md::check::run(&cli.config, output)),
        Command::Status { output } => block_on(lwm2md::status::run(output)),
    }
}

fn run(config_path: &Path) -> ExitCode {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lwm2md: configuration error: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    lwm2md::logging::init(config.log_level.as_deref());
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(lwm2md::daemon::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(lwm2md::daemon::DaemonError::Config(e)) => {
            eprintln!("lwm2md: configuration error: {e}");
            ExitCode::from(EX_CONFIG)
        }
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn block_on(f: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match runtime() {
        Some(r) => r.block_on(f),
        None => ExitCode::FAILURE,
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("lwm2md: cannot start the runtime: {e}");
            None
        }
    }
}
