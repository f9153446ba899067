//! Containment in the lab, through the real SDK calls: apply isolates every interface, swaps
//! the profile to deny-all, revokes the old role's sessions on the instance, detaches it from
//! its Auto Scaling group and load balancer, protects and tags it; applying twice changes
//! nothing; rollback restores exactly what was recorded; a run stopped halfway is finished or
//! undone; the four-eyes rule and bad input refuse and change nothing; the `Contain` tag takes
//! the same path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use irf_e2e::{TerminalSession, context, lab, lab_env, run_irf};
use irf_engine::acquisition::Decision;
use irf_engine::aws::{AwsContext, ConnectOptions};
use irf_engine::containment::{self, ContainmentError, ContainmentOptions, STATUS_TAG};
use irf_engine::desk::client::{self, Containing};
use irf_engine::desk::{DeskError, Refusal};
use irf_engine::model::case::{CaseStatus, CaseSubject, ContainmentPolicy};
use irf_engine::model::containment::{ContainmentState, InstanceRef};
use irf_engine::plane::Plane;
use irf_lab::seed::LabInstance;

/// What containment touches on an instance, read straight from the services.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    interfaces: Vec<(String, Vec<String>)>,
    profile_arn: Option<String>,
    tags: Vec<(String, String)>,
    termination_protection: bool,
    autoscaling_group: Option<String>,
    target_groups: Vec<String>,
    role_policies: Vec<String>,
}

async fn observe(ctx: &AwsContext, instance: &InstanceRef) -> Observed {
    // Seen through the containment role, which reads what it changes (role policies included).
    let config = ctx
        .containment_config(&instance.account, &instance.region)
        .await
        .expect("member config");
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let id = instance.instance_id.as_str();
    let described = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("describe instance");
    let found = described.reservations()[0].instances()[0].clone();
    let mut interfaces: Vec<(String, Vec<String>)> = found
        .network_interfaces()
        .iter()
        .map(|eni| {
            let mut groups: Vec<String> = eni
                .groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_owned))
                .collect();
            groups.sort();
            (
                eni.network_interface_id().unwrap_or_default().to_owned(),
                groups,
            )
        })
        .collect();
    interfaces.sort();
    let mut tags: Vec<(String, String)> = found
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    tags.sort();
    let associations = ec2
        .describe_iam_instance_profile_associations()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-id")
                .values(id)
                .build(),
        )
        .send()
        .await
        .expect("associations");
    let profile_arn = associations
        .iam_instance_profile_associations()
        .first()
        .and_then(|a| a.iam_instance_profile())
        .and_then(|p| p.arn())
        .map(str::to_owned);
    let termination_protection = ec2
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .expect("attribute")
        .disable_api_termination()
        .and_then(|v| v.value())
        .unwrap_or(false);
    let autoscaling_group = aws_sdk_autoscaling::Client::new(&config)
        .describe_auto_scaling_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("autoscaling instances")
        .auto_scaling_instances()
        .first()
        .and_then(|i| i.auto_scaling_group_name().map(str::to_owned));
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let mut target_groups = Vec::new();
    for group in elb
        .describe_target_groups()
        .send()
        .await
        .expect("target groups")
        .target_groups()
    {
        let arn = group.target_group_arn().unwrap_or_default();
        let health = elb
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
            .expect("target health");
        if health
            .target_health_descriptions()
            .iter()
            .any(|d| d.target().is_some_and(|t| t.id() == Some(id)))
        {
            target_groups.push(arn.to_owned());
        }
    }
    // The role is shared by the account's instances: only this instance's revocation counts.
    let iam = aws_sdk_iam::Client::new(&config);
    let role_policies = iam
        .list_role_policies()
        .role_name("app-server")
        .send()
        .await
        .expect("role policies")
        .policy_names()
        .iter()
        .filter(|name| name.ends_with(id))
        .cloned()
        .collect();
    Observed {
        interfaces,
        profile_arn,
        tags,
        termination_protection,
        autoscaling_group,
        target_groups,
        role_policies,
    }
}

fn instance_ref(instance: &LabInstance) -> InstanceRef {
    InstanceRef {
        account: instance.account.clone(),
        region: instance.region.clone(),
        instance_id: instance.id.clone(),
    }
}

/// Running instances of managed members that carry the app-server profile, other than the
/// suspect, one per test that needs one.
fn bystander(index: usize) -> InstanceRef {
    let state = lab();
    let suspect = irf_e2e::suspect(lab()).id.clone();
    let managed: Vec<_> = state
        .seeded
        .members
        .iter()
        .filter(|m| m.managed)
        .map(|m| m.id.clone())
        .collect();
    let candidates: Vec<&LabInstance> = state
        .seeded
        .instances
        .iter()
        .filter(|i| {
            i.state == "running"
                && i.id != suspect
                && managed.contains(&i.account)
                && !i.name.contains("bastion")
        })
        .collect();
    instance_ref(candidates[index])
}

fn suspect() -> InstanceRef {
    instance_ref(irf_e2e::suspect(lab()))
}

/// The Security account's automation (template 3's worker role): what the decision desk
/// contains and rolls back with. Operators cannot: they ask the desk.
async fn plane() -> (Arc<AwsContext>, Plane) {
    let ctx = irf_e2e::automation_context().await;
    let plane = Plane::connect(ctx.clone()).await.expect("plane");
    (ctx, plane)
}

/// The second operator's role: an Identity Center permission set's role of the Security
/// account (the path and name AWS gives those), with template 3's operator policy, which the
/// templates trust as operators do.
const SECOND_OPERATOR: &str = "AWSReservedSSO_IncidentResponder_5e1f0c2a9b7d3e41";
const SECOND_OPERATOR_PATH: &str = "/aws-reserved/sso.amazonaws.com/us-east-1/";

/// A plane acting as another operator: a role of the Security account, assumed.
async fn second_operator() -> Plane {
    let state = lab();
    let admin = irf_e2e::admin_context().await;
    let iam = aws_sdk_iam::Client::new(&admin.base_config(irf_lab::LAB_REGION));
    let created = iam
        .create_role()
        .role_name(SECOND_OPERATOR)
        .path(SECOND_OPERATOR_PATH)
        .assume_role_policy_document(
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{}:root", state.seeded.security)}, "Action": "sts:AssumeRole"}]
            })
            .to_string(),
        )
        .send()
        .await;
    let fresh = created.is_ok();
    assert!(
        fresh
            || created
                .as_ref()
                .err()
                .and_then(|e| e.as_service_error())
                .is_some_and(|e| e.is_entity_already_exists_exception()),
        "{created:?}"
    );
    if fresh {
        iam.attach_role_policy()
            .role_name(SECOND_OPERATOR)
            .policy_arn(format!(
                "arn:aws:iam::{}:policy/irf-operator",
                state.seeded.security
            ))
            .send()
            .await
            .expect("the operator policy attaches");
    }
    let role = format!(
        "arn:aws:iam::{}:role{SECOND_OPERATOR_PATH}{SECOND_OPERATOR}",
        state.seeded.security
    );
    plane_of_session(&role, "second-operator").await
}

