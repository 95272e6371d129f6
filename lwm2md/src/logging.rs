//! Logs go to the journal when systemd connected our stderr to it, else to stderr.

use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// `RUST_LOG` wins over the configured level; the default is `info`. Both take the
/// `target=level,level` syntax (`Targets`: no regular expressions, which keeps the
/// binary and its memory small).
pub fn init(level: Option<&str>) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| parse(&s, "RUST_LOG"));
    let filter = from_env
        .or_else(|| level.and_then(|s| parse(s, "log_level")))
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let registry = tracing_subscriber::registry().with(filter);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            registry.with(journald).init();
            return;
        }
    }
    let ansi = std::io::stderr().is_terminal();
    registry
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi)
                .with_target(false),
        )
        .init();
}

fn parse(spec: &str, source: &str) -> Option<Targets> {
    match Targets::from_str(spec) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("lwm2md: ignoring {source} {spec:?}: {e}");
            None
        }
    }
}
