//! Installing the pinned lab emulator into a virtual environment under the user's cache.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use super::LabError;

/// The emulator's pinned requirements, embedded so the binary installs them anywhere.
pub const REQUIREMENTS: &str = include_str!("../../../tests/lab/requirements.txt");
/// The launcher that adds the lab's stand-ins to the emulator.
pub const LAUNCHER: &str = include_str!("../../../tests/lab/lab_emulator.py");
/// The launcher's file name inside the virtual environment.
pub const LAUNCHER_FILE: &str = "irf_lab_emulator.py";
/// Environment variable naming the Python interpreter used to create the environment.
pub const PYTHON_ENV: &str = "IRF_PYTHON";
/// Environment variable naming the directory that holds the environments (tests share one).
pub const VENV_ROOT_ENV: &str = "IRF_LAB_VENV_ROOT";
/// The oldest Python the pinned emulator supports.
const MIN_PYTHON: (u32, u32) = (3, 9);
/// Written last into a complete environment; its content is the requirements' hash.
const MARKER: &str = ".irf-installed";

/// A ready emulator environment.
#[derive(Debug, Clone)]
pub struct EmulatorInstall {
    pub venv: PathBuf,
}

impl EmulatorInstall {
    /// The environment's Python interpreter.
    pub fn python(&self) -> PathBuf {
        self.venv.join("bin").join("python")
    }

    /// The AWS CLI installed beside the emulator.
    pub fn aws_cli(&self) -> PathBuf {
        self.venv.join("bin").join("aws")
    }

    /// cfn-lint installed beside the emulator.
    pub fn cfn_lint(&self) -> PathBuf {
        self.venv.join("bin").join("cfn-lint")
    }

    /// Writes the launcher next to the interpreter and returns its path.
    ///
    /// Labs start concurrently (parallel tests, a second terminal): the file is replaced by
    /// an atomic rename, never rewritten in place, so no emulator ever reads half of it.
    pub fn launcher(&self) -> Result<PathBuf, LabError> {
        let path = self.venv.join(LAUNCHER_FILE);
        if std::fs::read(&path).is_ok_and(|current| current == LAUNCHER.as_bytes()) {
            return Ok(path);
        }
        let staged = self.venv.join(format!(
            "{LAUNCHER_FILE}.{}.{}.tmp",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        let failed = |source| LabError::Io {
            what: "write the emulator launcher",
            path: path.clone(),
            source,
        };
        std::fs::write(&staged, LAUNCHER).map_err(failed)?;
        std::fs::rename(&staged, &path).map_err(|source| {
            let _ = std::fs::remove_file(&staged);
            failed(source)
        })?;
        Ok(path)
    }
}

fn requirements_hash() -> String {
    let digest = Sha256::digest(REQUIREMENTS.as_bytes());
    crate::hex(&digest[..6])
}

/// The environment's directory: one per set of pinned requirements.
pub fn venv_dir() -> Result<PathBuf, LabError> {
    let root = match std::env::var_os(VENV_ROOT_ENV).filter(|v| !v.is_empty()) {
        Some(root) => PathBuf::from(root),
        None => crate::paths::cache_dir()
            .ok_or(LabError::NoHomeDirs)?
            .join("lab"),
    };
    Ok(root.join(format!("venv-{}", requirements_hash())))
}

/// The environment if it is complete, without installing anything.
pub fn installed() -> Result<Option<EmulatorInstall>, LabError> {
    let venv = venv_dir()?;
    Ok(is_complete(&venv).then_some(EmulatorInstall { venv }))
}

fn is_complete(venv: &Path) -> bool {
    std::fs::read_to_string(venv.join(MARKER)).is_ok_and(|m| m.trim() == requirements_hash())
        && venv.join("bin").join("python").exists()
}

/// Makes sure the pinned emulator is installed, installing it when it is not; `progress`
/// hears what is happening (installation takes a minute the first time).
pub fn ensure_installed(progress: &dyn Fn(&str)) -> Result<EmulatorInstall, LabError> {
    let venv = venv_dir()?;
    if is_complete(&venv) {
        return Ok(EmulatorInstall { venv });
    }
    let parent = venv.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|source| LabError::Io {
        what: "create the lab cache directory",
        path: parent.to_owned(),
        source,
    })?;
    // Several processes (parallel tests, two terminals) may arrive here at once: one installs,
    // the others wait for it and then find the environment complete.
    let lock_path = parent.join(format!(
        "{}.lock",
        venv.file_name().and_then(|n| n.to_str()).unwrap_or("venv")
    ));
    let lock = File::create(&lock_path).map_err(|source| LabError::Io {
        what: "create the install lock",
        path: lock_path.clone(),
        source,
    })?;
    lock.lock().map_err(|source| LabError::Io {
        what: "lock",
        path: lock_path.clone(),
        source,
    })?;
    if is_complete(&venv) {
        return Ok(EmulatorInstall { venv });
    }

    let python = std::env::var(PYTHON_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_owned());
    check_python(&python)?;
    if venv.exists() {
        // A half-built environment from an interrupted install: start over.
        std::fs::remove_dir_all(&venv).map_err(|source| LabError::Io {
            what: "remove the incomplete environment",
            path: venv.clone(),
            source,
        })?;
    }
    progress(&format!(
        "creating the lab environment in {}",
        venv.display()
    ));
    run(
        Command::new(&python).arg("-m").arg("venv").arg(&venv),
        "create the virtual environment",
    )?;
    let requirements = venv.join("requirements.txt");
    std::fs::write(&requirements, REQUIREMENTS).map_err(|source| LabError::Io {
        what: "write the requirements",
        path: requirements.clone(),
        source,
    })?;
    progress(
        "installing the pinned lab emulator (moto server) with pip; the first time takes a minute",
    );
    let install = EmulatorInstall { venv: venv.clone() };
    run(
        Command::new(install.python())
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
                "-r",
            ])
            .arg(&requirements),
        "install the emulator with pip (is PyPI reachable?)",
    )?;
    std::fs::write(venv.join(MARKER), requirements_hash()).map_err(|source| LabError::Io {
        what: "mark the environment complete",
        path: venv.clone(),
        source,
    })?;
    Ok(install)
}

