//! The lab's demo Organization: planned deterministically from a seed number, then created
//! in the emulator through the same SDK calls irf uses against AWS.

use std::sync::Arc;

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, IamInstanceProfileSpecification, InstanceType,
    ResourceType, Tag, TagSpecification, VolumeType,
};
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, RecordState, Resource, Severity, SeverityLabel,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::common::{LAB_REGION, LabError};
use irf_engine::aws::{AwsContext, AwsError};
use irf_engine::config::{AccountId, Config};
use irf_engine::inventory::INCIDENT_STATUS_TAG;

use crate::analysis::https_from;
/// The role Organizations creates in every account it creates; the seeder acts through it.
use crate::common::ORG_ACCESS_ROLE;

/// What to seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedOptions {
    /// The seed number: the same number gives the same Organization.
    pub seed: u64,
    /// Member accounts with the IR role (3 to 50).
    pub members: usize,
    /// Regions with instances (at least 2).
    pub regions: Vec<String>,
    /// Instances across the members (at least 30).
    pub instances: usize,
    /// Findings in Security Hub (at least 20).
    pub findings: usize,
    /// Add one member account that was never onboarded (no IR role), as real Organizations have.
    pub unmanaged_account: bool,
    /// The deployment's four-eyes rule (template 3's FourEyes): off unless asked, since the
    /// lab has one responder.
    #[serde(default)]
    pub four_eyes: bool,
}

impl Default for SeedOptions {
    fn default() -> Self {
        Self {
            seed: 42,
            members: 4,
            regions: vec!["us-east-1".to_owned(), "eu-west-1".to_owned()],
            instances: 36,
            findings: 24,
            unmanaged_account: true,
            four_eyes: false,
        }
    }
}

impl SeedOptions {
    /// Checks the options, naming the bad value.
    pub fn validate(&self) -> Result<(), LabError> {
        let bad = |what: String| Err(LabError::BadSeedOptions(what));
        if !(3..=50).contains(&self.members) {
            return bad(format!("members = {}: use 3 to 50", self.members));
        }
        if self.regions.len() < 2 {
            return bad(format!("regions = {:?}: name at least 2", self.regions));
        }
        if !self.regions.iter().any(|r| r == LAB_REGION) {
            return bad(format!(
                "regions = {:?}: include {LAB_REGION}, the lab's home region",
                self.regions
            ));
        }
        if self.instances < 30 || self.instances > 5000 {
            return bad(format!("instances = {}: use 30 to 5000", self.instances));
        }
        if self.findings < 20 || self.findings > 1000 {
            return bad(format!("findings = {}: use 20 to 1000", self.findings));
        }
        Ok(())
    }
}

/// What an instance is for; drives its type, OS, volumes and tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadRole {
    Web,
    Bastion,
    Database,
    Batch,
    Build,
}

impl WorkloadRole {
    const ALL: [Self; 5] = [
        Self::Web,
        Self::Bastion,
        Self::Database,
        Self::Batch,
        Self::Build,
    ];

    /// The short name used in host names and the `Role` tag.
    pub fn name(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Bastion => "bastion",
            Self::Database => "db",
            Self::Batch => "batch",
            Self::Build => "build",
        }
    }

    fn instance_type(self) -> InstanceType {
        match self {
            Self::Web => InstanceType::T3Medium,
            Self::Bastion => InstanceType::T3Micro,
            Self::Database => InstanceType::R6iXlarge,
            Self::Batch => InstanceType::C6i2xlarge,
            Self::Build => InstanceType::M6iLarge,
        }
    }

    fn os(self, pick: usize) -> &'static str {
        const LINUX: [&str; 4] = [
            "Amazon Linux 2023",
            "Ubuntu 22.04 LTS",
            "Red Hat Enterprise Linux 9",
            "Amazon Linux 2",
        ];
        match self {
            Self::Build if pick.is_multiple_of(3) => "Windows Server 2022",
            Self::Database => ["Red Hat Enterprise Linux 9", "Amazon Linux 2023"][pick % 2],
            _ => LINUX[pick % LINUX.len()],
        }
    }

    fn owner(self) -> &'static str {
        match self {
            Self::Web => "storefront-team@example.com",
            Self::Bastion => "platform-ops@example.com",
            Self::Database => "data-platform@example.com",
            Self::Batch => "analytics@example.com",
            Self::Build => "dev-productivity@example.com",
        }
    }
}

