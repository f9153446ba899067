//! The irf workstation and command line as a library: the binary is a thin `main`, and
//! benchmarks drive the same code.

/// Writes a line to standard output, returning the error (a closed pipe included) instead
/// of panicking as `println!` does.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// Writes text to standard output as it is.
macro_rules! out_raw {
    ($text:expr) => {{
        use std::io::Write as _;
        std::io::stdout().lock().write_all(($text).as_bytes())?
    }};
}

pub mod acquire;
pub mod analysis;
pub mod cli;
pub mod commands;
pub mod contain;
pub mod filter;
pub mod keymap;
pub mod logging;
pub mod saved_filters;
pub mod text;
pub mod theme;
pub mod workstation;

/// Where the operator's own themes live: `themes/` beside the configuration file.
pub fn theme_dir() -> Option<std::path::PathBuf> {
    irf_engine::config::Config::path()
        .ok()?
        .parent()
        .map(|dir| dir.join("themes"))
}
