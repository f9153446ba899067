//! Lab-backed tests of the foundation: the engine's assume-role fan-out, identity and
//! Organization, the seeded lab, and the `irf lab` lifecycle as a user drives it.

use irf_engine::model::instance::InstanceState;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use irf_e2e::{TerminalSession, context, emulator_stops, irf_binary, lab, lab_env, run_irf};
use irf_engine::aws::{AwsContext, AwsError};
use irf_engine::config::{AccountId, Config};
use irf_engine::inventory::{self, INCIDENT_STATUS_TAG};
use irf_lab::{LabState, connect_options_for};

fn managed_members(state: &LabState) -> Vec<&irf_lab::seed::LabAccount> {
    state.seeded.members.iter().filter(|m| m.managed).collect()
}

#[tokio::test]
async fn fan_out_reaches_every_member_account_and_region() {
    let state = lab();
    let context = context().await;
    let scope = context
        .sweep_scope()
        .await
        .expect("scope from Organizations");

    let scoped: BTreeSet<&str> = scope.accounts.iter().map(|a| a.id.as_str()).collect();
    let members: BTreeSet<&str> = state.seeded.members.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        scoped, members,
        "the scope is every member, without the Security and Forensics accounts"
    );

    let snapshot = inventory::sweep_all(context, scope).await;
    let swept: BTreeSet<(String, String, String)> = snapshot
        .instances
        .iter()
        .map(|i| {
            (
                i.id.to_string(),
                i.account.to_string(),
                i.region.to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, String)> = state
        .seeded
        .instances
        .iter()
        .filter(|i| managed_members(state).iter().any(|m| m.id == i.account))
        .map(|i| (i.id.clone(), i.account.to_string(), i.region.clone()))
        .collect();
    assert_eq!(
        swept, expected,
        "every instance of every managed member, in its own account and region"
    );
    for member in managed_members(state) {
        for region in &state.seeded.options.regions {
            assert!(
                swept
                    .iter()
                    .any(|(_, a, r)| a == member.id.as_str() && r == region),
                "no instance seen in {} {region}",
                member.id
            );
        }
    }
}

#[tokio::test]
async fn a_missing_role_is_one_clear_error_for_that_account_only() {
    let state = lab();
    let context = context().await;
    let scope = context.sweep_scope().await.expect("scope");
    let snapshot = inventory::sweep_all(context, scope).await;

    let unmanaged = state
        .seeded
        .members
        .iter()
        .find(|m| !m.managed)
        .expect("the lab has an unmanaged account");
    assert_eq!(
        snapshot.failures.len(),
        1,
        "one failure: {:#?}",
        snapshot.failures
    );
    let failure = &snapshot.failures[0];
    assert_eq!(failure.account, unmanaged.id.as_str());
    assert_eq!(failure.account_name, "legacy-unmanaged");
    assert_eq!(failure.region, None, "the whole account failed, once");
    assert!(failure.error.contains("AccessDenied"), "{}", failure.error);
    assert!(
        failure
            .error
            .contains(&format!("arn:aws:iam::{}:role/IRAutomation", unmanaged.id)),
        "{}",
        failure.error
    );
    assert!(
        failure.error.contains("5-member-ir-automation.yaml"),
        "says what to do: {}",
        failure.error
    );
    assert!(
        !snapshot
            .instances
            .iter()
            .any(|i| i.account == unmanaged.id.as_str())
    );
}

#[tokio::test]
async fn explicit_members_with_a_wrong_role_name_fail_per_account() {
    let state = lab();
    let mut config = Config::load_from(&state.config_path)
        .expect("lab config")
        .config;
    let first = managed_members(state)[0].id.clone();
    config.accounts.members = vec![first.clone()];
    config.accounts.member_role = "NoSuchRole".to_owned();
    let context = Arc::new(
        AwsContext::connect(Arc::new(config), &connect_options_for(&state.endpoint)).await,
    );
    let err = context
        .check_account(&first)
        .await
        .expect_err("the role does not exist");
    match &err {
        AwsError::AssumeRole {
            account, role_arn, ..
        } => {
            assert_eq!(account, &first);
            assert!(role_arn.ends_with(":role/NoSuchRole"), "{role_arn}");
        }
        other => panic!("expected an AssumeRole error, got {other:?}"),
    }
    let scope = context
        .sweep_scope()
        .await
        .expect("explicit members need no Organizations call");
    assert_eq!(scope.accounts.len(), 1);
    assert_eq!(
        scope.accounts[0].name,
        managed_members(state)[0].name,
        "named from Organizations"
    );
}

#[tokio::test]
async fn whoami_names_the_security_account_and_the_organization() {
    let state = lab();
    let who = context().await.whoami().await.expect("whoami");
    assert_eq!(who.caller.account, "123456789012");
    let org = who.organization.expect("the lab has an Organization");
    assert_eq!(org.id, state.seeded.organization_id);
    assert_eq!(org.management_account, "123456789012");
    assert_eq!(who.endpoint_url.as_deref(), Some(state.endpoint.as_str()));
}

#[tokio::test]
async fn seeded_instances_carry_states_tags_and_networks() {
    let state = lab();
    let context = context().await;
    let scope = context.sweep_scope().await.expect("scope");
    let snapshot = inventory::sweep_all(context, scope).await;
    assert!(
        snapshot.instances.len() >= 24,
        "at least 30 seeded, most in managed accounts"
    );

    let analyzed: Vec<_> = snapshot
        .instances
        .iter()
        .filter(|i| i.incident_status() == Some("Analyze"))
        .collect();
    assert_eq!(analyzed.len(), 1, "one instance is already under analysis");
    assert!(analyzed[0].tags.contains_key(INCIDENT_STATUS_TAG));

    for instance in &snapshot.instances {
        let seeded = state
            .seeded
            .instances
            .iter()
            .find(|s| s.id == instance.id)
            .expect("seeded");
        assert_eq!(
            instance.state.as_str(),
            seeded.state,
            "state of {}",
            instance.id
        );
        assert_eq!(instance.name.as_deref(), Some(seeded.name.as_str()));
        for tag in ["Owner", "Environment", "Role"] {
            assert!(
                instance.tags.contains_key(tag),
                "{} lacks {tag}",
                instance.id
            );
        }
        assert!(
            instance.vpc_id.is_some()
                && instance.subnet_id.is_some()
                && instance.private_ip.is_some()
        );
        assert!(!instance.security_groups.is_empty());
        assert!(
            instance
                .availability_zone
                .as_deref()
                .is_some_and(|az| az.starts_with(instance.region.as_str()))
        );
    }
    assert!(
        snapshot
            .instances
            .iter()
            .any(|i| i.state == InstanceState::Stopped),
        "some instances are stopped"
    );
    let roles: BTreeSet<&str> = snapshot
        .instances
        .iter()
        .filter_map(|i| i.tags.get("Role"))
        .collect();
    assert!(roles.len() >= 4, "varied roles: {roles:?}");
}

#[tokio::test]
async fn security_hub_holds_findings_that_point_at_seeded_instances() {
    let state = lab();
    let context = context().await;
    let hub = aws_sdk_securityhub::Client::new(&context.base_config("us-east-1"));
    let mut pages = hub.get_findings().into_paginator().send();
    let mut findings = Vec::new();
    while let Some(page) = pages.next().await {
        findings.extend(page.expect("GetFindings page").findings().to_vec());
    }
    // Other tests may add findings of their own; the seeded ones come from the lab's detector.
    findings.retain(|f| {
        f.generator_id()
            .is_some_and(|g| g.ends_with("detector/irflab"))
    });
    assert_eq!(findings.len(), state.seeded.findings);
    assert!(findings.len() >= 20);
    let labels: BTreeSet<String> = findings
        .iter()
        .filter_map(|f| {
            f.severity()
                .and_then(|s| s.label())
                .map(|l| l.as_str().to_owned())
        })
        .collect();
    for label in ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"] {
        assert!(labels.contains(label), "{label} missing from {labels:?}");
    }
    for finding in &findings {
        let resource = &finding.resources()[0];
        assert_eq!(resource.r#type(), Some("AwsEc2Instance"));
        let instance_id = resource
            .id()
            .and_then(|arn| arn.rsplit('/').next())
            .expect("instance ARN");
        let seeded = state
            .seeded
            .instances
            .iter()
            .find(|i| i.id == instance_id)
            .expect("points at a seeded instance");
        assert_eq!(finding.aws_account_id(), Some(seeded.account.as_str()));
    }
}

/// Picks a loopback port and keeps it bound, so a lab asked to use it must refuse.
fn occupied_port() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

#[test]
fn lab_cli_lifecycle_as_a_user_drives_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab_dir = dir.path().to_str().expect("utf-8 path");
    let env = [("IRF_LAB_DIR", lab_dir)];

    let status = run_irf(&["lab", "status"], &env);
    assert_eq!(status.status.code(), Some(3), "no lab yet");
    // Without a terminal the workstation is refused at once, with what to do, before a lab
    // is started (ratatui panicked there, after seeding one).
    let attached = run_irf(&["lab", "up"], &env);
    let said = String::from_utf8_lossy(&attached.stderr);
    assert_eq!(attached.status.code(), Some(1), "{said}");
    assert!(
        said.contains("needs a terminal") && said.contains("irf lab up --detach"),
        "{said}"
    );
    assert!(!said.contains("panicked"), "{said}");
    assert!(
        LabState::load(dir.path()).expect("readable").is_none(),
        "no lab was started"
    );
    let no_env = run_irf(&["lab", "env"], &env);
    assert!(!no_env.status.success());
    assert!(
        String::from_utf8_lossy(&no_env.stderr).contains("irf lab up --detach"),
        "says what to do"
    );

    let up = run_irf(&["lab", "up", "--detach"], &env);
    assert!(
        up.status.success(),
        "lab up failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let state = LabState::load(dir.path())
        .expect("state")
        .expect("state written");
    assert!(state.is_running());
    assert!(run_irf(&["lab", "status"], &env).status.success());

    // The same seed gives the same Organization as the shared lab.
    let shared = lab();
    let ids = |s: &LabState| {
        s.seeded
            .members
            .iter()
            .map(|m| m.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&state), ids(shared), "account ids are deterministic");
    let instance_ids = |s: &LabState| {
        s.seeded
            .instances
            .iter()
            .map(|i| i.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        instance_ids(&state),
        instance_ids(shared),
        "instance ids are deterministic"
    );

    // A second lab in the same directory is refused while the first runs.
    let again = run_irf(&["lab", "up", "--detach"], &env);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));

    // The AWS CLI, pointed at the lab by `irf lab env`, sees the Organization, instances in
    // member accounts through assumed roles, and the findings.
    let exports = run_irf(&["lab", "env"], &env);
    assert!(exports.status.success());
    let aws = irf_lab::install::installed()
        .expect("venv")
        .expect("installed")
        .aws_cli();
    let script = format!(
        r#"set -e
eval "$({irf} lab env)"
{aws} organizations list-accounts --query 'length(Accounts)' --output text
for account in {members}; do
  creds=$({aws} sts assume-role --role-arn arn:aws:iam::$account:role/IRAutomation --role-session-name irf-test \
    --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)
  set -- $creds
  AWS_ACCESS_KEY_ID=$1 AWS_SECRET_ACCESS_KEY=$2 AWS_SESSION_TOKEN=$3 \
    {aws} ec2 describe-instances --query 'length(Reservations[].Instances[])' --output text
done
{aws} securityhub get-findings --query 'length(Findings)' --output text
"#,
        irf = irf_binary().display(),
        aws = aws.display(),
        members = state
            .seeded
            .members
            .iter()
            .filter(|m| m.managed)
            .take(2)
            .map(|m| m.id.to_string())
            .collect::<Vec<_>>()
            .join(" "),
    );
    let cli = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("IRF_LAB_DIR", lab_dir)
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run the AWS CLI");
    let stdout = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success(),
        "AWS CLI failed: {}\n{stdout}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let numbers: Vec<usize> = stdout
        .split_whitespace()
        .map(|n| n.parse().expect("a count"))
        .collect();
    let org_accounts = 2 + state.seeded.members.len();
    let in_us_east_1 = |account: &AccountId| {
        state
            .seeded
            .instances
            .iter()
            .filter(|i| &i.account == account && i.region == "us-east-1")
            .count()
    };
    let managed: Vec<_> = state
        .seeded
        .members
        .iter()
        .filter(|m| m.managed)
        .take(2)
        .collect();
    assert_eq!(
        numbers,
        vec![
            org_accounts,
            in_us_east_1(&managed[0].id),
            in_us_east_1(&managed[1].id),
            state.seeded.findings
        ]
    );

    // Reset drops everything and seeds again: another seed, another Organization.
    let reset = run_irf(&["lab", "reset", "--seed", "7"], &env);
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    let reseeded = LabState::load(dir.path())
        .expect("state")
        .expect("still running");
    assert_eq!(
        reseeded.emulator_pid, state.emulator_pid,
        "the same emulator"
    );
    assert_eq!(reseeded.seeded.options.seed, 7);
    assert_ne!(ids(&reseeded), ids(&state), "new accounts");
    assert_eq!(
        reseeded.seeded.instances.len(),
        state.seeded.instances.len()
    );
    // The tag path works on the new lab: its runtime acts with the new lab's roles.
    tag_opens_a_case(&reseeded);

    let down = run_irf(&["lab", "down"], &env);
    assert!(down.status.success());
    assert!(String::from_utf8_lossy(&down.stdout).contains("stopped"));
    assert!(
        emulator_stops(&state),
        "the emulator is gone after 'irf lab down'"
    );
    assert_eq!(run_irf(&["lab", "status"], &env).status.code(), Some(3));
}

