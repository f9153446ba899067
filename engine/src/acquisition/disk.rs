//! The disk branch: a snapshot of every attached volume, then each snapshot imaged through
//! the EBS direct APIs into the evidence bucket, with a manifest beside each image.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::task::{ArtifactRef, StepCode, StepError};
use crate::aws::{AwsError, describe_sdk_error};
use crate::model::case::{ArtifactKind, ArtifactProgress, ArtifactState, Case, now_rfc3339};
use crate::model::manifest::{Manifest, artifact_key, manifest_key, tool_version};
use crate::plane::Plane;
use crate::store::evidence_bucket::PartChecks;
use irf_forensics::imaging::{
    BlockRef, BlockSource, FetchedBlock, ImageFormat, ImageSummary, ImagingError, ImagingOptions,
    ImagingProgress, image,
};

/// How often progress goes to the case table.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(3);
/// The most GiB of zeros the raw image's SHA-256 hashes while imaging, unless the
/// configuration says otherwise (`workflow.raw_hash_inline_max_gib`).
const RAW_HASH_INLINE_MAX_GIB: u64 = 64;
/// How long a snapshot may take to complete before the step gives up.
const SNAPSHOT_DEADLINE: Duration = Duration::from_secs(6 * 3600);

/// A volume attached to the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedVolume {
    pub volume_id: String,
    pub device: String,
}

/// Runs the disk branch for `case`.
pub async fn acquire(plane: &Plane, case: &Case) -> Result<Value, StepError> {
    let config = plane.member_config(case).await?;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let ebs = aws_sdk_ebs::Client::new(&config);
    let volumes = attached_volumes(&ec2, case).await?;
    if volumes.is_empty() {
        return Err(StepError::invalid(format!(
            "instance {} has no EBS volume attached: nothing to image",
            case.subject.instance_id
        )));
    }
    let mut snapshots = Vec::new();
    for volume in &volumes {
        snapshots.push((volume.clone(), snapshot(plane, &ec2, case, volume).await?));
    }
    for (_, snapshot_id) in &snapshots {
        wait_completed(&ec2, case, snapshot_id).await?;
    }
    let mut artifacts = Vec::new();
    for (volume, snapshot_id) in &snapshots {
        artifacts.push(image_snapshot(plane, case, &ebs, volume, snapshot_id).await?);
    }
    Ok(json!({"kind": "disk", "status": "succeeded", "artifacts": artifacts}))
}

async fn attached_volumes(
    ec2: &aws_sdk_ec2::Client,
    case: &Case,
) -> Result<Vec<AttachedVolume>, StepError> {
    let instance = super::describe_instance(ec2, &case.subject).await?;
    Ok(instance
        .block_device_mappings()
        .iter()
        .filter_map(|m| {
            Some(AttachedVolume {
                volume_id: m.ebs()?.volume_id()?.to_owned(),
                device: m.device_name().unwrap_or_default().to_owned(),
            })
        })
        .collect())
}

/// The case's snapshot of `volume`: an existing one (a retried step) or a new one.
async fn snapshot(
    plane: &Plane,
    ec2: &aws_sdk_ec2::Client,
    case: &Case,
    volume: &AttachedVolume,
) -> Result<String, StepError> {
    use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
    let account = case.subject.account.as_str();
    let region = &case.subject.region;
    let existing = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name("volume-id")
                .values(&volume.volume_id)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("tag:case-id")
                .values(case.case_id.as_str())
                .build(),
        )
        .send()
        .await
        .map_err(|err| AwsError::from_sdk("ec2:DescribeSnapshots", account, region, &err))?;
    if let Some(id) = existing.snapshots().first().and_then(|s| s.snapshot_id()) {
        return Ok(id.to_owned());
    }
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let out = ec2
        .create_snapshot()
        .volume_id(&volume.volume_id)
        .description(format!(
            "irf case {} evidence of {} {}",
            case.case_id, case.subject.instance_id, volume.device
        ))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Snapshot)
                .tags(tag("ir-acquisition", "True"))
                .tags(tag("case-id", case.case_id.as_str()))
                .tags(tag("source-instance", &case.subject.instance_id))
                .tags(tag("source-device", &volume.device))
                .build(),
        )
        .send()
        .await
        .map_err(|err| AwsError::from_sdk("ec2:CreateSnapshot", account, region, &err))?;
    let snapshot_id = out
        .snapshot_id()
        .map(str::to_owned)
        .ok_or_else(|| StepError::failed("CreateSnapshot returned no snapshot id"))?;
    use aws_types::request_id::RequestId;
    crate::ledger::append(
        plane,
        &case.case_id,
        crate::model::ledger::NewEntry {
            action: crate::model::ledger::Action::SnapshotCreated
                .text()
                .into_owned(),
            target: format!("{account}/{region}/{}", volume.volume_id),
            request_ids: out.request_id().map(str::to_owned).into_iter().collect(),
            detail: Some(format!(
                "{snapshot_id} of {} ({})",
                volume.volume_id, volume.device
            )),
            ..Default::default()
        },
    )
    .await?;
    Ok(snapshot_id)
}

