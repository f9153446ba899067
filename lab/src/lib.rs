//! The lab: a local AWS emulator seeded with a demo Organization, and its lifecycle
//! (install, start, seed, state file, environment exports, reset, stop).
//!
//! Everything lab-specific lives here. The rest of the engine only ever sees an endpoint
//! and credentials, exactly as it would for AWS.

pub mod agent;
pub mod analysis;
pub mod control;
pub mod disks;
pub mod emulator;
pub mod hosts;
pub mod install;
pub mod plane;
pub mod runtime;
pub mod seed;
pub mod templates;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use control::Control;
pub use emulator::Authorization;
use emulator::{EmulatorOptions, RunningEmulator};
use irf_engine::aws::{AwsContext, ConnectOptions, StaticCredentials};
use irf_engine::config::{CONFIG_ENV, Config};
use irf_engine::model::case::now_rfc3339;
use seed::{SeedOptions, SeededLab};

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

/// Errors of the lab, each saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("no home directory could be found: set {LAB_DIR_ENV} and {venv} to writable directories", venv = install::VENV_ROOT_ENV)]
    NoHomeDirs,
    #[error("cannot {what} at '{path}': {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the Python interpreter '{python}' cannot host the lab: {problem}\n  install Python 3.9 or newer with its venv module (Debian: apt-get install python3 python3-venv), or point {env} at one", env = install::PYTHON_ENV)]
    Python { python: String, problem: String },
    #[error("the Node.js '{node}' cannot run the lab's policy evaluator: {problem}\n  install Node.js 18 or newer with npm (Debian: apt-get install nodejs npm), or point {env} at one", env = install::NODE_ENV)]
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
const OPERATOR_SESSION_SECONDS: i32 = 43_200;

/// What the state file records about a running lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    pub endpoint: String,
    pub port: u16,
    pub emulator_pid: u32,
    pub started_at: String,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    pub seeded: SeededLab,
    /// The lab runtime beside the emulator (tag events, step queues, SSM agent).
    #[serde(default)]
    pub runtime_pid: Option<u32>,
    /// The operator's session: template 3's operator role, which irf and the AWS CLI act as.
    #[serde(default)]
    pub operator: Option<LabCredentials>,
    /// The tag events a runtime started on this lab delivers: those after this sequence
    /// number (set by a reset, so that a tag set right after it is not missed); without it,
    /// those after the runtime starts.
    #[serde(default)]
    pub events_after: Option<u64>,
    /// What the lab divides the step function's time limit by (see [`LabOptions`]).
    #[serde(default)]
    pub time_scale: Option<u32>,
}

impl LabState {
    fn file(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// Reads the state file in `dir`, if there is one.
    pub fn load(dir: &Path) -> Result<Option<Self>, LabError> {
        let path = Self::file(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|err| LabError::BadState {
                    path,
                    message: err.to_string(),
                }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LabError::Io {
                what: "read the lab state",
                path,
                source,
            }),
        }
    }

