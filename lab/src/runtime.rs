//! The lab runtime: what AWS does around the workflow and the emulator does not. It runs
//! beside the emulator from `irf lab up` until `irf lab down` and
//!
//! * delivers tag-change events to the member trigger (EventBridge's part),
//! * consumes the step queues with the same worker and handlers as AWS (Lambda's and the
//!   imaging worker's part),
//! * plays the SSM agent of the lab's instances: Run Command scripts run in a shell whose
//!   `/proc` and `/sys` are the instance's own (see [`super::hosts`]), with the credentials
//!   of the instance's profile in the environment where an instance would find them in its
//!   metadata service, and Session Manager sessions get a shell or a port on the host (see
//!   [`super::agent`]).

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;

use crate::common::{
    FORWARDER_ROLE, LAB_REGION, LabError, ORG_ACCESS_ROLE, TRIGGER_ROLE, WORKER_ROLE,
};
use crate::control::{Control, ServicePrincipal};
use crate::state::LabState;
use irf_engine::aws::AwsContext;
use irf_engine::config::{AccountId, Config};
use irf_engine::plane::Plane;
use irf_engine::worker::{self, WorkerOptions};

/// The words that mark a lab runtime's command line.
const RUNTIME_ARGS: [&str; 2] = ["lab", "runtime"];

/// A lab runtime this process started.
#[derive(Debug)]
pub struct RunningRuntime {
    pub pid: u32,
    child: Child,
    /// Held while the runtime is tied to this process: it exits when this closes.
    _stdin: Option<ChildStdin>,
}

/// Starts `irf lab runtime` from the `irf` binary at `exe`, logging to `log`.
pub fn spawn(
    exe: &Path,
    dir: &Path,
    log: &Path,
    tie_to_this_process: bool,
) -> Result<RunningRuntime, LabError> {
    use std::os::unix::process::CommandExt;
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|source| LabError::Io {
            what: "open the lab runtime log",
            path: log.to_owned(),
            source,
        })?;
    let log_err = log_file.try_clone().map_err(|source| LabError::Io {
        what: "open the lab runtime log",
        path: log.to_owned(),
        source,
    })?;
    let mut command = Command::new(exe);
    command
        .args(RUNTIME_ARGS)
        .arg("--dir")
        .arg(dir)
        .stdout(log_file)
        .stderr(log_err)
        .process_group(0);
    if tie_to_this_process {
        command.arg("--watch-stdin").stdin(Stdio::piped());
    } else {
        command.stdin(Stdio::null());
    }
    let mut child = command.spawn().map_err(|err| LabError::Start {
        message: format!("cannot start the lab runtime '{}': {err}", exe.display()),
        log: None,
    })?;
    let stdin = child.stdin.take();
    Ok(RunningRuntime {
        pid: child.id(),
        child,
        _stdin: stdin,
    })
}

impl RunningRuntime {
    /// Stops the runtime and reaps it.
    pub fn stop(mut self) {
        stop_pid(self.pid);
        let _ = self.child.wait();
    }

    /// Leaves the runtime running after this process ends.
    pub fn detach(self) -> u32 {
        self.pid
    }
}

/// Whether `pid` is a lab runtime.
pub fn is_our_runtime(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| {
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.windows(2)
                .any(|w| w[0] == RUNTIME_ARGS[0].as_bytes() && w[1] == RUNTIME_ARGS[1].as_bytes())
        })
        .unwrap_or(false)
        && !crate::emulator::is_zombie(pid)
}

/// Stops the lab runtime `pid`, if it is one.
pub fn stop_pid(pid: u32) -> bool {
    crate::emulator::stop_group_if(pid, Some(Duration::from_secs(5)), is_our_runtime)
}

#[derive(Debug, Deserialize)]
struct PendingCommands {
    commands: Vec<PendingCommand>,
}

