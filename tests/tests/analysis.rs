//! Analysis in the lab: the SIFT pipeline's builds, a host launched for a case (isolated,
//! with the case's evidence verified on it), Session Manager shells and port forwarding
//! into it, terminate, the workstation handing its terminal to a session and back, and a
//! finding resolved from the workstation recorded in its instance's case.

use std::io::{Read, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use irf_e2e::{TerminalSession, context, irf_json, json_of, lab, lab_env, run_irf, suspect};
use irf_engine::analysis::Analysis;
use sha2::{Digest, Sha256};

/// Held by the gigabyte transfer and the 30 GiB raw image's hashing, which keep both cores
/// busy for a minute or more, and by the tests that wait on a terminal's screen with a
/// timeout, so that neither runs beside the other.
static BUSY_CORES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A finished memory-only case of the suspect, acquired once for the tests of this file
/// (memory alone keeps the copies on the hosts small).
fn memory_case() -> &'static str {
    static CASE: OnceLock<String> = OnceLock::new();
    CASE.get_or_init(|| acquire_memory(suspect(lab())))
}

/// Acquires the memory of `instance` (no disk, no containment) and waits for the case.
fn acquire_memory(instance: &irf_lab::seed::LabInstance) -> String {
    let opened = json_of(
        "irf acquire (memory only)",
        &irf_e2e::acquire_memory_only(instance),
    );
    opened["case_id"]
        .as_str()
        .expect("the case carries case_id")
        .to_owned()
}

/// Starts `irf session forward` to `remote_port` on the host; returns it and the local
/// address it printed.
fn start_forward(instance_id: &str, remote_port: u16) -> (std::process::Child, String) {
    let mut forward = std::process::Command::new(irf_e2e::irf_binary())
        .args(["session", "forward", instance_id, &remote_port.to_string()])
        .envs(lab_env(lab()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("irf session forward");
    let mut address = String::new();
    let mut stdout = forward.stdout.take().expect("stdout");
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).expect("read the address") == 1 && byte[0] != b'\n' {
        address.push(byte[0] as char);
    }
    (forward, address)
}

/// Launches a host for `case_id`; the launch says each stage as it starts, in order.
fn launch(case_id: &str) -> serde_json::Value {
    let args = ["hosts", "launch", "--case", case_id, "--json"];
    let out = run_irf(&args, &lab_env(lab()));
    let launched = json_of(&format!("irf {args:?}"), &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let instance_id = launched["instance_id"].as_str().unwrap_or("-");
    let stages = [
        "checking the evidence".to_owned(),
        "launching from SIFT image".to_owned(),
        format!("{instance_id} launched: waiting for its SSM agent"),
        "artifacts (".to_owned(),
        format!("checking what {instance_id} fetched"),
    ];
    let mut from = 0;
    for stage in &stages {
        let at = stderr[from..]
            .find(stage.as_str())
            .unwrap_or_else(|| panic!("no stage '{stage}' after the ones before:\n{stderr}"));
        from += at + stage.len();
    }
    launched
}

/// EC2 of the Forensics account as its administrator sees it: what the tests observe, not
/// what irf's roles may do.
async fn forensics_ec2() -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&irf_e2e::forensics_admin().await)
}

