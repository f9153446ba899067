//! Analysis hosts as they stand: the tags that mark them, their reachability through Session
//! Manager, their cost so far, listed by their case tag, described, and terminated only after a
//! typed confirmation.

use std::time::Duration;

use aws_sdk_ec2::types::{Filter, HttpTokensState, Tag};
use aws_types::request_id::RequestId;
use serde::{Deserialize, Serialize};

use crate::analysis::{Analysis, AnalysisError};
use crate::ledger;
use crate::model::case::CaseId;
use crate::model::instance::InstanceState;
use crate::model::ledger::NewEntry;
use crate::plane::Plane;

/// The tag that marks an instance as an irf analysis host.
pub const ROLE_TAG: &str = "irf:role";
pub const ROLE_VALUE: &str = "analysis-host";
/// The case an analysis host serves.
pub const CASE_TAG: &str = "irf:case";
/// What the host holds of the case's evidence, set once it is verified on the host.
pub const EVIDENCE_TAG: &str = "irf:evidence";
/// The instance type used when none is asked for: SIFT's tools want memory.
pub const DEFAULT_INSTANCE_TYPE: &str = "m5.xlarge";
/// How long a new host may take to run and register with Systems Manager.
pub(super) const READY_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Whether Systems Manager can reach a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reachability {
    Online,
    ConnectionLost,
    /// Not registered with Systems Manager (agent not started, no profile, no endpoint).
    NotManaged,
}

impl Reachability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::ConnectionLost => "connection lost",
            Self::NotManaged => "not managed",
        }
    }
}

/// An analysis host as the views and `irf hosts` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisHost {
    pub instance_id: String,
    pub case_id: String,
    pub state: InstanceState,
    pub instance_type: String,
    pub image_id: String,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub instance_profile: Option<String>,
    pub imdsv2_required: bool,
    pub evidence: Option<String>,
    pub ssm: Reachability,
    pub launched_at: Option<String>,
    /// Seconds since launch.
    pub age_secs: Option<u64>,
    /// On-demand list price so far, in US dollars (None for an unknown instance type).
    pub cost_usd: Option<f64>,
}

/// On-demand Linux list prices in us-east-1 (USD per hour) of the types analysis hosts
/// usually run on; an estimate for the view, not a bill.
pub fn hourly_price(instance_type: &str) -> Option<f64> {
    Some(match instance_type {
        "t3.large" => 0.0832,
        "t3.xlarge" => 0.1664,
        "t3.2xlarge" => 0.3328,
        "m5.large" => 0.096,
        "m5.xlarge" => 0.192,
        "m5.2xlarge" => 0.384,
        "m5.4xlarge" => 0.768,
        "m6i.large" => 0.096,
        "m6i.xlarge" => 0.192,
        "m6i.2xlarge" => 0.384,
        "m6i.4xlarge" => 0.768,
        "r5.xlarge" => 0.252,
        "r5.2xlarge" => 0.504,
        "r5.4xlarge" => 1.008,
        "r6i.xlarge" => 0.252,
        "r6i.2xlarge" => 0.504,
        "c5.xlarge" => 0.17,
        "c5.2xlarge" => 0.34,
        _ => return None,
    })
}

/// What running `instance_type` for `secs` seconds has cost at list price.
pub fn cost_so_far(instance_type: &str, secs: u64) -> Option<f64> {
    hourly_price(instance_type).map(|hourly| hourly * secs as f64 / 3600.0)
}

pub(super) fn tag_of<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Every analysis host that is not terminated, newest first.
pub async fn list(analysis: &Analysis) -> Result<Vec<AnalysisHost>, AnalysisError> {
    let mut instances = Vec::new();
    let mut pages = analysis
        .ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{ROLE_TAG}"))
                .values(ROLE_VALUE)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .values("stopping")
                .values("stopped")
                .values("shutting-down")
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| analysis.call_error("ec2:DescribeInstances", &err))?;
        for reservation in page.reservations() {
            instances.extend(reservation.instances().iter().cloned());
        }
    }
    let ids: Vec<String> = instances
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    let reach = reachability(analysis, &ids).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut hosts: Vec<AnalysisHost> = instances
        .iter()
        .map(|instance| {
            let id = instance.instance_id().unwrap_or_default().to_owned();
            let tags = instance.tags();
            let launched = instance.launch_time().map(|t| t.secs());
            let age_secs = launched.map(|t| u64::try_from(now - t).unwrap_or(0));
            let instance_type = instance
                .instance_type()
                .map_or_else(String::new, |t| t.as_str().to_owned());
            AnalysisHost {
                case_id: tag_of(tags, CASE_TAG).unwrap_or_default().to_owned(),
                state: instance.state().and_then(|s| s.name()).map_or_else(
                    || InstanceState::Other("unknown".into()),
                    |s| InstanceState::parse(s.as_str()),
                ),
                image_id: instance.image_id().unwrap_or_default().to_owned(),
                subnet_id: instance.subnet_id().map(str::to_owned),
                vpc_id: instance.vpc_id().map(str::to_owned),
                private_ip: instance.private_ip_address().map(str::to_owned),
                public_ip: instance.public_ip_address().map(str::to_owned),
                instance_profile: instance
                    .iam_instance_profile()
                    .and_then(|p| p.arn())
                    .map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_owned()),
                imdsv2_required: instance
                    .metadata_options()
                    .and_then(|m| m.http_tokens())
                    .is_some_and(|t| *t == HttpTokensState::Required),
                evidence: tag_of(tags, EVIDENCE_TAG).map(str::to_owned),
                ssm: reach.get(&id).copied().unwrap_or(Reachability::NotManaged),
                launched_at: instance
                    .launch_time()
                    .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
                cost_usd: age_secs.and_then(|secs| cost_so_far(&instance_type, secs)),
                age_secs,
                instance_type,
                instance_id: id,
            }
        })
        .collect();
    hosts.sort_by(|a, b| b.launched_at.cmp(&a.launched_at));
    Ok(hosts)
}