/// A plane acting as `role` under `session_name`, as `aws sts assume-role` gives it.
async fn plane_of_session(role: &str, session_name: &str) -> Plane {
    let state = lab();
    let config = irf_engine::config::Config::load_from(&state.config_path)
        .expect("lab config")
        .config;
    let lab_options = irf_lab::connect_options_for(&state.endpoint);
    let deployer = AwsContext::connect(Arc::new(config.clone()), &lab_options).await;
    let session = aws_sdk_sts::Client::new(&deployer.base_config(irf_lab::LAB_REGION))
        .assume_role()
        .role_arn(role)
        .role_session_name(session_name)
        .send()
        .await
        .unwrap_or_else(|err| panic!("{role} as {session_name}: {err:?}"));
    let keys = session.credentials().expect("credentials");
    let options = ConnectOptions {
        static_credentials: Some(irf_engine::aws::StaticCredentials {
            access_key_id: keys.access_key_id().to_owned(),
            secret_access_key: keys.secret_access_key().to_owned(),
            session_token: Some(keys.session_token().to_owned()),
        }),
        ..lab_options
    };
    let ctx = Arc::new(AwsContext::connect(Arc::new(config), &options).await);
    Plane::connect(ctx)
        .await
        .unwrap_or_else(|err| panic!("the plane of {role} as {session_name}: {err}"))
}

/// The lab operator's role, assumed under a session name of the caller's choosing by the
/// Security account's own administrator: what the role's trust refuses.
async fn assume_operator_role_as(session_name: &str) -> String {
    let state = lab();
    let config = irf_engine::config::Config::load_from(&state.config_path)
        .expect("lab config")
        .config;
    let lab_options = irf_lab::connect_options_for(&state.endpoint);
    let deployer = AwsContext::connect(Arc::new(config), &lab_options).await;
    let assumed = aws_sdk_sts::Client::new(&deployer.base_config(irf_lab::LAB_REGION))
        .assume_role()
        .role_arn(format!(
            "arn:aws:iam::{}:role/{}",
            state.seeded.security,
            irf_lab::OPERATOR_ROLE
        ))
        .role_session_name(session_name)
        .send()
        .await;
    format!("{assumed:?}")
}

/// The lab's operator (template 3's operator role), as irf's CLI and workstation act.
async fn operator() -> Plane {
    let state = lab();
    let ctx = context().await;
    assert_eq!(
        ctx.caller_identity().await.expect("identity").arn,
        state.operator.as_ref().expect("the lab's operator").arn,
        "the test context acts as the lab's operator"
    );
    Plane::connect(ctx).await.expect("plane")
}

#[tokio::test]
async fn apply_isolates_twice_changes_nothing_and_rollback_restores_exactly() {
    let (ctx, plane) = plane().await;
    let instance = suspect();
    // The seeded incident tag would start an acquisition again when rollback restores it:
    // this test is about containment alone.
    let member = ctx
        .account_config(&instance.account, &instance.region)
        .await
        .expect("member");
    aws_sdk_ec2::Client::new(&member)
        .delete_tags()
        .resources(&instance.instance_id)
        .tags(aws_sdk_ec2::types::Tag::builder().key(STATUS_TAG).build())
        .send()
        .await
        .expect("untag");
    let options = ContainmentOptions::from_config(ctx.config());
    let before = observe(&ctx, &instance).await;
    assert_eq!(
        before.autoscaling_group.as_deref(),
        Some("prod-web"),
        "seeded in a group"
    );
    assert_eq!(
        before.target_groups.len(),
        1,
        "seeded behind a load balancer"
    );
    assert!(before.profile_arn.is_some(), "seeded with a profile");

    let plan = containment::plan(&plane, &instance, &options)
        .await
        .expect("plan");
    assert!(!plan.is_done());
    let actions: Vec<&str> = plan.changes.iter().map(|c| c.action.as_str()).collect();
    for expected in [
        "enable termination protection",
        "detach from Auto Scaling group",
        "deregister from target group",
        "replace security groups",
        "swap instance profile",
        "revoke the role's sessions on this instance",
        "tag",
    ] {
        assert!(
            actions.contains(&expected),
            "plan lacks {expected}: {actions:?}"
        );
    }
    assert!(
        plan.warnings.iter().any(|w| w.contains("SSM")),
        "{:?}",
        plan.warnings
    );
    assert!(
        plan.warnings.iter().any(|w| w.contains("target group")),
        "{:?}",
        plan.warnings
    );
    assert_eq!(
        observe(&ctx, &instance).await,
        before,
        "planning changes nothing"
    );

    let applied = containment::apply(&plane, &instance, &options, None, false)
        .await
        .expect("apply");
    assert_eq!(applied.record.state, ContainmentState::Contained);
    let group = applied
        .record
        .isolation_group_id
        .clone()
        .expect("isolation group");
    let after = observe(&ctx, &instance).await;
    for (eni, groups) in &after.interfaces {
        assert_eq!(
            groups,
            &vec![group.clone()],
            "{eni} carries only the isolation group"
        );
    }
    assert!(
        after
            .profile_arn
            .as_deref()
            .is_some_and(|arn| arn.ends_with("/IRIsolationProfile")),
        "{:?}",
        after.profile_arn
    );
    assert!(
        after
            .tags
            .contains(&(STATUS_TAG.to_owned(), "Contain".to_owned()))
    );
    assert!(after.termination_protection);
    assert_eq!(after.autoscaling_group, None);
    assert!(after.target_groups.is_empty());
    assert!(
        after
            .role_policies
            .contains(&format!("irf-revoke-{}", instance.instance_id))
    );
    // The isolation group lets nothing in or out.
    let ec2 = aws_sdk_ec2::Client::new(&member);
    let described = ec2
        .describe_security_groups()
        .group_ids(&group)
        .send()
        .await
        .expect("isolation group");
    let isolation = &described.security_groups()[0];
    assert!(isolation.ip_permissions().is_empty());
    assert!(isolation.ip_permissions_egress().is_empty());

    let again = containment::apply(&plane, &instance, &options, None, false)
        .await
        .expect("apply again");
    assert!(again.changed.is_empty(), "{:?}", again.changed);
    assert_eq!(
        observe(&ctx, &instance).await,
        after,
        "a second apply is a no-op"
    );
    assert_eq!(
        again.record.original, applied.record.original,
        "the originals are kept from the first apply"
    );

    let rolled = containment::rollback(&plane, &instance)
        .await
        .expect("rollback");
    assert_eq!(rolled.record.state, ContainmentState::RolledBack);
    let restored = observe(&ctx, &instance).await;
    assert_eq!(restored.interfaces, before.interfaces);
    assert_eq!(restored.profile_arn, before.profile_arn);
    assert_eq!(restored.tags, before.tags);
    assert_eq!(
        restored.termination_protection,
        before.termination_protection
    );
    assert_eq!(restored.autoscaling_group, before.autoscaling_group);
    assert_eq!(restored.target_groups, before.target_groups);
    assert_eq!(restored.role_policies, before.role_policies);
    let nothing = containment::rollback(&plane, &instance).await;
    assert!(
        matches!(nothing, Err(ContainmentError::NothingToRollBack(_))),
        "{nothing:?}"
    );
}