#[derive(Debug, Deserialize)]
struct PendingCommand {
    command_id: String,
    instance_id: String,
    account: String,
    region: String,
    #[serde(default)]
    document_name: String,
    #[serde(default)]
    parameters: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    timeout_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Events {
    events: Vec<SequencedEvent>,
}

#[derive(Debug, Deserialize)]
struct SequencedEvent {
    seq: u64,
    event: serde_json::Value,
}

/// Runs the lab runtime for the lab in `dir` until it is stopped, the emulator goes away,
/// or (with `watch_stdin`) standard input closes.
pub async fn run(dir: &Path, watch_stdin: bool) -> Result<(), LabError> {
    let state = LabState::load(dir)?.ok_or(LabError::NotRunning)?;
    let control = Control::new(&state.endpoint);
    let config = Config::load_from(&state.config_path)?.config;
    // The worker runs as template 3's worker role, with the credentials ECS gives a task.
    let worker_role = format!("arn:aws:iam::{}:role/{WORKER_ROLE}", state.seeded.security);
    let worker = control
        .service_credentials(
            ServicePrincipal::EcsTasks,
            &worker_role,
            WORKER_ROLE,
            &format!(
                "arn:aws:ecs:{LAB_REGION}:{}:task/irf-acquisition/lab-runtime",
                state.seeded.security
            ),
        )
        .await?;
    let ctx = Arc::new(
        AwsContext::connect(
            Arc::new(config.clone()),
            &worker.connect_options(&state.endpoint),
        )
        .await,
    );
    let plane = Arc::new(
        Plane::connect(ctx.clone())
            .await
            .map_err(|err| LabError::Seed {
                step: "connect the lab runtime to the workflow",
                message: err.to_string(),
            })?,
    );
    let mut options = WorkerOptions::from_config(ctx.config()).map_err(|err| LabError::Seed {
        step: "read the step queues",
        message: err.to_string(),
    })?;
    // The steps queue is template 3's step function's: its steps stop at its time limit.
    let step_limit = state
        .seeded
        .plane
        .as_ref()
        .and_then(|plane| plane.step_function_timeout_secs)
        .map(|secs| {
            Duration::from_secs_f64(secs as f64 / f64::from(state.time_scale.unwrap_or(1).max(1)))
        });
    for queue in &mut options.queues {
        if queue.name == irf_engine::acquisition::STEPS_QUEUE {
            queue.time_limit = step_limit;
        }
    }
    // What EC2 itself knows of an instance (its profile) is read through the lab's own
    // administrator, never through a role of irf's.
    let mut ec2_view = config.clone();
    ec2_view.accounts.member_role = ORG_ACCESS_ROLE.to_owned();
    let ec2_view = Arc::new(
        AwsContext::connect(
            Arc::new(ec2_view),
            &crate::common::connect_options_for(&state.endpoint),
        )
        .await,
    );
    let triggers = Triggers {
        control: control.clone(),
        endpoint: state.endpoint.clone(),
        security: state.seeded.security.clone(),
        config: trigger_config(config),
        plane: tokio::sync::OnceCell::new(),
        forwarding: tokio::sync::Mutex::new(std::collections::HashMap::new()),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);

    if watch_stdin {
        let stop = stop_tx.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut sink = [0u8; 256];
            while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
            let _ = stop.send(true);
        });
    }
    {
        let stop = stop_tx.clone();
        tokio::spawn(async move {
            worker::shutdown_signal().await;
            let _ = stop.send(true);
        });
    }
    {
        // Without an emulator there is nothing to run for.
        let stop = stop_tx.clone();
        let control = control.clone();
        tokio::spawn(async move {
            let mut misses = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if control.is_ready().await {
                    misses = 0;
                } else {
                    misses += 1;
                    if misses >= 3 {
                        tracing::info!("the emulator is gone; the lab runtime stops");
                        let _ = stop.send(true);
                        return;
                    }
                }
            }
        });
    }

    tracing::info!(endpoint = state.endpoint, "lab runtime started");
    let worker = tokio::spawn(worker::run(plane.clone(), options, stop_rx.clone()));
    let events = tokio::spawn(deliver_events(
        triggers,
        control.clone(),
        state.events_after,
        stop_rx.clone(),
    ));
    let sessions = tokio::spawn(crate::agent::serve(
        control.clone(),
        dir.join("hosts"),
        stop_rx.clone(),
    ));
    let agent = tokio::spawn(play_ssm_agent(
        ec2_view,
        control,
        dir.join("hosts"),
        HostMemory::of(&state),
        stop_rx.clone(),
    ));
    let _ = worker.await;
    let _ = events.await;
    let _ = agent.await;
    let _ = sessions.await;
    tracing::info!("lab runtime stopped");
    Ok(())
}

