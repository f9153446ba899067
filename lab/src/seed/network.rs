//! The member accounts' networks and instances: a VPC per account and region, instances
//! of each planned role, and a load-balanced web front.

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, IamInstanceProfileSpecification, InstanceType,
    ResourceType, TagSpecification, VolumeType,
};

use crate::common::LabError;
use irf_engine::aws::AwsContext;
use irf_engine::config::AccountId;
use irf_engine::inventory::INCIDENT_STATUS_TAG;

use super::plan::{PlannedInstance, WorkloadRole};
use super::seeded::{sdk_err, seed_err, tag};
use crate::analysis::https_from;

#[derive(Debug)]
pub(super) struct Network {
    vpc_id: String,
    subnets: [String; 2],
    web_group: String,
    internal_group: String,
}

pub(super) async fn create_network(
    ec2: &aws_sdk_ec2::Client,
    account: &AccountId,
    region: &str,
    account_index: usize,
    region_index: usize,
) -> Result<Network, LabError> {
    let second_octet = (account_index * 4 + region_index) % 250 + 1;
    let vpc = ec2
        .create_vpc()
        .cidr_block(format!("10.{second_octet}.0.0/16"))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Vpc)
                .tags(tag("Name", "workloads"))
                .build(),
        )
        .send()
        .await
        .map_err(sdk_err("ec2:CreateVpc", account.as_str(), region))?;
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap_or_default()
        .to_owned();
    let mut subnets = Vec::with_capacity(2);
    for (i, zone) in ["a", "b"].iter().enumerate() {
        let out = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.{second_octet}.{}.0/24", i + 1))
            .availability_zone(format!("{region}{zone}"))
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Subnet)
                    .tags(tag("Name", &format!("private-{zone}")))
                    .build(),
            )
            .send()
            .await
            .map_err(sdk_err("ec2:CreateSubnet", account.as_str(), region))?;
        subnets.push(
            out.subnet()
                .and_then(|s| s.subnet_id())
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let web = ec2
        .create_security_group()
        .vpc_id(&vpc_id)
        .group_name("web")
        .description("HTTPS from anywhere")
        .send()
        .await
        .map_err(sdk_err("ec2:CreateSecurityGroup", account.as_str(), region))?;
    let web_group = web.group_id().unwrap_or_default().to_owned();
    ec2.authorize_security_group_ingress()
        .group_id(&web_group)
        .ip_permissions(https_from("0.0.0.0/0"))
        .send()
        .await
        .map_err(sdk_err(
            "ec2:AuthorizeSecurityGroupIngress",
            account.as_str(),
            region,
        ))?;
    let internal = ec2
        .create_security_group()
        .vpc_id(&vpc_id)
        .group_name("internal")
        .description("Traffic inside the VPC")
        .send()
        .await
        .map_err(sdk_err("ec2:CreateSecurityGroup", account.as_str(), region))?;
    let internal_group = internal.group_id().unwrap_or_default().to_owned();
    let [first, second]: [String; 2] = subnets.try_into().map_err(|_| LabError::Seed {
        step: "ec2:CreateSubnet",
        message: "expected two subnets".into(),
    })?;
    Ok(Network {
        vpc_id,
        subnets: [first, second],
        web_group,
        internal_group,
    })
}

