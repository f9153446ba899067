//! The lab's Forensics analysis environment, as templates 1 and 2 deploy it: the isolated
//! Analysis VPC (three private subnets with their own route tables, no internet or NAT
//! gateway, an S3 gateway endpoint and the Session Manager interface endpoints), the
//! analysis hosts' security group (HTTPS out only), and the SIFT image pipeline, which the
//! emulator's Image Builder stand-in serves. The analyst role is template 1's own.

use aws_sdk_ec2::types::{
    IpPermission, IpRange, ResourceType, Tag, TagSpecification, VpcEndpointType,
};
use serde::{Deserialize, Serialize};

use crate::common::{LAB_REGION, LabError};
use irf_engine::aws::{AwsContext, describe_sdk_error};
use irf_engine::config::AccountId;

/// The name of the lab's SIFT pipeline.
pub const PIPELINE_NAME: &str = "irf-sift";
/// The analyst instance profile (template 1 names it `<prefix>-analyst`).
pub const ANALYST_PROFILE: &str = "irf-analyst";
/// The Analysis VPC's address range in the lab.
pub const ANALYSIS_VPC_CIDR: &str = "10.200.0.0/16";
/// How long a lab image build takes: long enough to watch it pass through its states.
pub const LAB_BUILD_SECONDS: u32 = 8;

/// What the lab created for analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabAnalysis {
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    pub security_group_id: String,
    pub instance_profile: String,
    pub image_pipeline_arn: String,
}

impl LabAnalysis {
    /// The ids template 1's Ref and Fn::GetAtt give for what the lab built by hand.
    pub fn physical_ids(&self, cidr: &str) -> serde_json::Value {
        let mut ids = serde_json::json!({
            "AnalysisVpc": {"ref": self.vpc_id, "attributes": {"CidrBlock": cidr}},
            "AnalysisHostSecurityGroup": {"ref": self.security_group_id, "attributes": {"GroupId": self.security_group_id}},
        });
        for (index, subnet) in self.subnet_ids.iter().enumerate() {
            ids[format!("AnalysisSubnet{}", index + 1)] = serde_json::json!({"ref": subnet});
        }
        ids
    }
}

/// The pipeline's ARN in the Forensics account.
pub fn pipeline_arn(forensics: &AccountId) -> String {
    format!("arn:aws:imagebuilder:{LAB_REGION}:{forensics}:image-pipeline/{PIPELINE_NAME}")
}

fn failed(step: &'static str) -> impl Fn(String) -> LabError {
    move |message| LabError::Seed { step, message }
}

fn sdk<E, R>(
    step: &'static str,
) -> impl Fn(aws_smithy_runtime_api::client::result::SdkError<E, R>) -> LabError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    move |err| failed(step)(describe_sdk_error(&err))
}

fn tags(resource: ResourceType, name: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .tags(Tag::builder().key("Name").value(name).build())
        .build()
}

