//! Containment of an instance: the plan of what will change, its application with what it
//! replaced recorded first, and the exact rollback. One code path serves the workflow's contain
//! step, the member trigger's `Contain` tag, the CLI and the workstation.
//!
//! Containment, in the order it is applied: termination protection; detachment from its Auto
//! Scaling group (so that the group neither replaces nor terminates it); deregistration from
//! its load-balancer target groups; the isolation security group on every interface; the
//! deny-all instance profile; revocation of the old role's sessions issued to this instance;
//! the `SecurityIncidentStatus=Contain` tag. Each change is checked against the instance's
//! current state first, so applying twice changes nothing, and a run stopped halfway is
//! finished by running it again or undone by a rollback.

use serde::{Deserialize, Serialize};

use crate::model::containment::InterfaceGroups;
use crate::plane::Plane;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::{AwsError, CallSite};
use crate::config::AccountId;
use crate::ec2::{profile_association, set_termination_protection, termination_protection};
use crate::model::case::{CaseId, now_rfc3339};
use crate::model::containment::{
    ContainmentPlan, ContainmentRecord, ContainmentState, InstanceRef, Original, PlannedChange,
    RecordedAction, TargetRegistration,
};
use crate::store::case_table::CaseError;

/// The name of the isolation group irf creates in each VPC it contains an instance in.
pub const ISOLATION_GROUP: &str = "irf-isolation";
/// The group every interface passes through on its way to isolation: all traffic in and out,
/// which makes EC2 stop tracking the interface's connections (a tracked connection outlives a
/// change of groups; an untracked one is cut as soon as the groups no longer allow it).
pub const UNTRACKING_GROUP: &str = "irf-untrack";
/// The tag that marks irf's untracking groups: the only groups the containment role may open.
const UNTRACKING_TAG: (&str, &str) = ("irf:purpose", "untrack-connections");
/// The isolation group that still lets the instance reach its VPC's SSM endpoints.
pub const ISOLATION_SSM_GROUP: &str = "irf-isolation-ssm";
/// The tag that marks and triggers incident handling on an instance.
pub const STATUS_TAG: &str = "SecurityIncidentStatus";
/// The deny-all instance profile template 5 creates in every member.
pub const DEFAULT_ISOLATION_PROFILE: &str = "IRIsolationProfile";
/// Inline policy put on the old role: its sessions issued to this instance are refused.
const REVOKE_POLICY_PREFIX: &str = "irf-revoke-";
/// The interface endpoints the SSM agent needs.
const SSM_SERVICES: [&str; 3] = ["ssm", "ssmmessages", "ec2messages"];

/// What containment uses, from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainmentOptions {
    /// The deny-all instance profile (name) in member accounts.
    pub isolation_profile: String,
    /// Keep SSM reachable: egress to the VPC's SSM endpoints only, and the SSM-only profile
    /// instead of deny-all, so that memory can still be captured after isolation.
    pub keep_ssm: bool,
    /// The SSM-only profile used with `keep_ssm`.
    pub ir_instance_profile: String,
}

impl ContainmentOptions {
    pub fn from_config(config: &crate::config::Config) -> Self {
        let workflow = &config.workflow;
        Self {
            isolation_profile: workflow
                .isolation_profile
                .clone()
                .unwrap_or_else(|| DEFAULT_ISOLATION_PROFILE.to_owned()),
            keep_ssm: workflow.isolation_keeps_ssm,
            ir_instance_profile: workflow
                .ir_instance_profile
                .clone()
                .unwrap_or_else(|| "IRInstanceProfile".to_owned()),
        }
    }
}

/// Why containment could not be planned, applied or rolled back.
#[derive(Debug, thiserror::Error)]
pub enum ContainmentError {
    #[error(
        "instance {0} was not found: check the id, account and region ('irf instances' lists them)"
    )]
    UnknownInstance(InstanceRef),
    #[error("instance {0} is not in a VPC: containment works on security groups, which need one")]
    NoVpc(InstanceRef),
    #[error(
        "the confirmation '{typed}' does not match instance {expected}: type the instance id exactly to confirm"
    )]
    Confirmation { typed: String, expected: String },
    #[error(
        "instance {0} has no containment to roll back: irf never contained it, or it was rolled back already"
    )]
    NothingToRollBack(InstanceRef),
    #[error(
        "the deny-all instance profile '{profile}' does not exist in account {account}: deploy 5-member-ir-automation.yaml there, or set workflow.isolation_profile"
    )]
    NoIsolationProfile { profile: String, account: AccountId },
    #[error(
        "four-eyes: {operator} requested the containment of {instance}, so another operator must approve it"
    )]
    FourEyes { operator: String, instance: String },
    #[error("instance {instance} has no containment request waiting ({state})")]
    NoRequest { instance: String, state: String },
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Refuses unless `typed` is exactly the instance id.
pub fn check_confirmation(instance_id: &str, typed: &str) -> Result<(), ContainmentError> {
    if typed == instance_id {
        Ok(())
    } else {
        Err(ContainmentError::Confirmation {
            typed: typed.escape_debug().to_string(),
            expected: instance_id.to_owned(),
        })
    }
}

/// The member-account clients containment uses.
struct Member {
    ec2: aws_sdk_ec2::Client,
    iam: aws_sdk_iam::Client,
    autoscaling: aws_sdk_autoscaling::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    site: CallSite,
}

impl Member {
    /// The containment role, not the capture role: only it may change an instance's network,
    /// profile and role policies (and only the Security account's automation assumes it).
    async fn connect(plane: &Plane, instance: &InstanceRef) -> Result<Self, AwsError> {
        let config = plane
            .ctx
            .containment_config(&instance.account, &instance.region)
            .await?;
        Ok(Self::with(&config, instance))
    }