/// One planned account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAccount {
    pub name: String,
    pub environment: String,
    /// Whether the IR role is deployed in it.
    pub managed: bool,
}

/// One planned instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedInstance {
    /// Index into [`SeedPlan::members`].
    pub account: usize,
    pub region: String,
    pub subnet: usize,
    pub role: WorkloadRole,
    pub name: String,
    pub os: String,
    pub stopped: bool,
    pub analyze: bool,
    pub root_gib: i32,
    pub data_gib: Option<i32>,
}

/// One planned Security Hub finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFinding {
    /// Index into [`SeedPlan::instances`].
    pub instance: usize,
    pub kind: usize,
    pub age_minutes: i64,
}

/// The whole demo Organization, before anything is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedPlan {
    pub members: Vec<PlannedAccount>,
    pub regions: Vec<String>,
    pub instances: Vec<PlannedInstance>,
    pub findings: Vec<PlannedFinding>,
}

/// GuardDuty-style finding kinds: type, severity, title template (`{id}` is the instance).
const FINDING_KINDS: [(&str, SeverityLabel, &str); 8] = [
    (
        "TTPs/Execution/Execution:Runtime-ReverseShell",
        SeverityLabel::Critical,
        "A process on EC2 instance {id} opened a reverse shell",
    ),
    (
        "TTPs/Command and Control/Backdoor:EC2-C&CActivity.B!DNS",
        SeverityLabel::High,
        "EC2 instance {id} is querying a domain name associated with a known command and control server",
    ),
    (
        "Effects/Resource Consumption/CryptoCurrency:EC2-BitcoinTool.B!DNS",
        SeverityLabel::High,
        "EC2 instance {id} is querying a domain name associated with Bitcoin-related activity",
    ),
    (
        "TTPs/Persistence/Persistence:Runtime-NewCronJob",
        SeverityLabel::Medium,
        "A new cron job was created on EC2 instance {id}",
    ),
    (
        "TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce",
        SeverityLabel::Medium,
        "EC2 instance {id} is the target of SSH brute force attacks",
    ),
    (
        "TTPs/Discovery/Recon:EC2-PortProbeUnprotectedPort",
        SeverityLabel::Low,
        "Unprotected port on EC2 instance {id} is being probed",
    ),
    (
        "Software and Configuration Checks/AWS Security Best Practices/EC2.8",
        SeverityLabel::Informational,
        "EC2 instance {id} should use Instance Metadata Service Version 2 (IMDSv2)",
    ),
    (
        "Unusual Behaviors/VM/UnauthorizedAccess:EC2-TorClient",
        SeverityLabel::High,
        "EC2 instance {id} is making connections to Tor Guard or Authority nodes",
    ),
];

const ACCOUNT_NAMES: [(&str, &str); 10] = [
    ("prod-web", "prod"),
    ("prod-data", "prod"),
    ("dev-sandbox", "dev"),
    ("shared-services", "prod"),
    ("payments", "prod"),
    ("analytics", "staging"),
    ("build-ci", "dev"),
    ("marketing-site", "prod"),
    ("staging-web", "staging"),
    ("research", "dev"),
];

