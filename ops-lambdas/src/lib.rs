//! Runtime plumbing shared by irf's Lambda binaries and the long-running acquisition worker.

use tracing_subscriber::EnvFilter;

/// Environment variable with the log filter of the runtimes (`RUST_LOG` syntax).
pub const LOG_ENV: &str = "IRF_LOG";

/// Logs to standard output, where Lambda and the worker's container send lines to
/// CloudWatch Logs; no ANSI colours, which CloudWatch shows as garbage.
pub fn init_logging() {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(true)
        .try_init();
}