fn check_python(python: &str) -> Result<(), LabError> {
    let output = Command::new(python)
        .args([
            "-c",
            "import sys, venv; print('%d.%d' % sys.version_info[:2])",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| LabError::Python {
            python: python.to_owned(),
            problem: format!("it cannot be run ({err})"),
        })?;
    if !output.status.success() {
        return Err(LabError::Python {
            python: python.to_owned(),
            problem: format!(
                "it has no working 'venv' module ({})",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let parsed = version
        .split_once('.')
        .and_then(|(major, minor)| Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?)));
    match parsed {
        Some(found) if found >= MIN_PYTHON => Ok(()),
        _ => Err(LabError::Python {
            python: python.to_owned(),
            problem: format!(
                "it is Python {version}; the lab needs {}.{} or newer",
                MIN_PYTHON.0, MIN_PYTHON.1
            ),
        }),
    }
}

fn run(command: &mut Command, what: &'static str) -> Result<(), LabError> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|err| LabError::Install {
            what,
            detail: err.to_string(),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(LabError::Install {
        what,
        detail: super::last_lines(&String::from_utf8_lossy(&output.stderr), 15),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_pin_every_package() {
        let pins: Vec<&str> = REQUIREMENTS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert!(
            pins.iter().any(|l| l.starts_with("moto==")),
            "moto is pinned"
        );
        for pin in &pins {
            assert!(pin.contains("=="), "'{pin}' is not pinned to one version");
        }
    }

    #[test]
    fn a_missing_python_is_named() {
        let err = check_python("/nonexistent/python3.99").expect_err("cannot run");
        let text = err.to_string();
        assert!(text.contains("'/nonexistent/python3.99'"), "{text}");
        assert!(text.contains(PYTHON_ENV), "{text}");
    }

    #[test]
    fn a_non_python_is_rejected() {
        // `false` runs but fails, as a broken interpreter would.
        let err = check_python("false").expect_err("not python");
        assert!(err.to_string().contains("'false'"), "{err}");
    }
}