    fn save(&self, dir: &Path) -> Result<(), LabError> {
        let path = Self::file(dir);
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        // Written beside, then renamed: a reader never sees half a file.
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|source| LabError::Io {
                what: "write the lab state",
                path,
                source,
            })
    }

    /// Whether the emulator this state names is still running.
    pub fn is_running(&self) -> bool {
        emulator::is_our_emulator(self.emulator_pid)
    }

    /// How irf connects to this lab as its operator (template 3's operator role).
    pub fn operator_options(&self) -> Result<ConnectOptions, LabError> {
        self.operator
            .as_ref()
            .map(|operator| operator.connect_options(&self.endpoint))
            .ok_or(LabError::NoOperator)
    }

    /// Shell `export` lines that point the AWS CLI, the SDKs and irf at this lab, acting as
    /// its operator.
    pub fn env_exports(&self) -> String {
        let quote = |value: &str| format!("'{}'", value.replace('\'', r"'\''"));
        let (key, secret, token) = match &self.operator {
            Some(operator) => (
                operator.access_key_id.as_str(),
                operator.secret_access_key.as_str(),
                Some(operator.session_token.as_str()),
            ),
            None => (LAB_ACCESS_KEY, LAB_SECRET_KEY, None),
        };
        let mut lines = vec![
            format!("export AWS_ENDPOINT_URL={}", quote(&self.endpoint)),
            format!("export AWS_ACCESS_KEY_ID={}", quote(key)),
            format!("export AWS_SECRET_ACCESS_KEY={}", quote(secret)),
            match token {
                Some(token) => format!("export AWS_SESSION_TOKEN={}", quote(token)),
                None => "unset AWS_SESSION_TOKEN".to_owned(),
            },
            format!("export AWS_REGION={LAB_REGION}"),
            format!("export AWS_DEFAULT_REGION={LAB_REGION}"),
            format!(
                "export {CONFIG_ENV}={}",
                quote(&self.config_path.display().to_string())
            ),
            "unset AWS_PROFILE AWS_SECURITY_TOKEN".to_owned(),
        ];
        lines.push(format!(
            "# irf lab at {} (Security account {}, Forensics {}, {} member accounts)",
            self.endpoint,
            self.seeded.security,
            self.seeded.forensics,
            self.seeded.members.len()
        ));
        lines.join("\n") + "\n"
    }

    /// The context irf uses against this lab, as its operator, with the lab's configuration.
    pub async fn connect(&self) -> Result<Arc<AwsContext>, LabError> {
        let config = Config::load_from(&self.config_path)?.config;
        Ok(Arc::new(
            AwsContext::connect(Arc::new(config), &self.operator_options()?).await,
        ))
    }
}

/// How to bring a lab up.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// The lab's directory (state file, config, log).
    pub dir: PathBuf,
    pub port: Option<u16>,
    pub latency_ms: u32,
    /// The emulator lives only as long as this process (tests, `irf lab` without --detach).
    pub tie_to_this_process: bool,
    pub seed: SeedOptions,
    /// The `irf` binary that runs the lab runtime (and whose `memcap` the lab's hosts
    /// run). Without it the lab has no runtime: workflows start but nothing runs them.
    pub runtime_exe: Option<PathBuf>,
    /// How the emulator authorizes requests (enforcing, by default).
    pub authorization: Authorization,
    /// The lab runtime runs the steps queue in place of template 3's step function and
    /// stops a step at the function's time limit divided by this (1: AWS's 900 s), so that
    /// a test can show what a function could not finish without waiting for it.
    pub time_scale: u32,
}

/// A lab this process brought up.
#[derive(Debug)]
pub struct Lab {
    pub state: LabState,
    emulator: Option<RunningEmulator>,
    runtime: Option<runtime::RunningRuntime>,
}