impl SeedPlan {
    /// Plans the Organization for `options`; the same options always give the same plan.
    pub fn new(options: &SeedOptions) -> Self {
        let mut rng = SmallRng::seed_from_u64(options.seed);
        let mut members: Vec<PlannedAccount> = (0..options.members)
            .map(|i| {
                let (base, environment) = ACCOUNT_NAMES[i % ACCOUNT_NAMES.len()];
                let name = if i < ACCOUNT_NAMES.len() {
                    base.to_owned()
                } else {
                    format!("{base}-{}", i / ACCOUNT_NAMES.len() + 1)
                };
                PlannedAccount {
                    name,
                    environment: environment.to_owned(),
                    managed: true,
                }
            })
            .collect();
        if options.unmanaged_account {
            members.push(PlannedAccount {
                name: "legacy-unmanaged".to_owned(),
                environment: "prod".to_owned(),
                managed: false,
            });
        }

        let mut instances = Vec::with_capacity(options.instances);
        let pairs: Vec<(usize, &String)> = (0..members.len())
            .flat_map(|a| options.regions.iter().map(move |r| (a, r)))
            .collect();
        let mut counters = std::collections::HashMap::<(usize, WorkloadRole), usize>::new();
        for index in 0..options.instances {
            let (account, region) = pairs[index % pairs.len()];
            let role = WorkloadRole::ALL[rng.random_range(0..WorkloadRole::ALL.len())];
            let n = counters.entry((account, role)).or_default();
            *n += 1;
            let environment = &members[account].environment;
            instances.push(PlannedInstance {
                account,
                region: region.clone(),
                subnet: rng.random_range(0..2),
                role,
                name: format!("{environment}-{}-{:02}", role.name(), n),
                os: role.os(rng.random_range(0..12)).to_owned(),
                stopped: rng.random_ratio(1, 7),
                analyze: false,
                root_gib: [8, 16, 30][rng.random_range(0..3)],
                data_gib: (role == WorkloadRole::Database).then_some(100),
            });
        }
        // The incident already under way: the first running web server of the first member.
        let suspect = instances
            .iter()
            .position(|i| i.account == 0 && i.role == WorkloadRole::Web)
            .unwrap_or(0);
        instances[suspect].analyze = true;
        instances[suspect].stopped = false;
        // Small enough that the whole acquisition of the demo runs in seconds: every byte of
        // a raw image goes through the emulator's S3.
        instances[suspect].root_gib = 1;

        let visible: Vec<usize> = (0..instances.len())
            .filter(|&i| members[instances[i].account].managed)
            .collect();
        let mut findings = vec![
            PlannedFinding {
                instance: suspect,
                kind: 0,
                age_minutes: 12,
            },
            PlannedFinding {
                instance: suspect,
                kind: 1,
                age_minutes: 47,
            },
            PlannedFinding {
                instance: suspect,
                kind: 3,
                age_minutes: 95,
            },
        ];
        while findings.len() < options.findings {
            findings.push(PlannedFinding {
                instance: visible[rng.random_range(0..visible.len())],
                kind: rng.random_range(1..FINDING_KINDS.len()),
                age_minutes: rng.random_range(5..60 * 24 * 14),
            });
        }
        Self {
            members,
            regions: options.regions.clone(),
            instances,
            findings,
        }
    }
}

/// An account the lab created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabAccount {
    pub id: AccountId,
    pub name: String,
    /// Whether the IR member role exists in it.
    pub managed: bool,
}

/// An instance the lab created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabInstance {
    pub id: String,
    /// The root volume (`/dev/xvda`).
    pub root_volume_id: String,
    pub account: AccountId,
    pub region: String,
    pub name: String,
    pub state: String,
}

/// What seeding created, kept in the lab's state file for commands and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeededLab {
    pub options: SeedOptions,
    pub organization_id: String,
    pub security: AccountId,
    pub forensics: AccountId,
    pub members: Vec<LabAccount>,
    pub instances: Vec<LabInstance>,
    pub findings: usize,
    /// Root volumes with a real filesystem (every Linux instance).
    pub disks: Vec<crate::disks::SeededDisk>,
    /// The workflow resources (absent in state files of older labs).
    #[serde(default)]
    pub plane: Option<crate::plane::LabPlane>,
    /// The Analysis VPC and SIFT pipeline (absent in state files of older labs).
    #[serde(default)]
    pub analysis: Option<crate::analysis::LabAnalysis>,
}

