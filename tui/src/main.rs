//! `irf`: the incident-response workstation and its command line.

use std::process::ExitCode;

use clap::Parser;
use irf_tui::{cli, commands, logging};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runs_in_background = matches!(
        &cli.command,
        Some(cli::Command::Lab(cli::LabArgs {
            command: Some(cli::LabCommand::Runtime { .. }),
            ..
        }))
    );
    let _log_guard = if runs_in_background {
        logging::init_stderr();
        None
    } else {
        logging::init()
    };
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
    // Ledger entries carry the request ids of the calls behind them.
    match runtime.block_on(irf_engine::request_ids::recording(commands::run(cli))) {
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
            eprintln!(
                "irf: {}",
                irf_tui::text::escape_keeping_lines(&format!("{err:#}"))
            );
            ExitCode::FAILURE
        }
    }
}