#[tokio::test]
async fn a_run_stopped_halfway_is_undone_by_rollback_or_finished_by_a_rerun() {
    let (ctx, plane) = plane().await;
    for (index, finish) in [(0, false), (1, true)] {
        let instance = bystander(index);
        let before = observe(&ctx, &instance).await;
        // A member without the deny-all profile: the run stops at the profile swap.
        let broken = ContainmentOptions {
            isolation_profile: "NoSuchIsolationProfile".to_owned(),
            ..ContainmentOptions::from_config(ctx.config())
        };
        let err = containment::apply(&plane, &instance, &broken, None, false)
            .await
            .expect_err("the profile is missing");
        let text = err.to_string();
        assert!(
            text.contains("NoSuchIsolationProfile") && text.contains("5-member-ir-automation"),
            "{text}"
        );
        let record = containment::record(&plane, &instance)
            .await
            .expect("record")
            .expect("a record was left");
        assert_eq!(record.state, ContainmentState::Applying);
        assert_eq!(
            record.original.as_ref().and_then(|o| o.profile_arn.clone()),
            before.profile_arn
        );
        let halfway = observe(&ctx, &instance).await;
        assert_ne!(
            halfway.interfaces, before.interfaces,
            "the groups were already replaced"
        );
        if finish {
            let options = ContainmentOptions::from_config(ctx.config());
            let finished = containment::apply(&plane, &instance, &options, None, false)
                .await
                .expect("a re-run finishes");
            assert_eq!(finished.record.state, ContainmentState::Contained);
            let contained = observe(&ctx, &instance).await;
            assert!(
                contained
                    .profile_arn
                    .as_deref()
                    .is_some_and(|a| a.ends_with("/IRIsolationProfile"))
            );
            assert!(
                finished
                    .changed
                    .iter()
                    .all(|a| a.action != "replace security groups"),
                "the re-run did not redo what was done: {:?}",
                finished.changed
            );
        }
        containment::rollback(&plane, &instance)
            .await
            .expect("rollback");
        let restored = observe(&ctx, &instance).await;
        assert_eq!(restored.interfaces, before.interfaces);
        assert_eq!(restored.profile_arn, before.profile_arn);
        assert_eq!(restored.tags, before.tags);
        assert_eq!(
            restored.termination_protection,
            before.termination_protection
        );
    }
}

