//! Applying containment: the originals on record first, then each change in order, checked
//! against the instance's current state so that applying twice changes nothing.

use super::current::{Current, Member, list, profile_name, revoke_policy_name, tag};
use super::error::ContainmentError;
use super::options::{ContainmentOptions, STATUS_TAG, UNTRACKING_GROUP, UNTRACKING_TAG};
use super::plan::plan_with;
use super::requests::ContainmentOutcome;
use super::run::{Run, set_profile, target};
use crate::aws::AwsError;
use crate::ec2::set_termination_protection;
use crate::model::case::{CaseId, now_rfc3339};
use crate::model::containment::{
    ContainmentPlan, ContainmentRecord, ContainmentState, InstanceRef,
};
use crate::plane::Plane;

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

impl Run<'_> {
    pub(super) async fn contain(
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
}

/// The policy that refuses the old role's credentials delivered to this instance, wherever
/// they are used from: a stolen copy stops working at once, other instances keep theirs.
pub(super) fn revoke_document(instance: &InstanceRef) -> serde_json::Value {
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
pub(super) async fn create_untracking_group(
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
    let id = created_group_id(&created)?;
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
pub(super) async fn create_isolation_group(
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
    let id = created_group_id(&created)?;
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

/// The id CreateSecurityGroup gives the group it created.
fn created_group_id(
    created: &aws_sdk_ec2::operation::create_security_group::CreateSecurityGroupOutput,
) -> Result<String, AwsError> {
    created
        .group_id()
        .map(str::to_owned)
        .ok_or_else(|| AwsError::Incomplete {
            operation: "ec2:CreateSecurityGroup",
            missing: "the group's id".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AccountId;

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
}
