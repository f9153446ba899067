//! Installing the pinned lab emulator into a virtual environment under the user's cache.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::common::{LabError, NODE_ENV, PYTHON_ENV, VENV_ROOT_ENV, last_lines};

/// The emulator's pinned requirements, embedded so the binary installs them anywhere.
pub const REQUIREMENTS: &str = include_str!("../emulator/requirements.txt");
/// The launcher that adds the lab's stand-ins to the emulator.
pub const LAUNCHER: &str = include_str!("../emulator/lab_emulator.py");
/// The launcher's file name inside the virtual environment.
pub const LAUNCHER_FILE: &str = "irf_lab_emulator.py";
/// The files the launcher runs with, by their path inside the virtual environment: its
/// modules (authorization, template deployment), the operation table, and the policy
/// evaluator with its pinned Node.js packages.
pub const LAB_FILES: &[(&str, &str)] = &[
    (LAUNCHER_FILE, LAUNCHER),
    ("lab_authz.py", include_str!("../emulator/lab_authz.py")),
    (
        "lab_ec2_connections.py",
        include_str!("../emulator/lab_ec2_connections.py"),
    ),
    (
        "lab_s3_fidelity.py",
        include_str!("../emulator/lab_s3_fidelity.py"),
    ),
    (
        "lab_templates.py",
        include_str!("../emulator/lab_templates.py"),
    ),
    (
        "authorization.json",
        include_str!("../emulator/authorization.json"),
    ),
    (
        "authorizer/authorize.js",
        include_str!("../emulator/authorizer/authorize.js"),
    ),
    (
        "authorizer/package.json",
        include_str!("../emulator/authorizer/package.json"),
    ),
    (
        "authorizer/package-lock.json",
        include_str!("../emulator/authorizer/package-lock.json"),
    ),
];
/// The evaluator's entry point inside the virtual environment.
pub const EVALUATOR_FILE: &str = "authorizer/authorize.js";
/// The oldest Node.js the evaluator's packages support.
const MIN_NODE: u32 = 18;
/// Written into the evaluator's directory once its packages are installed; its content is
/// the hash of the lock file they were installed from.
const NODE_MARKER: &str = ".irf-installed";
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

    /// The policy evaluator's entry point.
    pub fn evaluator(&self) -> PathBuf {
        self.venv.join(EVALUATOR_FILE)
    }

    /// Writes the launcher and the files it runs with next to the interpreter, installs the
    /// evaluator's pinned packages when their lock file changed, and returns the launcher's
    /// path.
    ///
    /// Labs start concurrently (parallel tests, a second terminal): each file is replaced by
    /// an atomic rename, never rewritten in place, so no emulator ever reads half of one, and
    /// the package install runs under the environment's lock.
    pub fn launcher(&self) -> Result<PathBuf, LabError> {
        for (name, content) in LAB_FILES {
            write_if_changed(&self.venv.join(name), content)?;
        }
        self.install_evaluator()?;
        Ok(self.venv.join(LAUNCHER_FILE))
    }

    fn install_evaluator(&self) -> Result<(), LabError> {
        let dir = self.venv.join("authorizer");
        let wanted = lock_hash();
        let installed =
            || std::fs::read_to_string(dir.join(NODE_MARKER)).is_ok_and(|m| m.trim() == wanted);
        if installed() {
            return Ok(());
        }
        let lock = lock_file(&self.venv.with_extension("evaluator.lock"))?;
        if installed() {
            return Ok(());
        }
        let npm = npm_of(&node())?;
        run(
            Command::new(&npm)
                .args([
                    "ci",
                    "--omit=dev",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                ])
                .current_dir(&dir),
            "install the policy evaluator with npm ci (is the npm registry reachable?)",
        )?;
        std::fs::write(dir.join(NODE_MARKER), &wanted).map_err(|source| LabError::Io {
            what: "mark the policy evaluator installed",
            path: dir.clone(),
            source,
        })?;
        drop(lock);
        Ok(())
    }
}

