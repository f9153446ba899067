//! The emulator process: started on a free loopback port, waited for, stopped by its own pid.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::common::LabError;
use crate::control::Control;
use crate::install::{EmulatorInstall, LAUNCHER_FILE};

/// How long the emulator may take to answer after it starts (it needs about a second).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopped emulator may take to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How to start the emulator.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// A fixed port; `None` picks a free one.
    pub port: Option<u16>,
    /// A fixed delay added in front of every AWS call, for benchmarks.
    pub latency_ms: u32,
    /// Keep the emulator alive only as long as this process: it exits when our end of
    /// its standard input closes. Off for a detached lab.
    pub tie_to_this_process: bool,
    /// Where the emulator's output goes.
    pub log_path: PathBuf,
    /// How the emulator authorizes requests.
    pub authorization: Authorization,
    /// Where it records the requests it refuses (or, auditing, would refuse).
    pub denial_log: PathBuf,
    /// Where the data of its S3 objects lives (unlinked files, sparse): on disk, so that a
    /// volume image costs no memory.
    pub object_dir: PathBuf,
}

/// How the lab authorizes the requests it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Authorization {
    /// Refuse what AWS would refuse, from the templates' policies: the lab's default.
    #[default]
    Enforce,
    /// Answer everything, record what enforcing would refuse.
    Audit,
    /// Evaluate nothing (for diagnosis only).
    Off,
}

impl Authorization {
    /// The mode's name, as `--authorization` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Audit => "audit",
            Self::Off => "off",
        }
    }
}

impl std::str::FromStr for Authorization {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "enforce" => Ok(Self::Enforce),
            "audit" => Ok(Self::Audit),
            "off" => Ok(Self::Off),
            other => Err(format!(
                "'{other}' is not an authorization mode: use enforce (the default), audit or off"
            )),
        }
    }
}

/// A started emulator.
#[derive(Debug)]
pub struct RunningEmulator {
    pub port: u16,
    pub pid: u32,
    /// Held open while the emulator is tied to this process.
    lifeline: Option<ChildStdin>,
}

impl RunningEmulator {
    /// The endpoint every AWS client uses.
    pub fn endpoint(&self) -> String {
        endpoint_for(self.port)
    }

    /// Stops the emulator now.
    pub fn stop(mut self) {
        self.lifeline.take();
        stop_pid(self.pid, None);
    }
}

/// The loopback endpoint of an emulator on `port`.
pub fn endpoint_for(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn free_port() -> Result<u16, LabError> {
    let listener =
        TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).map_err(|err| {
            LabError::Start {
                message: format!("no free loopback port: {err}"),
                log: None,
            }
        })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|err| LabError::Start {
            message: err.to_string(),
            log: None,
        })
}

fn port_is_taken(port: u16) -> bool {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_err()
}

/// Starts the emulator and waits until it answers; on any failure nothing is left running.
pub async fn start(
    install: &EmulatorInstall,
    options: &EmulatorOptions,
) -> Result<RunningEmulator, LabError> {
    let port = match options.port {
        Some(port) if port_is_taken(port) => return Err(LabError::PortInUse(port)),
        Some(port) => port,
        None => free_port()?,
    };
    let launcher = install.launcher()?;
    if let Some(dir) = options.log_path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| LabError::Io {
            what: "create the lab directory",
            path: dir.to_owned(),
            source,
        })?;
    }
    let log = File::create(&options.log_path).map_err(|source| LabError::Io {
        what: "create the emulator log",
        path: options.log_path.clone(),
        source,
    })?;
    let log_err = log.try_clone().map_err(|source| LabError::Io {
        what: "open the emulator log",
        path: options.log_path.clone(),
        source,
    })?;
    let mut command = Command::new(install.python());
    command
        .arg(&launcher)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--latency-ms", &options.latency_ms.to_string()])
        .args(["--authorization", options.authorization.as_str()])
        .arg("--node")
        .arg(crate::install::node())
        .arg("--evaluator")
        .arg(install.evaluator())
        .arg("--denial-log")
        .arg(&options.denial_log)
        .arg("--object-dir")
        .arg(&options.object_dir)
        // Account selection must come from credentials; this variable would override it
        // for every request.
        .env_remove("MOTO_ACCOUNT_ID")
        // The lab registers its own images; the 1,300 built-in ones cost a second per start.
        .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        // Its own process group: a Ctrl-C in the operator's terminal does not reach it, and
        // stopping it stops everything it started.
        .process_group(0);
    if options.tie_to_this_process {
        command.arg("--watch-stdin").stdin(Stdio::piped());
    } else {
        command.stdin(Stdio::null());
    }
    let mut child = command.spawn().map_err(|err| LabError::Start {
        message: format!("cannot run '{}': {err}", install.python().display()),
        log: None,
    })?;
    let lifeline = child.stdin.take();
    let control = Control::new(&endpoint_for(port));
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = log_tail(&options.log_path);
            if log.contains("Address already in use") {
                return Err(LabError::PortInUse(port));
            }
            return Err(LabError::Start {
                message: format!("the emulator exited at start ({status})"),
                log: Some(log),
            });
        }
        if control.is_ready().await {
            break;
        }
        if started.elapsed() > START_TIMEOUT {
            kill_child(&mut child);
            return Err(LabError::Start {
                message: format!(
                    "the emulator did not answer on port {port} within {} s",
                    START_TIMEOUT.as_secs()
                ),
                log: Some(log_tail(&options.log_path)),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(RunningEmulator {
        port,
        pid: child.id(),
        lifeline,
    })
}

fn kill_child(child: &mut Child) {
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
}

/// The last lines of the emulator's log, for error messages.
pub fn log_tail(path: &Path) -> String {
    crate::common::last_lines(&std::fs::read_to_string(path).unwrap_or_default(), 12)
}

/// True when `pid` is alive and is an irf lab emulator (not some process that reused the pid).
pub fn is_our_emulator(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| String::from_utf8_lossy(&cmdline).contains(LAUNCHER_FILE))
        .unwrap_or(false)
        && !is_zombie(pid)
}

pub(crate) fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Stops the emulator with pid `pid` and its process group: TERM, then KILL after a grace
/// period. Does nothing when the pid is not an irf emulator. Returns whether it stopped one.
pub fn stop_pid(pid: u32, grace: Option<Duration>) -> bool {
    stop_group_if(pid, grace, is_our_emulator)
}

/// Stops the process group led by `pid` (TERM, then KILL after the grace period), but only
/// while `ours` recognises the process: a recycled pid is never signalled.
pub(crate) fn stop_group_if(pid: u32, grace: Option<Duration>, ours: fn(u32) -> bool) -> bool {
    if !ours(pid) {
        return false;
    }
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    let group = Pid::from_raw(raw);
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + grace.unwrap_or(STOP_GRACE);
    while Instant::now() < deadline {
        if !ours(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = killpg(group, Signal::SIGKILL);
    let _ = kill(group, Signal::SIGKILL);
    true
}