fn ledger_actions(case_id: &str) -> Vec<(String, String)> {
    let case = irf_json(&["case", case_id, "--json"]);
    case["ledger"]
        .as_array()
        .expect("the case's ledger")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["target"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_build_becomes_an_available_image_with_a_registered_ami() {
    let before = irf_json(&["images", "--json"]);
    let versions_before: Vec<String> = before["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| i["version"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        !versions_before.is_empty(),
        "the lab's pipeline has an image"
    );
    assert!(
        before["pipeline"]["next_run"].as_str().is_some(),
        "{before}"
    );
    let started = irf_json(&["images", "build", "--json"]);
    let arn = started["image_build_version_arn"]
        .as_str()
        .expect("the build's ARN")
        .to_owned();
    // It shows at once, building; then it becomes available with an AMI.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut states = Vec::new();
    let image = loop {
        let listed = irf_json(&["images", "--json"]);
        let image = listed["images"]
            .as_array()
            .expect("images")
            .iter()
            .find(|i| i["arn"] == arn.as_str())
            .cloned()
            .expect("the new build is listed");
        let state = image["state"].as_str().unwrap_or_default().to_owned();
        if states.last() != Some(&state) {
            states.push(state.clone());
        }
        if state == "AVAILABLE" {
            break image;
        }
        assert!(Instant::now() < deadline, "states seen: {states:?}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        states.len() > 1,
        "the build was seen before it was available: {states:?}"
    );
    assert!(!versions_before.contains(&image["version"].as_str().unwrap_or_default().to_owned()));
    let ami = image["amis"][0]["ami_id"]
        .as_str()
        .expect("an AMI")
        .to_owned();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let described = runtime.block_on(async {
        forensics_ec2()
            .await
            .describe_images()
            .image_ids(&ami)
            .send()
            .await
            .expect("describe the AMI")
    });
    assert_eq!(described.images().len(), 1, "the AMI is registered in EC2");
}

#[tokio::test]
async fn a_launched_host_is_isolated_holds_verified_evidence_and_terminates() {
    let case_id = memory_case();
    let launched = launch(case_id);
    let instance_id = launched["instance_id"]
        .as_str()
        .expect("launch prints instance_id")
        .to_owned();
    let settings = &lab()
        .seeded
        .analysis
        .as_ref()
        .expect("the lab's analysis VPC")
        .clone();

    let ec2 = forensics_ec2().await;
    let described = ec2
        .describe_instances()
        .instance_ids(&instance_id)
        .send()
        .await
        .expect("describe the host");
    let host = described.reservations()[0].instances()[0].clone();
    // In a private subnet of the Analysis VPC: a configured subnet, no public address, and a
    // route table without an internet or NAT gateway.
    assert_eq!(host.vpc_id(), Some(settings.vpc_id.as_str()));
    let subnet = host.subnet_id().expect("a subnet").to_owned();
    assert!(settings.subnet_ids.contains(&subnet), "{subnet}");
    assert_eq!(host.public_ip_address(), None, "no public address");
    assert!(
        host.network_interfaces()
            .iter()
            .all(|eni| eni.association().and_then(|a| a.public_ip()).is_none()),
        "no interface has a public address"
    );
    let routes = ec2
        .describe_route_tables()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("association.subnet-id")
                .values(&subnet)
                .build(),
        )
        .send()
        .await
        .expect("route tables");
    assert!(
        !routes.route_tables().is_empty(),
        "the subnet has its own route table"
    );
    for route in routes.route_tables().iter().flat_map(|t| t.routes()) {
        assert!(
            route.nat_gateway_id().is_none()
                && !route.gateway_id().is_some_and(|g| g.starts_with("igw-")),
            "no way out: {route:?}"
        );
    }
    // The analysis hosts' group on its interface (HTTPS out only, nothing in).
    let interface = &host.network_interfaces()[0];
    assert_eq!(
        interface
            .groups()
            .iter()
            .filter_map(|g| g.group_id())
            .collect::<Vec<_>>(),
        [settings.security_group_id.as_str()]
    );
    assert_eq!(interface.subnet_id(), Some(subnet.as_str()));
    // The analyst profile, IMDSv2 only, an encrypted root volume, the case's tags.
    assert!(
        host.iam_instance_profile()
            .and_then(|p| p.arn())
            .is_some_and(|arn| arn.ends_with(&format!("/{}", settings.instance_profile))),
        "{:?}",
        host.iam_instance_profile()
    );
    assert_eq!(
        host.metadata_options().and_then(|m| m.http_tokens()),
        Some(&aws_sdk_ec2::types::HttpTokensState::Required)
    );
    let root = host
        .block_device_mappings()
        .iter()
        .find_map(|m| m.ebs().and_then(|e| e.volume_id()))
        .expect("a root volume")
        .to_owned();
    let volumes = ec2
        .describe_volumes()
        .volume_ids(&root)
        .send()
        .await
        .expect("the root volume");
    assert_eq!(
        volumes.volumes()[0].encrypted(),
        Some(true),
        "encrypted root"
    );
    let tag = |key: &str| {
        host.tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    assert_eq!(tag("irf:case").as_deref(), Some(case_id));
    assert_eq!(tag("irf:role").as_deref(), Some("analysis-host"));
    assert_eq!(tag("irf:evidence").as_deref(), Some("verified 1/1"));

    // The evidence is on the host, read-only, and hashes to its manifest's SHA-256.
    let case = irf_json(&["case", case_id, "--json"]);
    let artifact = &case["artifacts"][0];
    let expected = artifact["sha256"].as_str().expect("artifact hash");
    let held = &launched["evidence"][0];
    assert_eq!(held["sha256"], expected);
    let path = std::path::Path::new(held["path"].as_str().expect("path on the host"));
    assert!(
        path.starts_with(
            lab()
                .config_path
                .parent()
                .expect("lab dir")
                .join("hosts")
                .join(&instance_id)
        ),
        "{}",
        path.display()
    );
    let bytes = std::fs::read(path).expect("the evidence on the host");
    assert_eq!(
        bytes.len() as u64,
        artifact["bytes_total"].as_u64().expect("size")
    );
    assert_eq!(irf_engine::hex(&Sha256::digest(&bytes)), expected);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(path).expect("mode").permissions().mode() & 0o777,
        0o444
    );
    // Every directory the fetch made, from the evidence root down, lets the analyst's
    // session user (not the root that Run Command runs as) reach the file, and none can be
    // written.
    let evidence_root = lab()
        .config_path
        .parent()
        .expect("lab dir")
        .join("hosts")
        .join(&instance_id)
        .join("evidence");
    for dir in path.ancestors().skip(1) {
        let mode = std::fs::metadata(dir).expect("mode").permissions().mode() & 0o777;
        assert_eq!(mode & 0o005, 0o005, "{} is {mode:o}", dir.display());
        if dir != evidence_root {
            assert_eq!(mode & 0o222, 0, "{} is {mode:o}", dir.display());
        }
        if dir == evidence_root {
            break;
        }
    }

    let actions = ledger_actions(case_id);
    let host_target = format!(
        "{}/{}/{instance_id}",
        lab().seeded.forensics,
        irf_lab::LAB_REGION
    );
    for wanted in ["analysis host launched", "analysis host evidence verified"] {
        assert!(
            actions
                .iter()
                .any(|(a, t)| a == wanted && *t == host_target),
            "{wanted} for {host_target} in {actions:?}"
        );
    }

    // The host is listed with its case, evidence and reachability.
    let hosts = irf_json(&["hosts", "--json"]);
    let listed = hosts
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["instance_id"] == instance_id.as_str())
        .expect("the host is listed")
        .clone();
    assert_eq!(listed["case_id"], case_id);
    assert_eq!(listed["ssm"], "online");
    assert_eq!(listed["imdsv2_required"], true);

    // A wrong confirmation changes nothing; the right one terminates it.
    let refused = run_irf(
        &["hosts", "terminate", &instance_id, "--confirm", "i-0wrong"],
        &lab_env(lab()),
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("does not match"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let out = run_irf(
        &[
            "hosts",
            "terminate",
            &instance_id,
            "--confirm",
            &instance_id,
        ],
        &lab_env(lab()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = ec2
        .describe_instances()
        .instance_ids(&instance_id)
        .send()
        .await
        .expect("describe")
        .reservations()[0]
        .instances()[0]
        .state()
        .and_then(|s| s.name())
        .cloned();
    assert!(
        matches!(
            state,
            Some(
                aws_sdk_ec2::types::InstanceStateName::ShuttingDown
                    | aws_sdk_ec2::types::InstanceStateName::Terminated
            )
        ),
        "{state:?}"
    );
    let hosts = irf_json(&["hosts", "--json"]);
    assert!(
        !hosts
            .as_array()
            .expect("hosts")
            .iter()
            .any(|h| h["instance_id"] == instance_id.as_str()),
        "a terminated host is gone from the list"
    );
    assert!(
        ledger_actions(case_id)
            .iter()
            .any(|(a, t)| a == "analysis host terminated" && *t == host_target)
    );
    // Every entry added keeps the chain whole.
    let verified = run_irf(&["verify", case_id], &lab_env(lab()));
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_gets_the_version_its_manifest_names_after_the_key_is_written_again() {
    // A case of its own (another instance): its artifact's key is overwritten here.
    let suspect_id = suspect(lab()).id.clone();
    let other = lab()
        .seeded
        .instances
        .iter()
        .find(|i| i.state == "running" && i.name.contains("batch") && i.id != suspect_id)
        .expect("a running batch instance");
    let case_id = acquire_memory(other);
    let case = irf_json(&["case", &case_id, "--json"]);
    let artifact = &case["artifacts"][0];
    let key = artifact["key"].as_str().expect("artifact key");
    let expected = artifact["sha256"].as_str().expect("artifact hash");

    // The key written again (a mistaken re-upload, or tampering, by someone who may write
    // there: the automation's role): a newer version that is not the evidence.
    let bucket = lab()
        .seeded
        .plane
        .as_ref()
        .expect("workflow")
        .evidence_bucket
        .clone();
    aws_sdk_s3::Client::new(
        &irf_e2e::automation_context()
            .await
            .base_config(irf_lab::LAB_REGION),
    )
    .put_object()
    .bucket(&bucket)
    .key(key)
    .body(b"not the evidence".to_vec().into())
    .send()
    .await
    .expect("overwrite the key");

    let launched = launch(&case_id);
    let held = &launched["evidence"][0];
    assert_eq!(held["sha256"], expected, "{launched}");
    let bytes = std::fs::read(held["path"].as_str().expect("path on the host"))
        .expect("the evidence on the host");
    assert_eq!(irf_engine::hex(&Sha256::digest(&bytes)), expected);

    let instance_id = launched["instance_id"].as_str().expect("instance_id");
    let plane = irf_engine::plane::Plane::connect(context().await)
        .await
        .expect("plane");
    let analysis = Analysis::connect(context().await).await.expect("analysis");
    irf_engine::analysis::hosts::terminate(&analysis, &plane, instance_id, instance_id)
        .await
        .expect("terminate");
}

/// A disk image reaches a host as the QCOW2 image S3 holds, checked there, with a sparse
/// raw image beside it. The volume is one of the lab's 30 GiB ones, mostly empty, so its
/// raw hash was left for later: the case says so until the first raw export computes it
/// and records it, and the raw image on the host hashes to it. The host's record of the
/// image names the same bytes as its writer's, so the case verifies throughout.
#[tokio::test(flavor = "multi_thread")]
async fn a_disk_image_lands_on_a_host_with_its_raw_image_and_its_raw_hash_comes_later() {
    // An instance no other test here acquires (a case is joined while one is open), whose
    // root volume is past the lab's bound for hashing zeros while imaging.
    let suspect_id = suspect(lab()).id.clone();
    let admin = irf_e2e::admin_context().await;
    let mut chosen = None;
    for instance in lab()
        .seeded
        .instances
        .iter()
        .filter(|i| i.state == "running" && i.id != suspect_id && !i.name.contains("batch"))
    {
        let config = admin
            .account_config(&instance.account, &instance.region)
            .await
            .expect("the member account as its administrator");
        let size = aws_sdk_ec2::Client::new(&config)
            .describe_volumes()
            .volume_ids(&instance.root_volume_id)
            .send()
            .await
            .expect("describe the root volume")
            .volumes()
            .first()
            .and_then(|v| v.size());
        if size == Some(30) {
            chosen = Some(instance);
            break;
        }
    }
    let instance = chosen.expect("a running instance with a 30 GiB root volume");
    let opened = json_of(
        "irf acquire (disk only)",
        &run_irf(
            &[
                "acquire",
                "--instance",
                &instance.id,
                "--account",
                instance.account.as_str(),
                "--no-memory",
                "--containment",
                "never",
                "--wait",
                "--json",
            ],
            &lab_env(lab()),
        ),
    );
    let case_id = opened["case_id"].as_str().expect("case_id").to_owned();
    let case = irf_json(&["case", &case_id, "--json"]);
    let artifact = &case["artifacts"][0];
    let key = artifact["key"].as_str().expect("artifact key").to_owned();
    assert_eq!(
        artifact["sha256"],
        serde_json::Value::Null,
        "left for later: {case}"
    );
    let verified = irf_json(&["verify", &case_id, "--json"]);
    let item = verified["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["item"] == key.as_str())
        .expect("the image is verified")
        .clone();
    assert_eq!(item["verified"], true, "{item}");
    assert!(
        item["detail"]
            .as_str()
            .is_some_and(|d| d.contains("raw image SHA-256 not yet computed")),
        "{item}"
    );

    let launched = launch(&case_id);
    let held = &launched["evidence"][0];
    let image = std::path::PathBuf::from(held["path"].as_str().expect("path on the host"));
    assert_eq!(
        image.extension().and_then(|e| e.to_str()),
        Some("qcow2"),
        "{launched}"
    );
    let stored = std::fs::read(&image).expect("the image on the host");
    assert_eq!(
        held["sha256"].as_str(),
        Some(irf_engine::hex(&Sha256::digest(&stored)).as_str())
    );
    let raw = image.with_extension("raw");
    let meta = std::fs::metadata(&raw).expect("the raw image beside it");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(meta.permissions().mode() & 0o777, 0o444);
    assert_eq!(meta.len(), 30 << 30);
    assert!(
        meta.blocks() * 512 <= stored.len() as u64 + (1 << 20),
        "sparse: {} bytes on disk for {} of data stored",
        meta.blocks() * 512,
        stored.len()
    );
    drop(stored);

    // The first raw export computes the raw hash and records it. It and the hash below
    // read 30 GiB each: both cores, kept from the tests that wait on a screen.
    let _cores = BUSY_CORES.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let exported_to = dir.path().join("disk.raw");
    let out = run_irf(
        &[
            "evidence",
            "export",
            &key,
            "-o",
            exported_to.to_str().expect("utf-8"),
            "--raw",
        ],
        &lab_env(lab()),
    );
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw_sha256 = printed
        .split_whitespace()
        .find(|word| word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit()))
        .expect("the export prints the raw image's hash")
        .to_owned();
    assert!(
        printed.contains("left for later at acquisition: now in the ledger"),
        "{printed}"
    );
    drop(dir);
    // The raw image on the host is the same volume: a megabyte at a time, 30 GiB of it.
    let mut file = std::fs::File::open(&raw).expect("the raw image");
    let (mut hasher, mut buffer) = (Sha256::new(), vec![0u8; 1 << 20]);
    loop {
        let read = file.read(&mut buffer).expect("read the raw image");
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    assert_eq!(irf_engine::hex(&hasher.finalize()), raw_sha256);

    let verified = irf_json(&["verify", &case_id, "--json"]);
    let items = verified["items"].as_array().expect("items");
    assert!(items.iter().all(|i| i["verified"] == true), "{verified}");
    let item = items
        .iter()
        .find(|i| i["item"] == key.as_str())
        .expect("the image");
    assert!(
        item["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("raw image SHA-256 {raw_sha256}"))),
        "{item}"
    );
    let instance_id = launched["instance_id"].as_str().expect("instance_id");
    let plane = irf_engine::plane::Plane::connect(context().await)
        .await
        .expect("plane");
    let analysis = Analysis::connect(context().await).await.expect("analysis");
    irf_engine::analysis::hosts::terminate(&analysis, &plane, instance_id, instance_id)
        .await
        .expect("terminate");
}

#[test]
fn only_analysis_hosts_are_terminated_and_launches_name_what_is_missing() {
    // The suspect is not an analysis host: terminate refuses it by name, whatever is typed.
    let suspect = suspect(lab());
    let out = run_irf(
        &["hosts", "terminate", &suspect.id, "--confirm", &suspect.id],
        &lab_env(lab()),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not an analysis host"), "{stderr}");
    // A case that does not exist is named.
    let out = run_irf(
        &[
            "hosts",
            "launch",
            "--case",
            "20200101T000000Z-i-0123456789abcdef0",
        ],
        &lab_env(lab()),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("20200101T000000Z-i-0123456789abcdef0"),
        "{stderr}"
    );
    // Read-only mode refuses by name before anything is read.
    let out = run_irf(&["--read-only", "images", "build"], &lab_env(lab()));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("irf images build"));
}

#[tokio::test]
async fn a_cli_shell_runs_commands_and_a_forwarded_port_carries_bytes() {
    let _cores = BUSY_CORES.lock().await;
    let case_id = memory_case();
    let instance_id = launch(case_id)["instance_id"]
        .as_str()
        .expect("instance_id")
        .to_owned();

    // A shell in a real terminal: a command runs on the host, with the evidence there.
    let mut shell = TerminalSession::start(&["session", &instance_id], &lab_env(lab()), 30, 120);
    let greeted = shell.wait_for(&format!("@{instance_id}"), Duration::from_secs(20));
    assert!(
        greeted.contains(&format!("is the analysis host of case {case_id}"))
            && greeted.contains("/srv/irf/evidence/"),
        "the shell starts by saying the case and where its evidence is: {greeted}"
    );
    shell.send("echo marker-$((6*7)); ls /srv/irf/evidence\r");
    let screen = shell.wait_for("marker-42", Duration::from_secs(10));
    assert!(
        screen.contains(case_id),
        "the case's evidence directory: {screen}"
    );
    // The session user, as AWS's ssm-user, is not root (where the lab runs as root and can
    // change to another uid), and the evidence is not theirs to change: not a new file, not
    // a byte of an artifact, not its mode, not its removal. (The markers are spelt in two
    // pieces so that the echoed command line does not show them.)
    shell.send(&format!(
        "echo uid-$(id -u); f=$(find /srv/irf/evidence/{case_id} -type f | head -n 1); \
         touch /srv/irf/evidence/{case_id}/planted 2>/dev/null && echo WRO''TE-NEW || echo re''fused-new; \
         (echo x >> \"$f\") 2>/dev/null && echo WRO''TE-OLD || echo re''fused-append; \
         chmod u+w \"$f\" 2>/dev/null && echo CHM''ODDED || echo re''fused-chmod; \
         rm -f \"$f\" 2>/dev/null && echo REM''OVED || echo re''fused-rm; \
         awk '$5 == \"/srv/irf/evidence\" {{ print \"mnt-\" $6 }}' /proc/self/mountinfo; \
         stat -c 'mo''de-%a-owner-%u' \"$f\"; \
         test -r \"$f\" && echo rea''dable\r"
    ));
    let screen = shell.wait_for("readable", Duration::from_secs(10));
    for refused in [
        "refused-new",
        "refused-append",
        "refused-chmod",
        "refused-rm",
    ] {
        assert!(screen.contains(refused), "{refused}: {screen}");
    }
    for done in ["WROTE-NEW", "WROTE-OLD", "CHMODDED", "REMOVED"] {
        assert!(!screen.contains(done), "{done}: {screen}");
    }
    // Read-only by the mount itself, not only by the files' owner and mode: root could not
    // write it either.
    assert!(screen.contains("mnt-ro"), "the evidence mount: {screen}");
    // And by what an analysis host on AWS has without that mount: the fetch leaves each
    // artifact root's and 0444, so the session user cannot change it there either.
    assert!(
        screen.contains("mode-444-owner-0"),
        "the artifact's mode and owner: {screen}"
    );
    let lab_is_root = nix::unistd::geteuid().is_root();
    assert!(
        screen.contains(if lab_is_root { "uid-61000" } else { "uid-0" }),
        "the session user: {screen}"
    );
    shell.send("exit\r");
    assert!(
        shell.wait_exit(Duration::from_secs(15)),
        "{}",
        shell.screen()
    );
    assert!(
        shell.screen().contains("session ended"),
        "{}",
        shell.screen()
    );

    // A port on the host (here: a listener of this test) forwarded to a local port, two
    // connections open side by side, as a browser opens them. The service greets first, as
    // SSH does, so each connection's first bytes come from the host.
    let service = std::net::TcpListener::bind("127.0.0.1:0").expect("a service port");
    let remote_port = service.local_addr().expect("address").port();
    let served = std::thread::spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..2 {
            let (mut stream, _) = service.accept().expect("a forwarded connection");
            handlers.push(std::thread::spawn(move || {
                stream.write_all(b"hi").expect("greet");
                let mut line = [0u8; 5];
                stream.read_exact(&mut line).expect("request");
                stream
                    .write_all(&[b"echo:", &line[..]].concat())
                    .expect("reply");
            }));
        }
        for handler in handlers {
            handler.join().expect("a connection's handler");
        }
    });
    let (mut forward, address) = start_forward(&instance_id, remote_port);
    let connect = || {
        let mut client = std::net::TcpStream::connect(&address).expect("the local port");
        client
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let mut greeted = [0u8; 2];
        client
            .read_exact(&mut greeted)
            .expect("the service's greeting through the session");
        assert_eq!(&greeted, b"hi");
        client
    };
    let exchange = |client: &mut std::net::TcpStream, word: &str| {
        client.write_all(word.as_bytes()).expect("send");
        let mut reply = [0u8; 10];
        client
            .read_exact(&mut reply)
            .expect("the reply through the session");
        assert_eq!(&reply, format!("echo:{word}").as_bytes());
    };
    // The second connection is served while the first is still open and idle.
    let mut first = connect();
    let mut second = connect();
    exchange(&mut second, "again");
    exchange(&mut first, "hello");
    drop((first, second));
    served.join().expect("the service");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(forward.id()).expect("pid")),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("interrupt the forward");
    let status = forward.wait().expect("forward exits");
    assert!(status.success(), "{status:?}");

    let case = irf_json(&["case", case_id, "--json"]);
    for entry in case["ledger"].as_array().expect("ledger") {
        if entry["target"]
            .as_str()
            .is_some_and(|t| t.ends_with(&instance_id))
        {
            assert!(
                entry["request_ids"]
                    .as_array()
                    .is_some_and(|ids| !ids.is_empty()),
                "the AWS requests behind it: {entry}"
            );
        }
    }
    let opened: Vec<_> = ledger_actions(case_id)
        .into_iter()
        .filter(|(a, t)| t.ends_with(&instance_id) && a.starts_with("session"))
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        opened,
        [
            "session opened",
            "session closed",
            "session opened",
            "session closed"
        ],
        "shell and forward each recorded"
    );
    let forward_closed = case["ledger"]
        .as_array()
        .expect("ledger")
        .iter()
        .find(|e| {
            e["action"] == "session closed"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with(&format!("port {remote_port}:")))
        })
        .expect("the forward's closing entry");
    let detail = forward_closed["detail"].as_str().unwrap_or_default();
    let sessions = detail.split_once("; sessions ").map(|(_, ids)| {
        ids.split("; ")
            .next()
            .unwrap_or_default()
            .split(", ")
            .count()
    });
    assert!(
        detail.contains("2 connections") && sessions == Some(2),
        "two connections, each in its own session: {detail}"
    );
    // The case's report has them as analysis activity, in every format.
    let report = irf_json(&["report", case_id, "--format", "json"]);
    let activity: Vec<&str> = report["analysis"]
        .as_array()
        .expect("the report's analysis activity")
        .iter()
        .filter(|a| {
            a["host"]
                .as_str()
                .is_some_and(|h| h.ends_with(&instance_id))
        })
        .map(|a| a["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        activity,
        [
            "analysis host launched",
            "analysis host evidence verified",
            "session opened",
            "session closed",
            "session opened",
            "session closed"
        ]
    );
    let markdown = run_irf(&["report", case_id], &lab_env(lab()));
    let markdown = String::from_utf8_lossy(&markdown.stdout);
    assert!(
        markdown.contains("## Analysis hosts and sessions"),
        "{markdown}"
    );

    // A port nothing listens on: the host ends the connection's session, and irf says why
    // instead of reporting an empty success.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("address")
        .port();
    let (refused, address) = start_forward(&instance_id, closed_port);
    let mut client = std::net::TcpStream::connect(&address).expect("the local port");
    client
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut nothing = Vec::new();
    client
        .read_to_end(&mut nothing)
        .expect("the connection is closed");
    assert!(nothing.is_empty());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(refused.id()).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("end the forward");
    let out = refused.wait_with_output().expect("forward exits");
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("the host ended the connection") && said.contains("Unable to connect"),
        "{said}"
    );
    let case = irf_json(&["case", case_id, "--json"]);
    assert!(
        case["ledger"].as_array().expect("ledger").iter().any(|e| {
            e["action"] == "session closed"
                && e["detail"].as_str().is_some_and(|d| {
                    d.starts_with(&format!("port {closed_port}:")) && d.contains("1 failed")
                })
        }),
        "the refused connection in the closing entry (after SIGTERM)"
    );

    let analysis = Analysis::connect(context().await).await.expect("analysis");
    let plane = irf_engine::plane::Plane::connect(context().await)
        .await
        .expect("plane");
    irf_engine::analysis::hosts::terminate(&analysis, &plane, &instance_id, &instance_id)
        .await
        .expect("terminate");
}

/// The lab agent's record of a session: input it held back before it was ready, and the
/// largest payload the client sent.
async fn agent_record(session_id: &str) -> serde_json::Value {
    let control = irf_lab::control::Control::new(&lab().endpoint);
    let sessions = control
        .get_json("/irf-lab/ssm/sessions")
        .await
        .expect("the lab's session records");
    sessions["sessions"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["session_id"] == session_id))
        .cloned()
        .unwrap_or_else(|| panic!("no record of {session_id}: {sessions}"))
}

/// The session ids a forward's closing ledger entry names.
fn forward_sessions(case_id: &str, remote_port: u16) -> Vec<String> {
    let case = irf_json(&["case", case_id, "--json"]);
    let detail = case["ledger"]
        .as_array()
        .expect("ledger")
        .iter()
        .rev()
        .find_map(|e| {
            let detail = e["detail"].as_str()?;
            (e["action"] == "session closed" && detail.starts_with(&format!("port {remote_port}:")))
                .then(|| detail.to_owned())
        })
        .expect("the forward's closing entry");
    detail
        .split_once("; sessions ")
        .map(|(_, ids)| {
            ids.split("; ")
                .next()
                .unwrap_or_default()
                .split(", ")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_gigabyte_crosses_a_forwarded_port_whose_agent_withholds_acknowledgements() {
    let _cores = BUSY_CORES.lock().await;
    // The agent does not acknowledge input until its dial is done, as the real agent does;
    // the client must resend, in messages of the reference 1,024 bytes, and keep going
    // through a gigabyte up and 64 MiB down.
    const UP: u64 = 1 << 30;
    const DOWN: usize = 64 << 20;
    let case_id = memory_case();
    let instance_id = launch(case_id)["instance_id"]
        .as_str()
        .expect("instance_id")
        .to_owned();
    let service = std::net::TcpListener::bind("127.0.0.1:0").expect("a service port");
    let remote_port = service.local_addr().expect("address").port();
    let served = std::thread::spawn(move || {
        let (mut stream, _) = service.accept().expect("a forwarded connection");
        let mut length = [0u8; 8];
        stream.read_exact(&mut length).expect("the length");
        let mut left = u64::from_be_bytes(length);
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        while left > 0 {
            let want = usize::try_from(left.min(buffer.len() as u64)).expect("small");
            let n = stream.read(&mut buffer[..want]).expect("upload");
            assert!(n > 0, "the upload stopped with {left} bytes to go");
            hasher.update(&buffer[..n]);
            left -= n as u64;
        }
        stream
            .write_all(&hasher.finalize())
            .expect("the upload's hash");
        let download: Vec<u8> = (0..DOWN).map(|i| (i % 251) as u8).collect();
        stream.write_all(&download).expect("download");
    });
    let (mut forward, address) = start_forward(&instance_id, remote_port);
    let started = Instant::now();
    let mut client = std::net::TcpStream::connect(&address).expect("the local port");
    client
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    client.write_all(&UP.to_be_bytes()).expect("length");
    let mut sent = Sha256::new();
    let block: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for _ in 0..UP / block.len() as u64 {
        client
            .write_all(&block)
            .expect("upload through the session");
        sent.update(&block);
    }
    let mut hash = [0u8; 32];
    client
        .read_exact(&mut hash)
        .expect("the host's hash of the upload");
    assert_eq!(
        hash.as_slice(),
        sent.finalize().as_slice(),
        "the upload arrived intact"
    );
    let mut download = vec![0u8; DOWN];
    client.read_exact(&mut download).expect("the download");
    assert!(
        download
            .iter()
            .enumerate()
            .all(|(i, b)| *b == (i % 251) as u8),
        "the download arrived intact"
    );
    let took = started.elapsed();
    drop(client);
    served.join().expect("the service");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(forward.id()).expect("pid")),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("interrupt the forward");
    assert!(forward.wait().expect("forward exits").success());
    eprintln!("1 GiB up and 64 MiB down through the lab agent in {took:.1?}");

    let sessions = forward_sessions(case_id, remote_port);
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let record = agent_record(&sessions[0]).await;
    assert!(
        record["held_back"].as_u64().unwrap_or(0) > 0,
        "the agent withheld the first input, which the client resent: {record}"
    );
    assert_eq!(
        record["largest_input"], 1024,
        "reference-sized payloads: {record}"
    );
}

#[tokio::test]
async fn an_archived_case_is_restored_before_it_is_verified_or_sent_to_a_host() {
    // Template 1's lifecycle moves artifacts to Glacier after 90 days, where GetObject
    // answers InvalidObjectState until a restore is done (the lab restores in seconds).
    let case_id = acquire_memory(suspect(lab()));
    let control = irf_lab::control::Control::new(&lab().endpoint);
    let bucket = lab()
        .seeded
        .plane
        .as_ref()
        .expect("the lab's plane")
        .evidence_bucket
        .clone();
    let archived = control
        .post_for_json(
            "/irf-lab/s3/archive",
            &serde_json::json!({"bucket": bucket, "prefix": format!("cases/{case_id}/"), "storage_class": "GLACIER"}),
        )
        .await
        .expect("archive the case");
    assert!(
        archived["archived"].as_u64().unwrap_or(0) >= 1,
        "the memory image is archived: {archived}"
    );
    let started = Instant::now();
    let verified = run_irf(&["verify", &case_id, "--json"], &lab_env(lab()));
    assert!(
        verified.status.success(),
        "verify of an archived case: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "verify waited for the restore ({:?})",
        started.elapsed()
    );
    let launched = launch(&case_id);
    assert_eq!(
        launched["evidence"][0]["sha256"].as_str().map(str::len),
        Some(64),
        "the host holds the restored evidence: {launched}"
    );
    let analysis = Analysis::connect(context().await).await.expect("analysis");
    let plane = irf_engine::plane::Plane::connect(context().await)
        .await
        .expect("plane");
    let instance_id = launched["instance_id"].as_str().expect("instance_id");
    irf_engine::analysis::hosts::terminate(&analysis, &plane, instance_id, instance_id)
        .await
        .expect("terminate");
}

#[test]
fn the_workstation_hands_its_terminal_to_a_session_and_gets_it_back() {
    let _cores = BUSY_CORES.blocking_lock();
    let case_id = memory_case();
    let instance_id = launch(case_id)["instance_id"]
        .as_str()
        .expect("instance_id")
        .to_owned();
    let mut session = TerminalSession::start(&[], &lab_env(lab()), 40, 200);
    session.wait_for("refreshed", Duration::from_secs(60));
    session.send("8");
    session.wait_for(&instance_id, Duration::from_secs(15));
    session.send(&format!("/{instance_id}\r"));
    let before = session.wait_for("hosts (1/", Duration::from_secs(5));
    assert!(before.contains("online"), "{before}");
    session.send("s");
    // The shell has the terminal: the workstation's screen is gone, the host's prompt is there.
    let shell = session.wait_for(&format!("analyst@{instance_id}"), Duration::from_secs(20));
    assert!(!shell.contains("hosts (1/"), "{shell}");
    assert!(
        shell.contains("is the analysis host of case"),
        "the workstation's shell is greeted too: {shell}"
    );
    session.send("echo marker-$((6*7))\r");
    session.wait_for("marker-42", Duration::from_secs(10));
    session.send("exit\r");
    let after = session.wait_for("ended (", Duration::from_secs(15));
    // The workstation is back whole: header, the hosts table with the host, the footer.
    assert!(after.contains("hosts (1/"), "{after}");
    assert!(after.contains(&instance_id), "{after}");
    assert!(
        after.contains("Organization"),
        "the header is redrawn: {after}"
    );
    assert!(
        !after.contains("marker-42"),
        "the shell's output is gone: {after}"
    );
    // It still takes keys. (A generous wait: on a new machine's first run both cores are busy
    // with the rest of the suite, and the view took over 10 s to come up once.)
    session.send("7");
    session.wait_for("images (", Duration::from_secs(30));
    session.send("q");
    assert!(session.wait_exit(Duration::from_secs(10)));
}

#[test]
fn a_finding_resolved_in_the_workstation_is_recorded_in_its_instance_s_case() {
    let case_id = memory_case();
    let suspect = suspect(lab());
    let finding = irf_e2e::suspects_reverse_shell_finding();
    let finding_id = finding["id"].as_str().expect("finding id").to_owned();

    let mut session = TerminalSession::start(&[], &lab_env(lab()), 40, 200);
    session.wait_for("refreshed", Duration::from_secs(60));
    session.send("2");
    session.send(&format!("/{} reverse\r", suspect.id));
    session.wait_for("findings (1/", Duration::from_secs(15));
    session.send("R");
    session.wait_for("Resolve finding", Duration::from_secs(5));
    session.send("y");
    session.wait_for("resolved: ", Duration::from_secs(15));
    session.send("q");
    assert!(session.wait_exit(Duration::from_secs(10)));

    let case = irf_json(&["case", case_id, "--json"]);
    let recorded = case["ledger"]
        .as_array()
        .expect("ledger")
        .iter()
        .find(|e| e["action"] == "finding updated")
        .cloned()
        .unwrap_or_else(|| panic!("no finding updated entry: {case}"));
    assert!(
        recorded["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&finding_id) && d.contains("RESOLVED")),
        "{recorded}"
    );
    assert!(
        recorded["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("arn:aws:"))
    );
    let after = irf_json(&[
        "findings",
        "--json",
        "--any-status",
        "--filter",
        "reverse shell",
    ]);
    assert!(
        after
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["id"] == finding_id.as_str() && f["workflow_status"] == "RESOLVED")
    );
}

#[test]
fn a_build_started_in_the_workstation_appears_and_becomes_available() {
    let mut session = TerminalSession::start(&[], &lab_env(lab()), 40, 200);
    session.wait_for("refreshed", Duration::from_secs(60));
    session.send("7");
    let listed = session.wait_for("AVAILABLE", Duration::from_secs(15));
    assert!(
        listed.contains("next run"),
        "the pipeline's schedule: {listed}"
    );
    session.send("b");
    session.wait_for("Start an image build", Duration::from_secs(5));
    session.send("y");
    let started = session.wait_for("build started: ", Duration::from_secs(15));
    // The status names the new image: .../image/irf-sift/<version>/<build>.
    let arn = started
        .lines()
        .find_map(|line| line.split("build started: ").nth(1))
        .expect("the build's ARN")
        .trim()
        .to_owned();
    let version = arn
        .split(":image/")
        .nth(1)
        .and_then(|rest| rest.split_once('/'))
        .map(|(_, version)| version.to_owned())
        .expect("a version in the ARN");
    let row_state = |screen: &str| {
        screen
            .lines()
            .find(|line| line.contains(&format!("│{version} ")))
            .map(str::to_owned)
    };
    // It shows at once, while it builds, and the view follows it to AVAILABLE by itself.
    let building = session.wait_for(&format!("│{version} "), Duration::from_secs(10));
    assert!(
        row_state(&building).is_some_and(|row| !row.contains("AVAILABLE")),
        "{building}"
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let screen = session.screen();
        if row_state(&screen).is_some_and(|row| row.contains("AVAILABLE") && row.contains("ami-")) {
            break;
        }
        assert!(Instant::now() < deadline, "{screen}");
        std::thread::sleep(Duration::from_millis(200));
    }
    session.send("q");
    assert!(session.wait_exit(Duration::from_secs(10)));
}