    /// The member role, which reads all a plan needs and changes none of it: operators plan
    /// and ask with it.
    async fn reader(plane: &Plane, instance: &InstanceRef) -> Result<Self, AwsError> {
        let config = plane
            .ctx
            .account_config(&instance.account, &instance.region)
            .await?;
        Ok(Self::with(&config, instance))
    }

    fn with(config: &aws_types::SdkConfig, instance: &InstanceRef) -> Self {
        Self {
            ec2: aws_sdk_ec2::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            autoscaling: aws_sdk_autoscaling::Client::new(config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(config),
            site: CallSite::new(config, instance.account.as_str()),
        }
    }
}

/// What the instance looks like now.
struct Current {
    instance: aws_sdk_ec2::types::Instance,
    state: Original,
    association_id: Option<String>,
    /// Inline policies of the original role (to see whether sessions are revoked already).
    role_policies: Vec<String>,
}

fn tag(key: &str, value: Option<&str>) -> aws_sdk_ec2::types::Tag {
    let builder = aws_sdk_ec2::types::Tag::builder().key(key);
    match value {
        Some(value) => builder.value(value).build(),
        None => builder.build(),
    }
}

fn filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .values(value)
        .build()
}

fn profile_name(arn_or_name: &str) -> &str {
    arn_or_name.rsplit('/').next().unwrap_or(arn_or_name)
}

fn revoke_policy_name(instance_id: &str) -> String {
    format!("{REVOKE_POLICY_PREFIX}{instance_id}")
}

async fn read_current(
    member: &Member,
    instance: &InstanceRef,
) -> Result<Current, ContainmentError> {
    let found = crate::ec2::find_instance(&member.ec2, instance)
        .await?
        .ok_or_else(|| ContainmentError::UnknownInstance(instance.clone()))?;
    let id = &instance.instance_id;
    let interfaces = found
        .network_interfaces()
        .iter()
        .filter_map(|eni| {
            Some(InterfaceGroups {
                interface_id: eni.network_interface_id()?.to_owned(),
                groups: eni
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_owned))
                    .collect(),
            })
        })
        .collect();
    let association = profile_association(&member.ec2, &member.site, id).await?;
    let profile_arn = association
        .as_ref()
        .and_then(|a| a.iam_instance_profile())
        .and_then(|p| p.arn())
        .map(str::to_owned);
    let role_name = match &profile_arn {
        Some(arn) => member
            .iam
            .get_instance_profile()
            .instance_profile_name(profile_name(arn))
            .send()
            .await
            .map_err(|err| member.site.error("iam:GetInstanceProfile", &err))?
            .instance_profile()
            .and_then(|p| p.roles().first())
            .map(|role| role.role_name().to_owned()),
        None => None,
    };
    let role_policies = role_policies(member, role_name.as_deref()).await?;
    let protection = termination_protection(&member.ec2, &member.site, id).await?;
    let autoscaling_group = member
        .autoscaling
        .describe_auto_scaling_instances()
        .instance_ids(id)
        .send()
        .await
        .map_err(|err| {
            member
                .site
                .error("autoscaling:DescribeAutoScalingInstances", &err)
        })?
        .auto_scaling_instances()
        .iter()
        .find_map(|details| details.auto_scaling_group_name().map(str::to_owned));
    let target_registrations = registrations(member, id, found.vpc_id()).await?;
    let addresses = member
        .ec2
        .describe_addresses()
        .filters(filter("instance-id", id))
        .send()
        .await
        .map_err(|err| member.site.error("ec2:DescribeAddresses", &err))?;
    let status_tag = found
        .tags()
        .iter()
        .find(|t| t.key() == Some(STATUS_TAG))
        .and_then(|t| t.value())
        .map(str::to_owned);
    Ok(Current {
        state: Original {
            interfaces,
            profile_arn,
            role_name,
            autoscaling_group,
            target_registrations,
            termination_protection: protection,
            status_tag,
            elastic_ips: addresses
                .addresses()
                .iter()
                .filter_map(|a| a.public_ip().map(str::to_owned))
                .collect(),
        },
        association_id: association
            .as_ref()
            .and_then(|a| a.association_id())
            .map(str::to_owned),
        role_policies,
        instance: found,
    })
}

/// The inline policies of `role` (none without a role).
async fn role_policies(member: &Member, role: Option<&str>) -> Result<Vec<String>, AwsError> {
    let Some(role) = role else {
        return Ok(Vec::new());
    };
    Ok(member
        .iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|err| member.site.error("iam:ListRolePolicies", &err))?
        .policy_names()
        .to_vec())
}

/// The instance's registrations in the target groups of its VPC.
async fn registrations(
    member: &Member,
    instance_id: &str,
    vpc_id: Option<&str>,
) -> Result<Vec<TargetRegistration>, ContainmentError> {
    let mut found = Vec::new();
    let mut pages = member.elb.describe_target_groups().into_paginator().send();
    let mut groups = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            member
                .site
                .error("elasticloadbalancing:DescribeTargetGroups", &err)
        })?;
        groups.extend(
            page.target_groups()
                .iter()
                .filter(|g| vpc_id.is_some() && g.vpc_id() == vpc_id)
                .filter(|g| {
                    g.target_type().is_none_or(|t| {
                        *t == aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance
                    })
                })
                .filter_map(|g| g.target_group_arn().map(str::to_owned)),
        );
    }
    for group in groups {
        let health = member
            .elb
            .describe_target_health()
            .target_group_arn(&group)
            .send()
            .await
            .map_err(|err| {
                member
                    .site
                    .error("elasticloadbalancing:DescribeTargetHealth", &err)
            })?;
        for description in health.target_health_descriptions() {
            if let Some(target) = description.target()
                && target.id() == Some(instance_id)
            {
                found.push(TargetRegistration {
                    target_group_arn: group.clone(),
                    port: target.port(),
                });
            }
        }
    }
    Ok(found)
}

