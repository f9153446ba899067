//! The Organization sweep against a sequential AWS CLI loop, on the same lab, in one run;
//! then the same sweep with a fixed per-call latency in front of the emulator, against the
//! bound of calls x latency / concurrency.
//!
//! Also the time from starting `irf` to its first frame in a pseudo-terminal.
//!
//! `cargo build --release -p irf && cargo bench -p irf-e2e --bench sweep` (defaults: 50
//! member accounts x 4 regions, 100 ms). Environment: IRF_BENCH_MEMBERS,
//! IRF_BENCH_LATENCY_MS, IRF_BENCH_SKIP_CLI=1.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use irf_engine::aws::AwsContext;
use irf_engine::inventory;
use irf_lab::control::Control;
use irf_lab::seed::SeedOptions;
use irf_lab::{Lab, LabOptions};

const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2"];

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn timed_sweep(context: Arc<AwsContext>) -> (Duration, usize, usize) {
    let started = Instant::now();
    let scope = context.sweep_scope().await.expect("scope");
    let snapshot = inventory::sweep_all(context, scope).await;
    (
        started.elapsed(),
        snapshot.instances.len(),
        snapshot.failures.len(),
    )
}

fn main() {
    // `cargo bench` passes --bench; this bench takes no arguments of its own.
    let members = env_number("IRF_BENCH_MEMBERS", 50) as usize;
    let latency_ms = env_number("IRF_BENCH_LATENCY_MS", 100) as u32;
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 << 20)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let options = LabOptions {
            dir: dir.path().to_owned(),
            port: None,
            latency_ms: 0,
            tie_to_this_process: true,
            // The sweep needs no workflow runtime.
            runtime_exe: None,
            authorization: Default::default(),
            time_scale: 1,
            seed: SeedOptions {
                members,
                regions: REGIONS.map(str::to_owned).to_vec(),
                instances: members * 4,
                unmanaged_account: false,
                ..SeedOptions::default()
            },
        };
        let seeding = Instant::now();
        let lab = Lab::up(&options, &|_| {}).await.expect("lab");
        let state = lab.state.clone();
        println!(
            "lab: {members} member accounts x {} regions, {} instances, seeded in {:.1} s",
            REGIONS.len(),
            state.seeded.instances.len(),
            seeding.elapsed().as_secs_f64()
        );
        let context = state.connect().await.expect("context");
        let concurrency = context.config().api.concurrency;

        // Warm the emulator's per-account backends once, as a responder's first sweep would.
        timed_sweep(context.clone()).await;
        let mut runs: Vec<Duration> = Vec::new();
        let mut found = 0;
        for _ in 0..3 {
            let fresh = Arc::new(
                AwsContext::connect(Arc::new(context.config().clone()), &state.operator_options().expect("the operator"),).await,
            );
            let (elapsed, instances, failures) = timed_sweep(fresh).await;
            assert_eq!(failures, 0, "the sweep failed somewhere");
            found = instances;
            runs.push(elapsed);
        }
        runs.sort();
        let engine = runs[1];
        println!("irf sweep (median of 3, fresh credentials each): {:.3} s, {found} instances", engine.as_secs_f64());

        if std::env::var("IRF_BENCH_SKIP_CLI").is_err() {
            let aws = irf_lab::install::installed().expect("venv").expect("installed").aws_cli();
            let accounts: Vec<String> = state.seeded.members.iter().map(|m| m.id.to_string()).collect();
            let script = format!(
                r#"set -e
for account in {accounts}; do
  set -- $({aws} sts assume-role --role-arn arn:aws:iam::$account:role/IRAutomation --role-session-name bench \
    --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)
  for region in {regions}; do
    AWS_ACCESS_KEY_ID=$1 AWS_SECRET_ACCESS_KEY=$2 AWS_SESSION_TOKEN=$3 \
      {aws} ec2 describe-instances --region $region --query 'length(Reservations[].Instances[])' --output text
  done
done"#,
                accounts = accounts.join(" "),
                aws = aws.display(),
                regions = REGIONS.join(" "),
            );
            let operator = state.operator.as_ref().expect("the operator");
            let started = Instant::now();
            let out = Command::new("bash")
                .arg("-c")
                .arg(&script)
                .env("AWS_ENDPOINT_URL", &state.endpoint)
                .env("AWS_ACCESS_KEY_ID", &operator.access_key_id)
                .env("AWS_SECRET_ACCESS_KEY", &operator.secret_access_key)
                .env("AWS_SESSION_TOKEN", &operator.session_token)
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .env_remove("AWS_PROFILE")
                .output()
                .expect("AWS CLI loop");
            let cli = started.elapsed();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let counted: usize =
                String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|n| n.parse::<usize>().ok()).sum();
            println!(
                "sequential aws CLI loop ({} assume-role + {} describe-instances calls): {:.1} s, {counted} instances",
                accounts.len(),
                accounts.len() * REGIONS.len(),
                cli.as_secs_f64()
            );
            println!("speed-up: {:.1}x (goal: at least 25x)", cli.as_secs_f64() / engine.as_secs_f64());
        }

        // Time to first frame: from spawning irf to its header on the terminal.
        let operator = state.operator.as_ref().expect("the operator");
        let env = [
            ("AWS_ENDPOINT_URL", state.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", operator.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", operator.secret_access_key.as_str()),
            ("AWS_SESSION_TOKEN", operator.session_token.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("IRF_CONFIG", state.config_path.to_str().expect("utf-8")),
        ];
        let mut first_frames = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let mut session = irf_e2e::TerminalSession::start(&[], &env, 40, 160);
            session.wait_for(" irf ", Duration::from_secs(10));
            first_frames.push(started.elapsed());
            session.send("q");
            session.wait_exit(Duration::from_secs(10));
        }
        first_frames.sort();
        println!(
            "first frame (median of 5, process start to header on screen): {:.0} ms (goal: under 300 ms)",
            first_frames[2].as_secs_f64() * 1000.0
        );

        let control = Control::new(&state.endpoint);
        control.set_latency(latency_ms).await.expect("latency");
        let fresh = Arc::new(
            AwsContext::connect(Arc::new(context.config().clone()), &state.operator_options().expect("the operator"),).await,
        );
        let (elapsed, instances, failures) = timed_sweep(fresh).await;
        let calls = control.calls().await.expect("call count");
        let bound = calls as f64 * f64::from(latency_ms) / 1000.0 / concurrency as f64;
        println!(
            "with {latency_ms} ms per call: {:.3} s for {calls} calls ({instances} instances, {failures} failures); \
             calls x latency / concurrency ({concurrency}) = {bound:.3} s; ratio {:.2} (goal: within 2x)",
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() / bound
        );
        lab.down(dir.path());
    });
}