async fn wait_completed(
    ec2: &aws_sdk_ec2::Client,
    case: &Case,
    snapshot_id: &str,
) -> Result<(), StepError> {
    use aws_sdk_ec2::types::SnapshotState;
    let started = Instant::now();
    loop {
        let out = ec2
            .describe_snapshots()
            .snapshot_ids(snapshot_id)
            .send()
            .await
            .map_err(|err| {
                AwsError::from_sdk(
                    "ec2:DescribeSnapshots",
                    case.subject.account.as_str(),
                    &case.subject.region,
                    &err,
                )
            })?;
        match out.snapshots().first().and_then(|s| s.state()) {
            Some(SnapshotState::Completed) => return Ok(()),
            Some(SnapshotState::Error) => {
                return Err(StepError::failed(format!(
                    "snapshot {snapshot_id} failed in EC2"
                )));
            }
            _ if started.elapsed() > SNAPSHOT_DEADLINE => {
                return Err(StepError::failed(format!(
                    "snapshot {snapshot_id} did not complete within {} hours",
                    SNAPSHOT_DEADLINE.as_secs() / 3600
                )));
            }
            _ => tokio::time::sleep(Duration::from_secs(5)).await,
        }
    }
}

/// The blocks of one snapshot through the EBS direct APIs.
#[derive(Debug)]
pub struct EbsSnapshot {
    client: aws_sdk_ebs::Client,
    snapshot_id: String,
    block_size: u64,
    volume_size: u64,
    blocks: Vec<BlockRef>,
    account: String,
    region: String,
}

impl EbsSnapshot {
    /// Lists the snapshot's allocated blocks (all pages) and its geometry.
    pub async fn open(
        client: aws_sdk_ebs::Client,
        snapshot_id: &str,
        account: &str,
        region: &str,
    ) -> Result<Self, AwsError> {
        let mut blocks = Vec::new();
        let mut next: Option<String> = None;
        let mut block_size: u64;
        let mut volume_gib = 0i64;
        loop {
            let out = client
                .list_snapshot_blocks()
                .snapshot_id(snapshot_id)
                .set_next_token(next.clone())
                .max_results(10_000)
                .send()
                .await
                .map_err(|err| {
                    AwsError::from_sdk("ebs:ListSnapshotBlocks", account, region, &err)
                })?;
            block_size = u64::try_from(out.block_size().unwrap_or(524_288)).unwrap_or(524_288);
            volume_gib = out.volume_size().unwrap_or(volume_gib);
            blocks.extend(out.blocks().iter().filter_map(|b| {
                Some(BlockRef {
                    index: u64::try_from(b.block_index()?).ok()?,
                    token: b.block_token()?.to_owned(),
                })
            }));
            next = out
                .next_token()
                .map(str::to_owned)
                .filter(|t| !t.is_empty());
            if next.is_none() {
                break;
            }
        }
        Ok(Self {
            client,
            snapshot_id: snapshot_id.to_owned(),
            block_size,
            volume_size: u64::try_from(volume_gib).unwrap_or(0) << 30,
            blocks,
            account: account.to_owned(),
            region: region.to_owned(),
        })
    }
}