/// Finds the isolation group of `vpc_id` by name.
async fn find_group(member: &Member, vpc_id: &str, name: &str) -> Result<Option<String>, AwsError> {
    let existing = member
        .ec2
        .describe_security_groups()
        .filters(filter("vpc-id", vpc_id))
        .filters(filter("group-name", name))
        .send()
        .await
        .map_err(|err| member.site.error("ec2:DescribeSecurityGroups", &err))?;
    Ok(existing
        .security_groups()
        .first()
        .and_then(|g| g.group_id())
        .map(str::to_owned))
}

/// The security groups of the VPC's SSM interface endpoints; empty when it has none.
async fn ssm_endpoint_groups(
    member: &Member,
    vpc_id: &str,
    region: &str,
) -> Result<Vec<String>, AwsError> {
    let endpoints = member
        .ec2
        .describe_vpc_endpoints()
        .filters(filter("vpc-id", vpc_id))
        .send()
        .await
        .map_err(|err| member.site.error("ec2:DescribeVpcEndpoints", &err))?;
    let wanted: Vec<String> = SSM_SERVICES
        .iter()
        .map(|service| format!(".{region}.{service}"))
        .collect();
    let mut groups: Vec<String> = endpoints
        .vpc_endpoints()
        .iter()
        .filter(|e| {
            e.service_name()
                .is_some_and(|name| wanted.iter().any(|w| name.ends_with(w.as_str())))
        })
        .flat_map(|e| {
            e.groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_owned))
        })
        .collect();
    groups.sort();
    groups.dedup();
    Ok(groups)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

/// Plans the containment of `instance`. When `record` holds originals (containment begun or
/// done), they are what a rollback restores, not the instance's current, contained state.
async fn plan_with(
    member: &Member,
    instance: &InstanceRef,
    options: &ContainmentOptions,
    record: Option<&ContainmentRecord>,
) -> Result<(ContainmentPlan, Current), ContainmentError> {
    let mut current = read_current(member, instance).await?;
    let vpc_id = current
        .instance
        .vpc_id()
        .ok_or_else(|| ContainmentError::NoVpc(instance.clone()))?
        .to_owned();
    let original = record
        .filter(|r| r.state.holds_originals())
        .and_then(|r| r.original.clone())
        .unwrap_or_else(|| current.state.clone());
    // Sessions are revoked on the original role, whatever profile the instance has now.
    if original.role_name != current.state.role_name {
        current.role_policies = role_policies(member, original.role_name.as_deref()).await?;
    }
    let mut warnings = Vec::new();
    let ssm_groups = if options.keep_ssm {
        let groups = ssm_endpoint_groups(member, &vpc_id, &instance.region).await?;
        if groups.is_empty() {
            warnings.push(format!(
                "VPC {vpc_id} has no SSM interface endpoints: isolation cuts SSM off (memory capture and sessions stop working)"
            ));
        }
        groups
    } else {
        warnings.push(
            "containment cuts SSM off: no outbound traffic and a deny-all profile (capture memory before containing, or set workflow.isolation_keeps_ssm)".to_owned(),
        );
        Vec::new()
    };
    let group_name = if ssm_groups.is_empty() {
        ISOLATION_GROUP
    } else {
        ISOLATION_SSM_GROUP
    };
    let group_id = find_group(member, &vpc_id, group_name).await?;
    let profile_after = if ssm_groups.is_empty() {
        options.isolation_profile.clone()
    } else {
        options.ir_instance_profile.clone()
    };
    let now = &current.state;
    let mut changes = vec![PlannedChange {
        action: "enable termination protection".to_owned(),
        resource: instance.instance_id.clone(),
        before: original.termination_protection.to_string(),
        after: "true".to_owned(),
        done: now.termination_protection,
    }];
    if let Some(group) = &original.autoscaling_group {
        changes.push(PlannedChange {
            action: "detach from Auto Scaling group".to_owned(),
            resource: group.clone(),
            before: "in service".to_owned(),
            after: "detached".to_owned(),
            done: now.autoscaling_group.is_none(),
        });
    }
    for registration in &original.target_registrations {
        changes.push(PlannedChange {
            action: "deregister from target group".to_owned(),
            resource: registration.target_group_arn.clone(),
            before: format!(
                "registered{}",
                registration
                    .port
                    .map(|p| format!(" on port {p}"))
                    .unwrap_or_default()
            ),
            after: "deregistered".to_owned(),
            done: !now
                .target_registrations
                .iter()
                .any(|r| r.target_group_arn == registration.target_group_arn),
        });
    }
    if !original.target_registrations.is_empty() {
        warnings.push(format!(
            "the instance serves traffic behind {} target group(s): deregistering drains it from the load balancer",
            original.target_registrations.len()
        ));
    }
    for eni in &original.interfaces {
        let now_groups = now
            .interfaces
            .iter()
            .find(|i| i.interface_id == eni.interface_id)
            .map(|i| i.groups.clone())
            .unwrap_or_default();
        let isolated = group_id
            .as_ref()
            .is_some_and(|g| now_groups == std::slice::from_ref(g));
        changes.push(PlannedChange {
            action: "untrack open connections".to_owned(),
            resource: eni.interface_id.clone(),
            before: list(&eni.groups),
            after: format!("{UNTRACKING_GROUP} (all traffic, for one call)"),
            done: isolated,
        });
        changes.push(PlannedChange {
            action: "replace security groups".to_owned(),
            resource: eni.interface_id.clone(),
            before: list(&eni.groups),
            after: group_id
                .clone()
                .unwrap_or_else(|| format!("{group_name} (new)")),
            done: group_id
                .as_ref()
                .is_some_and(|g| now_groups == std::slice::from_ref(g)),
        });
    }
    changes.push(PlannedChange {
        action: "swap instance profile".to_owned(),
        resource: instance.instance_id.clone(),
        before: original
            .profile_arn
            .as_deref()
            .map_or_else(|| "(none)".to_owned(), |a| profile_name(a).to_owned()),
        after: profile_after.clone(),
        done: now
            .profile_arn
            .as_deref()
            .is_some_and(|a| profile_name(a) == profile_after),
    });
    // Sessions are revoked on the instance's own role, irf's IR role included: the Deny names
    // this instance only, so the role's other instances keep theirs. Not on the deny-all role,
    // and not on a role the instance keeps (isolation that keeps SSM keeps the IR profile, whose
    // new sessions must work).
    let original_profile = original.profile_arn.as_deref().map(profile_name);
    let revoked_role = original.role_name.clone().filter(|_| {
        original_profile
            .is_some_and(|name| name != options.isolation_profile && name != profile_after)
    });
    if let Some(role) = original
        .role_name
        .as_ref()
        .filter(|_| revoked_role.is_none() && original_profile == Some(profile_after.as_str()))
    {
        warnings.push(format!(
            "the instance keeps its profile ({profile_after}, role {role}) so that SSM still reaches it: that role's sessions on this instance stay valid"
        ));
    }
    if let Some(role) = &revoked_role {
        changes.push(PlannedChange {
            action: "revoke the role's sessions on this instance".to_owned(),
            resource: format!("role/{role}"),
            before: "sessions valid".to_owned(),
            after: format!(
                "inline policy {}",
                revoke_policy_name(&instance.instance_id)
            ),
            done: current
                .role_policies
                .contains(&revoke_policy_name(&instance.instance_id)),
        });
    }
    changes.push(PlannedChange {
        action: "tag".to_owned(),
        resource: instance.instance_id.clone(),
        before: format!(
            "{STATUS_TAG}={}",
            original.status_tag.as_deref().unwrap_or("(absent)")
        ),
        after: format!("{STATUS_TAG}=Contain"),
        done: now.status_tag.as_deref() == Some("Contain"),
    });
    if !original.elastic_ips.is_empty() {
        warnings.push(format!(
            "public address(es) {} stay associated; the isolation group drops their traffic",
            original.elastic_ips.join(", ")
        ));
    }
    if !original.interfaces.is_empty() {
        warnings.push(format!(
            "each interface passes through {UNTRACKING_GROUP} (all traffic allowed) for one call before isolation: EC2 keeps connections it tracks open across a change of groups, and only untracked ones are cut"
        ));
    }
    let untracking_group_id = find_group(member, &vpc_id, UNTRACKING_GROUP).await?;
    let plan = ContainmentPlan {
        instance: instance.clone(),
        vpc_id,
        untracking_group_id,
        original,
        isolation_group_name: group_name.to_owned(),
        isolation_group_id: group_id,
        ssm_endpoint_groups: ssm_groups,
        profile_after,
        revoked_role,
        changes,
        warnings,
    };
    Ok((plan, current))
}