#[tokio::test]
async fn four_eyes_refuses_the_requesters_own_approval_and_changes_nothing() {
    // The test lab is deployed as template 3 is by default: four eyes required, taken by the
    // decision desk in the Security account.
    let (ctx, _) = plane().await;
    let instance = bystander(2);
    let before = observe(&ctx, &instance).await;
    let requester = operator().await;
    let asked = client::contain(&requester, &instance, Some("miner".to_owned()))
        .await
        .expect("the desk records the request");
    let Containing::Requested(request) = asked else {
        panic!("one person contained alone: {asked:?}");
    };
    assert_eq!(request.state, ContainmentState::Requested);
    assert_eq!(request.requested_by, requester.operator);
    // The requester asking again is still a request, however often.
    let again = client::contain(&requester, &instance, None)
        .await
        .expect("asked again");
    assert!(matches!(again, Containing::Requested(_)), "{again:?}");
    assert_eq!(observe(&ctx, &instance).await, before, "nothing changed");
    // Nor can the requester become someone else under a second session name: the operator
    // role's trust requires each session to carry its user's own name.
    let renamed = assume_operator_role_as("not-the-requester").await;
    assert!(renamed.contains("AccessDenied"), "{renamed}");
    let approver = second_operator().await;
    assert_ne!(approver.operator, requester.operator);
    let Containing::Contained(applied) = client::contain(&approver, &instance, None)
        .await
        .expect("a second person approves it")
    else {
        panic!("the second person's approval was not applied");
    };
    assert_eq!(applied.record.state, ContainmentState::Contained);
    assert_eq!(applied.record.requested_by, requester.operator);
    assert_ne!(observe(&ctx, &instance).await, before, "contained");
    client::roll_back(&approver, &instance)
        .await
        .expect("rollback");
    assert_eq!(observe(&ctx, &instance).await.interfaces, before.interfaces);
    // A second request, refused from the CLI with a reason: recorded, nothing changed.
    client::contain(&requester, &instance, None)
        .await
        .expect("second request");
    let refused = run_irf(
        &[
            "reject",
            &instance.instance_id,
            "--reason",
            "false positive: a scheduled job",
        ],
        &lab_env(lab()),
    );
    assert!(
        refused.status.success(),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let record = containment::record(&requester, &instance)
        .await
        .expect("record")
        .expect("the request's record");
    assert_eq!(record.state, ContainmentState::Rejected);
    assert!(record.actions.iter().any(|a| a.action == "reject request"
        && a.detail == "false positive: a scheduled job"
        && a.by == requester.operator));

    // A case waiting for approval: its opener cannot approve it.
    let case_instance = bystander(3);
    let opened = client::open_case(&requester, waiting_for_approval_soon(&case_instance))
        .await
        .expect("open a case");
    let case_id = opened.case().case_id.clone();
    wait_for_status(&requester, &case_id, CaseStatus::AwaitingApproval).await;
    let own = client::decide_case(&requester, &case_id, Decision::Approve).await;
    assert!(
        matches!(own, Err(DeskError::Refused(Refusal::FourEyes { .. }))),
        "{own:?}"
    );
    // Rewriting the case item in a colleague's name changes nothing: the desk reads who opened
    // the case from its execution, which only the Security account's automation starts.
    let mut forged = requester.table.case(&case_id).await.expect("case");
    forged.requested_by = approver.operator.clone();
    requester
        .table
        .save_case(&forged)
        .await
        .expect("operators write case items (their ledger entries share the partition)");
    let own = client::decide_case(&requester, &case_id, Decision::Approve).await;
    assert!(
        matches!(own, Err(DeskError::Refused(Refusal::FourEyes { .. }))),
        "{own:?}"
    );
    let case = requester.table.case(&case_id).await.expect("case");
    assert_eq!(
        case.status,
        CaseStatus::AwaitingApproval,
        "the case still waits"
    );
    client::decide_case(
        &requester,
        &case_id,
        Decision::Reject {
            reason: "test done".to_owned(),
        },
    )
    .await
    .expect("the requester may refuse");
    let late = client::decide_case(&approver, &case_id, Decision::Approve).await;
    assert!(
        matches!(&late, Err(DeskError::Refused(Refusal::Failed { message })) if message.contains("not waiting for approval")),
        "{late:?}"
    );
    let state = lab();
    let cli = run_irf(
        &[
            "approve",
            case_id.as_str(),
            "--confirm",
            &case_instance.instance_id,
        ],
        &lab_env(state),
    );
    assert!(!cli.status.success());
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(
        stderr.contains(case_id.as_str()) && stderr.contains("not waiting for approval"),
        "{stderr}"
    );
}

/// Whatever an operator runs, the rule holds: AWS refuses them the task answer, the member
/// containment role and the desk's records, and the desk refuses a decision that claims
/// someone else's identity.
#[tokio::test]
async fn operators_cannot_step_around_the_desk() {
    let (ctx, automation) = plane().await;
    let operator = operator().await;
    let approver = second_operator().await;
    let instance = bystander(11);
    let before = observe(&ctx, &instance).await;

    // The containment role is the automation's alone.
    let options = ContainmentOptions::from_config(ctx.config());
    let direct = containment::apply(&operator, &instance, &options, None, false).await;
    let refused = format!("{direct:?}");
    assert!(
        matches!(direct, Err(ContainmentError::Aws(_))) && refused.contains("AccessDenied"),
        "{refused}"
    );
    assert_eq!(observe(&ctx, &instance).await, before, "nothing changed");

    // Containment records are the desk's to write: a forged request by the approver is refused.
    let forged = containment::request(&operator, &instance, None, None).await;
    let refused = format!("{forged:?}");
    assert!(
        matches!(forged, Err(ContainmentError::Case(_))) && refused.contains("AccessDenied"),
        "{refused}"
    );
    assert_eq!(
        containment::record(&automation, &instance)
            .await
            .expect("record"),
        None,
        "no record was written"
    );

    // Nor may they plant a first approval, or the task token an approval answers: both are
    // kept in the desk's partition.
    let case = irf_engine::model::case::CaseId::parse("20261206T000000Z-i-0123456789abcdef0")
        .expect("a case id");
    let planted = operator
        .table
        .save_first_approval(
            &case,
            &irf_engine::model::case::ApprovalDecision {
                decision: irf_engine::model::case::Verdict::Approved,
                by: approver.operator.clone(),
                at: irf_engine::model::case::now_rfc3339(),
                reason: None,
            },
        )
        .await;
    let refused = format!("{planted:?}");
    assert!(refused.contains("AccessDenied"), "{refused}");

    // A decision claiming the second operator's identity, sent by the first: SQS names the
    // real sender, and the desk refuses it.
    let queue = irf_engine::desk::queue_url(operator.ctx.config())
        .expect("the decisions queue")
        .to_owned();
    let message = irf_engine::desk::DeskMessage {
        id: format!("forged-{}", instance.instance_id),
        sender: approver.operator.clone(),
        ask: irf_engine::desk::Ask::Contain {
            instance: instance.clone(),
            reason: None,
        },
    };
    aws_sdk_sqs::Client::new(&operator.ctx.base_config(&operator.region))
        .send_message()
        .queue_url(&queue)
        .message_body(serde_json::to_string(&message).expect("encode"))
        .send()
        .await
        .expect("operators may send decisions");
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        if let Some(answer) = automation
            .table
            .desk_answer::<irf_engine::desk::Answer>(&message.id)
            .await
            .expect("answer")
        {
            break answer;
        }
        assert!(Instant::now() < deadline, "the desk never answered");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    match &answer {
        irf_engine::desk::Answer::Refused {
            refusal: Refusal::Sender { claimed, sender_id },
        } => {
            assert_eq!(claimed, &approver.operator);
            assert!(
                sender_id.ends_with(":responder"),
                "SQS names the real session: {sender_id}"
            );
        }
        other => panic!("a forged decision was taken: {other:?}"),
    }
    assert_eq!(observe(&ctx, &instance).await, before, "nothing changed");

    // Nor may the operator start an execution, whose input would name the requester.
    let started = aws_sdk_sfn::Client::new(&operator.ctx.base_config(&operator.region))
        .start_execution()
        .state_machine_arn(
            operator
                .ctx
                .config()
                .workflow
                .state_machine_arn
                .clone()
                .expect("the state machine"),
        )
        .name("forged-requester")
        .input("{}")
        .send()
        .await;
    let refused = format!("{started:?}");
    assert!(refused.contains("AccessDenied"), "{refused}");

    // Nor may the operator answer a workflow's task itself, whatever token it holds.
    let sfn = aws_sdk_sfn::Client::new(&operator.ctx.base_config(&operator.region));
    let answered = sfn
        .send_task_success()
        .task_token("AAAAKgAAAAIAAAAAAAAAAQ-a-task-token")
        .output("{}")
        .send()
        .await;
    let refused = format!("{answered:?}");
    assert!(refused.contains("AccessDenied"), "{refused}");
}

#[tokio::test]
async fn bad_input_is_refused_by_name_and_changes_nothing() {
    let state = lab();
    let env = lab_env(state);
    let instance = bystander(4);
    let (ctx, _) = plane().await;
    let before = observe(&ctx, &instance).await;
    let region = instance.region.clone();
    let account = instance.account.to_string();

    let wrong = run_irf(
        &[
            "--region",
            &region,
            "contain",
            "apply",
            &instance.instance_id,
            "--account",
            &account,
            "--confirm",
            "i-00000000000000000",
        ],
        &env,
    );
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("i-00000000000000000") && stderr.contains(&instance.instance_id),
        "{stderr}"
    );

    let unknown = run_irf(
        &[
            "--region",
            &region,
            "contain",
            "plan",
            "i-0fffffffffffffff0",
            "--account",
            &account,
        ],
        &env,
    );
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("i-0fffffffffffffff0") && stderr.contains("not found"),
        "{stderr}"
    );

    let read_only = run_irf(
        &[
            "--read-only",
            "--region",
            &region,
            "contain",
            "apply",
            &instance.instance_id,
            "--account",
            &account,
            "--confirm",
            &instance.instance_id,
        ],
        &env,
    );
    assert!(!read_only.status.success());
    assert!(String::from_utf8_lossy(&read_only.stderr).contains("--read-only"));

    let unknown_case = run_irf(
        &[
            "approve",
            "20261128T000000Z-i-0123456789abcdef0",
            "--confirm",
            "i-0123456789abcdef0",
        ],
        &env,
    );
    assert!(!unknown_case.status.success());
    assert!(
        String::from_utf8_lossy(&unknown_case.stderr)
            .contains("20261128T000000Z-i-0123456789abcdef0")
    );

    // An account irf has no role in (the lab's unmanaged member).
    if let Some(unmanaged) = state.seeded.members.iter().find(|m| !m.managed) {
        let missing = run_irf(
            &[
                "--region",
                &region,
                "contain",
                "plan",
                "i-0123456789abcdef0",
                "--account",
                unmanaged.id.as_str(),
            ],
            &env,
        );
        assert!(!missing.status.success());
        let stderr = String::from_utf8_lossy(&missing.stderr);
        assert!(
            stderr.contains(unmanaged.id.as_str()) && stderr.contains("5-member-ir-automation"),
            "{stderr}"
        );
    }
    assert_eq!(observe(&ctx, &instance).await, before, "nothing changed");

    // And the plan through the CLI, as JSON.
    let planned = run_irf(
        &[
            "--region",
            &region,
            "contain",
            "plan",
            &instance.instance_id,
            "--account",
            &account,
            "--json",
        ],
        &env,
    );
    assert!(
        planned.status.success(),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&planned.stdout).expect("plan JSON");
    assert_eq!(
        plan["instance"]["instance_id"],
        instance.instance_id.as_str()
    );
    assert!(plan["changes"].as_array().is_some_and(|c| !c.is_empty()));
}