fn seed_err(step: &'static str) -> impl Fn(AwsError) -> LabError {
    move |err| LabError::Seed {
        step,
        message: err.to_string(),
    }
}

fn sdk_err<E>(
    step: &'static str,
    account: &str,
    region: &str,
) -> impl Fn(
    aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> LabError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let account = account.to_owned();
    let region = region.to_owned();
    move |err| LabError::Seed {
        step,
        message: AwsError::from_sdk(step, &account, &region, &err).to_string(),
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// Creates the planned Organization. `security` acts as the Security account (the
/// emulator's default account, which is also the Organization's management account here).
pub async fn apply(
    security: Arc<AwsContext>,
    options: &SeedOptions,
    disk_dir: &std::path::Path,
    memcap: Option<&std::path::Path>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<SeededLab, LabError> {
    options.validate()?;
    let plan = SeedPlan::new(options);
    let caller = security
        .caller_identity()
        .await
        .map_err(seed_err("identify the Security account"))?;
    let security_id = AccountId::parse(&caller.account).map_err(|e| LabError::Seed {
        step: "identify the Security account",
        message: e.to_string(),
    })?;
    let home = security.base_config(LAB_REGION);

    progress("creating the Organization and its accounts");
    let orgs = aws_sdk_organizations::Client::new(&home);
    let org = orgs
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .map_err(sdk_err(
            "organizations:CreateOrganization",
            security_id.as_str(),
            LAB_REGION,
        ))?;
    let organization_id = org
        .organization()
        .and_then(|o| o.id())
        .unwrap_or_default()
        .to_owned();
    let create_account = async |name: &str| -> Result<AccountId, LabError> {
        let out = orgs
            .create_account()
            .account_name(name)
            .email(format!("aws+{name}@example.com"))
            .send()
            .await
            .map_err(sdk_err(
                "organizations:CreateAccount",
                security_id.as_str(),
                LAB_REGION,
            ))?;
        let id = out
            .create_account_status()
            .and_then(|s| s.account_id())
            .unwrap_or_default();
        AccountId::parse(id).map_err(|e| LabError::Seed {
            step: "organizations:CreateAccount",
            message: e.to_string(),
        })
    };
    let forensics = create_account("ir-forensics").await?;
    let mut members = Vec::new();
    for planned in &plan.members {
        let id = create_account(&planned.name).await?;
        members.push(LabAccount {
            id,
            name: planned.name.clone(),
            managed: planned.managed,
        });
    }

    // The seeder reaches member accounts the way an administrator would: through the role
    // Organizations created in each of them.
    let mut seeder_config = security.config().clone();
    seeder_config.accounts.member_role = ORG_ACCESS_ROLE.to_owned();
    let seeder = AwsContext::connect(
        Arc::new(seeder_config),
        &crate::common::connect_options_for(security.endpoint_url().unwrap_or_default()),
    )
    .await;

    let mut instances = Vec::with_capacity(plan.instances.len());
    // Where each planned instance landed in `instances`, for stopping and for findings.
    let mut created_of_planned = vec![0usize; plan.instances.len()];
    for (index, account) in members.iter().enumerate() {
        progress(&format!(
            "seeding account {} ({})",
            account.name, account.id
        ));
        let iam = aws_sdk_iam::Client::new(
            &seeder
                .account_config(&account.id, LAB_REGION)
                .await
                .map_err(seed_err("reach a member account"))?,
        );
        let profile = create_app_profile(&iam, &account.id).await?;
        for (region_index, region) in plan.regions.iter().enumerate() {
            let ec2 = aws_sdk_ec2::Client::new(
                &seeder
                    .account_config(&account.id, region)
                    .await
                    .map_err(seed_err("reach a member account"))?,
            );
            let network = create_network(&ec2, &account.id, region, index, region_index).await?;
            for (planned_index, planned) in plan
                .instances
                .iter()
                .enumerate()
                .filter(|(_, p)| p.account == index && &p.region == region)
            {
                let environment = &plan.members[index].environment;
                let (id, root_volume_id) = run_instance(
                    &ec2,
                    &account.id,
                    region,
                    planned,
                    environment,
                    &network,
                    &profile,
                )
                .await?;
                if planned.analyze {
                    Box::pin(front_web_server(
                        &seeder,
                        &account.id,
                        region,
                        &network,
                        &id,
                    ))
                    .await?;
                }
                created_of_planned[planned_index] = instances.len();
                instances.push(LabInstance {
                    id,
                    root_volume_id,
                    account: account.id.clone(),
                    region: region.clone(),
                    name: planned.name.clone(),
                    state: if planned.stopped {
                        "stopped"
                    } else {
                        "running"
                    }
                    .to_owned(),
                });
            }
        }
    }
    progress("stopping the instances that are planned stopped");
    for (planned_index, planned) in plan.instances.iter().enumerate() {
        if !planned.stopped {
            continue;
        }
        let created = &instances[created_of_planned[planned_index]];
        let ec2 = aws_sdk_ec2::Client::new(
            &seeder
                .account_config(&created.account, &created.region)
                .await
                .map_err(seed_err("reach a member account"))?,
        );
        ec2.stop_instances()
            .instance_ids(&created.id)
            .send()
            .await
            .map_err(sdk_err(
                "ec2:StopInstances",
                created.account.as_str(),
                &created.region,
            ))?;
    }

    progress("building the root filesystems of the Linux instances");
    let disks = build_disks(&plan, &instances, &created_of_planned, disk_dir).await?;

    progress("deploying the acquisition workflow and the evidence bucket");
    let managed: Vec<AccountId> = members
        .iter()
        .filter(|m| m.managed)
        .map(|m| m.id.clone())
        .collect();
    let mut plane = crate::plane::create(&seeder, &security_id, &forensics, memcap).await?;
    progress("building the Analysis VPC and the SIFT image pipeline");
    let analysis = Box::pin(crate::analysis::create(&seeder, &forensics)).await?;
    progress("deploying the templates' roles and policies");
    let deployed = crate::templates::deploy_all(
        &crate::control::Control::new(security.endpoint_url().unwrap_or_default()),
        &crate::templates::LabAccounts {
            security: &security_id,
            forensics: &forensics,
            organization_id: &organization_id,
        },
        &managed,
        &analysis,
        options.four_eyes,
    )
    .await?;
    plane.evidence_kms_key_arn = Some(deployed.evidence_key_arn);
    plane.ledger_key_arn = deployed.ledger_key_arn;
    plane.step_function_timeout_secs = deployed.step_function_timeout_secs;

    progress("importing Security Hub findings");
    let findings = import_findings(
        &security,
        &security_id,
        &plan,
        &instances,
        &created_of_planned,
    )
    .await?;

    Ok(SeededLab {
        options: options.clone(),
        organization_id,
        security: security_id,
        forensics,
        members,
        instances,
        findings,
        disks,
        plane: Some(plane),
        analysis: Some(analysis),
    })
}

/// Builds every Linux root volume's filesystem, two at a time (mke2fs is quick but the
/// images are many).
async fn build_disks(
    plan: &SeedPlan,
    instances: &[LabInstance],
    created_of_planned: &[usize],
    disk_dir: &std::path::Path,
) -> Result<Vec<crate::disks::SeededDisk>, LabError> {
    use crate::disks::{DiskSpec, SeededDisk, build_image, planted_indicators};
    let jobs: Vec<(PlannedInstance, LabInstance)> = plan
        .instances
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.os.starts_with("Windows"))
        .map(|(i, p)| (p.clone(), instances[created_of_planned[i]].clone()))
        .collect();
    let mut built = Vec::with_capacity(jobs.len());
    for pair in jobs.chunks(2) {
        let handles: Vec<_> = pair
            .iter()
            .cloned()
            .map(|(planned, instance)| {
                let image = disk_dir.join(format!("{}.img", instance.root_volume_id));
                tokio::task::spawn_blocking(move || {
                    let spec = DiskSpec {
                        hostname: &planned.name,
                        os: &planned.os,
                        role: planned.role.name(),
                        compromised: planned.analyze,
                        size_gib: planned.root_gib,
                    };
                    let size_bytes = build_image(&spec, &image)?;
                    Ok::<_, LabError>(SeededDisk {
                        volume_id: instance.root_volume_id.clone(),
                        instance_id: instance.id.clone(),
                        device: "/dev/xvda".to_owned(),
                        image,
                        size_bytes,
                        planted: if planned.analyze {
                            planted_indicators()
                        } else {
                            Vec::new()
                        },
                    })
                })
            })
            .collect();
        for handle in handles {
            let disk = handle.await.map_err(|err| LabError::Seed {
                step: "build the lab's disk images",
                message: err.to_string(),
            })??;
            built.push(disk);
        }
    }
    Ok(built)
}

async fn create_app_profile(
    iam: &aws_sdk_iam::Client,
    account: &AccountId,
) -> Result<String, LabError> {
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Principal": { "Service": "ec2.amazonaws.com" }, "Action": "sts:AssumeRole" }]
    });
    let name = "app-server";
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .map_err(sdk_err("iam:CreateRole", account.as_str(), LAB_REGION))?;
    iam.create_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .map_err(sdk_err(
            "iam:CreateInstanceProfile",
            account.as_str(),
            LAB_REGION,
        ))?;
    iam.add_role_to_instance_profile()
        .instance_profile_name(name)
        .role_name(name)
        .send()
        .await
        .map_err(sdk_err(
            "iam:AddRoleToInstanceProfile",
            account.as_str(),
            LAB_REGION,
        ))?;
    Ok(name.to_owned())
}

