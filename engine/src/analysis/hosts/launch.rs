//! Launching a host for a case: from the newest SIFT image into a private subnet, with the
//! analyst profile and IMDSv2 only, then its evidence fetched and checked, and recorded in the
//! case's ledger.

use std::time::Duration;

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, IamInstanceProfileSpecification,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceNetworkInterfaceSpecification, ResourceType, Tag, TagSpecification, VolumeType,
};
use aws_types::request_id::RequestId;
use serde::{Deserialize, Serialize};

use super::evidence::{
    EvidenceSource, Fetch, HostArtifact, evidence_script, parse_evidence_report,
};
use super::host::{
    CASE_TAG, DEFAULT_INSTANCE_TYPE, EVIDENCE_TAG, READY_TIMEOUT, ROLE_TAG, ROLE_VALUE,
    Reachability, describe, reachability, tag_instance,
};
use super::placement::{choose_subnet, root_volume_gib, subnet_facts};
use crate::acquisition::memory::{ScriptTarget, run_script_on};
use crate::analysis::{Analysis, AnalysisError, images};
use crate::ledger;
use crate::model::case::{ArtifactState, CaseId};
use crate::model::ledger::{ArtifactHash, NewEntry};
use crate::model::manifest::{Manifest, manifest_key};
use crate::plane::Plane;

/// What `irf hosts launch` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRequest {
    pub case_id: CaseId,
    pub instance_type: Option<String>,
}

/// A launched host, ready for analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchOutcome {
    pub instance_id: String,
    pub case_id: String,
    pub account: String,
    pub region: String,
    pub instance_type: String,
    pub image_version: String,
    pub ami_id: String,
    pub subnet_id: String,
    pub private_ip: Option<String>,
    pub instance_profile: String,
    pub evidence: Vec<HostArtifact>,
}

/// Where a launch stands: it takes minutes in AWS, and each stage is said as it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchStage {
    /// The case's evidence, the subnet and the image are being checked.
    Preparing,
    /// RunInstances from this image version.
    Launching { image_version: String },
    /// The host is launched; its SSM agent is awaited (a minute or two in AWS).
    AwaitingAgent { instance_id: String },
    /// The evidence is being fetched onto the host and each SHA-256 checked there.
    Fetching {
        instance_id: String,
        artifacts: usize,
        bytes: u64,
    },
    /// What the host reported is being checked against the manifests and recorded.
    Recording { instance_id: String },
}

impl std::fmt::Display for LaunchStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Preparing => f.write_str("checking the evidence, a subnet and the newest image"),
            Self::Launching { image_version } => {
                write!(f, "launching from SIFT image {image_version}")
            }
            Self::AwaitingAgent { instance_id } => write!(
                f,
                "{instance_id} launched: waiting for its SSM agent to come online"
            ),
            Self::Fetching {
                instance_id,
                artifacts,
                bytes,
            } => {
                const MIB: f64 = 1024.0 * 1024.0;
                let mib = *bytes as f64 / MIB;
                let size = if mib < 1024.0 {
                    format!("{mib:.1} MiB")
                } else {
                    format!("{:.1} GiB", mib / 1024.0)
                };
                write!(
                    f,
                    "fetching {artifacts} artifacts ({size}) onto {instance_id}, each SHA-256 checked there"
                )
            }
            Self::Recording { instance_id } => write!(
                f,
                "checking what {instance_id} fetched against the manifests and recording it"
            ),
        }
    }
}

