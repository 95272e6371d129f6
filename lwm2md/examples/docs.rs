//! Writes the manual pages and the bash, zsh and fish completions of `lwm2md` into a
//! directory (scripts/package ships them in the .deb):
//!
//!     cargo run -p lwm2md --example docs -- target/assets

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: docs DIR");
        return ExitCode::from(64);
    };
    match write_all(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docs: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

fn write_all(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let cmd = lwm2md::cli::Cli::command();
    // lwm2md.1 and one page per command (lwm2md-check.1, ...), which it refers to.
    clap_mangen::generate_to(cmd.clone(), dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "lwm2md", dir)?;
    }
    Ok(())
}
