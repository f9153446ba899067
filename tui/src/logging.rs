//! Logs go to a file in irf's state directory, never to the terminal the workstation owns.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Environment variable with the log filter, for example `IRF_LOG=debug` or
/// `IRF_LOG=irf_engine=trace,aws_smithy_runtime=debug`.
pub const LOG_ENV: &str = "IRF_LOG";

/// Starts logging to `irf.log` in the state directory; the guard flushes it on drop.
/// Without a state directory, logging is off rather than on the terminal.
pub fn init() -> Option<WorkerGuard> {
    let dir = irf_engine::paths::state_dir()?;
    std::fs::create_dir_all(&dir).ok()?;
    // The log names accounts, instances and cases: readable by its owner only, whatever
    // the umask (the appender would create it with the default mode).
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let path = dir.join("irf.log");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .ok()?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).ok()?;
    }
    let appender = tracing_appender::rolling::never(&dir, "irf.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_env(LOG_ENV)
        .unwrap_or_else(|_| EnvFilter::new("warn,irf=info,irf_engine=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .init();
    Some(guard)
}

/// Logs to standard error, for processes without a terminal to protect (the lab runtime,
/// whose standard error is its log file).
pub fn init_stderr() {
    let filter = EnvFilter::try_from_env(LOG_ENV)
        .unwrap_or_else(|_| EnvFilter::new("warn,irf=info,irf_engine=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
