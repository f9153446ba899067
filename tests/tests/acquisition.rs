//! The acquisition workflow end to end in the lab: a tag starts it, the lab runtime runs
//! every step through the real state machine, a worker dies mid-imaging and another
//! finishes the case, a corrupted block is fetched again, and the evidence in the bucket is
//! byte-identical to the seeded volume and memory.

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use irf_e2e::{context, irf_binary, lab, lab_env, run_irf};
use irf_engine::acquisition::Decision;
use irf_engine::model::case::{ArtifactKind, ArtifactState, Case, CaseStatus};
use irf_engine::model::case_detail::CaseDetail;
use irf_engine::model::manifest::{Manifest, manifest_key};
use irf_engine::plane::Plane;
use irf_lab::control::Control;
use irf_lab::runtime;
use sha2::{Digest, Sha256};

fn sha256_file(path: &Path) -> String {
    let mut file = std::fs::File::open(path).expect("open image");
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).expect("read image");
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    irf_engine::hex(&hasher.finalize())
}

async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn case_of(plane: &Plane, instance: &str) -> Option<Case> {
    plane
        .table
        .cases()
        .await
        .expect("list cases")
        .into_iter()
        .find(|c| c.subject.instance_id == instance)
}

fn kill_group(pid: u32) {
    let status = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill the runtime's process group");
}