impl Lab {
    /// Installs the emulator if needed, starts it, seeds it and records its state.
    /// On failure, nothing is left running.
    pub async fn up(
        options: &LabOptions,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Self, LabError> {
        options.seed.validate()?;
        if let Some(existing) = LabState::load(&options.dir)?
            && existing.is_running()
        {
            return Err(LabError::AlreadyRunning {
                endpoint: existing.endpoint,
                pid: existing.emulator_pid,
            });
        }
        std::fs::create_dir_all(&options.dir).map_err(|source| LabError::Io {
            what: "create the lab directory",
            path: options.dir.clone(),
            source,
        })?;
        let install = install::ensure_installed(progress)?;
        progress("starting the emulator");
        let log_path = options.dir.join("emulator.log");
        let denial_log = options.dir.join(DENIAL_LOG);
        // Each lab's refusals are its own.
        let _ = std::fs::remove_file(&denial_log);
        let emulator = emulator::start(
            &install,
            &EmulatorOptions {
                port: options.port,
                latency_ms: options.latency_ms,
                tie_to_this_process: options.tie_to_this_process,
                log_path: log_path.clone(),
                authorization: options.authorization,
                denial_log,
                object_dir: options.dir.join("objects"),
            },
        )
        .await?;
        let endpoint = emulator.endpoint();
        let (seeded, operator) = match prepare_and_seed(
            &options.dir,
            &endpoint,
            &options.seed,
            options.runtime_exe.as_deref(),
            progress,
        )
        .await
        {
            Ok(seeded) => seeded,
            Err(err) => {
                emulator.stop();
                return Err(err);
            }
        };
        let config_path = options.dir.join("config.toml");
        let mut state = LabState {
            endpoint,
            port: emulator.port,
            emulator_pid: emulator.pid,
            started_at: now_rfc3339(),
            config_path: config_path.clone(),
            log_path,
            seeded,
            runtime_pid: None,
            operator: Some(operator),
            events_after: None,
            time_scale: Some(options.time_scale.max(1)),
        };
        let recorded = seed::lab_config(&state.seeded)
            .write_to(&config_path)
            .map_err(LabError::from)
            .and_then(|()| state.save(&options.dir));
        if let Err(err) = recorded {
            emulator.stop();
            return Err(err);
        }
        let runtime = match &options.runtime_exe {
            Some(exe) => {
                progress("starting the lab runtime");
                let started = runtime::spawn(
                    exe,
                    &options.dir,
                    &options.dir.join("runtime.log"),
                    options.tie_to_this_process,
                )
                .and_then(|running| {
                    state.runtime_pid = Some(running.pid);
                    state.save(&options.dir).map(|()| running)
                });
                match started {
                    Ok(running) => Some(running),
                    Err(err) => {
                        emulator.stop();
                        return Err(err);
                    }
                }
            }
            None => None,
        };
        Ok(Self {
            state,
            emulator: Some(emulator),
            runtime,
        })
    }

    /// Leaves the emulator running after this process ends (`irf lab up --detach`).
    pub fn detach(mut self) -> LabState {
        self.emulator.take();
        if let Some(runtime) = self.runtime.take() {
            runtime.detach();
        }
        self.state.clone()
    }

    /// Stops the emulator and removes the state file.
    pub fn down(mut self, dir: &Path) {
        if let Some(runtime) = self.runtime.take() {
            runtime.stop();
        }
        if let Some(emulator) = self.emulator.take() {
            emulator.stop();
        }
        remove_lab_files(dir);
    }
}

/// Removes what a lab leaves in its directory: the state file and the disk images. The
/// configuration and the emulator's log stay for a post-mortem.
fn remove_lab_files(dir: &Path) {
    let _ = std::fs::remove_file(LabState::file(dir));
    let _ = std::fs::remove_dir_all(dir.join("volumes"));
    let _ = std::fs::remove_dir_all(dir.join("hosts"));
}

async fn prepare_and_seed(
    dir: &Path,
    endpoint: &str,
    seed: &SeedOptions,
    memcap: Option<&Path>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(SeededLab, LabCredentials), LabError> {
    let control = Control::new(endpoint);
    control.configure().await?;
    control.seed_ids(seed.seed).await?;
    let security = Arc::new(
        AwsContext::connect(Arc::new(Config::default()), &connect_options_for(endpoint)).await,
    );
    // Boxed: seeding's future is the largest of the lab's, and callers' stay small.
    let seeded = Box::pin(seed::apply(
        security.clone(),
        seed,
        &dir.join("volumes"),
        memcap,
        progress,
    ))
    .await?;
    let images = seeded
        .disks
        .iter()
        .map(|d| (d.volume_id.clone(), d.image.clone()))
        .collect();
    control.register_volume_images(&images).await?;
    // The Image Builder stand-in holds the pipeline, with one image already built.
    control
        .post_json(
            "/irf-lab/imagebuilder/pipelines",
            &serde_json::json!({
                "account": seeded.forensics.as_str(),
                "region": LAB_REGION,
                "name": analysis::PIPELINE_NAME,
                "recipe_version": "1.0.0",
                "built": 1,
                "build_seconds": analysis::LAB_BUILD_SECONDS,
            }),
        )
        .await?;
    let operator = operator_session(&security, &seeded.security).await?;
    Ok((seeded, operator))
}

/// An IAM user `name` of the Security account (created if need be) allowed to assume template
/// 3's operator role, and a new access key of it: a responder without Identity Center.
pub async fn operator_user(
    deployer: &AwsContext,
    security: &irf_engine::config::AccountId,
    name: &str,
) -> Result<StaticCredentials, LabError> {
    let failed = |message: String| LabError::Seed {
        step: "iam (the lab's operator user)",
        message,
    };
    let role = format!("arn:aws:iam::{security}:role/{OPERATOR_ROLE}");
    let iam = aws_sdk_iam::Client::new(&deployer.base_config(LAB_REGION));
    if let Err(err) = iam.create_user().user_name(name).send().await
        && !err
            .as_service_error()
            .is_some_and(|e| e.is_entity_already_exists_exception())
    {
        return Err(failed(irf_engine::aws::describe_sdk_error(&err)));
    }
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            "Resource": role,
        }]
    });
    iam.put_user_policy()
        .user_name(name)
        .policy_name("assume-the-operator-role")
        .policy_document(policy.to_string())
        .send()
        .await
        .map_err(|err| failed(irf_engine::aws::describe_sdk_error(&err)))?;
    let created = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .map_err(|err| failed(irf_engine::aws::describe_sdk_error(&err)))?;
    let key = created
        .access_key()
        .ok_or_else(|| failed("the answer holds no access key".to_owned()))?;
    Ok(StaticCredentials {
        access_key_id: key.access_key_id().to_owned(),
        secret_access_key: key.secret_access_key().to_owned(),
        session_token: None,
    })
}