/// Writes `content` to `path` unless it already holds it, through a rename.
fn write_if_changed(path: &Path, content: &str) -> Result<(), LabError> {
    if std::fs::read(path).is_ok_and(|current| current == content.as_bytes()) {
        return Ok(());
    }
    let failed = |source| LabError::Io {
        what: "write the lab emulator's files",
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    let staged = path.with_extension(format!(
        "{}.{}.tmp",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    ));
    std::fs::write(&staged, content).map_err(failed)?;
    std::fs::rename(&staged, path).map_err(|source| {
        let _ = std::fs::remove_file(&staged);
        failed(source)
    })
}

/// Opens and locks `path` (created when missing); the lock holds until the file is dropped.
fn lock_file(path: &Path) -> Result<File, LabError> {
    let file = File::create(path).map_err(|source| LabError::Io {
        what: "create the install lock",
        path: path.to_owned(),
        source,
    })?;
    file.lock().map_err(|source| LabError::Io {
        what: "lock",
        path: path.to_owned(),
        source,
    })?;
    Ok(file)
}

fn lock_hash() -> String {
    let mut digest = Sha256::new();
    for (name, content) in LAB_FILES {
        if name.ends_with("package.json") || name.ends_with("package-lock.json") {
            digest.update(content.as_bytes());
        }
    }
    irf_engine::hex(&digest.finalize()[..6])
}

/// The Node.js that runs the policy evaluator: `IRF_NODE`, else `node` on the PATH.
pub fn node() -> String {
    std::env::var(NODE_ENV)
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "node".to_owned())
}

/// Checks that `node` is Node.js 18 or newer and returns the npm beside it.
fn npm_of(node: &str) -> Result<PathBuf, LabError> {
    let problem = |problem: String| LabError::Node {
        node: node.to_owned(),
        problem,
    };
    let output = Command::new(node)
        .args([
            "-e",
            "process.stdout.write(process.versions.node + '\\n' + process.execPath)",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| problem(format!("it cannot be run ({err})")))?;
    if !output.status.success() {
        return Err(problem("it does not run JavaScript".to_owned()));
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default().to_owned();
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if major.is_none_or(|m| m < MIN_NODE) {
        return Err(problem(format!(
            "it is Node.js {version}; the lab's policy evaluator needs {MIN_NODE} or newer"
        )));
    }
    let exec = PathBuf::from(lines.next().unwrap_or_default());
    let beside = exec.with_file_name("npm");
    Ok(if beside.exists() {
        beside
    } else {
        PathBuf::from("npm")
    })
}

fn requirements_hash() -> String {
    let digest = Sha256::digest(REQUIREMENTS.as_bytes());
    irf_engine::hex(&digest[..6])
}

/// The environment's directory: one per set of pinned requirements.
pub fn venv_dir() -> Result<PathBuf, LabError> {
    let root = match std::env::var_os(VENV_ROOT_ENV).filter(|v| !v.is_empty()) {
        Some(root) => PathBuf::from(root),
        None => irf_engine::paths::cache_dir()
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
    let _lock = lock_file(&lock_path)?;
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
        detail: last_lines(&String::from_utf8_lossy(&output.stderr), 15),
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
    fn a_missing_node_is_named() {
        let err = npm_of("/nonexistent/node").expect_err("cannot run");
        let text = err.to_string();
        assert!(text.contains("'/nonexistent/node'"), "{text}");
        assert!(text.contains(NODE_ENV), "{text}");
    }

    #[test]
    fn the_evaluator_is_pinned_by_its_lock_file() {
        let lock = LAB_FILES
            .iter()
            .find(|(name, _)| name.ends_with("package-lock.json"))
            .expect("the lock file is embedded");
        let parsed: serde_json::Value =
            serde_json::from_str(lock.1).expect("the lock file is JSON");
        let simulate = &parsed["packages"]["node_modules/@cloud-copilot/iam-simulate"];
        assert_eq!(
            simulate["version"], "0.1.173",
            "the evaluator's version is pinned"
        );
        assert!(
            simulate["integrity"]
                .as_str()
                .is_some_and(|i| i.starts_with("sha512-")),
            "npm ci checks the package's integrity"
        );
    }

    #[test]
    fn a_non_python_is_rejected() {
        // `false` runs but fails, as a broken interpreter would.
        let err = check_python("false").expect_err("not python");
        assert!(err.to_string().contains("'false'"), "{err}");
    }
}