#[tokio::test]
async fn a_tag_runs_the_whole_case_through_a_worker_crash_and_a_corrupt_block() {
    let state = lab();
    let dir = state.config_path.parent().expect("lab dir").to_owned();
    let ctx = context().await;
    let plane = Plane::connect(ctx.clone())
        .await
        .expect("workflow configured in the lab");
    let control = Control::new(&state.endpoint);
    let disk = state
        .seeded
        .disks
        .iter()
        .find(|d| !d.planted.is_empty())
        .expect("the suspect's disk");
    let suspect = state
        .seeded
        .instances
        .iter()
        .find(|i| i.id == disk.instance_id)
        .expect("the suspect instance");
    let expected_disk_sha = sha256_file(&disk.image);

    // The responder's move: the tag, as the console or the AWS CLI would set it.
    irf_e2e::set_incident_tag(
        &ctx,
        &suspect.account,
        &suspect.region,
        &suspect.id,
        "Analyze",
    )
    .await;

    let case = wait_for(
        "the tag to open a case",
        Duration::from_secs(60),
        async || case_of(&plane, &suspect.id).await,
    )
    .await;
    assert_eq!(case.trigger, irf_engine::model::case::Trigger::Tag);
    assert!(case.subject.memory && case.subject.disk);

    // Kill the runtime (worker, agent and all) while the disk is being imaged.
    let imaging = wait_for(
        "disk imaging to start",
        Duration::from_secs(120),
        async || {
            let detail = plane.table.detail(&case.case_id).await.expect("detail");
            detail
                .artifacts
                .iter()
                .find(|a| a.kind == ArtifactKind::Disk && a.state == ArtifactState::Acquiring)
                .cloned()
        },
    )
    .await;
    let old_pid = state.runtime_pid.expect("the lab runs a runtime");
    kill_group(old_pid);
    wait_for("the runtime to die", Duration::from_secs(10), async || {
        (!runtime::is_our_runtime(old_pid)).then_some(())
    })
    .await;
    // A damaged transfer on the next blocks served: the new worker must notice and refetch.
    control.corrupt_blocks(2).await.expect("inject corruption");
    let restarted = runtime::spawn(
        &irf_binary(),
        &dir,
        &dir.join("runtime-restarted.log"),
        true,
    )
    .expect("restart the runtime");

    // The case waits for containment approval (the default policy); reject it so that the
    // instance stays as it is and the case closes.
    let waiting = wait_for(
        "the case to reach approval",
        Duration::from_secs(300),
        async || {
            let detail = plane.table.detail(&case.case_id).await.expect("detail");
            assert_ne!(
                detail.case.status,
                CaseStatus::Failed,
                "case failed: {:?}",
                detail.case.error
            );
            (detail.case.status == CaseStatus::AwaitingApproval).then_some(detail)
        },
    )
    .await;
    assert!(
        waiting.approval.is_some(),
        "the case shows its approval wait"
    );
    let token = plane
        .table
        .approval_token(&case.case_id)
        .await
        .expect("read the token")
        .map(|t| t.expose().to_owned())
        .expect("the task token is kept");
    assert!(token.len() > 16, "a real task token: {token}");
    // Whoever holds the token (and states:SendTaskSuccess) answers the wait outside irf:
    // no output of irf's shows it.
    for args in [
        vec!["case", case.case_id.as_str(), "--json"],
        vec!["case", case.case_id.as_str()],
        vec!["cases", "--json"],
    ] {
        let out = run_irf(&args, &lab_env(state));
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "irf {args:?}: {printed}");
        assert!(
            !printed.contains(&token),
            "irf {args:?} printed the task token"
        );
    }
    irf_engine::desk::client::decide_case(
        &plane,
        &case.case_id,
        Decision::Reject {
            reason: "test: evidence only".into(),
        },
    )
    .await
    .expect("reject");
    let closed: CaseDetail = wait_for("the case to close", Duration::from_secs(120), async || {
        let detail = plane.table.detail(&case.case_id).await.expect("detail");
        (!detail.case.status.is_open()).then_some(detail)
    })
    .await;
    assert_eq!(
        closed.case.status,
        CaseStatus::Succeeded,
        "{:?}",
        closed.case.error
    );
    assert_eq!(closed.case.error, None, "both branches succeeded");
    let execution = closed
        .case
        .execution_arn
        .clone()
        .expect("execution recorded");
    // The closing step answers its task; the execution ends just after.
    let described = wait_for(
        "the execution to end",
        Duration::from_secs(30),
        async || {
            let out = plane
                .sfn
                .describe_execution()
                .execution_arn(&execution)
                .send()
                .await
                .expect("describe execution");
            (out.status() != &aws_sdk_sfn::types::ExecutionStatus::Running).then_some(out)
        },
    )
    .await;
    assert_eq!(
        described.status(),
        &aws_sdk_sfn::types::ExecutionStatus::Succeeded
    );

    // The disk image is the seeded volume, byte for byte.
    let disk_artifact = closed
        .artifacts
        .iter()
        .find(|a| a.kind == ArtifactKind::Disk)
        .expect("disk artifact");
    assert_eq!(disk_artifact.key, imaging.key);
    assert_eq!(disk_artifact.state, ArtifactState::Verified);
    let disk_manifest: Manifest = plane
        .evidence()
        .expect("evidence bucket")
        .get_json(&manifest_key(&disk_artifact.key))
        .await
        .expect("read manifest")
        .expect("disk manifest");
    assert_eq!(disk_manifest.sha256.as_ref(), Some(&expected_disk_sha));
    assert_eq!(disk_manifest.size, disk.size_bytes);
    // Stored as QCOW2, holding the data only; its raw image is the seeded volume.
    let read_back = plane
        .evidence()
        .expect("evidence bucket")
        .hash_object(&disk_artifact.key)
        .await
        .expect("hash disk");
    assert_eq!(
        (read_back.sha256.as_str(), read_back.size),
        (disk_manifest.stored_sha256(), disk_manifest.stored_size())
    );
    assert!(read_back.size < disk.size_bytes / 2, "{read_back:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("disk.raw");
    plane
        .evidence()
        .expect("evidence bucket")
        .export_artifact(&disk_manifest, &raw, true)
        .await
        .expect("the raw image exported");
    let raw_bytes = std::fs::read(&raw).expect("the raw image");
    assert_eq!(raw_bytes.len() as u64, disk.size_bytes);
    assert_eq!(
        irf_engine::hex(&Sha256::digest(&raw_bytes)),
        expected_disk_sha,
        "the raw image equals the seeded volume"
    );
    assert_eq!(
        disk_manifest.volume_id.as_deref(),
        Some(disk.volume_id.as_str())
    );
    assert!(disk_manifest.allocated_blocks.unwrap_or(0) > 0);
    assert!(
        disk_manifest.bytes_fetched.unwrap_or(u64::MAX) < disk.size_bytes,
        "only allocated blocks were fetched"
    );
    let faults = control.faults().await.expect("faults");
    assert!(
        faults["corrupted"].as_u64().unwrap_or(0) >= 1,
        "corruption was served: {faults}"
    );
    assert!(
        disk_manifest.blocks_retried.unwrap_or(0) >= 1,
        "the corrupted block was fetched again"
    );

    // The memory image: LiME, with the planted indicators, hash checked twice.
    let memory = closed
        .artifacts
        .iter()
        .find(|a| a.kind == ArtifactKind::Memory)
        .expect("memory artifact");
    assert_eq!(memory.state, ArtifactState::Verified);
    let memory_manifest: Manifest = plane
        .evidence()
        .expect("evidence bucket")
        .get_json(&manifest_key(&memory.key))
        .await
        .expect("read manifest")
        .expect("memory manifest");
    let object = plane
        .evidence()
        .expect("evidence bucket")
        .client()
        .get_object()
        .bucket(&plane.evidence().expect("evidence bucket").bucket)
        .key(&memory.key)
        .send()
        .await
        .expect("get memory image")
        .body
        .collect()
        .await
        .expect("read memory image")
        .into_bytes();
    let memory_sha = irf_engine::hex(&Sha256::digest(&object));
    assert_eq!(Some(&memory_sha), memory_manifest.sha256.as_ref());
    assert_eq!(memory_manifest.details["host_sha256"], memory_sha);
    assert_eq!(&object[..4], &0x4C69_4D45u32.to_le_bytes(), "LiME magic");
    let planted = irf_lab::hosts::PLANTED_MEMORY[0].as_bytes();
    assert!(
        object.windows(planted.len()).any(|w| w == planted),
        "the miner is in memory"
    );

    // The CLI shows the same case.
    let env = lab_env(state);
    let shown = run_irf(&["case", case.case_id.as_str(), "--json"], &env);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("case JSON");
    assert_eq!(json["case"]["status"], "succeeded");
    assert_eq!(json["artifacts"].as_array().map(Vec::len), Some(2));

    // An approval cannot be answered twice.
    let again =
        irf_engine::desk::client::decide_case(&plane, &case.case_id, Decision::Approve).await;
    assert!(
        again
            .expect_err("not waiting")
            .to_string()
            .contains("not waiting for approval")
    );
    // The shared lab keeps this runtime for the tests that run after this one: it ends
    // with the test process, which holds its standard input.
    std::mem::forget(restarted);
}