#[test]
fn a_port_in_use_is_refused_clearly_and_nothing_is_left_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_listener, port) = occupied_port();
    let port = port.to_string();
    let out = run_irf(
        &["lab", "up", "--detach", "--port", &port],
        &[("IRF_LAB_DIR", dir.path().to_str().expect("utf-8"))],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("port {port} on 127.0.0.1 is in use")),
        "{stderr}"
    );
    assert!(
        LabState::load(dir.path()).expect("readable").is_none(),
        "no state written"
    );
}

#[test]
fn bad_seed_options_name_the_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_irf(
        &["lab", "up", "--detach", "--members", "2"],
        &[("IRF_LAB_DIR", dir.path().to_str().expect("utf-8"))],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("members = 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_broken_python_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let venvs = tempfile::tempdir().expect("tempdir");
    let out = run_irf(
        &["lab", "up", "--detach"],
        &[
            ("IRF_LAB_DIR", dir.path().to_str().expect("utf-8")),
            ("IRF_LAB_VENV_ROOT", venvs.path().to_str().expect("utf-8")),
            ("IRF_PYTHON", "/nonexistent/python3"),
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'/nonexistent/python3'") && stderr.contains("IRF_PYTHON"),
        "{stderr}"
    );
    assert!(LabState::load(dir.path()).expect("readable").is_none());
}

#[test]
fn config_commands_show_the_file_in_force_and_name_bad_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.toml");
    let path_text = path.to_str().expect("utf-8");
    let shown = run_irf(&["config", "path"], &[("IRF_CONFIG", path_text)]);
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), path_text);

    let defaults = run_irf(&["config", "show"], &[("IRF_CONFIG", path_text)]);
    let text = String::from_utf8_lossy(&defaults.stdout);
    assert!(text.contains("# defaults: no file at"), "{text}");
    assert!(text.contains("member_role = \"IRAutomation\""), "{text}");

    std::fs::write(&path, "[accounts]\nsecurity = \"not-an-id\"\n").expect("write");
    let bad = run_irf(&["config", "show"], &[("IRF_CONFIG", path_text)]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("'not-an-id'") && stderr.contains(path_text),
        "{stderr}"
    );
}

