//! The harness of irf's workspace-level tests: one lab per test run (started on first use,
//! on a free port, gone when the run ends, even if it is killed), the `irf` binary, and a
//! pseudo-terminal to drive it in.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use irf_engine::aws::AwsContext;
use irf_engine::config::AccountId;
use irf_lab::control::ServicePrincipal;
use irf_lab::seed::SeedOptions;
use irf_lab::{Authorization, Lab, LabOptions, LabState, ORG_ACCESS_ROLE, WORKER_ROLE};

struct SharedLab {
    lab: Lab,
    _dir: tempfile::TempDir,
}

static LAB: OnceLock<SharedLab> = OnceLock::new();

/// The seed options of the shared lab: the Organization `irf lab` seeds by default, so that
/// what the tests see is what a new user sees, deployed with four eyes required as template
/// 3 is by default (`irf lab up --four-eyes`).
pub fn shared_seed() -> SeedOptions {
    SeedOptions {
        four_eyes: true,
        ..SeedOptions::default()
    }
}

/// Removes the directories earlier test runs left (the shared lab is never dropped, so its
/// directory outlives its process): only those whose emulator is gone and that nothing has
/// touched for an hour, so that a lab another run is seeding right now is left alone.
fn remove_dead_test_labs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with("irf-test-lab-")
        {
            continue;
        }
        let path = entry.path();
        let idle = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified < an_hour_ago);
        let alive = LabState::load(&path)
            .ok()
            .flatten()
            .is_some_and(|state| state.is_running());
        if idle && !alive {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// The test lab's steps stop at the step function's 900 s divided by this (30 s): what a
/// function could not finish fails there within the tests' patience.
pub const TIME_SCALE: u32 = 30;

/// The lab shared by every test of this run. The emulator is tied to this process: it
/// exits when the test binary does.
pub fn lab() -> &'static LabState {
    &LAB.get_or_init(|| {
        remove_dead_test_labs();
        let dir = tempfile::Builder::new()
            .prefix("irf-test-lab-")
            .tempdir()
            .expect("temp dir for the lab");
        let options = LabOptions {
            dir: dir.path().to_owned(),
            port: None,
            latency_ms: 0,
            tie_to_this_process: true,
            seed: shared_seed(),
            runtime_exe: Some(irf_binary()),
            authorization: authorization(),
            time_scale: TIME_SCALE,
        };
        // On a thread and a runtime of its own: the caller may be inside a test's runtime,
        // and each #[tokio::test] runtime ends with its test.
        let lab = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(Lab::up(&options, &|message| {
                eprintln!("test lab: {message}");
            }))
        })
        .join()
        .expect("the lab thread")
        .unwrap_or_else(|err| panic!("the test lab did not come up: {err}"));
        print_refusals_on_failure();
        SharedLab { lab, _dir: dir }
    })
    .lab
    .state
}

/// How the test lab authorizes: enforcing, as `irf lab` does, unless `IRF_LAB_AUTHORIZATION`
/// says otherwise (for diagnosis).
pub fn authorization() -> Authorization {
    std::env::var("IRF_LAB_AUTHORIZATION")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .unwrap_or_else(|err| panic!("IRF_LAB_AUTHORIZATION: {err}"))
        })
        .unwrap_or_default()
}

/// The seeded suspect: the instance whose root volume holds the planted indicators.
pub fn suspect(state: &LabState) -> &irf_lab::seed::LabInstance {
    let disk = state
        .seeded
        .disks
        .iter()
        .find(|d| !d.planted.is_empty())
        .expect("the suspect's disk");
    state
        .seeded
        .instances
        .iter()
        .find(|i| i.id == disk.instance_id)
        .expect("the suspect instance")
}

/// The first member account irf manages in `state`'s lab (its role deployed).
pub fn managed_member(state: &LabState) -> &irf_lab::seed::LabAccount {
    state
        .seeded
        .members
        .iter()
        .find(|m| m.managed)
        .expect("a managed member")
}