/// Computes what containing `instance` would change; changes nothing.
pub async fn plan(
    plane: &Plane,
    instance: &InstanceRef,
    options: &ContainmentOptions,
) -> Result<ContainmentPlan, ContainmentError> {
    let member = Member::reader(plane, instance).await?;
    let record = plane.table.containment(instance).await?;
    Ok(plan_with(&member, instance, options, record.as_ref())
        .await?
        .0)
}

/// Whether `instance` carries `SecurityIncidentStatus=Contain` now.
pub async fn carries_contain_tag(
    plane: &Plane,
    instance: &InstanceRef,
) -> Result<bool, ContainmentError> {
    let member = Member::reader(plane, instance).await?;
    let found = crate::ec2::find_instance(&member.ec2, instance)
        .await?
        .ok_or_else(|| ContainmentError::UnknownInstance(instance.clone()))?;
    Ok(found
        .tags()
        .iter()
        .any(|t| t.key() == Some(STATUS_TAG) && t.value() == Some("Contain")))
}

/// The containment record of `instance`, if irf ever planned or applied one.
pub async fn record(
    plane: &Plane,
    instance: &InstanceRef,
) -> Result<Option<ContainmentRecord>, ContainmentError> {
    Ok(plane.table.containment(instance).await?)
}

/// Every containment record, newest request first.
pub async fn records(plane: &Plane) -> Result<Vec<ContainmentRecord>, ContainmentError> {
    let mut all = plane.table.containments().await?;
    all.sort_by(|a, b| b.requested_at.cmp(&a.requested_at));
    Ok(all)
}

/// The outcome of an apply or a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainmentOutcome {
    pub record: ContainmentRecord,
    /// The changes this run made; empty when the instance already stood that way.
    pub changed: Vec<RecordedAction>,
}

/// Records a containment request under the four-eyes rule; a second operator applies it.
pub async fn request(
    plane: &Plane,
    instance: &InstanceRef,
    reason: Option<String>,
    case_id: Option<&CaseId>,
) -> Result<ContainmentRecord, ContainmentError> {
    let member = Member::reader(plane, instance).await?;
    read_current(&member, instance).await?;
    if let Some(existing) = plane.table.containment(instance).await?
        && matches!(
            existing.state,
            ContainmentState::Requested | ContainmentState::Applying | ContainmentState::Contained
        )
    {
        return Ok(existing);
    }
    let record = ContainmentRecord {
        instance: instance.clone(),
        state: ContainmentState::Requested,
        case_id: case_id.cloned(),
        original: None,
        isolation_group_id: None,
        profile_after: None,
        asg_decremented: false,
        requested_by: plane.operator.clone(),
        requested_at: now_rfc3339(),
        reason,
        actions: Vec::new(),
    };
    plane.table.save_containment(&record).await?;
    Ok(record)
}