#[tokio::test]
async fn the_contain_tag_opens_a_request_an_operator_applies() {
    // Whoever may tag an instance can set the tag: under the default policy (approval) it
    // opens a containment request, and nothing changes until an operator applies it.
    let (ctx, plane) = plane().await;
    let instance = bystander(5);
    let before = observe(&ctx, &instance).await;
    // Tagged by the member account's own administrator, as a responder there would.
    let admin = irf_e2e::admin_context().await;
    irf_e2e::set_incident_tag(
        &admin,
        &instance.account,
        &instance.region,
        &instance.instance_id,
        "Contain",
    )
    .await;
    let tagger = aws_sdk_sts::Client::new(
        &admin
            .account_config(&instance.account, &instance.region)
            .await
            .expect("the member's administrator"),
    )
    .get_caller_identity()
    .send()
    .await
    .expect("who tagged")
    .arn()
    .expect("an ARN")
    .to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let requested = loop {
        if let Some(record) = containment::record(&plane, &instance)
            .await
            .expect("record")
            && record.state == ContainmentState::Requested
        {
            break record;
        }
        assert!(
            Instant::now() < deadline,
            "the lab runtime opened no request for the tagged instance"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // Who set the tag asked (CloudTrail's record of the call names them), in the member the
    // call was made in.
    assert_eq!(requested.requested_by, tagger);
    let reason = requested.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(&format!("account {}", instance.account)) && reason.contains(&tagger),
        "the request names the account the tag was set in and who set it: {reason}"
    );
    let untouched = observe(&ctx, &instance).await;
    assert_eq!(
        untouched.interfaces, before.interfaces,
        "nothing changed yet"
    );
    assert_eq!(
        untouched.profile_arn, before.profile_arn,
        "nothing changed yet"
    );
    // The trigger asked, so one operator's approval applies it.
    let operator = operator().await;
    let Containing::Contained(outcome) = client::contain(&operator, &instance, None)
        .await
        .expect("an operator approves the request")
    else {
        panic!("the trigger's request was not applied");
    };
    let record = outcome.record;
    assert_eq!(record.state, ContainmentState::Contained);
    let group = record.isolation_group_id.clone().expect("group");
    let after = observe(&ctx, &instance).await;
    for (_, groups) in &after.interfaces {
        assert_eq!(groups, &vec![group.clone()]);
    }
    assert_eq!(
        record.original.as_ref().map(|o| o.interfaces.len()),
        Some(before.interfaces.len())
    );
    client::roll_back(&operator, &instance)
        .await
        .expect("rollback");
    let restored = observe(&ctx, &instance).await;
    assert_eq!(restored.interfaces, before.interfaces);
    assert_eq!(restored.profile_arn, before.profile_arn);
    // The request tag is removed rather than put back: it would contain the instance again.
    assert!(
        !restored.tags.iter().any(|(key, _)| key == STATUS_TAG),
        "{:?}",
        restored.tags
    );
}

/// A case of `instance` that reaches its approval wait soon: memory only (the lab hosts'
/// 64 MiB), containment on approval.
fn waiting_for_approval_soon(instance: &InstanceRef) -> CaseSubject {
    CaseSubject {
        account: instance.account.clone(),
        region: instance.region.clone(),
        instance_id: instance.instance_id.clone(),
        memory: true,
        disk: false,
        containment: ContainmentPolicy::Approval,
    }
}

async fn wait_for_status(
    plane: &Plane,
    case_id: &irf_engine::model::case::CaseId,
    wanted: CaseStatus,
) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let case = plane.table.case(case_id).await.expect("case");
        if case.status == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline && (case.status.is_open() || !wanted.is_open()),
            "case never reached {wanted:?}: {:#?}",
            plane.table.detail(case_id).await.expect("detail")
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn the_keyboard_approves_a_waiting_case_and_the_workflow_contains() {
    let state = lab();
    let (ctx, plane) = plane().await;
    let instance = bystander(6);
    let before = observe(&ctx, &instance).await;
    // Opened by a colleague: the lab's operator is a second person, and may approve.
    let colleague = second_operator().await;
    let opened = client::open_case(&colleague, waiting_for_approval_soon(&instance))
        .await
        .expect("open a case");
    let case_id = opened.case().case_id.clone();
    wait_for_status(&plane, &case_id, CaseStatus::AwaitingApproval).await;

    let mut session = TerminalSession::start(&[], &lab_env(state), 40, 170);
    session.wait_for("refreshed", Duration::from_secs(60));
    session.send("5");
    session.wait_for(&instance.instance_id, Duration::from_secs(15));
    // Other tests may have cases waiting too: narrow the view to this one.
    session.send(&format!("/{}\r", instance.instance_id));
    session.wait_for("approvals (1/", Duration::from_secs(5));
    session.send("A");
    // The plan is computed and shown before anything can be approved.
    let dialog = session.wait_for("instance id:", Duration::from_secs(15));
    assert!(
        dialog.contains("replace security groups") && dialog.contains("swap instance profile"),
        "{dialog}"
    );
    session.send("i-wrong\r");
    session.wait_for("type the instance id exactly", Duration::from_secs(5));
    assert_eq!(
        plane.table.case(&case_id).await.expect("case").status,
        CaseStatus::AwaitingApproval,
        "a wrong confirmation changes nothing"
    );
    // Clear the wrong text, then type the right id.
    session.send(&"\u{7f}".repeat(8));
    session.send(&format!("{}\r", instance.instance_id));
    session.wait_for("approved containment for case", Duration::from_secs(15));

    // The workflow goes on: it contains the instance and closes the case.
    wait_for_status(&plane, &case_id, CaseStatus::Succeeded).await;
    let record = containment::record(&plane, &instance)
        .await
        .expect("record")
        .expect("contained by the workflow");
    assert_eq!(record.state, ContainmentState::Contained);
    assert_eq!(record.case_id.as_ref(), Some(&case_id));
    let detail = plane.table.detail(&case_id).await.expect("detail");
    assert_eq!(
        detail.containment.as_ref(),
        Some(&record),
        "the case shows its instance's containment"
    );
    let after = observe(&ctx, &instance).await;
    let group = record.isolation_group_id.clone().expect("group");
    for (_, groups) in &after.interfaces {
        assert_eq!(groups, &vec![group.clone()]);
    }
    session.send("q");
    assert!(session.wait_exit(Duration::from_secs(20)));

    containment::rollback(&plane, &instance)
        .await
        .expect("rollback");
    let restored = observe(&ctx, &instance).await;
    assert_eq!(restored.interfaces, before.interfaces);
    assert_eq!(restored.profile_arn, before.profile_arn);
}

#[tokio::test]
async fn keeping_ssm_allows_https_to_the_ssm_endpoints_only() {
    let (ctx, plane) = plane().await;
    let instance = bystander(7);
    let before = observe(&ctx, &instance).await;
    let member = ctx
        .account_config(&instance.account, &instance.region)
        .await
        .expect("member");
    let ec2 = aws_sdk_ec2::Client::new(&member);
    let described = ec2
        .describe_instances()
        .instance_ids(&instance.instance_id)
        .send()
        .await
        .expect("describe");
    let found = &described.reservations()[0].instances()[0];
    let vpc = found.vpc_id().expect("vpc").to_owned();
    let subnet = found.subnet_id().expect("subnet").to_owned();
    // The account's network administrator adds the endpoints (irf's role may not).
    let ec2 = aws_sdk_ec2::Client::new(
        &irf_e2e::admin_context()
            .await
            .account_config(&instance.account, &instance.region)
            .await
            .expect("the member as its administrator"),
    );
    let endpoint_group = ec2
        .create_security_group()
        .group_name(format!("ssm-endpoints-{}", instance.instance_id))
        .description("SSM interface endpoints")
        .vpc_id(&vpc)
        .send()
        .await
        .expect("endpoint group")
        .group_id()
        .expect("group id")
        .to_owned();
    for service in ["ssm", "ssmmessages", "ec2messages"] {
        ec2.create_vpc_endpoint()
            .vpc_id(&vpc)
            .vpc_endpoint_type(aws_sdk_ec2::types::VpcEndpointType::Interface)
            .service_name(format!("com.amazonaws.{}.{service}", instance.region))
            .subnet_ids(&subnet)
            .security_group_ids(&endpoint_group)
            .send()
            .await
            .expect("endpoint");
    }
    let options = ContainmentOptions {
        keep_ssm: true,
        ..ContainmentOptions::from_config(ctx.config())
    };
    let plan = containment::plan(&plane, &instance, &options)
        .await
        .expect("plan");
    assert_eq!(plan.isolation_group_name, "irf-isolation-ssm");
    assert!(plan.ssm_endpoint_groups.contains(&endpoint_group));
    assert_eq!(plan.profile_after, "IRInstanceProfile");
    assert!(
        !plan.warnings.iter().any(|w| w.contains("cuts SSM off")),
        "{:?}",
        plan.warnings
    );

    let applied = containment::apply(&plane, &instance, &options, None, false)
        .await
        .expect("apply");
    let group = applied.record.isolation_group_id.clone().expect("group");
    let after = observe(&ctx, &instance).await;
    for (_, groups) in &after.interfaces {
        assert_eq!(groups, &vec![group.clone()]);
    }
    assert!(
        after
            .profile_arn
            .as_deref()
            .is_some_and(|arn| arn.ends_with("/IRInstanceProfile"))
    );
    let isolation = ec2
        .describe_security_groups()
        .group_ids(&group)
        .send()
        .await
        .expect("isolation group");
    let isolation = &isolation.security_groups()[0];
    assert!(isolation.ip_permissions().is_empty(), "no inbound");
    let egress = isolation.ip_permissions_egress();
    assert_eq!(egress.len(), 1, "{egress:?}");
    assert_eq!(egress[0].ip_protocol(), Some("tcp"));
    assert_eq!(
        (egress[0].from_port(), egress[0].to_port()),
        (Some(443), Some(443))
    );
    assert!(egress[0].ip_ranges().is_empty(), "no address ranges");
    let pairs = egress[0].user_id_group_pairs();
    assert!(
        !pairs.is_empty(),
        "egress names the endpoint group: {egress:?}"
    );
    assert!(
        pairs
            .iter()
            .all(|pair| pair.group_id() == Some(endpoint_group.as_str()))
    );

    containment::rollback(&plane, &instance)
        .await
        .expect("rollback");
    let restored = observe(&ctx, &instance).await;
    assert_eq!(restored.interfaces, before.interfaces);
    assert_eq!(restored.profile_arn, before.profile_arn);
}

/// A suspect without a profile gets irf's IR profile at prepare (so that SSM reaches it);
/// containing it then must not try to edit that role, which template 5 forbids irf to
/// touch: the plan says its sessions are not revoked, and apply and rollback succeed.
#[tokio::test]
async fn an_instance_on_the_ir_profile_loses_its_ir_sessions_and_only_its_own() {
    let (ctx, plane) = plane().await;
    let instance = bystander(8);
    let options = ContainmentOptions::from_config(ctx.config());
    // What prepare does for a profile-less suspect, staged by the account's administrator.
    let admin_ec2 = aws_sdk_ec2::Client::new(
        &irf_e2e::admin_context()
            .await
            .account_config(&instance.account, &instance.region)
            .await
            .expect("the member as its administrator"),
    );
    let ir_profile = aws_sdk_ec2::types::IamInstanceProfileSpecification::builder()
        .name(&options.ir_instance_profile)
        .build();
    let associations = admin_ec2
        .describe_iam_instance_profile_associations()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-id")
                .values(&instance.instance_id)
                .build(),
        )
        .send()
        .await
        .expect("associations");
    match associations
        .iam_instance_profile_associations()
        .iter()
        .find_map(|a| a.association_id())
    {
        Some(association) => {
            admin_ec2
                .replace_iam_instance_profile_association()
                .association_id(association)
                .iam_instance_profile(ir_profile)
                .send()
                .await
                .expect("the IR profile replaces the instance's");
        }
        None => {
            admin_ec2
                .associate_iam_instance_profile()
                .instance_id(&instance.instance_id)
                .iam_instance_profile(ir_profile)
                .send()
                .await
                .expect("the IR profile attached");
        }
    }
    let before = observe(&ctx, &instance).await;

    let plan = containment::plan(&plane, &instance, &options)
        .await
        .expect("plan");
    // The IR role's sessions on this instance are revoked like any role's: the Deny names
    // this instance only, so other suspects on the IR profile keep theirs.
    assert_eq!(
        plan.revoked_role.as_deref(),
        Some(options.ir_instance_profile.as_str()),
        "{plan:?}"
    );
    assert!(
        plan.changes.iter().any(|c| c.action.contains("revoke")),
        "{:?}",
        plan.changes
    );
    let applied = containment::apply(&plane, &instance, &options, None, false)
        .await
        .expect("containment applies under the templates' policies");
    assert_eq!(applied.record.state, ContainmentState::Contained);
    let admin_iam = aws_sdk_iam::Client::new(
        &irf_e2e::admin_context()
            .await
            .account_config(&instance.account, irf_lab::LAB_REGION)
            .await
            .expect("the member as its administrator"),
    );
    let revocations = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .filter(|name| name.ends_with(&instance.instance_id))
            .cloned()
            .collect()
    };
    let ir_role_policies = admin_iam
        .list_role_policies()
        .role_name(&options.ir_instance_profile)
        .send()
        .await
        .expect("the IR role's policies");
    let revoked = revocations(ir_role_policies.policy_names());
    assert_eq!(revoked.len(), 1, "{:?}", ir_role_policies.policy_names());
    let document = admin_iam
        .get_role_policy()
        .role_name(&options.ir_instance_profile)
        .policy_name(&revoked[0])
        .send()
        .await
        .expect("the revocation")
        .policy_document()
        .to_owned();
    let document = percent_encoding::percent_decode_str(&document).decode_utf8_lossy();
    assert!(
        document.contains(&format!("instance/{}", instance.instance_id))
            && document.contains("ec2:SourceInstanceARN"),
        "scoped to this instance: {document}"
    );
    containment::rollback(&plane, &instance)
        .await
        .expect("rollback");
    let restored = observe(&ctx, &instance).await;
    assert_eq!(restored.profile_arn, before.profile_arn);
    assert_eq!(restored.interfaces, before.interfaces);
    let after_rollback = admin_iam
        .list_role_policies()
        .role_name(&options.ir_instance_profile)
        .send()
        .await
        .expect("the IR role's policies");
    assert!(
        revocations(after_rollback.policy_names()).is_empty(),
        "rollback takes the revocation off: {:?}",
        after_rollback.policy_names()
    );
}