#[test]
fn the_workstation_opens_on_the_lab_and_quits_cleanly() {
    let state = lab();
    let mut session = TerminalSession::start(&[], &lab_env(state), 40, 160);
    let screen = session.wait_for("refreshed", Duration::from_secs(60));
    let visible = state.seeded.instances.iter().filter(|i| {
        state
            .seeded
            .members
            .iter()
            .any(|m| m.managed && m.id == i.account)
    });
    let count = visible.count();
    assert!(
        screen.contains(&format!("instances ({count}/{count})")),
        "{screen}"
    );
    assert!(screen.contains(&state.seeded.organization_id), "{screen}");
    assert!(
        screen.contains("Analyze"),
        "the instance under analysis shows its tag:\n{screen}"
    );

    session.send("3");
    let screen = session.wait_for("accounts (", Duration::from_secs(5));
    for member in &state.seeded.members {
        assert!(
            screen.contains(member.id.as_str()),
            "{} missing:\n{screen}",
            member.id
        );
    }
    assert!(
        screen.contains("cannot assume role"),
        "the unmanaged account shows its error:\n{screen}"
    );

    session.send("2");
    let screen = session.wait_for("findings (", Duration::from_secs(5));
    assert!(screen.contains("CRITICAL"), "{screen}");

    session.send("q");
    assert!(
        session.wait_exit(Duration::from_secs(10)),
        "irf exits with success"
    );
}

