//! The CloudFormation templates: the pinned cfn-lint passes every template with no error and
//! no warning, with the project's own rules (no admin statements, no unconditioned wildcard
//! principals, every bucket encrypted, private and TLS-only), each rule refuses its fixture;
//! the pinned checkov fails no check, and every check it is told to skip says why beside the
//! resource; and the templates the lab emulator supports deploy into the lab.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use irf_e2e::lab;
use irf_lab::install::{self, EmulatorInstall};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn tools() -> EmulatorInstall {
    install::ensure_installed(&|message| eprintln!("templates: {message}"))
        .expect("the pinned tools install")
}

fn cfn_lint(install: &EmulatorInstall, files: &[PathBuf]) -> Output {
    let root = workspace();
    Command::new(install.cfn_lint())
        .current_dir(&root)
        .arg("--append-rules")
        .arg(root.join("cloudformation/rules"))
        .arg("--")
        .args(files)
        .output()
        .expect("run cfn-lint")
}

fn templates() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(workspace().join("cloudformation"))
        .expect("cloudformation/")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    found.sort();
    found
}

#[test]
fn every_template_is_lint_clean_with_the_project_rules() {
    let install = tools();
    let templates = templates();
    let names: Vec<String> = templates
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in [
        "1-forensic-analysis-vpc-and-buckets.yaml",
        "2-forensic-maintenance-vpc-and-sift-pipeline.yaml",
        "3-security-acquisition-automation.yaml",
        "4-security-memory-tooling.yaml",
        "5-member-ir-automation.yaml",
        "6-forensic-evidence-bucket-policies.yaml",
        "7-security-ir-vpc.yaml",
        "securityhub-custom-actions.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "missing template {expected}"
        );
    }
    let out = cfn_lint(&install, &templates);
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "cfn-lint found problems (rc {:?}):\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn each_project_rule_refuses_its_fixture() {
    let install = tools();
    let fixtures = workspace().join("cloudformation/rules/fixtures");
    let mut seen = 0;
    for entry in std::fs::read_dir(&fixtures).expect("fixtures") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        // Fixtures are named after the rule they break: e9001-..., e9003-...
        let rule = name[..5].to_uppercase();
        let out = cfn_lint(&install, std::slice::from_ref(&path));
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{name} passed lint");
        assert!(
            report
                .lines()
                .any(|line| line.starts_with(&format!("{rule} "))),
            "{name} was not refused by {rule}:\n{report}"
        );
        seen += 1;
    }
    assert!(seen >= 3, "a fixture per rule");
}

/// The pinned checkov (`cloudformation/checkov-requirements.txt`), installed on first use into
/// a virtual environment of its own: its dependencies would not sit with the lab's.
fn checkov() -> PathBuf {
    use sha2::Digest;
    let requirements = workspace().join("cloudformation/checkov-requirements.txt");
    let pinned = std::fs::read(&requirements).expect("checkov's pinned requirements");
    let hash = irf_engine::hex(&sha2::Sha256::digest(&pinned));
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .expect("a cache directory (HOME or XDG_CACHE_HOME)")
        .join("irf");
    let venv = cache.join(format!("checkov-{}", &hash[..12]));
    let checkov = venv.join("bin").join("checkov");
    let marker = venv.join("installed");
    if marker.exists() {
        return checkov;
    }
    eprintln!(
        "templates: installing the pinned checkov into {}",
        venv.display()
    );
    // Installed in place (its scripts name their own path); the marker, written last, says
    // the environment is complete, and an incomplete one is started again.
    let _ = std::fs::remove_dir_all(&venv);
    let run = |command: &mut Command, what: &str| {
        let out = command
            .output()
            .unwrap_or_else(|err| panic!("{what}: {err}"));
        assert!(
            out.status.success(),
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "python3 -m venv (Python 3 with venv is needed)",
    );
    // Every package is pinned in the file: nothing else may be resolved.
    run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--no-deps", "-r"])
            .arg(&requirements),
        "pip install checkov",
    );
    std::fs::write(&marker, &hash).expect("mark checkov installed");
    checkov
}