/// The environment that points irf (and the AWS CLI) at `state`'s lab as its operator (template
/// 3's operator role in the Security account).
pub fn lab_env(state: &LabState) -> [(&str, &str); 6] {
    let operator = state
        .operator
        .as_ref()
        .expect("the lab records its operator's session");
    [
        ("AWS_ENDPOINT_URL", state.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", operator.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", operator.secret_access_key.as_str()),
        ("AWS_SESSION_TOKEN", operator.session_token.as_str()),
        ("AWS_REGION", irf_lab::LAB_REGION),
        (
            "IRF_CONFIG",
            state.config_path.to_str().expect("utf-8 config path"),
        ),
    ]
}

/// A failing test prints, after its own message, what the lab refused lately: a call AWS
/// would refuse shows up there with its action and resource.
fn print_refusals_on_failure() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        if let Some(shared) = LAB.get() {
            let log = denial_log(&shared.lab.state);
            let lines: Vec<&str> = log.lines().collect();
            let recent = &lines[lines.len().saturating_sub(10)..];
            if !recent.is_empty() {
                eprintln!(
                    "the lab's last refusals ({} in all):\n{}",
                    lines.len(),
                    recent.join("\n")
                );
            }
        }
    }));
}

/// What the lab refused so far (its denial log, one JSON line per refusal), for a failing
/// test to print.
pub fn denial_log(state: &LabState) -> String {
    let dir = state.config_path.parent().expect("the lab's directory");
    std::fs::read_to_string(dir.join(irf_lab::DENIAL_LOG)).unwrap_or_default()
}

/// A context on the shared lab acting as `role`, with the credentials the AWS service
/// `service` gives the role it runs as for the resource `source_arn`.
pub async fn service_context(
    service: ServicePrincipal,
    role: &str,
    session: &str,
    source_arn: &str,
) -> Arc<AwsContext> {
    let state = lab();
    let credentials = irf_lab::control::Control::new(&state.endpoint)
        .service_credentials(service, role, session, source_arn)
        .await
        .unwrap_or_else(|err| panic!("{} credentials for {role}: {err}", service.as_str()));
    let config = irf_engine::config::Config::load_from(&state.config_path)
        .expect("the lab's config")
        .config;
    Arc::new(
        AwsContext::connect(
            Arc::new(config),
            &credentials.connect_options(&state.endpoint),
        )
        .await,
    )
}

/// A context on the shared lab as template 3's worker role, with the credentials ECS gives a
/// task: the principal that writes evidence (and so the one a tampering test must borrow to
/// write evidence encrypted with the evidence key, which no account administrator may use).
pub async fn automation_context() -> Arc<AwsContext> {
    let state = lab();
    service_context(
        ServicePrincipal::EcsTasks,
        &format!("arn:aws:iam::{}:role/{WORKER_ROLE}", state.seeded.security),
        WORKER_ROLE,
        &format!(
            "arn:aws:ecs:{}:{}:task/irf-acquisition/tests",
            irf_lab::LAB_REGION,
            state.seeded.security
        ),
    )
    .await
}

/// The Forensics account as its administrator sees it (`OrganizationAccountAccessRole`).
pub async fn forensics_admin() -> aws_types::SdkConfig {
    admin_context()
        .await
        .account_config(&lab().seeded.forensics, irf_lab::LAB_REGION)
        .await
        .expect("Forensics as its administrator")
}

/// Sets `SecurityIncidentStatus=value` on an instance as `ctx` would through the member role:
/// the responder's move (the console or the AWS CLI) that the member trigger answers.
pub async fn set_incident_tag(
    ctx: &AwsContext,
    account: &AccountId,
    region: &str,
    instance_id: &str,
    value: &str,
) {
    let member = ctx
        .account_config(account, region)
        .await
        .expect("the member role");
    aws_sdk_ec2::Client::new(&member)
        .create_tags()
        .resources(instance_id)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("SecurityIncidentStatus")
                .value(value)
                .build(),
        )
        .send()
        .await
        .expect("the incident tag");
}