fn log_outcome(outcome: &irf_engine::trigger::TriggerOutcome) {
    use irf_engine::trigger::TriggerOutcome;
    match outcome {
        TriggerOutcome::Opened(opened) => {
            tracing::info!(case = %opened.case().case_id, "tag change: case opened or joined");
        }
        TriggerOutcome::Contained(outcome) => {
            tracing::info!(instance = %outcome.record.instance, changes = outcome.changed.len(), "tag change: contained");
        }
        TriggerOutcome::Requested(record) => {
            tracing::info!(instance = %record.instance, "tag change: containment requested");
        }
        TriggerOutcome::Ignored(_) => {}
    }
}

/// What the lab's hosts hold in memory: the suspects' planted indicators, and the
/// bastions' fragmented RAM (more ranges than a capture report could list).
#[derive(Debug, Clone, Default)]
struct HostMemory {
    compromised: Vec<String>,
    fragmented: Vec<String>,
}

impl HostMemory {
    fn of(state: &LabState) -> Self {
        Self {
            compromised: state
                .seeded
                .disks
                .iter()
                .filter(|d| !d.planted.is_empty())
                .map(|d| d.instance_id.clone())
                .collect(),
            fragmented: state
                .seeded
                .instances
                .iter()
                .filter(|i| i.name.contains("-bastion-"))
                .map(|i| i.id.clone())
                .collect(),
        }
    }

    fn layout(&self, instance_id: &str) -> crate::hosts::RamLayout {
        if self.fragmented.iter().any(|id| id == instance_id) {
            crate::hosts::RamLayout::Fragmented
        } else {
            crate::hosts::RamLayout::Contiguous
        }
    }
}

/// The tag trigger as templates 3 and 5 deploy it: each member account's rule forwards its tag
/// changes to the Security account's incident bus (as the account's `irf-tag-forwarder` role,
/// which EventBridge assumes), and one Lambda function there handles them, as the Security
/// account's `irf-trigger` role, with the trigger's environment (no evidence bucket).
struct Triggers {
    control: Control,
    endpoint: String,
    security: AccountId,
    config: Config,
    plane: tokio::sync::OnceCell<Arc<Plane>>,
    /// Whether each account forwards its tag changes (template 5 deployed there).
    forwarding: tokio::sync::Mutex<std::collections::HashMap<String, bool>>,
}

/// The configuration template 3 gives the trigger: the workflow's, without the evidence
/// bucket (its ledger entries are sealed by the workflow's next step).
fn trigger_config(mut config: Config) -> Config {
    config.evidence.bucket = None;
    config
}

impl Triggers {
    /// Whether `account`'s tag changes reach the incident bus: EventBridge can act as the
    /// account's forwarder role only where template 5 created it.
    async fn forwards(&self, account: &str) -> bool {
        let mut known = self.forwarding.lock().await;
        if let Some(answer) = known.get(account) {
            return *answer;
        }
        let role = format!("arn:aws:iam::{account}:role/{FORWARDER_ROLE}");
        let forwarded = self
            .control
            .service_credentials(
                ServicePrincipal::Events,
                &role,
                FORWARDER_ROLE,
                &format!("arn:aws:events:{LAB_REGION}:{account}:rule/{FORWARDER_ROLE}-tag-change"),
            )
            .await;
        if let Err(err) = &forwarded {
            tracing::info!(account, error = %err, "the account forwards no tag changes");
        }
        known.insert(account.to_owned(), forwarded.is_ok());
        forwarded.is_ok()
    }

