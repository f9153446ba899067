//! Named filters kept between runs: `filters.toml` beside the configuration, a table of
//! names and filter texts that `:save NAME` writes and `:load NAME` applies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file's shape: `[filters]` and one `name = "filter text"` per filter.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FiltersFile {
    #[serde(default)]
    filters: BTreeMap<String, String>,
}

/// Why the saved filters could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SavedFiltersError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a filters file ({message}): fix it, or remove it to start again")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the saved filters live: `filters.toml` in irf's configuration directory.
pub fn path() -> Option<PathBuf> {
    irf_engine::config::Config::path()
        .ok()?
        .parent()
        .map(|dir| dir.join("filters.toml"))
}

/// The saved filters at `path`; none when the file does not exist.
pub fn load(path: &Path) -> Result<BTreeMap<String, String>, SavedFiltersError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(SavedFiltersError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    toml::from_str::<FiltersFile>(&text)
        .map(|file| file.filters)
        .map_err(|err| SavedFiltersError::Parse {
            path: path.to_owned(),
            message: err.to_string(),
        })
}

/// Saves `text` as the filter `name` at `path`, keeping the others; written to a new file
/// and renamed into place, so that a failure leaves the old file whole.
pub fn save(path: &Path, name: &str, text: &str) -> Result<(), SavedFiltersError> {
    let mut filters = load(path)?;
    filters.insert(name.to_owned(), text.to_owned());
    let body = toml::to_string_pretty(&FiltersFile { filters }).map_err(|err| {
        SavedFiltersError::Parse {
            path: path.to_owned(),
            message: err.to_string(),
        }
    })?;
    let write = |source| SavedFiltersError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(write)?;
    }
    let partial = path.with_extension("toml.partial");
    std::fs::write(&partial, body).map_err(write)?;
    std::fs::rename(&partial, path).map_err(write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saving_keeps_the_other_filters_and_a_broken_file_is_named() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("irf").join("filters.toml");
        assert!(load(&path).expect("no file yet").is_empty());
        save(&path, "prod", "tag:Environment=prod").expect("saved");
        save(&path, "web", "tag:Role=web !state:stopped").expect("saved");
        save(&path, "prod", "tag:Environment=production").expect("replaced");
        let filters = load(&path).expect("read back");
        assert_eq!(filters.len(), 2);
        assert_eq!(filters["prod"], "tag:Environment=production");
        assert_eq!(filters["web"], "tag:Role=web !state:stopped");
        std::fs::write(&path, "filters = 3").expect("break it");
        let err = load(&path).expect_err("refused").to_string();
        assert!(
            err.contains("filters.toml") && err.contains("remove it"),
            "{err}"
        );
        assert!(
            save(&path, "x", "y").is_err(),
            "a broken file is not overwritten"
        );
    }
}