/// Imports a finding of a test's own into the Security account's aggregator, as a finding
/// provider (GuardDuty) does: `id` in `account`, about the resource `(type, id)`. A test that
/// resolves or counts findings plants its own, so that the seeded ones stay as they are.
pub async fn plant_finding(
    account: &str,
    id: &str,
    title: &str,
    severity: aws_sdk_securityhub::types::SeverityLabel,
    (resource_type, resource_id): (&str, &str),
) {
    let state = lab();
    let hub = aws_sdk_securityhub::Client::new(
        &admin_context()
            .await
            .account_config(&state.seeded.security, "us-east-1")
            .await
            .expect("the Security account"),
    );
    let stamp = "2026-12-01T00:00:00Z";
    let finding = aws_sdk_securityhub::types::AwsSecurityFinding::builder()
        .schema_version("2018-10-08")
        .id(id)
        .product_arn("arn:aws:securityhub:us-east-1::product/aws/guardduty")
        .generator_id("irf-test")
        .aws_account_id(account)
        .region("us-east-1")
        .types("TTPs/Discovery")
        .created_at(stamp)
        .updated_at(stamp)
        .severity(
            aws_sdk_securityhub::types::Severity::builder()
                .label(severity)
                .build(),
        )
        .title(title)
        .description("planted by a test")
        .resources(
            aws_sdk_securityhub::types::Resource::builder()
                .r#type(resource_type)
                .id(resource_id)
                .build(),
        )
        .build();
    hub.batch_import_findings()
        .findings(finding)
        .send()
        .await
        .expect("import the planted finding");
}

/// A context on the shared lab as the lab's own administrator (the management account's
/// root, and OrganizationAccountAccessRole in the other accounts): what a test uses to
/// stage what no irf principal may do (tampering, a second operator).
pub async fn admin_context() -> Arc<AwsContext> {
    let state = lab();
    let mut config = irf_engine::config::Config::load_from(&state.config_path)
        .expect("the lab's config")
        .config;
    config.accounts.member_role = ORG_ACCESS_ROLE.to_owned();
    Arc::new(
        AwsContext::connect(
            Arc::new(config),
            &irf_lab::connect_options_for(&state.endpoint),
        )
        .await,
    )
}

/// A fresh engine context on the shared lab, with the lab's configuration.
pub async fn context() -> Arc<AwsContext> {
    lab().connect().await.expect("connect to the test lab")
}

/// `irf acquire --wait --json` of `instance`'s memory only, with no containment, on the
/// shared lab.
pub fn acquire_memory_only(instance: &irf_lab::seed::LabInstance) -> Output {
    run_irf(
        &[
            "acquire",
            "--instance",
            &instance.id,
            "--account",
            instance.account.as_str(),
            "--no-disk",
            "--containment",
            "never",
            "--wait",
            "--json",
        ],
        &lab_env(lab()),
    )
}

/// The `irf` binary of this build: beside the test binary's `deps` directory.
pub fn irf_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let binary = profile_dir.join("irf");
    assert!(
        binary.exists(),
        "'{}' is missing: build it first with 'cargo build -p irf' (.ci/run does)",
        binary.display()
    );
    // `cargo test` does not rebuild another package's binary: refuse to test a stale one.
    // Cargo's dep-info file beside it lists every source file the binary was built from.
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .expect("binary time");
    let dep_info = std::fs::read_to_string(binary.with_extension("d")).unwrap_or_else(|_| {
        panic!(
            "'{}' has no dep-info beside it, so its freshness cannot be checked: build it with 'cargo build -p irf' (add --release for benchmarks)",
            binary.display()
        )
    });
    let sources = dep_info
        .split_once(": ")
        .map(|(_, deps)| deps)
        .unwrap_or_default();
    for source in sources.replace("\\ ", "\u{0}").split_whitespace() {
        let source = source.replace('\u{0}', " ");
        if let Ok(modified) = std::fs::metadata(&source).and_then(|m| m.modified()) {
            assert!(
                modified <= built,
                "'{}' is older than '{source}': rebuild it with 'cargo build -p irf' (.ci/run does)",
                binary.display()
            );
        }
    }
    binary
}

