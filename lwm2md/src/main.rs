//! `lwm2md --config PATH`: the LwM2M client daemon, in the foreground.

use std::path::PathBuf;
use std::process::ExitCode;

use lwm2md::config::{self, Config};

/// sysexits.h: EX_USAGE and EX_CONFIG.
const EX_USAGE: u8 = 64;
const EX_CONFIG: u8 = 78;

const USAGE: &str = "usage: lwm2md [--config PATH]\n\nRuns the LwM2M client daemon in the foreground.\n\n  --config PATH   configuration file (default /etc/lwm2md/lwm2md.toml)\n  --version       print the version\n  --help          print this help\n";

fn main() -> ExitCode {
    let mut config_path = PathBuf::from(config::DEFAULT_PATH);
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--config") => match args.next() {
                Some(p) => config_path = PathBuf::from(p),
                None => return usage_error("--config needs a path"),
            },
            Some("--version") => {
                println!("lwm2md {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            Some("--help" | "-h") => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => return usage_error(&format!("unknown argument {arg:?}")),
        }
    }
    let config = match Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lwm2md: configuration error: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    lwm2md::logging::init(config.log_level.as_deref());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lwm2md: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
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

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("lwm2md: {msg}\n\n{USAGE}");
    ExitCode::from(EX_USAGE)
}