pub(super) async fn run_instance(
    ec2: &aws_sdk_ec2::Client,
    account: &AccountId,
    region: &str,
    planned: &PlannedInstance,
    environment: &str,
    network: &Network,
    profile: &str,
) -> Result<(String, String), LabError> {
    let mut tags = vec![
        tag("Name", &planned.name),
        tag("Owner", planned.role.owner()),
        tag("Environment", environment),
        tag("Role", planned.role.name()),
        tag("OS", &planned.os),
    ];
    if planned.analyze {
        tags.push(tag(INCIDENT_STATUS_TAG, "Analyze"));
    }
    let mut groups = vec![network.internal_group.clone()];
    if planned.role == WorkloadRole::Web {
        groups.push(network.web_group.clone());
    }
    let volume = |device: &str, gib: i32| {
        BlockDeviceMapping::builder()
            .device_name(device)
            .ebs(
                EbsBlockDevice::builder()
                    .volume_size(gib)
                    .volume_type(VolumeType::Gp3)
                    .encrypted(true)
                    .delete_on_termination(true)
                    .build(),
            )
            .build()
    };
    let mut request = ec2
        .run_instances()
        .image_id(image_for(&planned.os))
        .instance_type(planned.role.instance_type())
        .min_count(1)
        .max_count(1)
        .subnet_id(&network.subnets[planned.subnet])
        .set_security_group_ids(Some(groups))
        .block_device_mappings(volume("/dev/xvda", planned.root_gib))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(tags))
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Volume)
                .tags(tag("Name", &planned.name))
                .tags(tag("Environment", environment))
                .build(),
        );
    if let Some(gib) = planned.data_gib {
        request = request.block_device_mappings(volume("/dev/xvdf", gib));
    }
    let out =
        request
            .send()
            .await
            .map_err(sdk_err("ec2:RunInstances", account.as_str(), region))?;
    let missing = |what: &str| LabError::Seed {
        step: "ec2:RunInstances",
        message: format!("no {what} returned"),
    };
    let instance = out.instances().first().ok_or_else(|| missing("instance"))?;
    let id = instance
        .instance_id()
        .ok_or_else(|| missing("instance id"))?
        .to_owned();
    // Bastions are reached by SSH and carry no instance profile, so Systems Manager does not
    // manage them: the workstation shows them unreachable for capture. The profile is
    // associated after launch: the emulator records an association (which containment reads
    // and replaces) only then, where AWS records one for a profile given at launch too.
    if planned.role != WorkloadRole::Bastion {
        ec2.associate_iam_instance_profile()
            .instance_id(&id)
            .iam_instance_profile(
                IamInstanceProfileSpecification::builder()
                    .name(profile)
                    .build(),
            )
            .send()
            .await
            .map_err(sdk_err(
                "ec2:AssociateIamInstanceProfile",
                account.as_str(),
                region,
            ))?;
    }
    let root_volume = instance
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name() == Some("/dev/xvda"))
        .and_then(|m| m.ebs())
        .and_then(|ebs| ebs.volume_id())
        .ok_or_else(|| missing("root volume"))?
        .to_owned();
    Ok((id, root_volume))
}

/// Puts the suspect web server where production web servers are: in an Auto Scaling group
/// and behind an Application Load Balancer, so that containment has both to detach it from.
pub(super) async fn front_web_server(
    seeder: &AwsContext,
    account: &AccountId,
    region: &str,
    network: &Network,
    instance_id: &str,
) -> Result<(), LabError> {
    let config = seeder
        .account_config(account, region)
        .await
        .map_err(seed_err("reach a member account"))?;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    ec2.create_launch_template()
        .launch_template_name("prod-web")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(image_for("Amazon Linux 2023"))
                .instance_type(InstanceType::T3Medium)
                .build(),
        )
        .send()
        .await
        .map_err(sdk_err(
            "ec2:CreateLaunchTemplate",
            account.as_str(),
            region,
        ))?;
    autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name("prod-web")
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name("prod-web")
                .version("$Latest")
                .build(),
        )
        .min_size(0)
        .max_size(4)
        .desired_capacity(0)
        .vpc_zone_identifier(network.subnets.join(","))
        .send()
        .await
        .map_err(sdk_err(
            "autoscaling:CreateAutoScalingGroup",
            account.as_str(),
            region,
        ))?;
    autoscaling
        .attach_instances()
        .auto_scaling_group_name("prod-web")
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(sdk_err(
            "autoscaling:AttachInstances",
            account.as_str(),
            region,
        ))?;
    let balancer = elb
        .create_load_balancer()
        .name("prod-web")
        .set_subnets(Some(network.subnets.to_vec()))
        .security_groups(&network.web_group)
        .send()
        .await
        .map_err(sdk_err(
            "elasticloadbalancing:CreateLoadBalancer",
            account.as_str(),
            region,
        ))?;
    let balancer_arn = balancer
        .load_balancers()
        .first()
        .and_then(|b| b.load_balancer_arn())
        .unwrap_or_default()
        .to_owned();
    let group = elb
        .create_target_group()
        .name("prod-web")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(&network.vpc_id)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance)
        .send()
        .await
        .map_err(sdk_err(
            "elasticloadbalancing:CreateTargetGroup",
            account.as_str(),
            region,
        ))?;
    let group_arn = group
        .target_groups()
        .first()
        .and_then(|g| g.target_group_arn())
        .unwrap_or_default()
        .to_owned();
    elb.create_listener()
        .load_balancer_arn(&balancer_arn)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&group_arn)
                .build(),
        )
        .send()
        .await
        .map_err(sdk_err(
            "elasticloadbalancing:CreateListener",
            account.as_str(),
            region,
        ))?;
    elb.register_targets()
        .target_group_arn(&group_arn)
        .targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id(instance_id)
                .port(80)
                .build(),
        )
        .send()
        .await
        .map_err(sdk_err(
            "elasticloadbalancing:RegisterTargets",
            account.as_str(),
            region,
        ))?;
    Ok(())
}

/// A stable, plausible AMI id per operating system.
pub(super) fn image_for(os: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(os.as_bytes());
    let hex = irf_engine::hex(&digest[..9]);
    format!("ami-{}", &hex[..17])
}