/// Runs `irf` with `args` and extra environment, without a terminal.
pub fn run_irf(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(irf_binary());
    command
        .args(args)
        .env_remove("AWS_PROFILE")
        .env("NO_COLOR", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run irf")
}

/// The JSON a successful irf run printed; `what` names the run in a failure.
pub fn json_of(what: &str, out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "{what} printed no JSON ({err}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs `irf args` as the shared lab's operator and returns the JSON it printed.
pub fn irf_json(args: &[&str]) -> serde_json::Value {
    json_of(&format!("irf {args:?}"), &run_irf(args, &lab_env(lab())))
}

/// The shared lab's suspect's open reverse-shell finding, as `irf findings --json` lists it.
pub fn suspects_reverse_shell_finding() -> serde_json::Value {
    let suspect = suspect(lab());
    let findings = irf_json(&["findings", "--json", "--filter", "reverse shell"]);
    findings
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["instance_id"] == suspect.id.as_str())
        .expect("the suspect's reverse-shell finding")
        .clone()
}

/// `irf` running in a pseudo-terminal, with a terminal emulator parsing its screen.
#[allow(missing_debug_implementations)] // holds trait objects of the pty crate
pub struct TerminalSession {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    parser: Arc<Mutex<vt100::Parser>>,
    _reader: std::thread::JoinHandle<()>,
}

impl TerminalSession {
    /// Starts `irf args` in a `rows` x `cols` terminal.
    pub fn start(args: &[&str], env: &[(&str, &str)], rows: u16, cols: u16) -> Self {
        use portable_pty::{CommandBuilder, PtySize, native_pty_system};
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pseudo-terminal");
        let mut command = CommandBuilder::new(irf_binary());
        command.args(args);
        command.env("TERM", "xterm-256color");
        command.env_remove("AWS_PROFILE");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = pair
            .slave
            .spawn_command(command)
            .expect("spawn irf in the terminal");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("terminal reader");
        let writer = pair.master.take_writer().expect("terminal writer");
        let parser = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZeroU16::new(rows).expect("rows > 0"),
            std::num::NonZeroU16::new(cols).expect("cols > 0"),
            0,
        )));
        let sink = parser.clone();
        let master = pair.master;
        let reader_thread = std::thread::spawn(move || {
            let _keep_master_open = master;
            let mut buffer = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("parser lock").process(&buffer[..n]);
            }
        });
        Self {
            child,
            writer,
            parser,
            _reader: reader_thread,
        }
    }

    /// The screen's text as it is now.
    pub fn screen(&self) -> String {
        self.parser.lock().expect("parser lock").screen().contents()
    }

    /// The rows inside the bordered panel whose top border begins `┌ {title}`, each between
    /// its side borders, down to its bottom border: what a panel beside another shows,
    /// without its neighbour. Read cell by cell (a wide character takes two) in one look at
    /// the screen; `None` when no such panel is on it.
    pub fn panel(&self, title: &str) -> Option<Vec<String>> {
        let parser = self.parser.lock().expect("parser lock");
        let screen = parser.screen();
        let (rows, cols) = screen.size();
        let (rows, cols) = (rows.get(), cols.get());
        let cell = |row: u16, col: u16| screen.cell(row, col).map_or("", |c| c.contents());
        let marker: Vec<String> = format!("┌ {title}").chars().map(String::from).collect();
        let matches_at = |row: u16, col: u16| {
            marker
                .iter()
                .enumerate()
                .all(|(i, c)| cell(row, col + i as u16) == c)
        };
        let (top, left) = (0..rows)
            .flat_map(|row| (0..cols).map(move |col| (row, col)))
            .find(|&(row, col)| matches_at(row, col))?;
        let right = (left + 1..cols).find(|&col| cell(top, col) == "┐")?;
        let bottom = (top + 1..rows)
            .find(|&row| cell(row, left) == "└")
            .unwrap_or(rows);
        Some(
            (top + 1..bottom)
                .map(|row| (left + 1..right).map(|col| cell(row, col)).collect())
                .collect(),
        )
    }

    /// Waits until the screen shows `needle`, and returns the screen.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "'{needle}' did not appear within {timeout:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `keys`.
    pub fn send(&mut self, keys: &str) {
        self.writer
            .write_all(keys.as_bytes())
            .expect("type into the terminal");
        self.writer.flush().expect("flush the terminal");
    }

    /// Waits for irf to exit and returns whether it succeeded.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll irf") {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "irf did not exit within {timeout:?}; the screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TerminalSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Waits up to ten seconds for the lab's emulator to exit; true when it has.
pub fn emulator_stops(state: &LabState) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    !state.is_running()
}
