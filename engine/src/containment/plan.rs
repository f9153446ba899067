//! The plan of a containment: what will change on the instance, what it replaces, and the
//! warnings an approver reads before typing the instance id.

use super::current::{
    Current, Member, find_group, list, profile_name, read_current, revoke_policy_name,
    role_policies, ssm_endpoint_groups,
};
use super::error::ContainmentError;
use super::options::{
    ContainmentOptions, ISOLATION_GROUP, ISOLATION_SSM_GROUP, STATUS_TAG, UNTRACKING_GROUP,
};
use crate::model::containment::{ContainmentPlan, ContainmentRecord, InstanceRef, PlannedChange};
use crate::plane::Plane;

/// Plans the containment of `instance`. When `record` holds originals (containment begun or
/// done), they are what a rollback restores, not the instance's current, contained state.
pub(super) async fn plan_with(
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