/// Launches a host for the case and gives it the case's evidence, saying each stage to
/// `progress` as it starts. Every step is recorded in the case's ledger; a host whose
/// evidence does not verify is left running (for a look at why) but tagged as such, and
/// the error says so.
pub async fn launch(
    analysis: &Analysis,
    plane: &Plane,
    request: &LaunchRequest,
    progress: &(dyn Fn(LaunchStage) + Send + Sync),
) -> Result<LaunchOutcome, AnalysisError> {
    progress(LaunchStage::Preparing);
    let case_id = &request.case_id;
    let detail = plane.table.detail(case_id).await?;
    let written: Vec<_> = detail
        .artifacts
        .iter()
        .filter(|a| matches!(a.state, ArtifactState::Written | ArtifactState::Verified))
        .collect();
    if written.is_empty() {
        return Err(AnalysisError::NoEvidence {
            case: case_id.to_string(),
        });
    }
    let vpc_id = analysis
        .settings
        .vpc_id
        .clone()
        .ok_or(AnalysisError::NotConfigured {
            setting: "analysis.vpc_id",
            template: "1-forensic-analysis-vpc-and-buckets.yaml",
        })?;
    let profile =
        analysis
            .settings
            .instance_profile
            .clone()
            .ok_or(AnalysisError::NotConfigured {
                setting: "analysis.instance_profile",
                template: "1-forensic-analysis-vpc-and-buckets.yaml",
            })?;
    let subnet_id = choose_subnet(&vpc_id, &subnet_facts(analysis).await?).map_err(|why| {
        AnalysisError::NoSubnet {
            vpc: vpc_id.clone(),
            why,
        }
    })?;
    let listed = images::list(analysis).await?;
    let (image, ami_id) =
        listed
            .newest_available(&analysis.region)
            .ok_or_else(|| AnalysisError::NoImage {
                pipeline: listed.pipeline.arn.clone(),
                region: analysis.region.clone(),
            })?;
    let (image_version, ami_id) = (image.version.clone(), ami_id.to_owned());

    // The evidence's manifests first: a host is launched only for evidence that exists.
    let bucket = plane.evidence().map_err(|err| AnalysisError::Evidence {
        case: case_id.to_string(),
        instance: "-".to_owned(),
        why: err.to_string(),
    })?;
    let mut fetches = Vec::new();
    let mut total_bytes = 0u64;
    for artifact in &written {
        let manifest: Manifest = bucket
            .get_json(&manifest_key(&artifact.key))
            .await?
            .ok_or_else(|| AnalysisError::Evidence {
                case: case_id.to_string(),
                instance: "-".to_owned(),
                why: format!("{} has no manifest in {}", artifact.key, bucket.bucket),
            })?;
        // Archived evidence is restored before the host asks for it.
        bucket
            .make_readable(&artifact.key, manifest.version_id.as_deref(), |status| {
                tracing::info!(status, "the launch waits");
            })
            .await?;
        // What S3 holds is what lands; a QCOW2 image's raw twin is sparse, about as large
        // again, which the root volume's margin for analysis covers.
        total_bytes += manifest.stored_size();
        fetches.push(Fetch {
            key: artifact.key.clone(),
            version_id: manifest.version_id.clone(),
            sha256: manifest.stored_sha256().to_owned(),
        });
    }
    let source = EvidenceSource {
        bucket: &bucket.bucket,
        region: &analysis.region,
    };
    let script =
        evidence_script(case_id, &source, &fetches).map_err(|why| AnalysisError::Evidence {
            case: case_id.to_string(),
            instance: "-".to_owned(),
            why,
        })?;

    let instance_type = request
        .instance_type
        .clone()
        .or_else(|| analysis.settings.instance_type.clone())
        .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_owned());
    let root_device = analysis
        .ec2
        .describe_images()
        .image_ids(&ami_id)
        .send()
        .await
        .map_err(|err| analysis.call_error("ec2:DescribeImages", &err))?
        .images()
        .first()
        .and_then(|i| i.root_device_name().map(str::to_owned))
        .unwrap_or_else(|| "/dev/sda1".to_owned());
    let root_gib = root_volume_gib(total_bytes).map_err(|why| AnalysisError::Evidence {
        case: case_id.to_string(),
        instance: "-".to_owned(),
        why,
    })?;
    let operator = plane.operator.clone();
    let tags = |resource: ResourceType| {
        TagSpecification::builder()
            .resource_type(resource)
            .tags(
                Tag::builder()
                    .key("Name")
                    .value(format!("irf-analysis-{case_id}"))
                    .build(),
            )
            .tags(Tag::builder().key(ROLE_TAG).value(ROLE_VALUE).build())
            .tags(Tag::builder().key(CASE_TAG).value(case_id.as_str()).build())
            .tags(
                Tag::builder()
                    .key("irf:subject")
                    .value(detail.case.subject.ledger_target())
                    .build(),
            )
            .tags(
                Tag::builder()
                    .key("irf:launched-by")
                    .value(&operator)
                    .build(),
            )
            .build()
    };
    progress(LaunchStage::Launching {
        image_version: image_version.clone(),
    });
    let launched = analysis
        .ec2
        .run_instances()
        .image_id(&ami_id)
        .instance_type(instance_type.as_str().into())
        .min_count(1)
        .max_count(1)
        .client_token(
            format!("irf-{}-{:08x}", case_id, rand::random::<u32>())
                .chars()
                .take(64)
                .collect::<String>(),
        )
        .network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .subnet_id(&subnet_id)
                .set_groups(analysis.settings.security_group_id.clone().map(|g| vec![g]))
                .associate_public_ip_address(false)
                .delete_on_termination(true)
                .build(),
        )
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .name(&profile)
                .build(),
        )
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(HttpTokensState::Required)
                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                .http_put_response_hop_limit(1)
                .build(),
        )
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(&root_device)
                .ebs(
                    EbsBlockDevice::builder()
                        .encrypted(true)
                        .set_kms_key_id(analysis.settings.kms_key_id.clone())
                        .volume_type(VolumeType::Gp3)
                        .volume_size(root_gib)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .tag_specifications(tags(ResourceType::Instance))
        .tag_specifications(tags(ResourceType::Volume))
        .send()
        .await
        .map_err(|err| analysis.call_error("ec2:RunInstances", &err))?;
    let request_id = launched.request_id().map(str::to_owned);
    let instance = launched
        .instances()
        .first()
        .ok_or_else(|| AnalysisError::NotReady {
            instance: "-".to_owned(),
            why: "RunInstances returned no instance".to_owned(),
        })?;
    let instance_id = instance.instance_id().unwrap_or_default().to_owned();
    let mut entry = NewEntry::new(crate::model::ledger::Action::AnalysisHostLaunched, analysis.target(&instance_id)).detail(
        format!(
            "{instance_type} from {image_version} ({ami_id}) in {subnet_id}, profile {profile}, no public address, IMDSv2 required, encrypted root"
        ),
    );
    entry.request_ids.extend(request_id);
    ledger::append(plane, case_id, entry).await?;

    progress(LaunchStage::AwaitingAgent {
        instance_id: instance_id.clone(),
    });
    wait_until_managed(analysis, &instance_id).await?;
    progress(LaunchStage::Fetching {
        instance_id: instance_id.clone(),
        artifacts: fetches.len(),
        bytes: total_bytes,
    });
    let target = ScriptTarget {
        account: analysis.account.as_str(),
        region: &analysis.region,
        instance_id: &instance_id,
    };
    let ran = run_script_on(
        &analysis.ssm,
        &target,
        &format!("irf: evidence of case {case_id}"),
        &script,
        Duration::from_secs(6 * 3600),
        None,
    )
    .await
    .map_err(|err| AnalysisError::Evidence {
        case: case_id.to_string(),
        instance: instance_id.clone(),
        why: err.message,
    })?;
    progress(LaunchStage::Recording {
        instance_id: instance_id.clone(),
    });
    let held = if ran.status == "Success" {
        parse_evidence_report(case_id, &fetches, &ran.stdout)
    } else {
        Err(format!(
            "the fetch ended {} ({}): {}",
            ran.status,
            ran.code,
            ran.stderr.trim()
        ))
    };
    let held = match held {
        Ok(held) => held,
        Err(why) => {
            tag_instance(analysis, &instance_id, EVIDENCE_TAG, "NOT VERIFIED").await?;
            ledger::append(
                plane,
                case_id,
                NewEntry::new(
                    crate::model::ledger::Action::AnalysisHostEvidenceFailed,
                    analysis.target(&instance_id),
                )
                .detail(why.clone()),
            )
            .await?;
            return Err(AnalysisError::Evidence {
                case: case_id.to_string(),
                instance: instance_id,
                why: format!(
                    "{why}; the host is left running for a look, terminate it with 'irf hosts terminate'"
                ),
            });
        }
    };
    tag_instance(
        analysis,
        &instance_id,
        EVIDENCE_TAG,
        &format!("verified {}/{}", held.len(), fetches.len()),
    )
    .await?;
    let mut entry = NewEntry::new(
        crate::model::ledger::Action::AnalysisHostEvidenceVerified,
        analysis.target(&instance_id),
    )
    .detail(format!(
        "{} artifacts fetched from {} with the host's instance profile and hashed on the host",
        held.len(),
        bucket.bucket
    ));
    for artifact in &held {
        entry = entry.artifact(ArtifactHash {
            key: artifact.key.clone(),
            sha256: artifact.sha256.clone(),
            size: artifact.size,
            raw_sha256: None,
        });
    }
    ledger::append(plane, case_id, entry).await?;

    let private_ip = describe(analysis, &instance_id)
        .await?
        .and_then(|i| i.private_ip_address().map(str::to_owned));
    Ok(LaunchOutcome {
        instance_id,
        case_id: case_id.to_string(),
        account: analysis.account.to_string(),
        region: analysis.region.clone(),
        instance_type,
        image_version,
        ami_id,
        subnet_id,
        private_ip,
        instance_profile: profile,
        evidence: held,
    })
}

/// Waits until the host runs and its agent is online.
pub(super) async fn wait_until_managed(
    analysis: &Analysis,
    instance_id: &str,
) -> Result<(), AnalysisError> {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let ids = [instance_id.to_owned()];
        if reachability(analysis, &ids).await?.get(instance_id) == Some(&Reachability::Online) {
            return Ok(());
        }
        if started.elapsed() > READY_TIMEOUT {
            let state = describe(analysis, instance_id)
                .await?
                .and_then(|i| {
                    i.state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_owned())
                })
                .unwrap_or_else(|| "gone".to_owned());
            return Err(AnalysisError::NotReady {
                instance: instance_id.to_owned(),
                why: format!(
                    "not online in Systems Manager after {} min (instance state {state}); check the SSM endpoints of the Analysis VPC and the analyst profile",
                    READY_TIMEOUT.as_secs() / 60
                ),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}