#[derive(Debug)]
struct Network {
    vpc_id: String,
    subnets: [String; 2],
    web_group: String,
    internal_group: String,
}

async fn create_network(
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

async fn run_instance(
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
async fn front_web_server(
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
fn image_for(os: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(os.as_bytes());
    let hex = irf_engine::hex(&digest[..9]);
    format!("ami-{}", &hex[..17])
}

async fn import_findings(
    security: &AwsContext,
    security_id: &AccountId,
    plan: &SeedPlan,
    instances: &[LabInstance],
    created_of_planned: &[usize],
) -> Result<usize, LabError> {
    let hub = aws_sdk_securityhub::Client::new(&security.base_config(LAB_REGION));
    hub.enable_security_hub().send().await.map_err(sdk_err(
        "securityhub:EnableSecurityHub",
        security_id.as_str(),
        LAB_REGION,
    ))?;
    let now = time::OffsetDateTime::now_utc();
    let findings: Vec<AwsSecurityFinding> = plan
        .findings
        .iter()
        .enumerate()
        .map(|(n, planned)| {
            let instance = &instances[created_of_planned[planned.instance]];
            let (kind, label, title) = &FINDING_KINDS[planned.kind];
            let created = now - time::Duration::minutes(planned.age_minutes);
            let stamp = created
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let region = &instance.region;
            let account = &instance.account;
            AwsSecurityFinding::builder()
                .schema_version("2018-10-08")
                .id(format!(
                    "arn:aws:guardduty:{region}:{account}:detector/irflab/finding/{:032x}",
                    n + 1
                ))
                .product_arn(format!(
                    "arn:aws:securityhub:{region}::product/aws/guardduty"
                ))
                .generator_id(format!(
                    "arn:aws:guardduty:{region}:{account}:detector/irflab"
                ))
                .aws_account_id(account.as_str())
                .region(region)
                .types(*kind)
                .created_at(&stamp)
                .updated_at(&stamp)
                .first_observed_at(&stamp)
                .severity(
                    Severity::builder()
                        .label(label.clone())
                        .normalized(normalized(label))
                        .build(),
                )
                .title(title.replace("{id}", &instance.id))
                .description(format!(
                    "{} ({}), {}.",
                    title.replace("{id}", &instance.id),
                    instance.name,
                    kind
                ))
                .record_state(RecordState::Active)
                .workflow(
                    aws_sdk_securityhub::types::Workflow::builder()
                        .status(aws_sdk_securityhub::types::WorkflowStatus::New)
                        .build(),
                )
                .resources(
                    Resource::builder()
                        .r#type("AwsEc2Instance")
                        .id(format!(
                            "arn:aws:ec2:{region}:{account}:instance/{}",
                            instance.id
                        ))
                        .partition(aws_sdk_securityhub::types::Partition::Aws)
                        .region(region)
                        .build(),
                )
                .build()
        })
        .collect();
    let count = findings.len();
    // BatchImportFindings takes at most 100 findings a call.
    for batch in findings.chunks(100) {
        let out = hub
            .batch_import_findings()
            .set_findings(Some(batch.to_vec()))
            .send()
            .await
            .map_err(sdk_err(
                "securityhub:BatchImportFindings",
                security_id.as_str(),
                LAB_REGION,
            ))?;
        if out.failed_count().unwrap_or(0) > 0 {
            return Err(LabError::Seed {
                step: "securityhub:BatchImportFindings",
                message: format!(
                    "{} findings were refused: {:?}",
                    out.failed_count().unwrap_or(0),
                    out.failed_findings()
                ),
            });
        }
    }
    Ok(count)
}

fn normalized(label: &SeverityLabel) -> i32 {
    match label {
        SeverityLabel::Critical => 90,
        SeverityLabel::High => 70,
        SeverityLabel::Medium => 50,
        SeverityLabel::Low => 30,
        _ => 0,
    }
}

/// The configuration irf uses against a seeded lab.
pub fn lab_config(seeded: &SeededLab) -> Config {
    let (workflow, evidence) = match &seeded.plane {
        Some(plane) => (
            irf_engine::config::WorkflowConfig {
                region: Some(LAB_REGION.to_owned()),
                state_machine_arn: Some(plane.state_machine_arn.clone()),
                case_table: Some(plane.case_table.clone()),
                notification_topic_arn: Some(plane.topic_arn.clone()),
                step_queues: plane.step_queues.clone(),
                tooling_bucket: Some(plane.tooling_bucket.clone()),
                ir_instance_profile: Some("IRInstanceProfile".to_owned()),
                containment: None,
                // Short, so that a step whose worker died comes back within seconds.
                lease_secs: Some(15),
                // Below the lab's largest volumes (30 GiB, mostly empty), so that their raw
                // hash is left for later as a large volume's is in an Organization.
                raw_hash_inline_max_gib: Some(16),
                isolation_profile: Some(
                    irf_engine::containment::DEFAULT_ISOLATION_PROFILE.to_owned(),
                ),
                isolation_keeps_ssm: false,
                four_eyes: seeded.options.four_eyes,
                // Template 3's OperatorRole names its sessions after their users.
                named_session_roles: vec![format!(
                    "arn:aws:iam::{}:role/{}",
                    seeded.security,
                    crate::common::OPERATOR_ROLE
                )],
            },
            irf_engine::config::EvidenceConfig {
                bucket: Some(plane.evidence_bucket.clone()),
                kms_key_arn: plane.evidence_kms_key_arn.clone(),
                ledger_key_arn: plane.ledger_key_arn.clone(),
            },
        ),
        None => Default::default(),
    };
    Config {
        regions: seeded.options.regions.clone(),
        accounts: irf_engine::config::AccountsConfig {
            security: Some(seeded.security.clone()),
            forensics: Some(seeded.forensics.clone()),
            ..Default::default()
        },
        workflow,
        evidence,
        analysis: seeded
            .analysis
            .as_ref()
            .map(|a| irf_engine::config::AnalysisConfig {
                vpc_id: Some(a.vpc_id.clone()),
                subnet_ids: a.subnet_ids.clone(),
                instance_profile: Some(a.instance_profile.clone()),
                image_pipeline_arn: Some(a.image_pipeline_arn.clone()),
                security_group_id: Some(a.security_group_id.clone()),
                // Small: lab hosts cost nothing, and the view still shows a price.
                instance_type: Some("t3.large".to_owned()),
                kms_key_id: None,
            })
            .unwrap_or_default(),
        ..Config::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_plan() {
        let options = SeedOptions::default();
        assert_eq!(SeedPlan::new(&options), SeedPlan::new(&options));
    }

    #[test]
    fn other_seed_other_plan() {
        let a = SeedPlan::new(&SeedOptions::default());
        let b = SeedPlan::new(&SeedOptions {
            seed: 7,
            ..SeedOptions::default()
        });
        assert_ne!(a.instances, b.instances);
    }

    #[test]
    fn plan_meets_the_minimums() {
        let options = SeedOptions::default();
        let plan = SeedPlan::new(&options);
        assert_eq!(plan.instances.len(), 36);
        assert_eq!(plan.findings.len(), 24);
        assert_eq!(plan.members.iter().filter(|m| m.managed).count(), 4);
        assert_eq!(plan.instances.iter().filter(|i| i.analyze).count(), 1);
        assert!(
            plan.instances.iter().any(|i| i.stopped),
            "some instances are stopped"
        );
        let roles: std::collections::HashSet<_> = plan.instances.iter().map(|i| i.role).collect();
        assert!(roles.len() >= 4, "varied roles: {roles:?}");
        let regions: std::collections::HashSet<_> =
            plan.instances.iter().map(|i| &i.region).collect();
        assert_eq!(regions.len(), 2);
        let labels: std::collections::HashSet<_> = plan
            .findings
            .iter()
            .map(|f| FINDING_KINDS[f.kind].1.as_str().to_owned())
            .collect();
        assert!(
            labels.contains("CRITICAL") && labels.contains("INFORMATIONAL"),
            "{labels:?}"
        );
    }

    #[test]
    fn findings_point_at_managed_accounts_only() {
        let plan = SeedPlan::new(&SeedOptions::default());
        for finding in &plan.findings {
            let account = plan.instances[finding.instance].account;
            assert!(plan.members[account].managed);
        }
    }

    #[test]
    fn bad_options_name_the_value() {
        let err = SeedOptions {
            members: 60,
            ..SeedOptions::default()
        }
        .validate()
        .expect_err("too many");
        assert!(err.to_string().contains("members = 60"), "{err}");
        let err = SeedOptions {
            regions: vec!["us-east-1".into()],
            ..SeedOptions::default()
        }
        .validate()
        .expect_err("one region");
        assert!(err.to_string().contains("us-east-1"), "{err}");
    }

    #[test]
    fn many_members_get_distinct_names() {
        let plan = SeedPlan::new(&SeedOptions {
            members: 25,
            ..SeedOptions::default()
        });
        let names: std::collections::HashSet<_> = plan.members.iter().map(|m| &m.name).collect();
        assert_eq!(names.len(), plan.members.len());
    }

    #[test]
    fn images_are_stable_per_os() {
        assert_eq!(image_for("Ubuntu 22.04 LTS"), image_for("Ubuntu 22.04 LTS"));
        assert_ne!(
            image_for("Ubuntu 22.04 LTS"),
            image_for("Amazon Linux 2023")
        );
        assert_eq!(image_for("Amazon Linux 2023").len(), 21);
    }
}