    /// The Security account's trigger function.
    async fn plane(&self) -> Result<Arc<Plane>, String> {
        self.plane
            .get_or_try_init(|| async {
                let role = format!("arn:aws:iam::{}:role/{TRIGGER_ROLE}", self.security);
                let session = self
                    .control
                    .service_credentials(
                        ServicePrincipal::Lambda,
                        &role,
                        TRIGGER_ROLE,
                        &format!(
                            "arn:aws:lambda:{LAB_REGION}:{}:function:{TRIGGER_ROLE}",
                            self.security
                        ),
                    )
                    .await
                    .map_err(|err| format!("no tag trigger in the Security account: {err}"))?;
                let options = session.connect_options(&self.endpoint);
                let ctx =
                    Arc::new(AwsContext::connect(Arc::new(self.config.clone()), &options).await);
                Plane::connect(ctx)
                    .await
                    .map(Arc::new)
                    .map_err(|err| err.to_string())
            })
            .await
            .cloned()
    }
}

async fn deliver_events(
    triggers: Triggers,
    control: Control,
    from: Option<u64>,
    mut stop: watch::Receiver<bool>,
) {
    // Only events from now on (or from the reset that started this runtime): a restarted
    // runtime does not replay old triggers.
    let mut after = match from {
        Some(sequence) => sequence,
        None => control
            .get_json("/irf-lab/events?after=0")
            .await
            .ok()
            .and_then(|v| v["last"].as_u64())
            .unwrap_or(0),
    };
    while !*stop.borrow() {
        match control
            .get_json(&format!("/irf-lab/events?after={after}"))
            .await
        {
            Ok(value) => match Events::deserialize(&value) {
                Ok(batch) => {
                    for event in batch.events {
                        after = after.max(event.seq);
                        let account = event.event["account"].as_str().unwrap_or_default();
                        if !triggers.forwards(account).await {
                            continue;
                        }
                        let plane = match triggers.plane().await {
                            Ok(plane) => plane,
                            Err(err) => {
                                tracing::info!(error = %err, "tag change not delivered");
                                continue;
                            }
                        };
                        // Boxed: the trigger's future (containment included) is large.
                        let handled = Box::pin(irf_engine::request_ids::recording(
                            irf_engine::trigger::handle_event(&plane, &event.event.to_string()),
                        ))
                        .await;
                        match handled {
                            Ok(outcomes) => outcomes.iter().for_each(log_outcome),
                            Err(err) => tracing::warn!(error = %err, "tag change not handled"),
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "unexpected event batch"),
            },
            Err(err) => tracing::debug!(error = %err, "cannot read events"),
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(700)) => {}
        }
    }
}

async fn play_ssm_agent(
    ctx: Arc<AwsContext>,
    control: Control,
    hosts: PathBuf,
    memory: HostMemory,
    mut stop: watch::Receiver<bool>,
) {
    let memory = Arc::new(memory);
    while !*stop.borrow() {
        match control.get_json("/irf-lab/ssm/pending").await {
            Ok(value) => match PendingCommands::deserialize(&value) {
                Ok(pending) => {
                    for command in pending.commands {
                        let control = control.clone();
                        let hosts = hosts.clone();
                        let memory = memory.clone();
                        let ctx = ctx.clone();
                        tokio::spawn(async move {
                            let result = run_command(
                                &ctx,
                                &control,
                                &hosts,
                                &command,
                                memory.compromised.contains(&command.instance_id),
                                memory.layout(&command.instance_id),
                            )
                            .await;
                            if let Err(err) =
                                control.post_json("/irf-lab/ssm/result", &result).await
                            {
                                tracing::warn!(error = %err, "cannot report a command result");
                            }
                        });
                    }
                }
                Err(err) => tracing::warn!(error = %err, "unexpected pending commands"),
            },
            Err(err) => tracing::debug!(error = %err, "cannot read pending commands"),
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// What a lab host's commands see of their instance.
struct InstanceView {
    /// What an instance's metadata service would hand its software: the credentials of
    /// the role in its instance profile (none without a profile), its region, and, the
    /// lab's one addition, the emulator as the endpoint of every service.
    env: Vec<(&'static str, String)>,
    /// Analysis hosts are never imaged, so they get no `/proc` core.
    analysis_host: bool,
}

async fn instance_view(
    ctx: &AwsContext,
    control: &Control,
    command: &PendingCommand,
) -> Result<InstanceView, String> {
    let mut env = vec![
        ("AWS_DEFAULT_REGION", command.region.clone()),
        ("AWS_REGION", command.region.clone()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    if let Some(endpoint) = ctx.endpoint_url() {
        env.push(("AWS_ENDPOINT_URL", endpoint.to_owned()));
    }
    let account = AccountId::parse(&command.account).map_err(|why| why.to_string())?;
    let config = ctx
        .account_config(&account, &command.region)
        .await
        .map_err(|err| err.to_string())?;
    let described = aws_sdk_ec2::Client::new(&config)
        .describe_instances()
        .instance_ids(&command.instance_id)
        .send()
        .await
        .map_err(|err| irf_engine::aws::describe_sdk_error(&err))?;
    let instance = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(command.instance_id.as_str()));
    let analysis_host = instance.is_some_and(|i| {
        i.tags().iter().any(|t| {
            t.key() == Some(irf_engine::analysis::hosts::ROLE_TAG)
                && t.value() == Some(irf_engine::analysis::hosts::ROLE_VALUE)
        })
    });
    let Some(profile_arn) = instance.and_then(|i| i.iam_instance_profile().and_then(|p| p.arn()))
    else {
        return Ok(InstanceView { env, analysis_host });
    };
    let profile_name = profile_arn.rsplit('/').next().unwrap_or(profile_arn);
    let profile = aws_sdk_iam::Client::new(&config)
        .get_instance_profile()
        .instance_profile_name(profile_name)
        .send()
        .await
        .map_err(|err| irf_engine::aws::describe_sdk_error(&err))?;
    let Some(role_arn) = profile
        .instance_profile()
        .and_then(|p| p.roles().first())
        .map(|r| r.arn().to_owned())
    else {
        return Ok(InstanceView { env, analysis_host });
    };
    // What the instance's metadata service hands out: the role's credentials as EC2 gets
    // them, which the role's trust policy must allow.
    let credentials = control
        .service_credentials(
            ServicePrincipal::Ec2,
            &role_arn,
            &command.instance_id,
            &format!(
                "arn:aws:ec2:{}:{}:instance/{}",
                command.region, command.account, command.instance_id
            ),
        )
        .await
        .map_err(|err| err.to_string())?;
    env.push(("AWS_ACCESS_KEY_ID", credentials.access_key_id));
    env.push(("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key));
    env.push(("AWS_SESSION_TOKEN", credentials.session_token));
    Ok(InstanceView { env, analysis_host })
}

/// The lab hosts' `PATH`: the machine's, after the lab's own tools (the AWS CLI an
/// analysis image carries).
fn host_path() -> std::ffi::OsString {
    let machine = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    let Ok(Some(install)) = crate::install::installed() else {
        return machine;
    };
    let mut dirs = vec![install.venv.join("bin")];
    dirs.extend(std::env::split_paths(&machine));
    std::env::join_paths(dirs).unwrap_or(machine)
}

/// Mounts a lab host's /proc and /sys (arguments 1 and 2) over the machine's, then runs
/// the script (argument 3) with `sh -c`, as the SSM agent's aws:runShellScript does (on a
/// Debian or Ubuntu host that is dash, which has none of bash's extensions).
const HOST_VIEW: &str = r#"mount --bind "$1" /proc && mount --bind "$2" /sys && exec sh -c "$3""#;

async fn run_command(
    ctx: &AwsContext,
    control: &Control,
    hosts: &Path,
    command: &PendingCommand,
    compromised: bool,
    layout: crate::hosts::RamLayout,
) -> serde_json::Value {
    let report = |status: &str, code: i32, stdout: String, stderr: String| {
        serde_json::json!({
            "command_id": command.command_id,
            "instance_id": command.instance_id,
            "status": status,
            "response_code": code,
            "stdout": stdout,
            "stderr": stderr,
        })
    };
    if command.document_name != "AWS-RunShellScript" {
        return report(
            "Failed",
            1,
            String::new(),
            format!(
                "the lab agent runs AWS-RunShellScript only, not {}",
                command.document_name
            ),
        );
    }
    let script = command
        .parameters
        .get("commands")
        .map(|c| c.join("\n"))
        .unwrap_or_default();
    let timeout = command
        .parameters
        .get("executionTimeout")
        .and_then(|t| t.first())
        .and_then(|t| t.parse().ok())
        .or(command.timeout_seconds)
        .unwrap_or(3600);
    let view = match instance_view(ctx, control, command).await {
        Ok(view) => view,
        Err(why) => {
            return report(
                "Failed",
                1,
                String::new(),
                format!(
                    "the lab could not give {} its profile's credentials: {why}",
                    command.instance_id
                ),
            );
        }
    };
    let hosts = hosts.to_owned();
    let instance = command.instance_id.clone();
    let root = hosts.clone();
    let analysis_host = view.analysis_host;
    let dirs = match tokio::task::spawn_blocking(move || {
        if analysis_host {
            Ok(None)
        } else {
            crate::hosts::host_dirs(&root, &instance, compromised, layout, "6.1.0-irf-lab")
                .map(Some)
        }
    })
    .await
    {
        Ok(Ok(dirs)) => dirs,
        Ok(Err(err)) => return report("Failed", 1, String::new(), err.to_string()),
        Err(err) => return report("Failed", 1, String::new(), err.to_string()),
    };
    let home = match crate::hosts::host_home(&hosts, &command.instance_id) {
        Ok(home) => home,
        Err(err) => return report("Failed", 1, String::new(), err.to_string()),
    };
    // A suspect's script sees the host's own /proc and /sys where every host keeps them:
    // the lab mounts its files there in a mount namespace of the script's own, so that
    // irf's scripts read the fixed paths they read on a real host.
    let mut command = match &dirs {
        Some(dirs) => {
            let mut command = tokio::process::Command::new("unshare");
            command
                .args([
                    "--mount",
                    "--map-root-user",
                    "--propagation",
                    "private",
                    "--",
                ])
                .args(["sh", "-c", HOST_VIEW, "irf-lab-host"])
                .arg(&dirs.proc)
                .arg(&dirs.sys)
                .arg(&script);
            command
        }
        None => {
            let mut command = tokio::process::Command::new("sh");
            command.arg("-c").arg(&script);
            command
        }
    };
    let child = command
        .env_clear()
        .env("PATH", host_path())
        .envs(view.env)
        .env("HOME", &home.home)
        .env("LANG", "C")
        .env("IRF_EVIDENCE_DIR", &home.evidence)
        .current_dir(&home.home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(err) => {
            return report(
                "Failed",
                1,
                String::new(),
                format!(
                    "cannot run the script (a suspect's needs 'unshare --mount', which plays its /proc): {err}"
                ),
            );
        }
    };
    match tokio::time::timeout(Duration::from_secs(timeout), child.wait_with_output()).await {
        Ok(Ok(out)) => {
            let code = out.status.code().unwrap_or(-1);
            report(
                if out.status.success() {
                    "Success"
                } else {
                    "Failed"
                },
                code,
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        Ok(Err(err)) => report("Failed", 1, String::new(), err.to_string()),
        Err(_) => report(
            "TimedOut",
            -1,
            String::new(),
            format!("no end within {timeout} s"),
        ),
    }
}