impl BlockSource for EbsSnapshot {
    fn block_size(&self) -> u64 {
        self.block_size
    }

    fn volume_size(&self) -> u64 {
        self.volume_size
    }

    async fn list(&self) -> Result<Vec<BlockRef>, ImagingError> {
        Ok(self.blocks.clone())
    }

    async fn fetch(&self, block: &BlockRef) -> Result<FetchedBlock, ImagingError> {
        let index = i32::try_from(block.index).map_err(|_| {
            ImagingError::Fetch(format!("block index {} is too large", block.index))
        })?;
        let out = self
            .client
            .get_snapshot_block()
            .snapshot_id(&self.snapshot_id)
            .block_index(index)
            .block_token(&block.token)
            .send()
            .await
            .map_err(|err| {
                ImagingError::Fetch(format!(
                    "ebs:GetSnapshotBlock {} block {} in account {}, region {}: {}",
                    self.snapshot_id,
                    block.index,
                    self.account,
                    self.region,
                    describe_sdk_error(&err)
                ))
            })?;
        let checksum = out.checksum().map(str::to_owned);
        let data = out
            .block_data
            .collect()
            .await
            .map_err(|err| ImagingError::Fetch(format!("reading block {}: {err}", block.index)))?
            .into_bytes();
        Ok(FetchedBlock { data, checksum })
    }
}

async fn image_snapshot(
    plane: &Plane,
    case: &Case,
    ebs: &aws_sdk_ebs::Client,
    volume: &AttachedVolume,
    snapshot_id: &str,
) -> Result<ArtifactRef, StepError> {
    let account = case.subject.account.as_str();
    let region = &case.subject.region;
    let key = artifact_key(
        &case.case_id,
        account,
        &case.subject.instance_id,
        ArtifactKind::Disk,
        &format!("{}.qcow2", volume.volume_id),
    );
    let manifest_at = manifest_key(&key);
    // A manifest is written only after its image is complete: a retried step keeps it.
    if let Some(done) = plane.evidence()?.get_json::<Manifest>(&manifest_at).await?
        && done.snapshot_id.as_deref() == Some(snapshot_id)
    {
        return Ok(ArtifactRef {
            key,
            manifest_key: manifest_at,
            sha256: done.stored_sha256().to_owned(),
            size: done.stored_size(),
            source: volume.volume_id.clone(),
        });
    }
    let stale = plane.evidence()?.abort_stale_uploads(&key).await?;
    if stale > 0 {
        tracing::warn!(case = %case.case_id, key, stale, "aborted uploads left by an earlier attempt; imaging again from the start");
    }
    let started_at = now_rfc3339();
    let source = Arc::new(EbsSnapshot::open(ebs.clone(), snapshot_id, account, region).await?);
    if source.volume_size == 0 {
        return Err(StepError::failed(format!(
            "snapshot {snapshot_id} reports a volume size of 0"
        )));
    }
    let upload = Arc::new(
        plane
            .evidence()?
            .start_upload(&key, PartChecks::Crc32)
            .await?,
    );
    let progress = ProgressReporter::start(
        plane.clone(),
        case.clone(),
        ArtifactKind::Disk,
        key.clone(),
        volume.volume_id.clone(),
        source.volume_size,
    );
    let outcome = image(
        source.clone(),
        upload.clone(),
        ImagingOptions {
            format: ImageFormat::Qcow2,
            inline_raw_hash_zeros: Some(
                plane
                    .ctx
                    .config()
                    .workflow
                    .raw_hash_inline_max_gib
                    .unwrap_or(RAW_HASH_INLINE_MAX_GIB)
                    .saturating_mul(1 << 30),
            ),
            ..ImagingOptions::default()
        },
        progress.sink(),
    )
    .await;
    let summary: ImageSummary = match outcome {
        Ok(summary) => summary,
        Err(err) => {
            progress
                .finish(ArtifactState::Failed, None, Some(err.to_string()))
                .await;
            if let Err(abort) = upload.abort().await {
                tracing::warn!(key, error = %abort, "cannot abort the failed upload");
            }
            return Err(match err {
                ImagingError::Corrupt { .. }
                | ImagingError::ShortBlock { .. }
                | ImagingError::OutOfRange { .. } => StepError::integrity(err.to_string()),
                other => StepError {
                    code: StepCode::Transient,
                    message: other.to_string(),
                },
            });
        }
    };
    let version_id = upload.complete(&summary.parts).await?;
    record_ranges(plane, case, &volume.volume_id, snapshot_id, &key, &summary).await?;
    let manifest = Manifest {
        case_id: case.case_id.clone(),
        kind: ArtifactKind::Disk,
        bucket: plane.evidence()?.bucket.clone(),
        key: key.clone(),
        version_id,
        source_account: account.to_owned(),
        region: region.clone(),
        instance_id: case.subject.instance_id.clone(),
        volume_id: Some(volume.volume_id.clone()),
        snapshot_id: Some(snapshot_id.to_owned()),
        device: Some(volume.device.clone()),
        sha256: summary.sha256.clone(),
        size: summary.size,
        format: summary.format,
        stored_size: Some(summary.stored_size),
        stored_sha256: Some(summary.stored_sha256.clone()),
        blocks_sha256: Some(summary.blocks_sha256.clone()),
        block_size: Some(summary.block_size),
        allocated_blocks: Some(summary.allocated_blocks),
        bytes_fetched: Some(summary.bytes_fetched),
        blocks_retried: Some(summary.blocks_retried),
        parts: summary.parts.len(),
        details: json!({
            "method": "EBS direct APIs (ListSnapshotBlocks, GetSnapshotBlock)",
            "raw_image": "qemu-img convert -O raw <image> <raw>, or irf evidence export --raw",
        }),
        started_at,
        finished_at: now_rfc3339(),
        tool: tool_version(),
        operator: plane.operator.clone(),
    };
    seal(plane, progress, &manifest, volume.volume_id.clone()).await
}