/// A session of template 3's operator role, as a responder assumes it: an IAM user of the
/// Security account (`responder`), under its own name as session name and source identity,
/// which the role's trust policy requires.
async fn operator_session(
    deployer: &AwsContext,
    security: &irf_engine::config::AccountId,
) -> Result<LabCredentials, LabError> {
    let failed = |message: String| LabError::Seed {
        step: "sts:AssumeRole (the lab's operator)",
        message,
    };
    let role = format!("arn:aws:iam::{security}:role/{OPERATOR_ROLE}");
    let keys = operator_user(deployer, security, OPERATOR_SESSION).await?;
    let user = deployer
        .base_config(LAB_REGION)
        .to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    keys.access_key_id,
                    keys.secret_access_key,
                    None,
                    None,
                    "lab-operator-user",
                ),
            ),
        )
        .build();
    let assumed = aws_sdk_sts::Client::new(&user)
        .assume_role()
        .role_arn(&role)
        .role_session_name(OPERATOR_SESSION)
        .source_identity(OPERATOR_SESSION)
        .duration_seconds(OPERATOR_SESSION_SECONDS)
        .send()
        .await
        .map_err(|err| failed(irf_engine::aws::describe_sdk_error(&err)))?;
    let credentials = assumed
        .credentials()
        .ok_or_else(|| failed("the answer holds no credentials".to_owned()))?;
    Ok(LabCredentials {
        arn: assumed
            .assumed_role_user()
            .map(|user| user.arn().to_owned())
            .unwrap_or_default(),
        access_key_id: credentials.access_key_id().to_owned(),
        secret_access_key: credentials.secret_access_key().to_owned(),
        session_token: credentials.session_token().to_owned(),
    })
}

/// Stops the lab recorded in `dir`. Returns false when none was running.
pub fn down(dir: &Path) -> Result<bool, LabError> {
    let Some(state) = LabState::load(dir)? else {
        return Ok(false);
    };
    if let Some(pid) = state.runtime_pid {
        runtime::stop_pid(pid);
    }
    let stopped = emulator::stop_pid(state.emulator_pid, None);
    remove_lab_files(dir);
    Ok(stopped)
}

