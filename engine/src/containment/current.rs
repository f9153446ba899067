//! The instance as it stands now in its member account: its interfaces and groups, profile
//! and role, Auto Scaling group, target groups and tag, read with the member's clients.

use super::error::ContainmentError;
use super::options::{REVOKE_POLICY_PREFIX, SSM_SERVICES, STATUS_TAG};
use crate::aws::{AwsError, CallSite};
use crate::ec2::{profile_association, termination_protection};
use crate::model::containment::{InstanceRef, InterfaceGroups, Original, TargetRegistration};
use crate::plane::Plane;

/// The member-account clients containment uses.
pub(super) struct Member {
    pub(super) ec2: aws_sdk_ec2::Client,
    pub(super) iam: aws_sdk_iam::Client,
    pub(super) autoscaling: aws_sdk_autoscaling::Client,
    pub(super) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(super) site: CallSite,
}

impl Member {
    /// The containment role, not the capture role: only it may change an instance's network,
    /// profile and role policies (and only the Security account's automation assumes it).
    pub(super) async fn connect(plane: &Plane, instance: &InstanceRef) -> Result<Self, AwsError> {
        let config = plane
            .ctx
            .containment_config(&instance.account, &instance.region)
            .await?;
        Ok(Self::with(&config, instance))
    }

    /// The member role, which reads all a plan needs and changes none of it: operators plan
    /// and ask with it.
    pub(super) async fn reader(plane: &Plane, instance: &InstanceRef) -> Result<Self, AwsError> {
        let config = plane
            .ctx
            .account_config(&instance.account, &instance.region)
            .await?;
        Ok(Self::with(&config, instance))
    }

    pub(super) fn with(config: &aws_types::SdkConfig, instance: &InstanceRef) -> Self {
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
pub(super) struct Current {
    pub(super) instance: aws_sdk_ec2::types::Instance,
    pub(super) state: Original,
    pub(super) association_id: Option<String>,
    /// Inline policies of the original role (to see whether sessions are revoked already).
    pub(super) role_policies: Vec<String>,
}

pub(super) fn tag(key: &str, value: Option<&str>) -> aws_sdk_ec2::types::Tag {
    let builder = aws_sdk_ec2::types::Tag::builder().key(key);
    match value {
        Some(value) => builder.value(value).build(),
        None => builder.build(),
    }
}

pub(super) fn filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .values(value)
        .build()
}

pub(super) fn profile_name(arn_or_name: &str) -> &str {
    arn_or_name.rsplit('/').next().unwrap_or(arn_or_name)
}

pub(super) fn revoke_policy_name(instance_id: &str) -> String {
    format!("{REVOKE_POLICY_PREFIX}{instance_id}")
}

pub(super) async fn read_current(
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
pub(super) async fn role_policies(
    member: &Member,
    role: Option<&str>,
) -> Result<Vec<String>, AwsError> {
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
pub(super) async fn registrations(
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
pub(super) async fn find_group(
    member: &Member,
    vpc_id: &str,
    name: &str,
) -> Result<Option<String>, AwsError> {
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
pub(super) async fn ssm_endpoint_groups(
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

pub(super) fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_come_from_arns_with_paths() {
        assert_eq!(
            profile_name("arn:aws:iam::111122223333:instance-profile/team/app-server"),
            "app-server"
        );
        assert_eq!(profile_name("IRIsolationProfile"), "IRIsolationProfile");
    }
}