/// Refuses a waiting containment request, with the reason recorded.
pub async fn reject_request(
    plane: &Plane,
    instance: &InstanceRef,
    reason: &str,
) -> Result<ContainmentRecord, ContainmentError> {
    let mut record = plane
        .table
        .containment(instance)
        .await?
        .filter(|r| r.state == ContainmentState::Requested)
        .ok_or_else(|| ContainmentError::NoRequest {
            instance: instance.instance_id.clone(),
            state: "none".to_owned(),
        })?;
    record.state = ContainmentState::Rejected;
    record.actions.push(RecordedAction {
        at: now_rfc3339(),
        by: plane.operator.clone(),
        action: "reject request".to_owned(),
        detail: reason.to_owned(),
    });
    plane.table.save_containment(&record).await?;
    Ok(record)
}

/// Contains `instance`. With `four_eyes`, the approver must not be the one who asked: an
/// operator's own direct apply becomes a request (see [`request`]) in the caller.
pub async fn apply(
    plane: &Plane,
    instance: &InstanceRef,
    options: &ContainmentOptions,
    case_id: Option<&CaseId>,
    four_eyes: bool,
) -> Result<ContainmentOutcome, ContainmentError> {
    let member = Member::connect(plane, instance).await?;
    let existing = plane.table.containment(instance).await?;
    if four_eyes
        && let Some(requested) = existing
            .as_ref()
            .filter(|r| r.state == ContainmentState::Requested)
        && crate::identity::People::of(plane.ctx.config())
            .same(&requested.requested_by, &plane.operator)
    {
        return Err(ContainmentError::FourEyes {
            operator: plane.operator.clone(),
            instance: instance.instance_id.clone(),
        });
    }
    let (plan, current) = plan_with(&member, instance, options, existing.as_ref()).await?;
    let mut record = match existing {
        Some(record) if record.state.holds_originals() => record,
        other => ContainmentRecord {
            instance: instance.clone(),
            state: ContainmentState::Applying,
            case_id: case_id
                .cloned()
                .or_else(|| other.as_ref().and_then(|r| r.case_id.clone())),
            original: Some(plan.original.clone()),
            isolation_group_id: None,
            profile_after: Some(plan.profile_after.clone()),
            asg_decremented: false,
            requested_by: other
                .as_ref()
                .filter(|r| r.state == ContainmentState::Requested)
                .map_or_else(|| plane.operator.clone(), |r| r.requested_by.clone()),
            requested_at: other
                .as_ref()
                .filter(|r| r.state == ContainmentState::Requested)
                .map_or_else(now_rfc3339, |r| r.requested_at.clone()),
            reason: other.and_then(|r| r.reason),
            actions: Vec::new(),
        },
    };
    if plan.is_done() && record.state == ContainmentState::Contained {
        return Ok(ContainmentOutcome {
            record,
            changed: Vec::new(),
        });
    }
    // The originals are on record before the first change.
    record.state = ContainmentState::Applying;
    plane.table.save_containment(&record).await?;
    let mut run = Run {
        plane,
        record: &mut record,
        changed: Vec::new(),
    };
    run.contain(&member, &plan, &current).await?;
    let changed = std::mem::take(&mut run.changed);
    record.state = ContainmentState::Contained;
    plane.table.save_containment(&record).await?;
    Ok(ContainmentOutcome { record, changed })
}

/// Restores what containment of `instance` replaced, exactly as recorded.
pub async fn rollback(
    plane: &Plane,
    instance: &InstanceRef,
) -> Result<ContainmentOutcome, ContainmentError> {
    let member = Member::connect(plane, instance).await?;
    let mut record = plane
        .table
        .containment(instance)
        .await?
        .filter(|r| r.state.holds_originals())
        .ok_or_else(|| ContainmentError::NothingToRollBack(instance.clone()))?;
    let original = record
        .original
        .clone()
        .ok_or_else(|| ContainmentError::NothingToRollBack(instance.clone()))?;
    let mut current = read_current(&member, instance).await?;
    if original.role_name != current.state.role_name {
        current.role_policies = role_policies(&member, original.role_name.as_deref()).await?;
    }
    record.state = ContainmentState::RollingBack;
    plane.table.save_containment(&record).await?;
    let mut run = Run {
        plane,
        record: &mut record,
        changed: Vec::new(),
    };
    run.restore(&member, &original, &current).await?;
    let changed = std::mem::take(&mut run.changed);
    record.state = ContainmentState::RolledBack;
    plane.table.save_containment(&record).await?;
    Ok(ContainmentOutcome { record, changed })
}

/// One apply or rollback: each change is made, then recorded.
struct Run<'a> {
    plane: &'a Plane,
    record: &'a mut ContainmentRecord,
    changed: Vec<RecordedAction>,
}