#[test]
fn irf_lab_opens_the_workstation_and_stops_the_lab_on_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab_dir = dir.path().to_str().expect("utf-8");
    let mut session = TerminalSession::start(&["lab"], &[("IRF_LAB_DIR", lab_dir)], 30, 160);
    let screen = session.wait_for("refreshed", Duration::from_secs(120));
    assert!(
        screen.contains("prod-web") && screen.contains("1 failed"),
        "{screen}"
    );
    let state = LabState::load(dir.path())
        .expect("state")
        .expect("written while the lab runs");
    assert!(state.is_running());
    session.send("q");
    assert!(session.wait_exit(Duration::from_secs(20)));
    assert!(emulator_stops(&state), "the lab stops with the workstation");
    assert!(
        LabState::load(dir.path()).expect("readable").is_none(),
        "state removed"
    );
}

#[tokio::test]
async fn linux_root_volumes_hold_real_filesystems_and_the_suspect_its_indicators() {
    let state = lab();
    let admin = irf_e2e::admin_context().await;
    let linux = state.seeded.disks.len();
    assert!(linux >= 20, "most seeded instances run Linux: {linux}");
    for disk in &state.seeded.disks {
        let instance = state
            .seeded
            .instances
            .iter()
            .find(|i| i.id == disk.instance_id)
            .expect("seeded instance");
        assert_eq!(disk.volume_id, instance.root_volume_id);
        if instance.account != state.seeded.members[0].id {
            continue;
        }
        // The image is exactly the size EC2 reports for the volume (asked as the account's
        // administrator: irf itself never describes volumes).
        let ec2 = aws_sdk_ec2::Client::new(
            &admin
                .account_config(&instance.account, &instance.region)
                .await
                .expect("member"),
        );
        let volumes = ec2
            .describe_volumes()
            .volume_ids(&disk.volume_id)
            .send()
            .await
            .expect("DescribeVolumes");
        let size_gib = volumes.volumes()[0].size().expect("size");
        assert_eq!(
            disk.size_bytes,
            u64::try_from(size_gib).expect("positive") << 30
        );
        assert_eq!(
            std::fs::metadata(&disk.image).expect("image").len(),
            disk.size_bytes
        );
    }
    let suspect = state
        .seeded
        .disks
        .iter()
        .filter(|d| !d.planted.is_empty())
        .collect::<Vec<_>>();
    assert_eq!(suspect.len(), 1, "one compromised disk");
    let analyzed = state
        .seeded
        .instances
        .iter()
        .find(|i| i.id == suspect[0].instance_id)
        .expect("instance");
    assert_eq!(analyzed.account, state.seeded.members[0].id);
    for indicator in &suspect[0].planted {
        let out = std::process::Command::new("/usr/sbin/debugfs")
            .args(["-R", &format!("cat {}", indicator.path)])
            .arg(&suspect[0].image)
            .output()
            .expect("debugfs from e2fsprogs");
        let content = String::from_utf8_lossy(&out.stdout);
        assert!(
            content.contains(&indicator.marker),
            "{} ({}) lacks its marker: {content}",
            indicator.path,
            indicator.kind
        );
    }
}