/// Drops everything in the running lab of `dir` and seeds it again with `seed`.
pub async fn reset(
    dir: &Path,
    seed: Option<SeedOptions>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<LabState, LabError> {
    let mut state = LabState::load(dir)?
        .filter(LabState::is_running)
        .ok_or(LabError::NotRunning)?;
    let options = seed.unwrap_or_else(|| state.seeded.options.clone());
    options.validate()?;
    // The runtime acts with credentials of the lab it started on (the worker's and the
    // triggers' roles), which the reset drops: it stops now and starts again on the new lab.
    let runtime_exe = runtime_exe_of(&state);
    if let Some(pid) = state.runtime_pid.take() {
        runtime::stop_pid(pid);
    }
    let control = Control::new(&state.endpoint);
    state.events_after = control
        .get_json("/irf-lab/events?after=0")
        .await?
        .get("last")
        .and_then(serde_json::Value::as_u64);
    progress("dropping every resource of the lab");
    control.reset().await?;
    let _ = std::fs::remove_dir_all(dir.join("volumes"));
    let _ = std::fs::remove_dir_all(dir.join("hosts"));
    let (seeded, operator) = prepare_and_seed(
        dir,
        &state.endpoint,
        &options,
        runtime_exe.as_deref(),
        progress,
    )
    .await?;
    state.seeded = seeded;
    state.operator = Some(operator);
    seed::lab_config(&state.seeded).write_to(&state.config_path)?;
    state.save(dir)?;
    if let Some(exe) = runtime_exe {
        progress("starting the lab runtime again");
        let running = runtime::spawn(&exe, dir, &dir.join("runtime.log"), false)?;
        state.runtime_pid = Some(running.detach());
        state.save(dir)?;
    }
    Ok(state)
}

/// The binary the running lab's runtime was started from.
fn runtime_exe_of(state: &LabState) -> Option<PathBuf> {
    state
        .runtime_pid
        .filter(|pid| runtime::is_our_runtime(*pid))
        .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_state(dir: &Path) -> LabState {
        LabState {
            endpoint: "http://127.0.0.1:5123".into(),
            port: 5123,
            emulator_pid: u32::MAX,
            started_at: "2026-11-28T00:00:00Z".into(),
            config_path: dir.join("it's config.toml"),
            log_path: dir.join("emulator.log"),
            seeded: SeededLab {
                options: SeedOptions::default(),
                organization_id: "o-example".into(),
                security: irf_engine::config::AccountId::parse("123456789012").expect("valid"),
                forensics: irf_engine::config::AccountId::parse("210987654321").expect("valid"),
                members: vec![],
                instances: vec![],
                findings: 0,
                disks: vec![],
                plane: None,
                analysis: None,
            },
            runtime_pid: None,
            operator: Some(LabCredentials {
                arn: "arn:aws:sts::123456789012:assumed-role/irf-operator/responder".into(),
                access_key_id: "ASIALABOPERATOR".into(),
                secret_access_key: "lab-operator-secret".into(),
                session_token: "lab-operator-token".into(),
            }),
            events_after: None,
            time_scale: None,
        }
    }

    #[test]
    fn state_round_trips_and_a_dead_pid_is_not_running() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = sample_state(dir.path());
        state.save(dir.path()).expect("saved");
        let loaded = LabState::load(dir.path()).expect("loads").expect("present");
        assert_eq!(loaded, state);
        assert!(!loaded.is_running());
        assert!(
            !down(dir.path()).expect("down works"),
            "nothing was running"
        );
        assert!(
            LabState::load(dir.path()).expect("loads").is_none(),
            "state removed"
        );
    }

    #[test]
    fn damaged_state_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("state.json"), "{not json").expect("write");
        let err = LabState::load(dir.path()).expect_err("damaged");
        assert!(err.to_string().contains("state.json"), "{err}");
    }

    #[test]
    fn exports_quote_paths_and_point_everything_at_the_lab() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exports = sample_state(dir.path()).env_exports();
        assert!(exports.contains("export AWS_ENDPOINT_URL='http://127.0.0.1:5123'"));
        // The operator's session, never the lab's own deployer key.
        assert!(exports.contains("export AWS_ACCESS_KEY_ID='ASIALABOPERATOR'"));
        assert!(exports.contains("export AWS_SESSION_TOKEN='lab-operator-token'"));
        assert!(!exports.contains(LAB_ACCESS_KEY), "{exports}");
        assert!(exports.contains("IRF_CONFIG='"));
        assert!(
            exports.contains(r"it'\''s config.toml"),
            "single quote escaped: {exports}"
        );
        assert!(exports.contains("unset AWS_PROFILE"));
    }
}