impl Run<'_> {
    async fn done(&mut self, action: &str, detail: String) -> Result<(), ContainmentError> {
        let entry = RecordedAction {
            at: now_rfc3339(),
            by: self.plane.operator.clone(),
            action: action.to_owned(),
            detail,
        };
        self.record.actions.push(entry.clone());
        self.plane.table.save_containment(self.record).await?;
        if let Some(case_id) = &self.record.case_id {
            let instance = &self.record.instance;
            crate::ledger::append(
                self.plane,
                case_id,
                crate::model::ledger::NewEntry::new(
                    format!("containment: {}", entry.action),
                    format!(
                        "{}/{}/{}",
                        instance.account, instance.region, instance.instance_id
                    ),
                )
                .detail(entry.detail.clone()),
            )
            .await?;
        }
        self.changed.push(entry);
        Ok(())
    }

    async fn contain(
        &mut self,
        member: &Member,
        plan: &ContainmentPlan,
        current: &Current,
    ) -> Result<(), ContainmentError> {
        let id = plan.instance.instance_id.as_str();
        let ec2 = &member.ec2;
        let site = &member.site;
        if !current.state.termination_protection {
            set_termination_protection(ec2, site, id, true).await?;
            self.done("enable termination protection", id.to_owned())
                .await?;
        }
        if let Some(group) = &current.state.autoscaling_group {
            let described = member
                .autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(group)
                .send()
                .await
                .map_err(|err| site.error("autoscaling:DescribeAutoScalingGroups", &err))?;
            let sizes = described.auto_scaling_groups().first();
            // Lowering the desired capacity keeps the group from launching a replacement
            // (and lets a rollback's attach restore it), unless that would go below its minimum.
            let decrement = sizes
                .is_some_and(|g| g.desired_capacity().unwrap_or(0) > g.min_size().unwrap_or(0));
            member
                .autoscaling
                .detach_instances()
                .auto_scaling_group_name(group)
                .instance_ids(id)
                .should_decrement_desired_capacity(decrement)
                .send()
                .await
                .map_err(|err| site.error("autoscaling:DetachInstances", &err))?;
            self.record.asg_decremented = decrement;
            self.done(
                "detach from Auto Scaling group",
                format!("{group} (desired capacity lowered: {decrement})"),
            )
            .await?;
        }
        for registration in &current.state.target_registrations {
            member
                .elb
                .deregister_targets()
                .target_group_arn(&registration.target_group_arn)
                .targets(target(id, registration.port))
                .send()
                .await
                .map_err(|err| site.error("elasticloadbalancing:DeregisterTargets", &err))?;
            self.done(
                "deregister from target group",
                registration.target_group_arn.clone(),
            )
            .await?;
        }
        let group = match &plan.isolation_group_id {
            Some(group) => group.clone(),
            None => {
                let group = create_isolation_group(member, plan).await?;
                self.done(
                    "create isolation group",
                    format!("{group} in {}", plan.vpc_id),
                )
                .await?;
                group
            }
        };
        self.record.isolation_group_id = Some(group.clone());
        let isolating = current
            .state
            .interfaces
            .iter()
            .any(|eni| eni.groups != std::slice::from_ref(&group));
        let untracking = match &plan.untracking_group_id {
            Some(untracking) => untracking.clone(),
            None if isolating => {
                let untracking = create_untracking_group(member, plan).await?;
                self.done(
                    "create untracking group",
                    format!("{untracking} in {}", plan.vpc_id),
                )
                .await?;
                untracking
            }
            None => String::new(),
        };
        for eni in &current.state.interfaces {
            if eni.groups == std::slice::from_ref(&group) {
                continue;
            }
            // All traffic first: EC2 stops tracking the interface's connections, so that the
            // isolation group that follows cuts them rather than letting them run on.
            for (next, action) in [
                (&untracking, "untrack open connections"),
                (&group, "replace security groups"),
            ] {
                ec2.modify_network_interface_attribute()
                    .network_interface_id(&eni.interface_id)
                    .groups(next)
                    .send()
                    .await
                    .map_err(|err| site.error("ec2:ModifyNetworkInterfaceAttribute", &err))?;
                self.done(
                    action,
                    format!("{}: {} -> {next}", eni.interface_id, list(&eni.groups)),
                )
                .await?;
            }
        }
        let current_profile = current.state.profile_arn.as_deref().map(profile_name);
        if current_profile != Some(plan.profile_after.as_str()) {
            let spec = aws_sdk_ec2::types::IamInstanceProfileSpecification::builder()
                .name(&plan.profile_after)
                .build();
            let result = set_profile(ec2, site, id, current.association_id.as_deref(), spec).await;
            if let Err((err, code)) = result {
                // EC2 names a profile it cannot find as an invalid parameter.
                if matches!(
                    code.as_deref(),
                    Some("InvalidParameterValue" | "NoSuchEntity")
                ) {
                    return Err(ContainmentError::NoIsolationProfile {
                        profile: plan.profile_after.clone(),
                        account: plan.instance.account.clone(),
                    });
                }
                return Err(err.into());
            }
            self.done(
                "swap instance profile",
                format!(
                    "{} -> {}",
                    current_profile.unwrap_or("(none)"),
                    plan.profile_after
                ),
            )
            .await?;
        }
        if let Some(role) = &plan.revoked_role {
            let policy = revoke_policy_name(id);
            if !current.role_policies.contains(&policy) {
                member
                    .iam
                    .put_role_policy()
                    .role_name(role)
                    .policy_name(&policy)
                    .policy_document(revoke_document(&plan.instance).to_string())
                    .send()
                    .await
                    .map_err(|err| site.error("iam:PutRolePolicy", &err))?;
                self.done("revoke sessions", format!("role/{role} policy {policy}"))
                    .await?;
            }
        }
        if current.state.status_tag.as_deref() != Some("Contain") {
            ec2.create_tags()
                .resources(id)
                .tags(tag(STATUS_TAG, Some("Contain")))
                .send()
                .await
                .map_err(|err| site.error("ec2:CreateTags", &err))?;
            self.done("tag", format!("{STATUS_TAG}=Contain")).await?;
        }
        Ok(())
    }

    async fn restore(
        &mut self,
        member: &Member,
        original: &Original,
        current: &Current,
    ) -> Result<(), ContainmentError> {
        let instance = self.record.instance.clone();
        let id = instance.instance_id.as_str();
        let ec2 = &member.ec2;
        let site = &member.site;
        // A `Contain` tag was the request itself (the tag path): putting it back would contain
        // the instance again, so the tag is removed instead.
        let restored_tag = original
            .status_tag
            .clone()
            .filter(|value| value != "Contain");
        if current.state.status_tag != restored_tag {
            match &restored_tag {
                Some(value) => ec2
                    .create_tags()
                    .resources(id)
                    .tags(tag(STATUS_TAG, Some(value)))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|err| site.error("ec2:CreateTags", &err))?,
                None => ec2
                    .delete_tags()
                    .resources(id)
                    .tags(tag(STATUS_TAG, None))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|err| site.error("ec2:DeleteTags", &err))?,
            }
            self.done(
                "restore tag",
                format!(
                    "{STATUS_TAG}={}",
                    restored_tag.as_deref().unwrap_or("(absent)")
                ),
            )
            .await?;
        }
        if let Some(role) = &original.role_name {
            let policy = revoke_policy_name(id);
            if current.role_policies.contains(&policy) {
                member
                    .iam
                    .delete_role_policy()
                    .role_name(role)
                    .policy_name(&policy)
                    .send()
                    .await
                    .map_err(|err| site.error("iam:DeleteRolePolicy", &err))?;
                self.done(
                    "restore sessions",
                    format!("role/{role} policy {policy} removed"),
                )
                .await?;
            }
        }
        if current.state.profile_arn != original.profile_arn {
            match (&original.profile_arn, &current.association_id) {
                (Some(arn), association) => {
                    let spec = aws_sdk_ec2::types::IamInstanceProfileSpecification::builder()
                        .arn(arn)
                        .build();
                    set_profile(ec2, site, id, association.as_deref(), spec)
                        .await
                        .map_err(|(err, _)| err)?;
                }
                (None, Some(association)) => ec2
                    .disassociate_iam_instance_profile()
                    .association_id(association)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|err| site.error("ec2:DisassociateIamInstanceProfile", &err))?,
                (None, None) => {}
            }
            self.done(
                "restore instance profile",
                original
                    .profile_arn
                    .clone()
                    .unwrap_or_else(|| "(none)".to_owned()),
            )
            .await?;
        }
        for eni in &original.interfaces {
            let now = current
                .state
                .interfaces
                .iter()
                .find(|i| i.interface_id == eni.interface_id);
            if now.is_none_or(|i| i.groups == eni.groups) || eni.groups.is_empty() {
                continue;
            }
            ec2.modify_network_interface_attribute()
                .network_interface_id(&eni.interface_id)
                .set_groups(Some(eni.groups.clone()))
                .send()
                .await
                .map_err(|err| site.error("ec2:ModifyNetworkInterfaceAttribute", &err))?;
            self.done(
                "restore security groups",
                format!("{}: {}", eni.interface_id, list(&eni.groups)),
            )
            .await?;
        }
        for registration in &original.target_registrations {
            if current
                .state
                .target_registrations
                .iter()
                .any(|r| r.target_group_arn == registration.target_group_arn)
            {
                continue;
            }
            member
                .elb
                .register_targets()
                .target_group_arn(&registration.target_group_arn)
                .targets(target(id, registration.port))
                .send()
                .await
                .map_err(|err| site.error("elasticloadbalancing:RegisterTargets", &err))?;
            self.done(
                "register with target group",
                registration.target_group_arn.clone(),
            )
            .await?;
        }
        if let Some(group) = &original.autoscaling_group
            && current.state.autoscaling_group.is_none()
        {
            member
                .autoscaling
                .attach_instances()
                .auto_scaling_group_name(group)
                .instance_ids(id)
                .send()
                .await
                .map_err(|err| site.error("autoscaling:AttachInstances", &err))?;
            let note = if self.record.asg_decremented {
                "desired capacity restored"
            } else {
                "desired capacity is one above the original: the group had launched a replacement"
            };
            self.done("attach to Auto Scaling group", format!("{group} ({note})"))
                .await?;
        }
        if current.state.termination_protection != original.termination_protection {
            set_termination_protection(ec2, site, id, original.termination_protection).await?;
            self.done(
                "restore termination protection",
                original.termination_protection.to_string(),
            )
            .await?;
        }
        Ok(())
    }
}

