//! Rolling containment back: what it replaced restored exactly as recorded, in the reverse
//! order.

use super::current::{Current, Member, list, read_current, revoke_policy_name, role_policies, tag};
use super::error::ContainmentError;
use super::options::STATUS_TAG;
use super::requests::ContainmentOutcome;
use super::run::{Run, set_profile, target};
use crate::ec2::set_termination_protection;
use crate::model::containment::{ContainmentState, InstanceRef, Original};
use crate::plane::Plane;

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

impl Run<'_> {
    pub(super) async fn restore(
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
