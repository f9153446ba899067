//! `irf-worker`: the long-running acquisition worker (template 3 runs it in the isolated IR
//! VPC). It consumes the step queues named by its environment until SIGTERM.

use std::process::ExitCode;

use irf_engine::worker::{self, WorkerOptions};

#[tokio::main]
async fn main() -> ExitCode {
    irf_ops::init_logging();
    let plane = match irf_ops::connect().await {
        Ok(plane) => plane,
        Err(err) => {
            tracing::error!(error = err, "cannot start the worker");
            return ExitCode::FAILURE;
        }
    };
    let options = match WorkerOptions::from_config(plane.ctx.config()) {
        Ok(options) => options,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the worker");
            return ExitCode::FAILURE;
        }
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        worker::shutdown_signal().await;
        // Steps in progress are abandoned; their messages come back to another worker.
        let _ = stop.send(true);
    });
    tracing::info!(queues = options.queues.len(), "worker started");
    worker::run(plane, options, stopped).await;
    ExitCode::SUCCESS
}