#[tokio::test]
async fn findings_filters_return_the_right_subset() {
    use irf_engine::findings::{FindingQuery, Severity};
    let state = lab();
    let context = context().await;
    let everything = context
        .findings(&FindingQuery {
            record_state: None,
            ..FindingQuery::default()
        })
        .await
        .expect("all findings");
    assert!(everything.len() >= state.seeded.findings);

    let high = FindingQuery {
        min_severity: Some(Severity::High),
        ..FindingQuery::open_on_instances()
    };
    let found = context.findings(&high).await.expect("high and above");
    let expected = everything
        .iter()
        .filter(|f| f.severity >= Severity::High && high.matches(f))
        .count();
    assert_eq!(found.len(), expected);
    assert!(
        !found.is_empty() && found.len() < everything.len(),
        "a real subset"
    );
    assert!(found.iter().all(|f| f.severity >= Severity::High));

    let member = &state.seeded.members[0];
    let one_account = FindingQuery {
        accounts: vec![member.id.to_string()],
        ..FindingQuery::default()
    };
    let found = context.findings(&one_account).await.expect("one account");
    assert!(!found.is_empty());
    assert!(found.iter().all(|f| f.account == member.id.as_str()));
    for finding in &found {
        let instance = finding
            .instance_id
            .as_deref()
            .expect("linked to its instance");
        assert!(
            state
                .seeded
                .instances
                .iter()
                .any(|i| i.id == instance && i.account == member.id)
        );
    }

    let since_tomorrow = FindingQuery {
        updated_since: Some(
            irf_engine::findings::parse_time("2999-01-01T00:00:00Z").expect("time"),
        ),
        ..FindingQuery::default()
    };
    assert!(
        context
            .findings(&since_tomorrow)
            .await
            .expect("none")
            .is_empty()
    );

    // A status or a time Security Hub does not know is refused by name before any call.
    for bad in [["--status", "OPEN"], ["--since", "yesterday"]] {
        let out = run_irf(&[&["findings", "--json"][..], &bad[..]].concat(), &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad:?} was accepted");
        assert!(stderr.contains(&format!("'{}'", bad[1])), "{stderr}");
    }
}

