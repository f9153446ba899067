//! The Organization's EC2 instances: a concurrent sweep of every member account and region
//! through the member role, streamed as it goes, with per-account and per-region failures.

use std::collections::BTreeMap;
use std::sync::Arc;

use compact_str::CompactString;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::aws::{AwsContext, AwsError};
use crate::model::instance::InstanceState;
use crate::organization::{MemberAccount, Scope};

/// Tag that carries an instance's incident status (`Analyze`, `Contain`, ...).
pub const INCIDENT_STATUS_TAG: &str = "SecurityIncidentStatus";
/// Tag that names the case an instance belongs to.
pub const CASE_ID_TAG: &str = "case-id";

/// Instances asked for per DescribeInstances page (the API maximum).
const PAGE_SIZE: i32 = 1000;

/// A security group attached to an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupRef {
    pub id: CompactString,
    pub name: CompactString,
}

/// An instance's tags, sorted by key. A vector rather than a map: instances carry a handful
/// of tags, and at Organization scale a map's nodes cost several times the entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(Vec<(CompactString, CompactString)>);

impl Tags {
    /// The value of `key`, if the tag is set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// Whether the tag `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Every tag, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets a tag, replacing its value if it was set.
    pub fn insert(&mut self, key: impl Into<CompactString>, value: impl Into<CompactString>) {
        let (key, value) = (key.into(), value.into());
        match self.0.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }
}

impl FromIterator<(CompactString, CompactString)> for Tags {
    fn from_iter<I: IntoIterator<Item = (CompactString, CompactString)>>(pairs: I) -> Self {
        let mut tags = Self::default();
        for (key, value) in pairs {
            tags.insert(key, value);
        }
        tags
    }
}

impl Serialize for Tags {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<CompactString, CompactString>::deserialize(deserializer)
            .map(|map| map.into_iter().collect())
    }
}

/// Whether Systems Manager can reach an instance (for memory capture and sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SsmReachability {
    /// The agent pings: Run Command and sessions work.
    Online,
    /// Managed, but the agent has not pinged lately (stopped, or its network is cut).
    ConnectionLost,
    /// Managed, but inactive (deregistered or the agent stopped).
    Inactive,
    /// Not a managed instance: no agent, no instance profile allowing SSM, or no route.
    NotManaged,
    /// Systems Manager could not be asked (for example access denied).
    Unknown,
}

impl SsmReachability {
    /// A short word for tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::ConnectionLost => "lost",
            Self::Inactive => "inactive",
            Self::NotManaged => "no",
            Self::Unknown => "?",
        }
    }
}

/// One EC2 instance, as irf shows it. Every string in it came from AWS and may be hostile.
/// Strings are `CompactString`s: ids, names, regions and addresses fit inline, which keeps an
/// Organization of 100,000 instances within the workstation's memory budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: CompactString,
    pub name: Option<CompactString>,
    pub account: CompactString,
    pub account_name: CompactString,
    pub region: CompactString,
    pub availability_zone: Option<CompactString>,
    pub state: InstanceState,
    pub instance_type: CompactString,
    pub platform: CompactString,
    pub image_id: Option<CompactString>,
    pub vpc_id: Option<CompactString>,
    pub subnet_id: Option<CompactString>,
    pub private_ip: Option<CompactString>,
    pub public_ip: Option<CompactString>,
    pub security_groups: Vec<SecurityGroupRef>,
    pub instance_profile_arn: Option<CompactString>,
    pub launch_time: Option<CompactString>,
    pub tags: Tags,
    pub ssm: SsmReachability,
    /// Open Security Hub findings about the instance (filled in by the caller that has them).
    pub findings: crate::findings::FindingSummary,
}

impl Instance {
    /// The instance's incident status tag, if set.
    pub fn incident_status(&self) -> Option<&str> {
        self.tags.get(INCIDENT_STATUS_TAG)
    }

    /// The case the instance is tagged with, if any.
    pub fn case_id(&self) -> Option<&str> {
        self.tags.get(CASE_ID_TAG)
    }
}

/// What a sweep reports as it runs.
#[derive(Debug, Clone)]
pub enum SweepEvent {
    /// The scope is known: this many account-region pairs will be swept.
    Started { accounts: usize, regions: usize },
    /// A page of instances from one account and region.
    Instances {
        account: String,
        region: String,
        instances: Vec<Instance>,
    },
    /// One account-region pair is done (successfully or not).
    PairDone { account: String, region: String },
    /// One account, or one region of it, could not be swept.
    Failed {
        account: String,
        account_name: String,
        region: Option<String>,
        error: AwsError,
    },
    /// The sweep is over.
    Finished,
}