/// Gives the instance `spec` as its profile: replaces its association, or associates one.
/// A failure carries EC2's error code, so the caller can name a missing profile.
async fn set_profile(
    ec2: &aws_sdk_ec2::Client,
    site: &CallSite,
    instance_id: &str,
    association_id: Option<&str>,
    spec: aws_sdk_ec2::types::IamInstanceProfileSpecification,
) -> Result<(), (AwsError, Option<String>)> {
    fn coded<E, R>(
        site: &CallSite,
        operation: &'static str,
        err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> (AwsError, Option<String>)
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let code = err
            .as_service_error()
            .and_then(|e| e.code())
            .map(str::to_owned);
        (site.error(operation, &err), code)
    }
    match association_id {
        Some(association) => ec2
            .replace_iam_instance_profile_association()
            .association_id(association)
            .iam_instance_profile(spec)
            .send()
            .await
            .map(drop)
            .map_err(|err| coded(site, "ec2:ReplaceIamInstanceProfileAssociation", err)),
        None => ec2
            .associate_iam_instance_profile()
            .instance_id(instance_id)
            .iam_instance_profile(spec)
            .send()
            .await
            .map(drop)
            .map_err(|err| coded(site, "ec2:AssociateIamInstanceProfile", err)),
    }
}

fn target(
    instance_id: &str,
    port: Option<i32>,
) -> aws_sdk_elasticloadbalancingv2::types::TargetDescription {
    aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
        .id(instance_id)
        .set_port(port)
        .build()
}

/// The policy that refuses the old role's credentials delivered to this instance, wherever
/// they are used from: a stolen copy stops working at once, other instances keep theirs.
fn revoke_document(instance: &InstanceRef) -> serde_json::Value {
    let partition = crate::aws::partition_of(&instance.region);
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "IrfRevokeContainedInstanceSessions",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"ec2:SourceInstanceARN": format!(
                "arn:{partition}:ec2:{}:{}:instance/{}",
                instance.region, instance.account, instance.instance_id
            )}}
        }]
    })
}

/// Every protocol and port, to and from any IPv4 address: the rule a new group's egress starts
/// with, which isolation revokes.
pub fn all_ipv4_traffic() -> aws_sdk_ec2::types::IpPermission {
    aws_sdk_ec2::types::IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(
            aws_sdk_ec2::types::IpRange::builder()
                .cidr_ip("0.0.0.0/0")
                .build(),
        )
        .build()
}