/// How many parts one "block range imaged" entry lists: an entry stays far below the case
/// table's item size however large the volume.
const RANGES_PER_ENTRY: usize = 256;

/// Records in the ledger which bytes of the volume each stored part holds, with the part's
/// CRC-32 as S3 checked it on upload, in entries of up to [`RANGES_PER_ENTRY`] parts.
async fn record_ranges(
    plane: &Plane,
    case: &Case,
    volume_id: &str,
    snapshot_id: &str,
    key: &str,
    summary: &ImageSummary,
) -> Result<(), StepError> {
    let ranges = summary.part_ranges();
    let target = format!(
        "{}/{}/{volume_id}",
        case.subject.account, case.subject.region
    );
    // The range entries name exactly their parts' uploads; what the step called before
    // goes to the entry after them.
    let earlier = crate::request_ids::take();
    for chunk in ranges.chunks(RANGES_PER_ENTRY) {
        let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
            continue;
        };
        let mut detail = format!(
            "{snapshot_id} bytes {}-{} into s3 key {key}, parts {}-{} (part: first byte-last byte CRC-32; the entry's request ids are the parts' uploads)",
            first.start,
            last.end.saturating_sub(1),
            first.number,
            last.number
        );
        let mut entry = crate::model::ledger::NewEntry::new(
            crate::model::ledger::Action::DiskRangeImaged,
            target.clone(),
        );
        for range in chunk {
            detail.push_str(&format!(
                "\n{}: {}-{} {}",
                range.number,
                range.start,
                range.end.saturating_sub(1),
                range.crc32
            ));
            entry.request_ids.extend(range.request_id.clone());
        }
        crate::ledger::append(plane, &case.case_id, entry.detail(detail)).await?;
    }
    crate::request_ids::restore(earlier);
    Ok(())
}