#[tokio::test]
async fn a_finding_resolved_from_irf_leaves_the_open_list_with_a_note() {
    use irf_engine::findings::{FindingQuery, FindingRef};
    let state = lab();
    let context = context().await;
    // A finding of this test's own, so other tests keep the seeded ones as they are,
    // imported as a finding provider does (the account's administrator here).
    let instance = &state.seeded.instances[0];
    let id = "arn:aws:guardduty:us-east-1:000000000000:detector/test/finding/resolve-me";
    let product = "arn:aws:securityhub:us-east-1::product/aws/guardduty";
    irf_e2e::plant_finding(
        instance.account.as_str(),
        id,
        "resolve me",
        aws_sdk_securityhub::types::SeverityLabel::Low,
        (
            "AwsEc2Instance",
            &format!(
                "arn:aws:ec2:{}:{}:instance/{}",
                instance.region, instance.account, instance.id
            ),
        ),
    )
    .await;
    let open = context
        .findings(&FindingQuery::open_on_instances())
        .await
        .expect("open");
    assert!(open.iter().any(|f| f.id == id));

    let updated = context
        .set_workflow_status(
            &[FindingRef {
                id: id.into(),
                product_arn: product.into(),
            }],
            irf_engine::findings::WorkflowStatus::Resolved,
            "case-test",
        )
        .await
        .expect("resolved");
    assert_eq!(updated, 1);
    let open = context
        .findings(&FindingQuery::open_on_instances())
        .await
        .expect("open");
    assert!(!open.iter().any(|f| f.id == id), "no longer open");
    let all = context
        .findings(&FindingQuery::default())
        .await
        .expect("all");
    let resolved = all.iter().find(|f| f.id == id).expect("still there");
    assert_eq!(resolved.workflow_status, "RESOLVED");
    assert_eq!(resolved.note.as_deref(), Some("case-test"));

    let missing = context
        .set_workflow_status(
            &[FindingRef {
                id: "no-such-finding".into(),
                product_arn: product.into(),
            }],
            irf_engine::findings::WorkflowStatus::Resolved,
            "x",
        )
        .await
        .expect_err("unknown finding");
    assert!(
        missing.to_string().contains("'no-such-finding'"),
        "{missing}"
    );
}

#[tokio::test]
async fn ssm_reachability_follows_profile_and_state() {
    use irf_engine::inventory::SsmReachability;
    let context = context().await;
    let scope = context.sweep_scope().await.expect("scope");
    let snapshot = inventory::sweep_all(context, scope).await;
    for instance in &snapshot.instances {
        let expected = match (instance.tags.get("Role"), instance.state.as_str()) {
            (Some("bastion"), _) => SsmReachability::NotManaged,
            (_, "running") => SsmReachability::Online,
            _ => SsmReachability::ConnectionLost,
        };
        assert_eq!(
            instance.ssm,
            expected,
            "{} ({:?}, {})",
            instance.id,
            instance.tags.get("Role"),
            instance.state
        );
    }
    assert!(
        snapshot
            .instances
            .iter()
            .any(|i| i.ssm == SsmReachability::NotManaged)
    );
}

