//! `irf`: the incident-response workstation and its command line.

mod cli;
mod commands;
mod filter;
mod keymap;
mod logging;
mod text;
mod theme;
mod workstation;

use std::process::ExitCode;

use clap::Parser;

/// Where the operator's own themes live: `themes/` beside the configuration file.
pub fn theme_dir() -> Option<std::path::PathBuf> {
    irf_engine::config::Config::path()
        .ok()?
        .parent()
        .map(|dir| dir.join("themes"))
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let _log_guard = logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("irf: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        // A closed pipe (`irf instances | head`) is the reader's choice, not an error.
        Err(err)
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("irf: {err:#}");
            ExitCode::FAILURE
        }
    }
}
