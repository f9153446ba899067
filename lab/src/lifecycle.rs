//! The lab's lifecycle: bring it up (install, start the emulator and runtime, seed it with
//! irf's own templates), the operator's identity, reset and stop.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::common::{
    DENIAL_LOG, LAB_REGION, LabCredentials, LabError, OPERATOR_ROLE, OPERATOR_SESSION,
    OPERATOR_SESSION_SECONDS, connect_options_for,
};
use crate::control::Control;
use crate::emulator::{self, Authorization, EmulatorOptions, RunningEmulator};
use crate::seed::{self, SeedOptions, SeededLab};
use crate::state::LabState;
use crate::{analysis, install, runtime};
use irf_engine::aws::{AwsContext, StaticCredentials};
use irf_engine::config::Config;
use irf_engine::model::case::now_rfc3339;

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
    use crate::common::LAB_ACCESS_KEY;

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
