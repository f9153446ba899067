//! What every part of the lab shares: its fixed names (region, keys, files, environment
//! variables, the templates' roles), its error, the lab's directory, how to reach an emulator
//! endpoint, and the credentials the lab hands out.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use irf_engine::aws::{ConnectOptions, StaticCredentials};

/// The lab's home region: Security Hub aggregation, Organizations, the workflow.
pub const LAB_REGION: &str = "us-east-1";
/// The emulator accepts any keys; unknown keys act in the Security account.
pub const LAB_ACCESS_KEY: &str = "testing";
/// See [`LAB_ACCESS_KEY`].
pub const LAB_SECRET_KEY: &str = "testing";
/// The file in the lab's directory where the emulator records each request it refuses.
pub const DENIAL_LOG: &str = "denials.jsonl";

/// Environment variable naming the lab's directory (state file, config, log).
pub const LAB_DIR_ENV: &str = "IRF_LAB_DIR";

/// Environment variable naming the Node.js that runs the policy evaluator.
pub const NODE_ENV: &str = "IRF_NODE";
/// Environment variable naming the Python interpreter used to create the environment.
pub const PYTHON_ENV: &str = "IRF_PYTHON";
/// Environment variable naming the directory that holds the environments (tests share one).
pub const VENV_ROOT_ENV: &str = "IRF_LAB_VENV_ROOT";

/// Errors of the lab, each saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("no home directory could be found: set {LAB_DIR_ENV} and {venv} to writable directories", venv = VENV_ROOT_ENV)]
    NoHomeDirs,
    #[error("cannot {what} at '{path}': {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the Python interpreter '{python}' cannot host the lab: {problem}\n  install Python 3.9 or newer with its venv module (Debian: apt-get install python3 python3-venv), or point {env} at one", env = PYTHON_ENV)]
    Python { python: String, problem: String },
    #[error("the Node.js '{node}' cannot run the lab's policy evaluator: {problem}\n  install Node.js 18 or newer with npm (Debian: apt-get install nodejs npm), or point {env} at one", env = NODE_ENV)]
    Node { node: String, problem: String },
    #[error(
        "cannot {what}: {detail}\n  check the network access to PyPI and the npm registry, then run 'irf lab up' again"
    )]
    Install { what: &'static str, detail: String },
    #[error(
        "port {0} on 127.0.0.1 is in use: stop what uses it, or leave out --port to let irf pick a free one"
    )]
    PortInUse(u16),
    #[error("the lab emulator did not start: {message}{}", log.as_deref().map(|l| format!("\n  last lines of its log:\n{l}")).unwrap_or_default())]
    Start {
        message: String,
        log: Option<String>,
    },
    #[error("the lab emulator's control call '{uri}' failed: {message}")]
    Control { uri: String, message: String },
    #[error("seeding the lab failed at {step}: {message}")]
    Seed { step: &'static str, message: String },
    #[error("bad lab seed option: {0}")]
    BadSeedOptions(String),
    #[error(
        "a lab is already running at {endpoint} (pid {pid}): use it ('eval \"$(irf lab env)\"'), or stop it with 'irf lab down'"
    )]
    AlreadyRunning { endpoint: String, pid: u32 },
    #[error(
        "no lab is running: start one with 'irf lab up --detach' (or 'irf lab' for the workstation on it)"
    )]
    NotRunning,
    #[error(
        "the lab state file '{path}' is damaged ({message}): stop any leftover emulator with 'irf lab down --force' and start again"
    )]
    BadState { path: PathBuf, message: String },
    #[error(
        "the lab's state names no operator session (it was started by an older irf): stop it with 'irf lab down' and start it again"
    )]
    NoOperator,
    #[error("{0}")]
    Config(#[from] irf_engine::config::ConfigError),
}

/// The last `count` lines of `text`, for error messages that quote a tool's output.
pub(crate) fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().rev().take(count).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// The lab's directory: `$IRF_LAB_DIR`, else `lab` in the user's state directory.
pub fn lab_dir() -> Result<PathBuf, LabError> {
    match std::env::var_os(LAB_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => Ok(irf_engine::paths::state_dir()
            .ok_or(LabError::NoHomeDirs)?
            .join("lab")),
    }
}

/// How irf connects to a lab at `endpoint`: only the endpoint and the credentials differ
/// from AWS.
pub fn connect_options_for(endpoint: &str) -> ConnectOptions {
    ConnectOptions {
        profile: None,
        region: Some(LAB_REGION.to_owned()),
        endpoint_url: Some(endpoint.to_owned()),
        static_credentials: Some(StaticCredentials {
            access_key_id: LAB_ACCESS_KEY.to_owned(),
            secret_access_key: LAB_SECRET_KEY.to_owned(),
            session_token: None,
        }),
    }
}

/// Temporary credentials the lab handed out: an operator's session, or those an AWS
/// service gives the role it runs as.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabCredentials {
    /// The session's ARN (`arn:aws:sts::<account>:assumed-role/<role>/<session>`).
    pub arn: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

impl std::fmt::Debug for LabCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabCredentials")
            .field("arn", &self.arn)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl LabCredentials {
    /// How irf connects to the lab at `endpoint` as this session.
    pub fn connect_options(&self, endpoint: &str) -> ConnectOptions {
        ConnectOptions {
            static_credentials: Some(StaticCredentials {
                access_key_id: self.access_key_id.clone(),
                secret_access_key: self.secret_access_key.clone(),
                session_token: Some(self.session_token.clone()),
            }),
            ..connect_options_for(endpoint)
        }
    }
}

/// Template 3's worker role, which the lab runtime's worker runs as.
pub const WORKER_ROLE: &str = "irf-worker";
/// Template 3's tag trigger function role, in the Security account.
pub const TRIGGER_ROLE: &str = "irf-trigger";
/// Template 5's role in each member account with which EventBridge forwards the account's tag
/// changes to the Security account's incident bus.
pub const FORWARDER_ROLE: &str = "irf-tag-forwarder";
/// The role Organizations creates in every new account, with administrator rights: the
/// lab's deployer (and a test staging what no irf role may do) reaches accounts through it.
pub const ORG_ACCESS_ROLE: &str = "OrganizationAccountAccessRole";

/// The operator role of template 3, which the lab's operator acts as.
pub const OPERATOR_ROLE: &str = "irf-operator";
/// The operator's session name in the lab.
pub const OPERATOR_SESSION: &str = "responder";
/// How long the operator's session lasts: the role's longest (template 3's MaxSessionDuration).
pub(crate) const OPERATOR_SESSION_SECONDS: i32 = 43_200;