#[tokio::test]
async fn acquire_refuses_an_unknown_instance_by_name_and_records_nothing() {
    let state = lab();
    let ctx = context().await;
    let plane = Plane::connect(ctx).await.expect("workflow");
    let member = &state.seeded.members[0];
    let subject = irf_engine::model::case::CaseSubject {
        account: member.id.clone(),
        region: "us-east-1".into(),
        instance_id: "i-0000000000000dead".into(),
        memory: true,
        disk: true,
        containment: irf_engine::model::case::ContainmentPolicy::Never,
    };
    // Asked as the CLI and the workstation ask: the desk's refusal names the instance.
    let err = irf_engine::desk::client::open_case(&plane, subject)
        .await
        .expect_err("unknown");
    let text = err.to_string();
    assert!(
        text.contains("i-0000000000000dead") && text.contains(member.id.as_str()),
        "{text}"
    );
    assert!(
        case_of(&plane, "i-0000000000000dead").await.is_none(),
        "nothing recorded"
    );
}

/// The lab on its own: `irf lab up --detach` returns, and a tag set with the AWS CLI runs the
/// acquisition to its approval wait with no irf process open; a rejection closes it.
#[tokio::test]
async fn a_tag_set_with_the_aws_cli_on_a_detached_lab_acquires_with_no_irf_process_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab_dir = dir.path().to_str().expect("utf-8 path").to_owned();
    let env = [("IRF_LAB_DIR", lab_dir.as_str())];
    let up = run_irf(&["lab", "up", "--detach"], &env);
    assert!(
        up.status.success(),
        "lab up failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let state = irf_lab::LabState::load(dir.path())
        .expect("state")
        .expect("running");
    let runtime_pid = state
        .runtime_pid
        .expect("a runtime runs beside the emulator");
    assert!(
        runtime::is_our_runtime(runtime_pid),
        "the runtime outlives 'irf lab up --detach'"
    );
    let disk = state
        .seeded
        .disks
        .iter()
        .find(|d| !d.planted.is_empty())
        .expect("suspect disk");
    let suspect = state
        .seeded
        .instances
        .iter()
        .find(|i| i.id == disk.instance_id)
        .expect("suspect");

    let aws = irf_lab::install::installed()
        .expect("venv")
        .expect("installed")
        .aws_cli();
    let script = format!(
        r#"set -e
eval "$({irf} lab env)"
creds=$({aws} sts assume-role --role-arn arn:aws:iam::{account}:role/IRAutomation --role-session-name responder \
  --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)
set -- $creds
AWS_ACCESS_KEY_ID=$1 AWS_SECRET_ACCESS_KEY=$2 AWS_SESSION_TOKEN=$3 \
  {aws} ec2 create-tags --region {region} --resources {instance} --tags Key=SecurityIncidentStatus,Value=Analyze
"#,
        irf = irf_binary().display(),
        aws = aws.display(),
        account = suspect.account,
        region = suspect.region,
        instance = suspect.id,
    );
    let tagged = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("IRF_LAB_DIR", &lab_dir)
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run the AWS CLI");
    assert!(
        tagged.status.success(),
        "AWS CLI failed: {}",
        String::from_utf8_lossy(&tagged.stderr)
    );

    // Watch the case table directly: no irf process is involved until the case waits.
    let ctx = state.connect().await.expect("connect");
    let plane = Plane::connect(ctx).await.expect("workflow");
    let waiting = wait_for(
        "the case to reach approval",
        Duration::from_secs(240),
        async || {
            let case = case_of(&plane, &suspect.id).await?;
            let detail = plane.table.detail(&case.case_id).await.expect("detail");
            assert_ne!(
                detail.case.status,
                CaseStatus::Failed,
                "{:?}",
                detail.case.error
            );
            (detail.case.status == CaseStatus::AwaitingApproval).then_some(detail)
        },
    )
    .await;
    assert_eq!(waiting.artifacts.len(), 2, "disk and memory");
    assert!(
        waiting
            .artifacts
            .iter()
            .all(|a| a.state == ArtifactState::Verified)
    );

    let case_id = waiting.case.case_id.to_string();
    let env_with_lab = lab_env(&state);
    let listed = run_irf(&["cases", "--json"], &env_with_lab);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let cases: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("cases JSON");
    assert!(
        cases
            .as_array()
            .is_some_and(|all| all.iter().any(|c| c["case_id"] == case_id.as_str()))
    );
    // A wrong confirmation changes nothing; the rejection from the command line closes it.
    let wrong = run_irf(
        &["approve", &case_id, "--confirm", "i-0123456789abcdef0"],
        &env_with_lab,
    );
    assert!(!wrong.status.success());
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        said.contains("i-0123456789abcdef0") && said.contains(&suspect.id),
        "{said}"
    );
    let still = plane
        .table
        .detail(&waiting.case.case_id)
        .await
        .expect("detail");
    assert_eq!(
        still.case.status,
        CaseStatus::AwaitingApproval,
        "nothing changed"
    );
    let rejected = run_irf(
        &["reject", &case_id, "--reason", "evidence only"],
        &env_with_lab,
    );
    assert!(
        rejected.status.success(),
        "{}",
        String::from_utf8_lossy(&rejected.stderr)
    );
    let closed = wait_for("the case to close", Duration::from_secs(60), async || {
        let detail = plane
            .table
            .detail(&waiting.case.case_id)
            .await
            .expect("detail");
        (!detail.case.status.is_open()).then_some(detail)
    })
    .await;
    assert_eq!(closed.case.status, CaseStatus::Succeeded);

    let down = run_irf(&["lab", "down"], &env);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    wait_for(
        "the runtime to stop with the lab",
        Duration::from_secs(15),
        async || (!runtime::is_our_runtime(runtime_pid)).then_some(()),
    )
    .await;
}

