//! Lab authorization, principal by principal: each identity of the framework makes the calls
//! irf makes as it and is refused one outside its role, as AWS refuses it (AccessDenied
//! naming the action and the resource, recorded in the lab's denial log); and a statement irf
//! needs, removed from what the templates deployed, makes the call that needs it fail by name.

use std::sync::Arc;

use irf_e2e::{admin_context, context, denial_log, forensics_admin, lab, service_context, suspect};
use irf_engine::aws::AwsContext;
use irf_lab::control::ServicePrincipal;
use irf_lab::{FORWARDER_ROLE, LAB_REGION, ORG_ACCESS_ROLE, TRIGGER_ROLE};
use tokio::sync::Mutex;

/// The tests that change the lab's policies take turns, and others wait for them.
static POLICIES: Mutex<()> = Mutex::const_new(());

fn role(account: &impl std::fmt::Display, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

/// The refusal of a call: an AccessDenied whose message names `action` and `resource`, and
/// the same refusal in the lab's denial log.
fn refused<T: std::fmt::Debug, E: std::fmt::Debug>(
    result: Result<T, E>,
    action: &str,
    resource: &str,
) {
    let err = format!(
        "{:?}",
        result.expect_err(&format!("{action} on {resource} is refused"))
    );
    assert!(
        err.contains("AccessDenied") || err.contains("UnauthorizedOperation"),
        "not an access denial: {err}"
    );
    assert!(err.contains(action), "the refusal names {action}: {err}");
    assert!(
        err.contains(resource),
        "the refusal names {resource}: {err}"
    );
    let log = denial_log(lab());
    assert!(
        log.lines()
            .any(|line| line.contains(action) && line.contains(resource)),
        "the denial log records it:\n{log}"
    );
}

fn evidence_bucket() -> String {
    lab()
        .seeded
        .plane
        .as_ref()
        .expect("the lab's workflow")
        .evidence_bucket
        .clone()
}

async fn s3(ctx: &AwsContext) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::new(&ctx.base_config(LAB_REGION))
}

/// Writes `body` at `key` of the evidence bucket as `ctx`; the error as AWS answered it.
/// A record of custody (a ledger seal, a manifest) is written as irf writes it: only if
/// the key does not exist yet, which template 6 requires.
async fn put(ctx: &AwsContext, key: &str, body: &[u8]) -> Result<(), String> {
    let record = key.contains("/ledger/") || key.ends_with(".manifest.json");
    s3(ctx)
        .await
        .put_object()
        .bucket(evidence_bucket())
        .key(key)
        .set_if_none_match(record.then(|| "*".to_owned()))
        .body(body.to_vec().into())
        .send()
        .await
        .map(drop)
        .map_err(|err| format!("{err:?}"))
}

#[tokio::test]
async fn the_operator_reaches_members_and_evidence_but_writes_no_artifact() {
    let _turn = POLICIES.lock().await;
    let operator = context().await;
    let instance = suspect(lab());
    // Sweeps and containment go through the member role, which trusts the operators.
    let member = operator
        .account_config(&instance.account, &instance.region)
        .await
        .expect("the operator assumes IRAutomation");
    let described = aws_sdk_ec2::Client::new(&member)
        .describe_instances()
        .instance_ids(&instance.id)
        .send()
        .await
        .expect("the operator describes the suspect");
    assert_eq!(described.reservations().len(), 1);
    // The ledger seals of its own decisions are the only evidence it writes.
    let bucket = evidence_bucket();
    let client = s3(&operator).await;
    put(
        &operator,
        "cases/authz-operator/ledger/0000000001.json",
        b"{}",
    )
    .await
    .expect("the operator seals a ledger entry");
    let image = "cases/authz-operator/111111111111/i-0authz/disk/vol-0authz.raw";
    refused(
        put(&operator, image, b"forged").await,
        "s3:PutObject",
        image,
    );
    refused(
        client
            .delete_object()
            .bucket(&bucket)
            .key("cases/authz-operator/ledger/0000000001.json")
            .send()
            .await,
        "s3:DeleteObject",
        "cases/authz-operator/ledger/0000000001.json",
    );
}

