//! The demo Organization as planned from a seed number, before anything is created: its
//! accounts, instances with their roles, and findings. Pure, so the same seed plans the same lab.

use aws_sdk_ec2::types::InstanceType;
use aws_sdk_securityhub::types::SeverityLabel;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::common::{LAB_REGION, LabError};

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

    pub(super) fn instance_type(self) -> InstanceType {
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

    pub(super) fn owner(self) -> &'static str {
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
pub(super) const FINDING_KINDS: [(&str, SeverityLabel, &str); 8] = [
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

pub(super) const ACCOUNT_NAMES: [(&str, &str); 10] = [
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