#[tokio::test]
async fn memory_is_captured_from_an_instance_that_prepare_just_gave_a_profile() {
    // A bastion carries no instance profile: prepare gives it irf's IR profile, and its SSM
    // agent picks the credentials up only after a while (the lab waits seconds, AWS up to
    // minutes), during which Run Command answers InvalidInstanceId. The capture waits for
    // the agent instead of failing the case. The lab's bastions also have fragmented RAM:
    // more ranges than Run Command's 24,000 characters of output could list.
    let state = lab();
    let bastion = state
        .seeded
        .instances
        .iter()
        .find(|i| i.name.contains("-bastion-") && i.state == "running")
        .expect("a running bastion in the lab");
    let out = irf_e2e::acquire_memory_only(bastion);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let opened: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let case_id = opened["case_id"].as_str().expect("case_id");
    let plane = Plane::connect(context().await).await.expect("plane");
    let detail = plane
        .table
        .detail(&irf_engine::model::case::CaseId::parse(case_id).expect("case id"))
        .await
        .expect("the case");
    assert_eq!(detail.case.status, CaseStatus::Succeeded, "{detail:?}");
    let memory = detail
        .artifacts
        .iter()
        .find(|a| a.kind == ArtifactKind::Memory)
        .expect("the memory image");
    let manifest: Manifest = plane
        .evidence()
        .expect("evidence")
        .get_json(&manifest_key(&memory.key))
        .await
        .expect("read")
        .expect("the manifest");
    let ranges = manifest.details["ranges"].as_array().expect("ranges");
    assert_eq!(
        ranges.len() as u64,
        2 + irf_lab::hosts::FRAGMENTS,
        "every range, read back from the image's LiME headers"
    );
    assert!(
        manifest.details["ranges"].to_string().len() > 24_000,
        "more than Run Command's output could have carried"
    );
}