/// Systems Manager's view of each instance.
pub(super) async fn reachability(
    analysis: &Analysis,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Reachability>, AnalysisError> {
    let mut reach = std::collections::HashMap::new();
    // The filter takes at most 50 ids per call.
    for chunk in ids.chunks(50) {
        let out = analysis
            .ssm
            .describe_instance_information()
            .filters(
                aws_sdk_ssm::types::InstanceInformationStringFilter::builder()
                    .key("InstanceIds")
                    .set_values(Some(chunk.to_vec()))
                    .build()
                    .map_err(|err| {
                        AnalysisError::Aws(crate::aws::AwsError::Request {
                            operation: "ssm:DescribeInstanceInformation",
                            message: err.to_string(),
                        })
                    })?,
            )
            .send()
            .await
            .map_err(|err| analysis.call_error("ssm:DescribeInstanceInformation", &err))?;
        for info in out.instance_information_list() {
            if let Some(id) = info.instance_id() {
                let online = info
                    .ping_status()
                    .is_some_and(|p| *p == aws_sdk_ssm::types::PingStatus::Online);
                reach.insert(
                    id.to_owned(),
                    if online {
                        Reachability::Online
                    } else {
                        Reachability::ConnectionLost
                    },
                );
            }
        }
    }
    Ok(reach)
}

pub(super) async fn tag_instance(
    analysis: &Analysis,
    instance_id: &str,
    key: &str,
    value: &str,
) -> Result<(), AnalysisError> {
    analysis
        .ec2
        .create_tags()
        .resources(instance_id)
        .tags(Tag::builder().key(key).value(value).build())
        .send()
        .await
        .map(drop)
        .map_err(|err| analysis.call_error("ec2:CreateTags", &err))
}

pub(super) async fn describe(
    analysis: &Analysis,
    instance_id: &str,
) -> Result<Option<aws_sdk_ec2::types::Instance>, AnalysisError> {
    let out = analysis
        .ec2
        .describe_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|err| analysis.call_error("ec2:DescribeInstances", &err))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .cloned())
}

/// The analysis host `instance_id`, refusing any instance irf did not launch as one.
pub async fn host(analysis: &Analysis, instance_id: &str) -> Result<AnalysisHost, AnalysisError> {
    list(analysis)
        .await?
        .into_iter()
        .find(|h| h.instance_id == instance_id)
        .ok_or_else(|| AnalysisError::NotAnalysisHost {
            instance: instance_id.to_owned(),
            account: analysis.account.to_string(),
            region: analysis.region.clone(),
        })
}

/// Terminates an analysis host once `confirm` repeats its id; recorded in its case's ledger.
pub async fn terminate(
    analysis: &Analysis,
    plane: &Plane,
    instance_id: &str,
    confirm: &str,
) -> Result<AnalysisHost, AnalysisError> {
    if confirm != instance_id {
        return Err(AnalysisError::Confirmation {
            expected: instance_id.to_owned(),
            given: confirm.to_owned(),
        });
    }
    let host = host(analysis, instance_id).await?;
    let out = analysis
        .ec2
        .terminate_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|err| analysis.call_error("ec2:TerminateInstances", &err))?;
    if let Ok(case_id) = CaseId::parse(&host.case_id) {
        let mut entry = NewEntry::new(
            crate::model::ledger::Action::AnalysisHostTerminated,
            analysis.target(instance_id),
        )
        .detail(format!(
            "{} after {} min",
            host.instance_type,
            host.age_secs.unwrap_or(0) / 60
        ));
        entry
            .request_ids
            .extend(out.request_id().map(str::to_owned));
        ledger::append(plane, &case_id, entry).await?;
    }
    Ok(host)
}