#[test]
fn instances_and_findings_print_json_with_the_same_filters_as_the_views() {
    let state = lab();
    let env = lab_env(state);
    let out = run_irf(
        &[
            "instances",
            "--json",
            "--filter",
            "tag:Role=web !state:stopped",
        ],
        &env,
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit 2: one account could not be swept"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let instances = json["instances"].as_array().expect("instances");
    assert!(!instances.is_empty());
    for instance in instances {
        assert_eq!(instance["tags"]["Role"], "web");
        assert_ne!(instance["state"], "stopped");
    }
    assert_eq!(
        json["failures"].as_array().expect("failures").len(),
        1,
        "{}",
        json["failures"]
    );
    let suspect = instances
        .iter()
        .find(|i| i["tags"][INCIDENT_STATUS_TAG] == "Analyze")
        .expect("the suspect");
    assert!(suspect["findings"]["open"].as_u64().expect("count") >= 3);
    assert_eq!(suspect["findings"]["highest"], "CRITICAL");

    let member = state.seeded.members[1].id.to_string();
    let out = run_irf(
        &[
            "instances",
            "--json",
            "--account",
            &member,
            "--region",
            "eu-west-1",
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let expected = state
        .seeded
        .instances
        .iter()
        .filter(|i| i.account.as_str() == member && i.region == "eu-west-1")
        .count();
    assert_eq!(
        json["instances"].as_array().expect("instances").len(),
        expected
    );

    let out = run_irf(&["findings", "--json", "--min-severity", "HIGH"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(!findings.is_empty());
    assert!(
        findings
            .iter()
            .all(|f| f["severity"] == "HIGH" || f["severity"] == "CRITICAL")
    );

    let bad = run_irf(&["findings", "--json", "--status", "OPEN"], &env);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'OPEN'"));
    let bad = run_irf(&["instances", "--filter", "sev>=URGENT"], &env);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'URGENT'"));
}

#[test]
fn hostile_tag_values_planted_in_the_lab_render_inert() {
    let state = lab();
    let target = state
        .seeded
        .instances
        .iter()
        .find(|i| {
            state
                .seeded
                .members
                .iter()
                .any(|m| m.managed && m.id == i.account)
                && i.state == "running"
        })
        .expect("a running instance in a managed account");
    let hostile = "pwn\u{1b}]0;owned-title\u{7}\u{1b}[2J\u{1b}[31mRED\u{9b}1;1Hcsi\u{202e}gnp.exe";
    let long = "L".repeat(250);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // Whoever may tag instances in that account (its administrator here) plants it.
        let admin = irf_e2e::admin_context().await;
        let ec2 = aws_sdk_ec2::Client::new(
            &admin
                .account_config(&target.account, &target.region)
                .await
                .expect("member"),
        );
        ec2.create_tags()
            .resources(&target.id)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("Note")
                    .value(hostile)
                    .build(),
            )
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("Ticket")
                    .value(&long)
                    .build(),
            )
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("Wide")
                    .value("数据库服务器")
                    .build(),
            )
            .send()
            .await
            .expect("plant hostile tags");
    });

    let mut session = TerminalSession::start(&[], &lab_env(state), 45, 170);
    session.wait_for("refreshed", Duration::from_secs(60));
    session.send(&format!("/{}\r", target.id));
    session.wait_for("(1/", Duration::from_secs(5));
    session.send("\r");
    // Wait for the tag itself, not only the pane's title: under load a frame arrives in
    // pieces, and the title can be on screen before the rows below it.
    let screen = session.wait_for(r"pwn\e]0;", Duration::from_secs(10));
    assert!(
        screen.contains(r"pwn\e]0;owned-title\x07\e[2J\e[31mRED\u{9b}1;1Hcsi\u{202e}gnp.exe"),
        "escaped:\n{screen}"
    );
    assert!(
        screen.contains("数据库服务器"),
        "wide text shown as it is:\n{screen}"
    );
    // A long value is wrapped whole in the details (up to twelve lines a value; the panel
    // scrolls), not cut: every one of its 250 characters is on screen.
    let long_runs: usize = screen
        .split(|c| c != 'L')
        .map(str::len)
        .filter(|run| *run >= 10)
        .sum();
    assert_eq!(long_runs, 250, "the long value whole, wrapped:\n{screen}");
    assert!(
        screen.contains("irf "),
        "nothing cleared the screen:\n{screen}"
    );
    session.send("q");
    assert!(session.wait_exit(Duration::from_secs(10)));
}