#[tokio::test]
async fn the_worker_writes_evidence_but_cannot_delete_it() {
    let _turn = POLICIES.lock().await;
    let worker = irf_e2e::automation_context().await;
    let client = s3(&worker).await;
    let bucket = evidence_bucket();
    let key = "cases/authz-worker/manifest.json";
    put(&worker, key, b"{}")
        .await
        .expect("the worker writes under cases/");
    refused(
        client.delete_object().bucket(&bucket).key(key).send().await,
        "s3:DeleteObject",
        key,
    );
    refused(
        put(&worker, "outside-cases.txt", b"x").await,
        "s3:PutObject",
        "outside-cases.txt",
    );
}

/// The roles of `account`, with their trust policies, as its administrator lists them.
async fn roles_of(account: &irf_engine::config::AccountId) -> Vec<aws_sdk_iam::types::Role> {
    let admin = admin_context()
        .await
        .account_config(account, LAB_REGION)
        .await
        .expect("the account's administrator");
    aws_sdk_iam::Client::new(&admin)
        .list_roles()
        .send()
        .await
        .expect("its roles")
        .roles
}

/// The AWS services a role's trust policy names.
fn trusted_services(role: &aws_sdk_iam::types::Role) -> Vec<String> {
    let document = role.assume_role_policy_document().unwrap_or_default();
    // IAM returns policy documents URL-encoded.
    let decoded = percent_encoding::percent_decode_str(document).decode_utf8_lossy();
    let policy: serde_json::Value = serde_json::from_str(&decoded).unwrap_or_default();
    let statements = match &policy["Statement"] {
        serde_json::Value::Array(all) => all.clone(),
        one => vec![one.clone()],
    };
    statements
        .iter()
        .flat_map(|statement| match &statement["Principal"]["Service"] {
            serde_json::Value::String(one) => vec![one.clone()],
            serde_json::Value::Array(all) => all
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// A compromised member account: its administrator, and every role of it that an AWS service
/// runs as (a Lambda function, an instance, EventBridge's tag forwarder: anything the
/// administrator can launch), assumes no role of the Security account and no irf role of
/// another member, starts no execution and writes no case. Its only way in is its own tag
/// changes, which EventBridge forwards under its own account id (and the trigger refuses an
/// event about another account's instance: `trigger::tests`).
#[tokio::test]
async fn a_member_account_opens_and_contains_nothing_of_another() {
    let state = lab();
    let managed: Vec<_> = state.seeded.members.iter().filter(|m| m.managed).collect();
    let (own, other) = (&managed[0].id, &managed[1].id);
    let victim = state
        .seeded
        .instances
        .iter()
        .find(|i| &i.account == other)
        .expect("an instance of the other member");
    let plane = state.seeded.plane.as_ref().expect("the lab's workflow");
    let mut sessions = vec![(
        "administrator".to_owned(),
        admin_context()
            .await
            .account_config(own, LAB_REGION)
            .await
            .expect("the member's administrator"),
    )];
    let control = irf_lab::control::Control::new(&state.endpoint);
    for role in roles_of(own).await {
        for service in trusted_services(&role) {
            let principal = match service.as_str() {
                "lambda.amazonaws.com" => ServicePrincipal::Lambda,
                "ec2.amazonaws.com" => ServicePrincipal::Ec2,
                "ecs-tasks.amazonaws.com" => ServicePrincipal::EcsTasks,
                "events.amazonaws.com" => ServicePrincipal::Events,
                _ => continue,
            };
            if let Ok(credentials) = control
                .service_credentials(principal, role.arn(), role.role_name(), "")
                .await
            {
                let ctx = AwsContext::connect(
                    Arc::new(irf_engine::config::Config::default()),
                    &credentials.connect_options(&state.endpoint),
                )
                .await;
                sessions.push((role.role_name().to_owned(), ctx.base_config(LAB_REGION)));
            }
        }
    }
    let names: Vec<&str> = sessions.iter().map(|(name, _)| name.as_str()).collect();
    assert!(
        names.contains(&FORWARDER_ROLE),
        "the forwarder is among the member's roles: {names:?}"
    );
    let mut targets: Vec<String> = roles_of(&state.seeded.security)
        .await
        .iter()
        .map(|role| role.arn().to_owned())
        .collect();
    assert!(
        targets.contains(&role(&state.seeded.security, TRIGGER_ROLE)),
        "{targets:?}"
    );
    targets.push(role(other, "IRAutomation"));
    let table_arn = format!(
        "arn:aws:dynamodb:{LAB_REGION}:{}:table/{}",
        state.seeded.security, plane.case_table
    );
    let input = serde_json::json!({
        "account": other.as_str(),
        "region": LAB_REGION,
        "instance_id": victim.id,
        "containment": "auto",
    })
    .to_string();
    for (who, config) in &sessions {
        eprintln!("member {own}'s {who}");
        let sts = aws_sdk_sts::Client::new(config);
        for target in &targets {
            refused(
                sts.assume_role()
                    .role_arn(target)
                    .role_session_name("intruder")
                    .send()
                    .await,
                "sts:AssumeRole",
                target,
            );
        }
        refused(
            aws_sdk_sfn::Client::new(config)
                .start_execution()
                .state_machine_arn(&plane.state_machine_arn)
                .name(format!("intruder-{who}"))
                .input(&input)
                .send()
                .await,
            "states:StartExecution",
            &plane.state_machine_arn,
        );
        refused(
            aws_sdk_dynamodb::Client::new(config)
                .put_item()
                .table_name(&table_arn)
                .item(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S("CASE#intruder".into()),
                )
                .send()
                .await,
            "dynamodb:PutItem",
            &table_arn,
        );
    }
}

/// Capture and containment act through two roles in a member account: the one that runs
/// commands on instances and reads their disks (IRAutomation) changes no network, profile or
/// role policy; the one that does (IRContainment) runs no command, takes no snapshot and opens
/// no security group but the untracking group it tagged.
#[tokio::test]
async fn capture_and_containment_are_separate_roles() {
    let ctx = context().await;
    let suspect = suspect(lab());
    let capture = ctx
        .account_config(&suspect.account, &suspect.region)
        .await
        .expect("IRAutomation");
    // The containment role is the Security account's automation's (the decision desk's).
    let contain = irf_e2e::automation_context()
        .await
        .containment_config(&suspect.account, &suspect.region)
        .await
        .expect("IRContainment");
    let described = aws_sdk_ec2::Client::new(&capture)
        .describe_instances()
        .instance_ids(&suspect.id)
        .send()
        .await
        .expect("the suspect");
    let instance = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .expect("the suspect")
        .clone();
    let interface = instance.network_interfaces()[0]
        .network_interface_id()
        .expect("an interface")
        .to_owned();
    let group = instance.security_groups()[0]
        .group_id()
        .expect("a group")
        .to_owned();
    let role = role(&suspect.account, "app-server");
    refused(
        aws_sdk_iam::Client::new(&capture)
            .put_role_policy()
            .role_name("app-server")
            .policy_name("irf-revoke-test")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#)
            .send()
            .await,
        "iam:PutRolePolicy",
        &role,
    );
    refused(
        aws_sdk_ec2::Client::new(&capture)
            .modify_network_interface_attribute()
            .network_interface_id(&interface)
            .groups(&group)
            .send()
            .await,
        "ec2:ModifyNetworkInterfaceAttribute",
        &interface,
    );
    // The containment role opens no group but its own untracking group.
    let group_arn = format!(
        "arn:aws:ec2:{}:{}:security-group/{group}",
        suspect.region, suspect.account
    );
    refused(
        aws_sdk_ec2::Client::new(&contain)
            .authorize_security_group_ingress()
            .group_id(&group)
            .ip_permissions(irf_engine::containment::all_ipv4_traffic())
            .send()
            .await,
        "ec2:AuthorizeSecurityGroupIngress",
        &group_arn,
    );
    let instance_arn = format!(
        "arn:aws:ec2:{}:{}:instance/{}",
        suspect.region, suspect.account, suspect.id
    );
    refused(
        aws_sdk_ssm::Client::new(&contain)
            .send_command()
            .document_name("AWS-RunShellScript")
            .instance_ids(&suspect.id)
            .parameters("commands", vec!["id".to_owned()])
            .send()
            .await,
        "ssm:SendCommand",
        &instance_arn,
    );
    refused(
        aws_sdk_ec2::Client::new(&contain)
            .create_snapshot()
            .volume_id(&suspect.root_volume_id)
            .send()
            .await,
        "ec2:CreateSnapshot",
        &suspect.root_volume_id,
    );
}

/// Signs a ledger digest with `key` as `config`'s principal.
async fn sign(
    config: &aws_types::SdkConfig,
    key: &str,
) -> Result<aws_sdk_kms::operation::sign::SignOutput, String> {
    aws_sdk_kms::Client::new(config)
        .sign()
        .key_id(key)
        .message(aws_sdk_kms::primitives::Blob::new("0".repeat(64)))
        .message_type(aws_sdk_kms::types::MessageType::Raw)
        .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .map_err(|err| format!("{err:?}"))
}

/// Only the roles that append to ledgers sign with the ledger key: the worker and the operator
/// do; the Security account's own administrator and a member's do not, so neither can add a
/// ledger entry that verifies (`custody` shows what verify says of one).
#[tokio::test]
async fn only_the_ledger_writers_sign_with_the_ledger_key() {
    let state = lab();
    let key = state
        .seeded
        .plane
        .as_ref()
        .and_then(|plane| plane.ledger_key_arn.clone())
        .expect("template 3's ledger key");
    let worker = irf_e2e::automation_context().await;
    sign(&worker.base_config(LAB_REGION), &key)
        .await
        .expect("the worker signs");
    sign(&context().await.base_config(LAB_REGION), &key)
        .await
        .expect("the operator signs");
    let admin = admin_context().await;
    let member = &irf_e2e::managed_member(state).id;
    for account in [&state.seeded.security, member] {
        let administrator = admin
            .account_config(account, LAB_REGION)
            .await
            .expect("the account's administrator");
        refused(sign(&administrator, &key).await, "kms:Sign", &key);
    }
}

/// An instance in the Analysis VPC with the analyst profile's credentials, as EC2 hands them
/// to it: its calls to S3 leave through the VPC's gateway endpoint and its policy.
async fn analysis_host() -> Arc<AwsContext> {
    let state = lab();
    let analysis = state.seeded.analysis.as_ref().expect("the Analysis VPC");
    let ec2 = aws_sdk_ec2::Client::new(&forensics_admin().await);
    let launched = ec2
        .run_instances()
        .image_id("ami-0a1b2c3d4e5f60718")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .subnet_id(&analysis.subnet_ids[0])
        .send()
        .await
        .expect("a host in the Analysis VPC");
    let instance = launched.instances()[0]
        .instance_id()
        .expect("instance id")
        .to_owned();
    service_context(
        ServicePrincipal::Ec2,
        &role(&state.seeded.forensics, "irf-analyst"),
        &instance,
        &format!(
            "arn:aws:ec2:{LAB_REGION}:{}:instance/{instance}",
            state.seeded.forensics
        ),
    )
    .await
}

#[tokio::test]
async fn the_analysis_host_reads_evidence_and_writes_none() {
    let _turn = POLICIES.lock().await;
    let key = "cases/authz-analyst/memory.lime";
    let bucket = evidence_bucket();
    let worker = irf_e2e::automation_context().await;
    put(&worker, key, b"memory")
        .await
        .expect("evidence to read");
    let host = analysis_host().await;
    let client = s3(&host).await;
    client
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("the analysis host reads evidence");
    refused(put(&host, key, b"changed").await, "s3:PutObject", key);
}

#[tokio::test]
async fn a_suspect_instance_reads_no_evidence_and_no_role_of_irf() {
    let state = lab();
    let instance = suspect(state);
    // The IR profile prepare gives a suspect without one: SSM only.
    let suspect_role = service_context(
        ServicePrincipal::Ec2,
        &role(&instance.account, "IRInstanceProfile"),
        &instance.id,
        &format!(
            "arn:aws:ec2:{}:{}:instance/{}",
            instance.region, instance.account, instance.id
        ),
    )
    .await;
    let key = "cases/authz-analyst/memory.lime";
    refused(
        s3(&suspect_role)
            .await
            .get_object()
            .bucket(evidence_bucket())
            .key(key)
            .send()
            .await,
        "s3:GetObject",
        key,
    );
    // The account's secrets stay out of reach: the IR profile is the agent's channels only.
    let admin = admin_context()
        .await
        .account_config(&instance.account, &instance.region)
        .await
        .expect("the member as its administrator");
    aws_sdk_ssm::Client::new(&admin)
        .put_parameter()
        .name("db-password")
        .value("hunter2")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("a secret of the member's");
    let parameter = format!(
        "arn:aws:ssm:{}:{}:parameter/db-password",
        instance.region, instance.account
    );
    refused(
        aws_sdk_ssm::Client::new(&suspect_role.base_config(&instance.region))
            .get_parameter()
            .name("db-password")
            .with_decryption(true)
            .send()
            .await,
        "ssm:GetParameter",
        &parameter,
    );
    let target = role(&instance.account, "IRAutomation");
    refused(
        aws_sdk_sts::Client::new(&suspect_role.base_config(LAB_REGION))
            .assume_role()
            .role_arn(&target)
            .role_session_name("escape")
            .send()
            .await,
        "sts:AssumeRole",
        &target,
    );
}

#[tokio::test]
async fn an_operation_without_a_rule_is_refused_by_name() {
    let operator = context().await;
    let instance = suspect(lab());
    let member = operator
        .account_config(&instance.account, &instance.region)
        .await
        .expect("member");
    // irf never creates VPCs: the lab's table has no rule for it, and says so.
    let err = format!(
        "{:?}",
        aws_sdk_ec2::Client::new(&member)
            .create_vpc()
            .cidr_block("10.99.0.0/16")
            .send()
            .await
            .expect_err("refused")
    );
    assert!(err.contains("ec2:CreateVpc"), "{err}");
    assert!(err.contains("authorization.json"), "{err}");
}

/// Runs the lab's AWS CLI as the Forensics account's administrator; its standard output.
async fn forensics_cli(args: &[&str]) -> String {
    let state = lab();
    let assumed = aws_sdk_sts::Client::new(&admin_context().await.base_config(LAB_REGION))
        .assume_role()
        .role_arn(role(&state.seeded.forensics, ORG_ACCESS_ROLE))
        .role_session_name("key-administrator")
        .send()
        .await
        .expect("the Forensics administrator");
    let credentials = assumed.credentials().expect("credentials");
    let aws = irf_lab::install::installed()
        .expect("the lab's tools")
        .expect("installed")
        .aws_cli();
    let out = std::process::Command::new(aws)
        .args(args)
        .env("AWS_ENDPOINT_URL", &state.endpoint)
        .env("AWS_ACCESS_KEY_ID", credentials.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key())
        .env("AWS_SESSION_TOKEN", credentials.session_token())
        .env("AWS_DEFAULT_REGION", LAB_REGION)
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run the AWS CLI");
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Replaces the statement `sid` of a policy document by nothing, returning the original.
fn without(document: &str, sid: &str) -> (String, String) {
    // IAM answers policy documents URL-encoded.
    let original = percent_encoding::percent_decode_str(document)
        .decode_utf8()
        .expect("utf-8 policy")
        .into_owned();
    let mut policy: serde_json::Value = serde_json::from_str(&original).expect("policy JSON");
    let statements = policy["Statement"].as_array_mut().expect("statements");
    let before = statements.len();
    statements.retain(|s| s["Sid"] != sid);
    assert_eq!(
        statements.len() + 1,
        before,
        "the policy has a statement {sid}"
    );
    (original, policy.to_string())
}

#[tokio::test]
async fn a_needed_statement_removed_from_a_deployed_template_fails_its_call_by_name() {
    let _turn = POLICIES.lock().await;
    let state = lab();
    let admin = admin_context().await;
    let operator = context().await;
    let bucket = evidence_bucket();

    // Template 6: the operators' read of evidence.
    let key = "cases/authz-operator/ledger/0000000002.json";
    put(&operator, key, b"{}")
        .await
        .expect("a sealed entry to read");
    let forensics_s3 = aws_sdk_s3::Client::new(&forensics_admin().await);
    let policy = forensics_s3
        .get_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .expect("template 6's bucket policy")
        .policy()
        .expect("a policy")
        .to_owned();
    let (original, reduced) = without(&policy, "OperatorsReadEvidence");
    let set_bucket_policy = async |document: String| {
        forensics_s3
            .put_bucket_policy()
            .bucket(&bucket)
            .policy(document)
            .send()
            .await
            .expect("the bucket policy set")
    };
    set_bucket_policy(reduced).await;
    let read = s3(&operator)
        .await
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await;
    set_bucket_policy(original).await;
    refused(read, "s3:GetObject", key);

    // Template 1: the evidence key's policy, which lets the operators decrypt through S3.
    let evidence_key = state
        .seeded
        .plane
        .as_ref()
        .and_then(|p| p.evidence_kms_key_arn.clone())
        .expect("template 1's evidence key");
    // The key's administrator (the Forensics account's) edits its policy with the AWS CLI.
    let key_policy = forensics_cli(&[
        "kms",
        "get-key-policy",
        "--key-id",
        &evidence_key,
        "--policy-name",
        "default",
        "--query",
        "Policy",
        "--output",
        "text",
    ])
    .await;
    let (original, reduced) = without(key_policy.trim(), "OperatorsThroughS3");
    let put_policy = async |policy: &str| {
        forensics_cli(&[
            "kms",
            "put-key-policy",
            "--key-id",
            &evidence_key,
            "--policy-name",
            "default",
            "--policy",
            policy,
        ])
        .await
    };
    put_policy(&reduced).await;
    let read = s3(&operator)
        .await
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await;
    put_policy(&original).await;
    refused(read, "kms:Decrypt", &evidence_key);

    // Template 1: the Analysis VPC's S3 endpoint, the only way its hosts reach evidence.
    let host = s3(&*analysis_host().await).await;
    host.get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("the host reads through the endpoint");
    let forensics_ec2 = aws_sdk_ec2::Client::new(&forensics_admin().await);
    let analysis = state.seeded.analysis.as_ref().expect("the Analysis VPC");
    let endpoints = forensics_ec2
        .describe_vpc_endpoints()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(&analysis.vpc_id)
                .build(),
        )
        .send()
        .await
        .expect("the VPC's endpoints");
    let endpoint = endpoints
        .vpc_endpoints()
        .iter()
        .find(|e| e.service_name().is_some_and(|n| n.ends_with(".s3")))
        .expect("the S3 gateway endpoint");
    let endpoint_id = endpoint.vpc_endpoint_id().expect("id").to_owned();
    let (original, reduced) = without(
        endpoint.policy_document().expect("template 1's policy"),
        "ReadEvidenceOnly",
    );
    // An endpoint policy needs a statement: one that lets nothing of the evidence through.
    let mut reduced: serde_json::Value = serde_json::from_str(&reduced).expect("JSON");
    reduced["Statement"] = serde_json::json!([{
        "Effect": "Allow", "Principal": "*", "Action": "s3:ListAllMyBuckets", "Resource": "*"
    }]);
    let set_endpoint_policy = async |document: String| {
        forensics_ec2
            .modify_vpc_endpoint()
            .vpc_endpoint_id(&endpoint_id)
            .policy_document(document)
            .send()
            .await
            .expect("the endpoint policy set")
    };
    set_endpoint_policy(reduced.to_string()).await;
    let read = host.get_object().bucket(&bucket).key(key).send().await;
    set_endpoint_policy(original).await;
    let err = format!("{read:?}");
    refused(read, "s3:GetObject", key);
    assert!(err.contains("VPC endpoint policy"), "{err}");

    // Template 5: the operators in IRAutomation's trust.
    let instance = suspect(state);
    let member_iam = aws_sdk_iam::Client::new(
        &admin
            .account_config(&instance.account, LAB_REGION)
            .await
            .expect("the member as its administrator"),
    );
    let trust = member_iam
        .get_role()
        .role_name("IRAutomation")
        .send()
        .await
        .expect("IRAutomation")
        .role()
        .and_then(|r| r.assume_role_policy_document())
        .expect("its trust")
        .to_owned();
    let (original, reduced) = without(&trust, "Operators");
    let set_trust = async |document: String| {
        member_iam
            .update_assume_role_policy()
            .role_name("IRAutomation")
            .policy_document(document)
            .send()
            .await
            .expect("IRAutomation's trust set")
    };
    set_trust(reduced).await;
    let target = role(&instance.account, "IRAutomation");
    let assumed = aws_sdk_sts::Client::new(&operator.base_config(LAB_REGION))
        .assume_role()
        .role_arn(&target)
        .role_session_name("authz-operator")
        .send()
        .await;
    set_trust(original).await;
    refused(assumed, "sts:AssumeRole", &target);

    // Template 3: the automation's right to read the step queues.
    let queue = state
        .seeded
        .plane
        .as_ref()
        .expect("workflow")
        .step_queues
        .get(irf_engine::acquisition::STEPS_QUEUE)
        .expect("the steps queue")
        .clone();
    let security_iam = aws_sdk_iam::Client::new(&admin.base_config(LAB_REGION));
    let policy_arn = format!(
        "arn:aws:iam::{}:policy/irf-automation",
        state.seeded.security
    );
    let current = security_iam
        .get_policy()
        .policy_arn(&policy_arn)
        .send()
        .await
        .expect("the automation policy")
        .policy()
        .and_then(|p| p.default_version_id())
        .expect("its version")
        .to_owned();
    let document = security_iam
        .get_policy_version()
        .policy_arn(&policy_arn)
        .version_id(&current)
        .send()
        .await
        .expect("its document")
        .policy_version()
        .and_then(|v| v.document())
        .expect("a document")
        .to_owned();
    let (_, reduced) = without(&document, "ConsumeStepQueues");
    security_iam
        .create_policy_version()
        .policy_arn(&policy_arn)
        .policy_document(reduced)
        .set_as_default(true)
        .send()
        .await
        .expect("remove the statement");
    let worker = irf_e2e::automation_context().await;
    let received = aws_sdk_sqs::Client::new(&worker.base_config(LAB_REGION))
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(1)
        .send()
        .await;
    security_iam
        .set_default_policy_version()
        .policy_arn(&policy_arn)
        .version_id(&current)
        .send()
        .await
        .expect("put the statement back");
    let queue_arn = format!(
        "arn:aws:sqs:{LAB_REGION}:{}:{}",
        state.seeded.security,
        queue.rsplit('/').next().unwrap_or_default()
    );
    refused(received, "sqs:ReceiveMessage", &queue_arn);
}