/// Writes an artifact's manifest beside it, records it as written, and names it for the
/// state machine. Only ever called once the artifact is complete and hashed.
pub(super) async fn seal(
    plane: &Plane,
    progress: ProgressReporter,
    manifest: &Manifest,
    source: String,
) -> Result<ArtifactRef, StepError> {
    let manifest_at = manifest_key(&manifest.key);
    plane
        .evidence()?
        .put_json_once(&manifest_at, manifest)
        .await?;
    crate::ledger::append(
        plane,
        &manifest.case_id,
        crate::model::ledger::NewEntry::new(
            crate::model::ledger::Action::ArtifactWritten(manifest.kind),
            format!("{}/{}/{}", manifest.source_account, manifest.region, source),
        )
        .detail(format!("s3://{}/{}", manifest.bucket, manifest.key))
        .artifact(crate::model::ledger::ArtifactHash {
            key: manifest.key.clone(),
            sha256: manifest.stored_sha256().to_owned(),
            size: manifest.stored_size(),
            raw_sha256: match manifest.format {
                ImageFormat::Qcow2 => manifest.sha256.clone(),
                ImageFormat::Raw => None,
            },
        }),
    )
    .await?;
    progress
        .finish(ArtifactState::Written, manifest.sha256.clone(), None)
        .await;
    Ok(ArtifactRef {
        key: manifest.key.clone(),
        manifest_key: manifest_at,
        sha256: manifest.stored_sha256().to_owned(),
        size: manifest.stored_size(),
        source,
    })
}

/// Carries an artifact's progress from the pipeline to the case table every few seconds,
/// without ever holding the pipeline up.
#[derive(Debug)]
pub struct ProgressReporter {
    sender: tokio::sync::watch::Sender<(u64, u64)>,
    task: tokio::task::JoinHandle<()>,
    plane: Plane,
    case: Case,
    base: ArtifactProgress,
}

impl ProgressReporter {
    pub fn start(
        plane: Plane,
        case: Case,
        kind: ArtifactKind,
        key: String,
        source: String,
        total: u64,
    ) -> Self {
        let base = ArtifactProgress {
            key,
            kind,
            source,
            state: ArtifactState::Acquiring,
            bytes_done: 0,
            bytes_total: total,
            rate: 0.0,
            updated_at: now_rfc3339(),
            sha256: None,
            error: None,
        };
        let (sender, mut receiver) = tokio::sync::watch::channel((0u64, total));
        let task = {
            let plane = plane.clone();
            let case = case.clone();
            let base = base.clone();
            tokio::spawn(async move {
                let mut last = (Instant::now(), 0u64);
                let _ = plane.table.record_artifact(&case.case_id, &base).await;
                loop {
                    tokio::time::sleep(PROGRESS_INTERVAL).await;
                    let changed = receiver.has_changed();
                    let (done, total) = *receiver.borrow_and_update();
                    if changed.is_err() {
                        break;
                    }
                    let elapsed = last.0.elapsed().as_secs_f64().max(0.001);
                    let rate = done.saturating_sub(last.1) as f64 / elapsed;
                    last = (Instant::now(), done);
                    let record = ArtifactProgress {
                        bytes_done: done,
                        bytes_total: total,
                        rate,
                        updated_at: now_rfc3339(),
                        ..base.clone()
                    };
                    if let Err(err) = plane.table.record_artifact(&case.case_id, &record).await {
                        tracing::warn!(error = %err, "cannot record progress");
                    }
                }
            })
        };
        Self {
            sender,
            task,
            plane,
            case,
            base,
        }
    }

    /// A callback for the pipeline.
    pub fn sink(&self) -> impl FnMut(ImagingProgress) + Send + use<> {
        let sender = self.sender.clone();
        move |p: ImagingProgress| {
            sender.send_replace((p.bytes_done, p.bytes_total));
        }
    }

    /// Records the final state.
    pub async fn finish(self, state: ArtifactState, sha256: Option<String>, error: Option<String>) {
        self.task.abort();
        let (done, total) = *self.sender.borrow();
        let record = ArtifactProgress {
            state,
            bytes_done: if state == ArtifactState::Written {
                total
            } else {
                done
            },
            bytes_total: total,
            rate: 0.0,
            updated_at: now_rfc3339(),
            sha256,
            error,
            ..self.base
        };
        if let Err(err) = self
            .plane
            .table
            .record_artifact(&self.case.case_id, &record)
            .await
        {
            tracing::warn!(error = %err, "cannot record the artifact's final state");
        }
    }
}