/// A failure of one account or account-region pair.
#[derive(Debug, Clone, Serialize)]
pub struct SweepFailure {
    pub account: String,
    pub account_name: String,
    pub region: Option<String>,
    pub error: String,
}

/// The whole result of a sweep, for scripting and tests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InventorySnapshot {
    pub instances: Vec<Instance>,
    pub failures: Vec<SweepFailure>,
}

impl InventorySnapshot {
    /// Applies one sweep event.
    pub fn apply(&mut self, event: SweepEvent) {
        match event {
            SweepEvent::Instances { instances, .. } => self.instances.extend(instances),
            SweepEvent::Failed {
                account,
                account_name,
                region,
                error,
            } => {
                self.failures.push(SweepFailure {
                    account,
                    account_name,
                    region,
                    error: error.to_string(),
                });
            }
            SweepEvent::Started { .. } | SweepEvent::PairDone { .. } | SweepEvent::Finished => {}
        }
    }
}

/// Starts a sweep of `scope` and returns its event stream; the sweep stops when the
/// receiver is dropped.
pub fn sweep(context: Arc<AwsContext>, scope: Scope) -> mpsc::Receiver<SweepEvent> {
    let (events, receiver) = mpsc::channel(256);
    tokio::spawn(async move {
        let concurrency = context.config().api.concurrency.max(1);
        let _ = events
            .send(SweepEvent::Started {
                accounts: scope.accounts.len(),
                regions: scope.regions.len(),
            })
            .await;
        let regions = Arc::new(scope.regions);
        futures::stream::iter(scope.accounts)
            .for_each_concurrent(concurrency, |account| {
                sweep_account(context.clone(), account, regions.clone(), events.clone())
            })
            .await;
        let _ = events.send(SweepEvent::Finished).await;
    });
    receiver
}

/// Sweeps `scope` to the end and gathers the result.
pub async fn sweep_all(context: Arc<AwsContext>, scope: Scope) -> InventorySnapshot {
    let mut receiver = sweep(context, scope);
    let mut snapshot = InventorySnapshot::default();
    while let Some(event) = receiver.recv().await {
        snapshot.apply(event);
    }
    snapshot
}

async fn sweep_account(
    context: Arc<AwsContext>,
    account: MemberAccount,
    regions: Arc<Vec<String>>,
    events: mpsc::Sender<SweepEvent>,
) {
    // One role assumption per account, up front: a missing role is one clear error for the
    // account instead of one per region.
    if let Err(error) = context.check_account(&account.id).await {
        let _ = events
            .send(SweepEvent::Failed {
                account: account.id.to_string(),
                account_name: account.name.clone(),
                region: None,
                error,
            })
            .await;
        for region in regions.iter() {
            let _ = events
                .send(SweepEvent::PairDone {
                    account: account.id.to_string(),
                    region: region.clone(),
                })
                .await;
        }
        return;
    }
    futures::stream::iter(regions.iter().cloned())
        .for_each_concurrent(regions.len().max(1), |region| {
            let context = context.clone();
            let account = account.clone();
            let events = events.clone();
            async move {
                if let Err(error) = sweep_region(&context, &account, &region, &events).await {
                    let _ = events
                        .send(SweepEvent::Failed {
                            account: account.id.to_string(),
                            account_name: account.name.clone(),
                            region: Some(region.clone()),
                            error,
                        })
                        .await;
                }
                let _ = events
                    .send(SweepEvent::PairDone {
                        account: account.id.to_string(),
                        region,
                    })
                    .await;
            }
        })
        .await;
}

async fn sweep_region(
    context: &AwsContext,
    account: &MemberAccount,
    region: &str,
    events: &mpsc::Sender<SweepEvent>,
) -> Result<(), AwsError> {
    let config = context.account_config(&account.id, region).await?;
    let client = aws_sdk_ec2::Client::new(&config);
    let ssm = ssm_reachability(&aws_sdk_ssm::Client::new(&config), account, region).await;
    // The paginator follows NextToken to the end; pages may hold any number of
    // instances (the emulator pages by reservation, AWS by instance).
    let mut pages = client
        .describe_instances()
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            AwsError::from_sdk("ec2:DescribeInstances", account.id.as_str(), region, &err)
        })?;
        let instances: Vec<Instance> = page
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| {
                let mut instance = instance_from_sdk(i, account, region);
                instance.ssm = match &ssm {
                    Some(managed) => managed
                        .get(instance.id.as_str())
                        .copied()
                        .unwrap_or(SsmReachability::NotManaged),
                    None => SsmReachability::Unknown,
                };
                instance
            })
            .collect();
        if !instances.is_empty()
            && events
                .send(SweepEvent::Instances {
                    account: account.id.to_string(),
                    region: region.to_owned(),
                    instances,
                })
                .await
                .is_err()
        {
            // Nobody listens any more: stop paging.
            return Ok(());
        }
    }
    Ok(())
}