/// Opens a connection on `instance` in the lab, as its security groups allow it now: an
/// intruder's reverse shell, outbound TCP to their listener.
async fn reverse_shell(instance: &InstanceRef) -> serde_json::Value {
    irf_lab::control::Control::new(&lab().endpoint)
        .post_for_json(
            "/irf-lab/ec2/connections",
            &serde_json::json!({
                "account": instance.account.as_str(),
                "region": instance.region,
                "instance_id": instance.instance_id,
                "direction": "outbound",
                "protocol": "tcp",
                "port": 4444,
                "peer": "203.0.113.7",
            }),
        )
        .await
        .expect("the instance's groups allow the connection")
}

/// The state ("open" or "cut") of the lab connection `id` of `instance`.
async fn connection_state(instance: &InstanceRef, id: &serde_json::Value) -> String {
    let listed = irf_lab::control::Control::new(&lab().endpoint)
        .get_json(&format!(
            "/irf-lab/ec2/connections?instance_id={}",
            instance.instance_id
        ))
        .await
        .expect("the instance's connections");
    listed["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| &c["id"] == id)
        .and_then(|c| c["state"].as_str())
        .expect("the connection")
        .to_owned()
}

/// EC2 keeps a connection it tracks open across a change of security groups (AWS: security
/// group connection tracking), so swapping an instance straight to a deny-all group leaves an
/// intruder's open reverse shell running. Containment passes each interface through all-open
/// groups first, which makes its connections untracked, and the isolation group then cuts them.
#[tokio::test]
async fn containment_cuts_a_connection_open_through_the_old_groups() {
    let (ctx, plane) = plane().await;

    // The lab tracks as EC2 does: a straight swap to a group that allows nothing leaves the
    // tracked connection open.
    let swapped = bystander(9);
    let shell = reverse_shell(&swapped).await;
    assert_eq!(shell["tracked"], true, "{shell}");
    let admin = irf_e2e::admin_context()
        .await
        .account_config(&swapped.account, &swapped.region)
        .await
        .expect("the member's administrator");
    let ec2 = aws_sdk_ec2::Client::new(&admin);
    let described = ec2
        .describe_instances()
        .instance_ids(&swapped.instance_id)
        .send()
        .await
        .expect("the instance");
    let found = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .expect("the instance")
        .clone();
    let deny_all = ec2
        .create_security_group()
        .group_name(format!("deny-all-{}", swapped.instance_id))
        .description("allows nothing in; its default egress revoked below")
        .vpc_id(found.vpc_id().expect("a VPC"))
        .send()
        .await
        .expect("a group")
        .group_id()
        .expect("its id")
        .to_owned();
    ec2.revoke_security_group_egress()
        .group_id(&deny_all)
        .ip_permissions(containment::all_ipv4_traffic())
        .send()
        .await
        .expect("no egress");
    ec2.modify_network_interface_attribute()
        .network_interface_id(
            found.network_interfaces()[0]
                .network_interface_id()
                .expect("an interface"),
        )
        .groups(&deny_all)
        .send()
        .await
        .expect("the straight swap");
    assert_eq!(
        connection_state(&swapped, &shell["id"]).await,
        "open",
        "a tracked connection outlives a straight swap of groups"
    );

    // irf's containment cuts it, and says how in its plan.
    let instance = bystander(10);
    let shell = reverse_shell(&instance).await;
    let options = ContainmentOptions::from_config(ctx.config());
    let planned = containment::plan(&plane, &instance, &options)
        .await
        .expect("plan");
    assert!(
        planned
            .changes
            .iter()
            .any(|c| c.action == "untrack open connections"),
        "{:?}",
        planned.changes
    );
    assert!(
        planned.warnings.iter().any(|w| w.contains("untrack")),
        "{:?}",
        planned.warnings
    );
    let applied = containment::apply(&plane, &instance, &options, None, true)
        .await
        .expect("apply");
    assert_eq!(applied.record.state, ContainmentState::Contained);
    assert_eq!(
        connection_state(&instance, &shell["id"]).await,
        "cut",
        "containment cuts the connection the old groups let in"
    );
    let after = observe(&ctx, &instance).await;
    let group = applied.record.isolation_group_id.clone().expect("group");
    for (_, groups) in &after.interfaces {
        assert_eq!(groups, &vec![group.clone()], "isolated in the end");
    }
    containment::rollback(&plane, &instance)
        .await
        .expect("rollback");
}

/// A case a Security Hub action opened names no one who asked (Security Hub's event does
/// not say who pressed the action): under four eyes, two people approve its containment.
#[tokio::test]
async fn a_security_hub_case_needs_two_approvers() {
    let state = lab();
    let (_, automation) = plane().await;
    let trigger_role = format!(
        "arn:aws:iam::{}:role/irf-securityhub-trigger",
        state.seeded.security
    );
    let security_hub = irf_e2e::service_context(
        irf_lab::control::ServicePrincipal::Lambda,
        &trigger_role,
        "irf-securityhub-trigger",
        &format!(
            "arn:aws:lambda:{}:{}:function:irf-securityhub-trigger",
            irf_lab::LAB_REGION,
            state.seeded.security
        ),
    )
    .await;
    // As its function runs: its environment names no evidence bucket (it only opens cases).
    let security_hub = Plane {
        evidence: None,
        ..Plane::connect(security_hub).await.expect("plane")
    };
    let instance = bystander(12);
    // As the trigger opens it for the action, memory only so that it waits for approval soon.
    let opened = irf_engine::acquisition::start(
        &security_hub,
        waiting_for_approval_soon(&instance),
        irf_engine::model::case::Trigger::SecurityHubAction,
    )
    .await
    .expect("open a case");
    let case_id = opened.case().case_id.clone();
    wait_for_status(&automation, &case_id, CaseStatus::AwaitingApproval).await;

    let first = operator().await;
    let decided = client::decide_case(&first, &case_id, Decision::Approve)
        .await
        .expect("a first approval");
    assert_eq!(
        decided,
        irf_engine::acquisition::Decided::AwaitsSecondApproval
    );
    assert_eq!(
        automation.table.case(&case_id).await.expect("case").status,
        CaseStatus::AwaitingApproval,
        "one approval does not contain"
    );
    let again = client::decide_case(&first, &case_id, Decision::Approve).await;
    assert!(
        matches!(again, Err(DeskError::Refused(Refusal::FourEyes { .. }))),
        "{again:?}"
    );
    let second = second_operator().await;
    let decided = client::decide_case(&second, &case_id, Decision::Approve)
        .await
        .expect("a second person's approval");
    assert_eq!(decided, irf_engine::acquisition::Decided::Answered);
    wait_for_status(&automation, &case_id, CaseStatus::Succeeded).await;
    let ledger = automation.table.ledger(&case_id).await.expect("ledger");
    let first_entry = ledger
        .iter()
        .find(|e| e.action == "containment approved (first of two)")
        .expect("the first approval is in the ledger");
    assert_eq!(first_entry.actor, first.operator);
    client::roll_back(&second, &instance)
        .await
        .expect("rollback");
}

fn operator_role_arn(state: &irf_lab::LabState) -> String {
    format!(
        "arn:aws:iam::{}:role/{}",
        state.seeded.security,
        irf_lab::OPERATOR_ROLE
    )
}

/// Without Identity Center, each responder is an IAM user who assumes the operator role under
/// their own name: two of them are two people, and neither can take the other's name.
#[tokio::test]
async fn two_users_of_the_operator_role_are_two_people() {
    let state = lab();
    let (ctx, _) = plane().await;
    let instance = bystander(13);
    let before = observe(&ctx, &instance).await;
    let keys = irf_lab::operator_user(
        &*irf_e2e::admin_context().await,
        &state.seeded.security,
        "colleague",
    )
    .await
    .expect("the colleague's IAM user");
    let lab_options = irf_lab::connect_options_for(&state.endpoint);
    let mut config = irf_engine::config::Config::load_from(&state.config_path)
        .expect("lab config")
        .config;
    // The user cannot take another's name: the role's trust refuses it.
    let as_user = ConnectOptions {
        static_credentials: Some(keys),
        ..lab_options
    };
    let user = AwsContext::connect(Arc::new(config.clone()), &as_user).await;
    let taken = aws_sdk_sts::Client::new(&user.base_config(irf_lab::LAB_REGION))
        .assume_role()
        .role_arn(operator_role_arn(state))
        .role_session_name("responder")
        .source_identity("responder")
        .send()
        .await;
    let refused = format!("{taken:?}");
    assert!(refused.contains("AccessDenied"), "{refused}");
    // irf assumes it as the configuration says, under the user's own name.
    config.accounts.operator_role = Some(operator_role_arn(state));
    let colleague = Plane::connect(Arc::new(
        AwsContext::connect(Arc::new(config), &as_user).await,
    ))
    .await
    .expect("the colleague's plane");
    assert_eq!(
        colleague.operator,
        format!(
            "arn:aws:sts::{}:assumed-role/{}/colleague",
            state.seeded.security,
            irf_lab::OPERATOR_ROLE
        )
    );
    let requester = operator().await;
    let asked = client::contain(&requester, &instance, Some("beaconing".to_owned()))
        .await
        .expect("the request");
    assert!(matches!(asked, Containing::Requested(_)), "{asked:?}");
    assert_eq!(
        observe(&ctx, &instance).await,
        before,
        "nothing changed yet"
    );
    let Containing::Contained(applied) = client::contain(&colleague, &instance, None)
        .await
        .expect("the colleague approves")
    else {
        panic!("another user of the same role could not approve");
    };
    assert_eq!(applied.record.requested_by, requester.operator);
    client::roll_back(&colleague, &instance)
        .await
        .expect("rollback");
    assert_eq!(observe(&ctx, &instance).await.interfaces, before.interfaces);
}