/// Tags the suspect of `state`'s lab `SecurityIncidentStatus=Analyze` as its operator and
/// waits for the member trigger to open its case.
fn tag_opens_a_case(state: &LabState) {
    let suspect = irf_e2e::suspect(state);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let operator = state.connect().await.expect("the new lab's operator");
        irf_e2e::set_incident_tag(
            &operator,
            &suspect.account,
            &suspect.region,
            &suspect.id,
            "Analyze",
        )
        .await;
    });
    let env = lab_env(state);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = run_irf(&["cases", "--json"], &env);
        if String::from_utf8_lossy(&out.stdout).contains(&suspect.id) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no case opened for {} after the reset; runtime log:\n{}",
            suspect.id,
            std::fs::read_to_string(state.config_path.with_file_name("runtime.log"))
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// An operator who signed in with `aws sso login`: the SDK's SSO credential provider reads
/// the token cache, the lab stands in for the IAM Identity Center portal, and irf acts as the
/// permission set's role. An expired token, or one the portal never gave, says how to sign in.
#[tokio::test]
async fn an_sso_profile_signs_in_with_the_token_cache_of_aws_sso_login() {
    use sha1::Digest as _;
    let state = lab();
    let security = state.seeded.security.as_str();
    let (token, expires_at) = irf_lab::control::Control::new(&state.endpoint)
        .sso_sign_in(
            "alice@example.com",
            &[(security, irf_lab::OPERATOR_ROLE)],
            Duration::from_secs(3600),
        )
        .await
        .expect("sign in to the lab's Identity Center");
    let home = tempfile::tempdir().expect("home");
    let aws = home.path().join(".aws");
    std::fs::create_dir_all(aws.join("sso/cache")).expect("cache dir");
    std::fs::write(
        aws.join("config"),
        format!(
            "[profile ir]\nsso_session = lab\nsso_account_id = {security}\nsso_role_name = {}\nregion = us-east-1\n\n[sso-session lab]\nsso_start_url = https://lab.awsapps.com/start\nsso_region = us-east-1\n",
            irf_lab::OPERATOR_ROLE
        ),
    )
    .expect("config");
    let cache = aws.join("sso/cache").join(format!(
        "{}.json",
        irf_engine::hex(&sha1::Sha1::digest(b"lab"))
    ));
    let write_cache = |token: &str, expires_at: &str| {
        let entry = serde_json::json!({
            "accessToken": token,
            "expiresAt": expires_at,
            "region": "us-east-1",
            "startUrl": "https://lab.awsapps.com/start",
        });
        std::fs::write(&cache, entry.to_string()).expect("token cache");
    };
    let whoami = || {
        std::process::Command::new(irf_binary())
            .args(["--profile", "ir", "whoami", "--json"])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .env("HOME", home.path())
            .env("AWS_CONFIG_FILE", aws.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", aws.join("credentials"))
            .env("AWS_ENDPOINT_URL", &state.endpoint)
            .env("IRF_CONFIG", &state.config_path)
            .env("NO_COLOR", "1")
            .output()
            .expect("run irf")
    };

    write_cache(&token, &expires_at);
    let out = whoami();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "arn:aws:sts::{security}:assumed-role/{}/alice@example.com",
            irf_lab::OPERATOR_ROLE
        )),
        "irf acts as the permission set's role, named after who signed in: {stdout}"
    );
    let who: serde_json::Value = serde_json::from_slice(&out.stdout).expect("whoami JSON");
    assert!(
        who["credentials_expire"]
            .as_str()
            .is_some_and(|at| at > "2026"),
        "the role session's end is said: {who}"
    );

    for (token, expires_at, why) in [
        (token.as_str(), "2020-01-01T00:00:00Z", "an expired token"),
        (
            "lab-sso-never-given",
            expires_at.as_str(),
            "a token the portal never gave",
        ),
    ] {
        write_cache(token, expires_at);
        let out = whoami();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{why} is refused");
        assert!(
            stderr.contains("no usable AWS credentials") && stderr.contains("aws sso login"),
            "{why} says how to sign in: {stderr}"
        );
    }
}

/// `irf resolve` marks a finding RESOLVED in the aggregator, as the workstation's `R` does;
/// an id the aggregator does not hold is named, and read-only mode refuses before any call.
#[tokio::test]
async fn resolve_marks_a_finding_resolved_and_names_an_unknown_one() {
    let state = lab();
    let member = irf_e2e::managed_member(state);
    let id = format!(
        "arn:aws:guardduty:us-east-1:{}:detector/irflab/finding/to-resolve",
        member.id
    );
    irf_e2e::plant_finding(
        member.id.as_str(),
        &id,
        "a finding to resolve",
        aws_sdk_securityhub::types::SeverityLabel::Medium,
        ("AwsS3Bucket", "arn:aws:s3:::irf-lab-somewhere"),
    )
    .await;
    let env = lab_env(state);
    let status_of = || {
        irf_e2e::irf_json(&["findings", "--any-status", "--all-resources", "--json"])
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["id"] == id.as_str())
            .map(|f| f["workflow_status"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(status_of().as_deref(), Some("NEW"));

    let refused = run_irf(&["--read-only", "resolve", &id], &env);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("irf resolve"));
    assert_eq!(
        status_of().as_deref(),
        Some("NEW"),
        "read-only changed nothing"
    );

    let out = run_irf(&["resolve", &id], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status_of().as_deref(), Some("RESOLVED"));

    let unknown = run_irf(
        &[
            "resolve",
            "arn:aws:guardduty:us-east-1:1:detector/x/finding/none",
        ],
        &env,
    );
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("finding/none"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}