/// Creates the analysis environment in the Forensics account.
pub async fn create(security: &AwsContext, forensics: &AccountId) -> Result<LabAnalysis, LabError> {
    let config = security
        .account_config(forensics, LAB_REGION)
        .await
        .map_err(|err| failed("reach the Forensics account")(err.to_string()))?;
    let ec2 = aws_sdk_ec2::Client::new(&config);

    let vpc = ec2
        .create_vpc()
        .cidr_block(ANALYSIS_VPC_CIDR)
        .tag_specifications(tags(ResourceType::Vpc, "irf-analysis"))
        .send()
        .await
        .map_err(sdk("ec2:CreateVpc (Analysis VPC)"))?;
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap_or_default()
        .to_owned();
    let mut subnet_ids = Vec::new();
    let mut route_tables = Vec::new();
    for (i, zone) in ["a", "b", "c"].iter().enumerate() {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.200.{}.0/24", i + 1))
            .availability_zone(format!("{LAB_REGION}{zone}"))
            .tag_specifications(tags(ResourceType::Subnet, &format!("irf-analysis-{zone}")))
            .send()
            .await
            .map_err(sdk("ec2:CreateSubnet (Analysis VPC)"))?;
        let subnet_id = subnet
            .subnet()
            .and_then(|s| s.subnet_id())
            .unwrap_or_default()
            .to_owned();
        let table = ec2
            .create_route_table()
            .vpc_id(&vpc_id)
            .tag_specifications(tags(
                ResourceType::RouteTable,
                &format!("irf-analysis-{zone}"),
            ))
            .send()
            .await
            .map_err(sdk("ec2:CreateRouteTable"))?;
        let table_id = table
            .route_table()
            .and_then(|t| t.route_table_id())
            .unwrap_or_default()
            .to_owned();
        ec2.associate_route_table()
            .route_table_id(&table_id)
            .subnet_id(&subnet_id)
            .send()
            .await
            .map_err(sdk("ec2:AssociateRouteTable"))?;
        subnet_ids.push(subnet_id);
        route_tables.push(table_id);
    }
    ec2.create_vpc_endpoint()
        .vpc_id(&vpc_id)
        .vpc_endpoint_type(VpcEndpointType::Gateway)
        .service_name(format!("com.amazonaws.{LAB_REGION}.s3"))
        .set_route_table_ids(Some(route_tables))
        .send()
        .await
        .map_err(sdk("ec2:CreateVpcEndpoint (S3 gateway)"))?;
    let endpoints = ec2
        .create_security_group()
        .vpc_id(&vpc_id)
        .group_name("irf-analysis-endpoints")
        .description("irf analysis VPC interface endpoints, HTTPS from inside the VPC only")
        .send()
        .await
        .map_err(sdk("ec2:CreateSecurityGroup (endpoints)"))?;
    let endpoints_group = endpoints.group_id().unwrap_or_default().to_owned();
    ec2.authorize_security_group_ingress()
        .group_id(&endpoints_group)
        .ip_permissions(https_from(ANALYSIS_VPC_CIDR))
        .send()
        .await
        .map_err(sdk("ec2:AuthorizeSecurityGroupIngress (endpoints)"))?;
    for service in ["ssm", "ssmmessages", "ec2messages"] {
        ec2.create_vpc_endpoint()
            .vpc_id(&vpc_id)
            .vpc_endpoint_type(VpcEndpointType::Interface)
            .service_name(format!("com.amazonaws.{LAB_REGION}.{service}"))
            .set_subnet_ids(Some(subnet_ids.clone()))
            .security_group_ids(&endpoints_group)
            .private_dns_enabled(true)
            .send()
            .await
            .map_err(sdk("ec2:CreateVpcEndpoint (interface)"))?;
    }
    let hosts = ec2
        .create_security_group()
        .vpc_id(&vpc_id)
        .group_name("irf-analysis-hosts")
        .description(
            "irf analysis hosts; no inbound (SSM sessions only), HTTPS out to the endpoints",
        )
        .send()
        .await
        .map_err(sdk("ec2:CreateSecurityGroup (analysis hosts)"))?;
    let security_group_id = hosts.group_id().unwrap_or_default().to_owned();
    // Replace the default allow-all egress with HTTPS only, as template 1 does.
    ec2.revoke_security_group_egress()
        .group_id(&security_group_id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("-1")
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .map_err(sdk("ec2:RevokeSecurityGroupEgress (analysis hosts)"))?;
    ec2.authorize_security_group_egress()
        .group_id(&security_group_id)
        .ip_permissions(https_from("0.0.0.0/0"))
        .send()
        .await
        .map_err(sdk("ec2:AuthorizeSecurityGroupEgress (analysis hosts)"))?;

    // The analyst role and instance profile are template 1's, deployed with the others.
    Ok(LabAnalysis {
        vpc_id,
        subnet_ids,
        security_group_id,
        instance_profile: ANALYST_PROFILE.to_owned(),
        image_pipeline_arn: pipeline_arn(forensics),
    })
}

/// HTTPS (TCP 443) from or to `cidr`, as the lab's security groups allow it.
pub(crate) fn https_from(cidr: &str) -> IpPermission {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(443)
        .to_port(443)
        .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
        .build()
}
