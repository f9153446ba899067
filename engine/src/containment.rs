//! Containment of an instance: the isolation security group on every network interface,
//! termination protection and the `SecurityIncidentStatus=Contain` tag, with what it
//! replaced recorded so that it can be undone.

use serde::{Deserialize, Serialize};

use crate::acquisition::steps::{InterfaceGroups, StepError};
use crate::aws::AwsError;
use crate::cases::{Case, now_rfc3339};

/// The name of the isolation group irf creates in each VPC it contains an instance in.
pub const ISOLATION_GROUP: &str = "irf-isolation";
/// The tag that marks and triggers incident handling on an instance.
pub const STATUS_TAG: &str = "SecurityIncidentStatus";

/// What containment changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedIsolation {
    pub instance_id: String,
    pub isolation_group: String,
    /// Each interface's groups before containment.
    pub replaced: Vec<InterfaceGroups>,
    pub applied_at: String,
}

/// Finds or creates the isolation group (no ingress, no egress) in `vpc_id`.
pub async fn isolation_group(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    account: &str,
    region: &str,
) -> Result<String, AwsError> {
    let existing = ec2
        .describe_security_groups()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(vpc_id)
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("group-name")
                .values(ISOLATION_GROUP)
                .build(),
        )
        .send()
        .await
        .map_err(|err| AwsError::from_sdk("ec2:DescribeSecurityGroups", account, region, &err))?;
    if let Some(id) = existing
        .security_groups()
        .first()
        .and_then(|g| g.group_id())
    {
        return Ok(id.to_owned());
    }
    let created = ec2
        .create_security_group()
        .group_name(ISOLATION_GROUP)
        .description("irf isolation: no inbound, no outbound")
        .vpc_id(vpc_id)
        .send()
        .await
        .map_err(|err| AwsError::from_sdk("ec2:CreateSecurityGroup", account, region, &err))?;
    let id = created
        .group_id()
        .ok_or_else(|| AwsError::Other("CreateSecurityGroup returned no id".to_owned()))?
        .to_owned();
    // A new group allows all egress; isolation allows none.
    ec2.revoke_security_group_egress()
        .group_id(&id)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("-1")
                .ip_ranges(
                    aws_sdk_ec2::types::IpRange::builder()
                        .cidr_ip("0.0.0.0/0")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(|err| {
            AwsError::from_sdk("ec2:RevokeSecurityGroupEgress", account, region, &err)
        })?;
    Ok(id)
}

/// Puts every interface of the case's instance in the isolation group.
pub async fn apply_isolation(
    config: &aws_types::SdkConfig,
    case: &Case,
) -> Result<AppliedIsolation, StepError> {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let account = case.subject.account.as_str();
    let region = &case.subject.region;
    let id = &case.subject.instance_id;
    let instance = crate::acquisition::describe_instance(&ec2, &case.subject).await?;
    let vpc = instance
        .vpc_id()
        .ok_or_else(|| StepError::invalid(format!("instance {id} is not in a VPC")))?;
    let group = isolation_group(&ec2, vpc, account, region).await?;
    let mut replaced = Vec::new();
    for eni in instance.network_interfaces() {
        let Some(eni_id) = eni.network_interface_id() else {
            continue;
        };
        let groups: Vec<String> = eni
            .groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_owned))
            .collect();
        replaced.push(InterfaceGroups {
            interface_id: eni_id.to_owned(),
            groups: groups.clone(),
        });
        if groups == [group.clone()] {
            continue;
        }
        ec2.modify_network_interface_attribute()
            .network_interface_id(eni_id)
            .groups(&group)
            .send()
            .await
            .map_err(|err| {
                AwsError::from_sdk("ec2:ModifyNetworkInterfaceAttribute", account, region, &err)
            })?;
    }
    ec2.create_tags()
        .resources(id)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(STATUS_TAG)
                .value("Contain")
                .build(),
        )
        .send()
        .await
        .map_err(|err| AwsError::from_sdk("ec2:CreateTags", account, region, &err))?;
    Ok(AppliedIsolation {
        instance_id: id.clone(),
        isolation_group: group,
        replaced,
        applied_at: now_rfc3339(),
    })
}
