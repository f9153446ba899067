//! The per-user directories irf reads and writes: configuration, cache, state and logs.

use std::path::PathBuf;

use directories::ProjectDirs;

fn project() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "irf")
}

/// Where `config.toml` lives by default (`~/.config/irf` on Linux).
pub fn config_dir() -> Option<PathBuf> {
    project().map(|p| p.config_dir().to_owned())
}

/// Where large re-creatable things live: the lab emulator's virtual environment.
pub fn cache_dir() -> Option<PathBuf> {
    project().map(|p| p.cache_dir().to_owned())
}

/// Where irf keeps state between runs: the lab's state file, logs.
pub fn state_dir() -> Option<PathBuf> {
    project().map(|p| {
        p.state_dir()
            .unwrap_or_else(|| p.data_local_dir())
            .to_owned()
    })
}