/// The managed instances of one account and region and how they ping; `None` when Systems
/// Manager could not be asked, which leaves reachability unknown rather than failing the sweep.
async fn ssm_reachability(
    client: &aws_sdk_ssm::Client,
    account: &MemberAccount,
    region: &str,
) -> Option<std::collections::HashMap<String, SsmReachability>> {
    use aws_sdk_ssm::types::PingStatus;
    let mut pages = client
        .describe_instance_information()
        .max_results(50)
        .into_paginator()
        .send();
    let mut managed = std::collections::HashMap::new();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => {
                for info in page.instance_information_list() {
                    let reachability = match info.ping_status() {
                        Some(PingStatus::Online) => SsmReachability::Online,
                        Some(PingStatus::ConnectionLost) => SsmReachability::ConnectionLost,
                        Some(PingStatus::Inactive) => SsmReachability::Inactive,
                        _ => SsmReachability::Unknown,
                    };
                    if let Some(id) = info.instance_id() {
                        managed.insert(id.to_owned(), reachability);
                    }
                }
            }
            Err(err) => {
                let err = AwsError::from_sdk(
                    "ssm:DescribeInstanceInformation",
                    account.id.as_str(),
                    region,
                    &err,
                );
                tracing::warn!(account = %account.id, region, error = %err, "SSM reachability unknown");
                return None;
            }
        }
    }
    Some(managed)
}

fn instance_from_sdk(
    instance: &aws_sdk_ec2::types::Instance,
    account: &MemberAccount,
    region: &str,
) -> Instance {
    let tags: Tags = instance
        .tags()
        .iter()
        .filter_map(|t| {
            Some((
                CompactString::from(t.key()?),
                CompactString::from(t.value().unwrap_or_default()),
            ))
        })
        .collect();
    let platform = instance
        .platform_details()
        .map(CompactString::from)
        .or_else(|| instance.platform().map(|p| CompactString::from(p.as_str())))
        .unwrap_or_else(|| CompactString::const_new("Linux/UNIX"));
    Instance {
        id: instance.instance_id().unwrap_or_default().into(),
        name: tags.get("Name").map(CompactString::from),
        account: account.id.as_str().into(),
        account_name: account.name.as_str().into(),
        region: region.into(),
        availability_zone: instance
            .placement()
            .and_then(|p| p.availability_zone())
            .map(CompactString::from),
        state: instance.state().and_then(|s| s.name()).map_or_else(
            || InstanceState::Other("unknown".into()),
            |n| InstanceState::parse(n.as_str()),
        ),
        instance_type: instance
            .instance_type()
            .map(|t| CompactString::from(t.as_str()))
            .unwrap_or_default(),
        platform,
        image_id: instance.image_id().map(CompactString::from),
        vpc_id: instance.vpc_id().map(CompactString::from),
        subnet_id: instance.subnet_id().map(CompactString::from),
        private_ip: instance.private_ip_address().map(CompactString::from),
        public_ip: instance.public_ip_address().map(CompactString::from),
        security_groups: instance
            .security_groups()
            .iter()
            .map(|g| SecurityGroupRef {
                id: g.group_id().unwrap_or_default().into(),
                name: g.group_name().unwrap_or_default().into(),
            })
            .collect(),
        instance_profile_arn: instance
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .map(CompactString::from),
        launch_time: instance
            .launch_time()
            .map(|t| CompactString::from(t.to_string())),
        tags,
        ssm: SsmReachability::Unknown,
        findings: crate::findings::FindingSummary::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_sorted_found_and_replaced() {
        let mut tags: Tags = [("Role", "web"), ("Name", "a"), ("Role", "db")]
            .into_iter()
            .map(|(k, v)| (CompactString::from(k), CompactString::from(v)))
            .collect();
        assert_eq!(tags.get("Role"), Some("db"), "the last value wins");
        assert_eq!(
            tags.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            vec!["Name", "Role"]
        );
        tags.insert("Owner", "x");
        assert!(tags.contains_key("Owner") && !tags.contains_key("owner"));
        let json = serde_json::to_string(&tags).expect("serialises");
        assert_eq!(json, r#"{"Name":"a","Owner":"x","Role":"db"}"#);
        assert_eq!(serde_json::from_str::<Tags>(&json).expect("parses"), tags);
    }
}