/// Creates the VPC's untracking group: all traffic in and out, IPv4 and IPv6, tagged as irf's
/// (template 5 lets the containment role open no other group).
async fn create_untracking_group(
    member: &Member,
    plan: &ContainmentPlan,
) -> Result<String, ContainmentError> {
    use aws_sdk_ec2::types::{IpPermission, Ipv6Range, ResourceType, Tag, TagSpecification};
    let site = &member.site;
    let created = member
        .ec2
        .create_security_group()
        .group_name(UNTRACKING_GROUP)
        .description(
            "irf containment: all traffic, for one call, so that EC2 stops tracking connections",
        )
        .vpc_id(&plan.vpc_id)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::SecurityGroup)
                .tags(
                    Tag::builder()
                        .key(UNTRACKING_TAG.0)
                        .value(UNTRACKING_TAG.1)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(|err| site.error("ec2:CreateSecurityGroup", &err))?;
    let id = created
        .group_id()
        .ok_or_else(|| AwsError::Other("CreateSecurityGroup returned no id".to_owned()))?
        .to_owned();
    let everything = || {
        let mut both = all_ipv4_traffic();
        both.ipv6_ranges = Some(vec![Ipv6Range::builder().cidr_ipv6("::/0").build()]);
        both
    };
    member
        .ec2
        .authorize_security_group_ingress()
        .group_id(&id)
        .ip_permissions(everything())
        .send()
        .await
        .map_err(|err| site.error("ec2:AuthorizeSecurityGroupIngress", &err))?;
    // A new group allows all IPv4 egress already; IPv6 is added.
    member
        .ec2
        .authorize_security_group_egress()
        .group_id(&id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("-1")
                .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
                .build(),
        )
        .send()
        .await
        .map_err(|err| site.error("ec2:AuthorizeSecurityGroupEgress", &err))?;
    Ok(id)
}

/// Creates the plan's isolation group: no inbound rules; outbound nothing, or HTTPS to the
/// SSM endpoints' groups only.
async fn create_isolation_group(
    member: &Member,
    plan: &ContainmentPlan,
) -> Result<String, ContainmentError> {
    let site = &member.site;
    let description = if plan.ssm_endpoint_groups.is_empty() {
        "irf isolation: no inbound, no outbound"
    } else {
        "irf isolation: no inbound; outbound HTTPS to the SSM endpoints only"
    };
    let created = member
        .ec2
        .create_security_group()
        .group_name(&plan.isolation_group_name)
        .description(description)
        .vpc_id(&plan.vpc_id)
        .send()
        .await
        .map_err(|err| site.error("ec2:CreateSecurityGroup", &err))?;
    let id = created
        .group_id()
        .ok_or_else(|| AwsError::Other("CreateSecurityGroup returned no id".to_owned()))?
        .to_owned();
    // A new group allows all egress; isolation allows none.
    member
        .ec2
        .revoke_security_group_egress()
        .group_id(&id)
        .ip_permissions(all_ipv4_traffic())
        .send()
        .await
        .map_err(|err| site.error("ec2:RevokeSecurityGroupEgress", &err))?;
    if !plan.ssm_endpoint_groups.is_empty() {
        let mut permission = aws_sdk_ec2::types::IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443);
        for group in &plan.ssm_endpoint_groups {
            permission = permission.user_id_group_pairs(
                aws_sdk_ec2::types::UserIdGroupPair::builder()
                    .group_id(group)
                    .build(),
            );
        }
        member
            .ec2
            .authorize_security_group_egress()
            .group_id(&id)
            .ip_permissions(permission.build())
            .send()
            .await
            .map_err(|err| site.error("ec2:AuthorizeSecurityGroupEgress", &err))?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_instance_id_confirms() {
        assert!(check_confirmation("i-0123456789abcdef0", "i-0123456789abcdef0").is_ok());
        let err =
            check_confirmation("i-0123456789abcdef0", "i-0123456789abcdef").expect_err("short");
        let text = err.to_string();
        assert!(text.contains("'i-0123456789abcdef'") && text.contains("i-0123456789abcdef0"));
        let hostile = check_confirmation("i-1", "\u{1b}[2Jyes").expect_err("hostile");
        assert!(!hostile.to_string().contains('\u{1b}'), "{hostile}");
    }

    #[test]
    fn the_revocation_targets_this_instance_only() {
        let instance = InstanceRef {
            account: AccountId::parse("111122223333").expect("account"),
            region: "eu-west-1".to_owned(),
            instance_id: "i-0123456789abcdef0".to_owned(),
        };
        let document = revoke_document(&instance);
        let statement = &document["Statement"][0];
        assert_eq!(statement["Effect"], "Deny");
        assert_eq!(
            statement["Condition"]["StringEquals"]["ec2:SourceInstanceARN"],
            "arn:aws:ec2:eu-west-1:111122223333:instance/i-0123456789abcdef0"
        );
        assert_eq!(revoke_policy_name("i-1"), "irf-revoke-i-1");
    }

    #[test]
    fn profile_names_come_from_arns_with_paths() {
        assert_eq!(
            profile_name("arn:aws:iam::111122223333:instance-profile/team/app-server"),
            "app-server"
        );
        assert_eq!(profile_name("IRIsolationProfile"), "IRIsolationProfile");
    }

    #[test]
    fn states_that_hold_originals() {
        for state in [
            ContainmentState::Applying,
            ContainmentState::Contained,
            ContainmentState::RollingBack,
        ] {
            assert!(state.holds_originals(), "{}", state.as_str());
        }
        for state in [
            ContainmentState::Requested,
            ContainmentState::RolledBack,
            ContainmentState::Rejected,
        ] {
            assert!(!state.holds_originals(), "{}", state.as_str());
        }
    }
}