#[test]
fn checkov_fails_no_check_and_every_skip_says_why() {
    let out = Command::new(checkov())
        .current_dir(workspace().join("cloudformation"))
        .args([
            "-d",
            ".",
            "--framework",
            "cloudformation",
            // The project rules' fixtures are wrong on purpose.
            "--skip-path",
            "rules/fixtures",
            // Nothing is fetched from checkov's platform: the checks are those of the pin.
            "--skip-download",
            "--output",
            "json",
        ])
        .env("BC_SKIP_MAPPING", "TRUE")
        .output()
        .expect("run checkov");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "checkov printed no report ({err}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let summary = &report["summary"];
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    assert!(
        summary["passed"].as_u64().unwrap_or(0) > 200,
        "checkov checked the templates: {summary}"
    );
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|check| {
            format!(
                "{} {} {} {}",
                check["check_id"].as_str().unwrap_or_default(),
                check["check_name"].as_str().unwrap_or_default(),
                check["file_path"].as_str().unwrap_or_default(),
                check["resource"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "checkov failed checks: fix the template, or skip the check in the resource's \
         Metadata (checkov: skip: id, comment) saying why it does not apply:\n{}",
        failed.join("\n")
    );
    for skipped in report["results"]["skipped_checks"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let why = skipped["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or_default();
        assert!(
            why.len() > 40,
            "{} is skipped on {} without a reason: {why:?}",
            skipped["check_id"],
            skipped["resource"]
        );
    }
}

/// Runs the AWS CLI against the shared lab as the Security account.
fn aws(args: &[&str]) -> Output {
    let state = lab();
    let install = tools();
    let mut command = Command::new(install.aws_cli());
    command
        .args(args)
        .current_dir(workspace())
        .env_remove("AWS_PROFILE")
        .env("AWS_ENDPOINT_URL", &state.endpoint)
        .env("AWS_ACCESS_KEY_ID", irf_lab::LAB_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", irf_lab::LAB_SECRET_KEY)
        .env("AWS_DEFAULT_REGION", irf_lab::LAB_REGION);
    command.output().expect("run the AWS CLI")
}

#[test]
fn the_ir_vpc_template_deploys_into_the_lab_with_every_endpoint() {
    let parameters = format!(
        "file://{}",
        workspace()
            .join("cloudformation/parameters/7-security-ir-vpc.json")
            .display()
    );
    let created = aws(&[
        "cloudformation",
        "create-stack",
        "--stack-name",
        "irf-ir-vpc",
        "--template-body",
        "file://cloudformation/7-security-ir-vpc.yaml",
        "--parameters",
        &parameters,
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let out = aws(&[
            "cloudformation",
            "describe-stacks",
            "--stack-name",
            "irf-ir-vpc",
            "--query",
            "Stacks[0].StackStatus",
            "--output",
            "text",
        ]);
        let status = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !status.ends_with("IN_PROGRESS") || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(status, "CREATE_COMPLETE");
    let outputs = aws(&[
        "cloudformation",
        "describe-stacks",
        "--stack-name",
        "irf-ir-vpc",
        "--query",
        "Stacks[0].Outputs[?OutputKey=='VpcId'].OutputValue",
        "--output",
        "text",
    ]);
    let vpc = String::from_utf8_lossy(&outputs.stdout).trim().to_owned();
    assert!(vpc.starts_with("vpc-"), "VpcId output: {vpc:?}");
    let endpoints = aws(&[
        "ec2",
        "describe-vpc-endpoints",
        "--filters",
        &format!("Name=vpc-id,Values={vpc}"),
        "--query",
        "VpcEndpoints[].ServiceName",
        "--output",
        "text",
    ]);
    let services = String::from_utf8_lossy(&endpoints.stdout);
    for service in [
        "s3", "dynamodb", "ebs", "ssm", "sqs", "sts", "states", "ec2",
    ] {
        assert!(
            services
                .split_whitespace()
                .any(|s| s.ends_with(&format!(".{service}"))),
            "no {service} endpoint in {services}"
        );
    }
    let gateways = aws(&[
        "ec2",
        "describe-internet-gateways",
        "--filters",
        &format!("Name=attachment.vpc-id,Values={vpc}"),
        "--query",
        "length(InternetGateways)",
        "--output",
        "text",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&gateways.stdout).trim(),
        "0",
        "no internet"
    );
}

/// The template as JSON, through cfn-lint's own YAML reader (it knows the short-form tags).
fn template_json(install: &EmulatorInstall, name: &str) -> serde_json::Value {
    let out = Command::new(install.python())
        .current_dir(workspace())
        .args([
            "-c",
            "import json, sys\nfrom cfnlint.decode import decode\ntemplate, problems = decode(sys.argv[1])\nassert not problems, problems\nprint(json.dumps(template))",
        ])
        .arg(workspace().join("cloudformation").join(name))
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("template JSON")
}

/// EventBridge's input path subset the templates use: `$.a.b[0].c`.
fn input_path<'a>(event: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    let mut at = event;
    for step in path.strip_prefix("$.").expect("path from $").split('.') {
        let (field, index) = match step.split_once('[') {
            Some((field, rest)) => (
                field,
                Some(rest.trim_end_matches(']').parse::<usize>().expect("index")),
            ),
            None => (step, None),
        };
        at = &at[field];
        if let Some(index) = index {
            at = &at[index];
        }
    }
    assert!(!at.is_null(), "{path} is not in the event");
    at
}

/// EventBridge's input transformer for a JSON template: each `<name>` becomes the JSON value
/// its path selects.
fn transform(transformer: &serde_json::Value, event: &serde_json::Value) -> String {
    let mut text = transformer["InputTemplate"]
        .as_str()
        .expect("InputTemplate")
        .to_owned();
    for (name, path) in transformer["InputPathsMap"]
        .as_object()
        .expect("InputPathsMap")
    {
        let value = input_path(event, path.as_str().expect("path"));
        text = text.replace(&format!("<{name}>"), &value.to_string());
    }
    text
}

#[test]
fn security_hub_actions_reach_the_trigger_with_the_findings_account_region_and_instance() {
    use irf_engine::model::case::ContainmentPolicy;
    use irf_engine::trigger::{TagRequest, parse_event};

    let install = tools();
    let template = template_json(&install, "securityhub-custom-actions.yaml");
    let finding_event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("tests/fixtures/securityhub-custom-action.json"))
            .expect("fixture"),
    )
    .expect("fixture JSON");
    let rule = &template["Resources"]["AcquireRule"]["Properties"];
    let transformer = &rule["Targets"][0]["InputTransformer"];
    let delivered = transform(transformer, &finding_event);
    let event =
        parse_event(&delivered, ContainmentPolicy::Approval).expect("the trigger accepts it");
    assert_eq!(event.requests.len(), 1, "{event:?}");
    let Some(TagRequest::Analyze(subject)) = event.requests.into_iter().next() else {
        panic!("'Acquire evidence' must start an acquisition: {delivered}");
    };
    // The finding's account and region, not the administrator's or the aggregation region;
    // the instance, though it is not the finding's first resource.
    assert_eq!(subject.account.as_str(), "444455556666");
    assert_eq!(subject.region, "eu-west-1");
    assert_eq!(subject.instance_id, "i-0a1b2c3d4e5f60718");

    // A finding with no instance among its resources is refused by name.
    let mut no_instance = finding_event.clone();
    no_instance["detail"]["findings"][0]["Resources"]
        .as_array_mut()
        .expect("resources")
        .retain(|r| r["Type"] != "AwsEc2Instance");
    let refused = parse_event(
        &transform(transformer, &no_instance),
        ContainmentPolicy::Approval,
    )
    .expect_err("no instance");
    assert!(refused.contains("no instance ARN"), "{refused}");

    // Both rules listen for their own action only, on findings with an instance.
    for (rule_name, action) in [
        ("AcquireRule", "AcquireAction"),
        ("ContainRule", "ContainAction"),
    ] {
        let pattern = &template["Resources"][rule_name]["Properties"]["EventPattern"];
        assert_eq!(pattern["resources"][0]["Ref"], action, "{rule_name}");
        assert_eq!(
            pattern["detail"]["findings"]["Resources"]["Type"][0],
            "AwsEc2Instance"
        );
    }
}

#[test]
fn steps_that_read_every_byte_of_a_case_run_on_the_worker_not_in_the_function() {
    // Template 3's step function stops at 900 s; imaging and verify read whole volumes and
    // images, so the state machine hands them to the worker's queue, which has no limit.
    let definition: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            workspace().join("cloudformation/statemachines/acquisition.asl.json"),
        )
        .expect("the state machine definition"),
    )
    .expect("JSON");
    let mut queues = std::collections::BTreeMap::new();
    fn walk(node: &serde_json::Value, queues: &mut std::collections::BTreeMap<String, String>) {
        match node {
            serde_json::Value::Object(map) => {
                if let (Some(step), Some(queue)) = (
                    map.get("Parameters")
                        .and_then(|p| p["MessageBody"]["step"].as_str()),
                    map.get("Parameters").and_then(|p| p["QueueUrl"].as_str()),
                ) {
                    queues.insert(step.to_owned(), queue.to_owned());
                }
                map.values().for_each(|v| walk(v, queues));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, queues)),
            _ => {}
        }
    }
    walk(&definition, &mut queues);
    for step in ["disk", "memory", "verify"] {
        assert_eq!(
            queues.get(step).map(String::as_str),
            Some("${ImagingQueueUrl}"),
            "{step}: {queues:?}"
        );
    }
    assert_eq!(
        queues.get("prepare").map(String::as_str),
        Some("${StepsQueueUrl}")
    );
}
