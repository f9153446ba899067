//! The irf workstation and command line as a library: the binary is a thin `main`, and
//! benchmarks drive the same code.

pub mod acquire;
pub mod cli;
pub mod commands;
pub mod filter;
pub mod keymap;
pub mod logging;
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