#[tokio::test]
async fn a_host_claiming_more_memory_than_its_instance_type_has_is_refused() {
    // Root on a compromised host controls what its kernel interfaces say. One that claims
    // 2 TiB of RAM would have irf store, and lock for years, whatever it uploads: the
    // claim is bounded by the instance type's memory before anything is uploaded.
    let state = lab();
    let suspect = irf_e2e::suspect(state);
    let host = state
        .seeded
        .instances
        .iter()
        .find(|i| i.name.contains("-db-") && i.state == "running" && i.id != suspect.id)
        .expect("a running database server in the lab");
    let hosts = state.config_path.parent().expect("lab dir").join("hosts");
    let dirs = irf_lab::hosts::host_dirs(
        &hosts,
        &host.id,
        false,
        irf_lab::hosts::RamLayout::Contiguous,
        "6.1.0-irf-lab",
    )
    .expect("the host's files");
    std::fs::write(
        dirs.proc.join("iomem"),
        "00001000-0009fbff : System RAM\n00100000-200000ffffff : System RAM\n",
    )
    .expect("the host lies about its RAM");
    let out = irf_e2e::acquire_memory_only(host);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let plane = Plane::connect(context().await).await.expect("plane");
    let case = case_of(&plane, &host.id).await.expect("the case");
    let detail = plane.table.detail(&case.case_id).await.expect("detail");
    let recorded = format!("{detail:?}");
    assert!(
        recorded.contains("claims") && recorded.contains("instance type"),
        "the refusal names the claim and the instance type: {said}\n{recorded}"
    );
    assert!(
        detail
            .artifacts
            .iter()
            .all(|a| !matches!(a.state, ArtifactState::Written | ArtifactState::Verified)),
        "nothing was captured: {recorded}"
    );
}

/// A value that cannot be an instance id is refused by name before irf asks AWS anything, by
/// every command that places an instance.
#[test]
fn a_malformed_instance_id_is_refused_by_name() {
    let env = lab_env(lab());
    for args in [
        vec!["acquire", "--instance", "not-an-id"],
        vec!["contain", "plan", "not-an-id"],
    ] {
        let out = run_irf(&args, &env);
        assert!(!out.status.success(), "irf {args:?} succeeded");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("'not-an-id' is not an EC2 instance id"),
            "irf {args:?}: {said}"
        );
    }
}
