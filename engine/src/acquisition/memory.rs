//! The memory branch: an SSM preflight of the suspect host, then the capture tool run
//! through SSM Run Command, uploading through pre-signed URLs only, its hash checked
//! again from S3 and a manifest written beside the image.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::disk::ProgressReporter;
use super::task::{ArtifactRef, StepError};
use crate::aws::AwsError;
use crate::model::case::{ArtifactKind, ArtifactState, Case, now_rfc3339};
use crate::model::manifest::{Manifest, artifact_key, manifest_key, tool_version};
use crate::plane::Plane;
use crate::store::evidence_bucket::PartChecks;
use irf_forensics::imaging::{ImageFormat, MAX_PARTS};
use irf_forensics::memcap::{CaptureReport, LIME_HEADER, LimeRanges, UploadPlan};

/// Where the capture tool lives in the tooling bucket, per architecture.
pub fn tool_key(arch: &str) -> String {
    format!("memcap/linux-{arch}/irf-memcap")
}

/// How long an instance that was just given an instance profile has for its SSM agent to
/// pick up the credentials and report Online (the agent retries with a back-off).
const AGENT_ONLINE_WITHIN: Duration = Duration::from_secs(15 * 60);
/// How often the agent's status is asked for while waiting.
const AGENT_POLL: Duration = Duration::from_secs(3);

/// The architectures a capture tool is published for (template 4); anything else a host
/// reports is refused before it names a key.
pub const ARCHITECTURES: &[&str] = &["x86_64", "aarch64"];
/// RAM ranges a host may report: far above any real machine's, far below what would
/// make the LiME headers a payload of their own.
const MAX_RAM_RANGES: u64 = 65_536;

/// How long pre-signed URLs stay valid: long enough for a large host, short enough to
/// be useless soon after.
const URL_LIFETIME: Duration = Duration::from_secs(6 * 3600);

/// The preflight script. It reads only, and only the kernel's own `/proc` and `/sys`: no
/// setting of the host's can point it elsewhere.
pub const PREFLIGHT_SCRIPT: &str = include_str!("../../scripts/memory-preflight.sh");

/// What the preflight found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preflight {
    pub kernel: String,
    pub arch: String,
    pub kcore_readable: bool,
    pub lockdown: String,
    pub mem_total_kib: u64,
    pub ram_bytes: u64,
    pub ram_ranges: u64,
    pub curl: bool,
}

impl Preflight {
    /// Why capture through /proc/kcore cannot work here, if it cannot.
    pub fn blocker(&self) -> Option<String> {
        if !self.kcore_readable {
            return Some(format!(
                "/proc/kcore is not readable on kernel {}: a LiME module built for this kernel is needed (template 4 builds them)",
                self.kernel
            ));
        }
        if self.lockdown == "confidentiality" {
            return Some(format!(
                "kernel lockdown is 'confidentiality' on {}: /proc/kcore is closed; use a LiME module signed for this kernel",
                self.kernel
            ));
        }
        if self.ram_bytes == 0 {
            return Some("no System RAM range in /proc/iomem".to_owned());
        }
        if !ARCHITECTURES.contains(&self.arch.as_str()) {
            return Some(format!(
                "the host reports architecture {:?}; capture tools exist for {}",
                self.arch,
                ARCHITECTURES.join(" and ")
            ));
        }
        if !self.curl {
            return Some(
                "curl is not installed on the host; the capture uploads with it".to_owned(),
            );
        }
        None
    }
}

/// The capture script: fetch the tool into memory-backed storage, check its hash, run it.
pub fn capture_script(tool_url: &str, tool_sha256: &str, plan_url: &str) -> String {
    format!(
        "tool_url={}\ntool_sha256={}\nplan_url={}\n{CAPTURE_SCRIPT}",
        crate::shell_quote(tool_url),
        crate::shell_quote(tool_sha256),
        crate::shell_quote(plan_url)
    )
}

/// The capture itself, run after the assignments of `tool_url`, `tool_sha256` and `plan_url`.
const CAPTURE_SCRIPT: &str = include_str!("../../scripts/memory-capture.sh");

/// The end of an SSM command.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    pub status: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a shell script on the instance through SSM and waits for it, calling `tick` while
/// it runs.
pub async fn run_script(
    ssm: &aws_sdk_ssm::Client,
    case: &Case,
    comment: &str,
    script: &str,
    timeout: Duration,
    watch: Option<&mut UploadWatch<'_>>,
) -> Result<CommandOutcome, StepError> {
    let target = ScriptTarget {
        account: case.subject.account.as_str(),
        region: &case.subject.region,
        instance_id: &case.subject.instance_id,
    };
    run_script_on(ssm, &target, comment, script, timeout, watch).await
}

/// The instance a script runs on.
#[derive(Debug, Clone, Copy)]
pub struct ScriptTarget<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub instance_id: &'a str,
}

/// Runs a shell script on any managed instance through SSM and waits for it.
pub async fn run_script_on(
    ssm: &aws_sdk_ssm::Client,
    target: &ScriptTarget<'_>,
    comment: &str,
    script: &str,
    timeout: Duration,
    mut watch: Option<&mut UploadWatch<'_>>,
) -> Result<CommandOutcome, StepError> {
    let ScriptTarget {
        account,
        region,
        instance_id: id,
    } = *target;
    let send = || {
        ssm.send_command()
            .instance_ids(id)
            .document_name("AWS-RunShellScript")
            .comment(comment.chars().take(100).collect::<String>())
            .timeout_seconds(600)
            .parameters("commands", vec![script.to_owned()])
            .parameters("executionTimeout", vec![timeout.as_secs().to_string()])
            .send()
    };
    // An agent that has just picked up its credentials may not be registered everywhere
    // yet: InvalidInstanceId is asked again for a while before it is believed.
    let asked = Instant::now();
    let sent = loop {
        match send().await {
            Ok(sent) => break sent,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_invalid_instance_id())
                    && asked.elapsed() < AGENT_ONLINE_WITHIN =>
            {
                tokio::time::sleep(AGENT_POLL).await;
            }
            Err(err) => {
                return Err(AwsError::from_sdk("ssm:SendCommand", account, region, &err).into());
            }
        }
    };
    let command_id = sent
        .command()
        .and_then(|c| c.command_id())
        .ok_or_else(|| StepError::failed("SendCommand returned no command id"))?
        .to_owned();
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Some(watch) = watch.as_deref_mut() {
            watch.poll().await;
        }
        let answer = ssm
            .get_command_invocation()
            .command_id(&command_id)
            .instance_id(id)
            .send()
            .await;
        let out = match answer {
            Ok(out) => out,
            // The invocation appears shortly after the command.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_invocation_does_not_exist()) =>
            {
                continue;
            }
            Err(err) => {
                return Err(
                    AwsError::from_sdk("ssm:GetCommandInvocation", account, region, &err).into(),
                );
            }
        };
        use aws_sdk_ssm::types::CommandInvocationStatus as S;
        let status = out.status().cloned();
        let done = matches!(
            status,
            Some(S::Success | S::Failed | S::Cancelled | S::TimedOut)
        );
        if done {
            return Ok(CommandOutcome {
                status: status.map_or_else(String::new, |s| s.as_str().to_owned()),
                code: out.response_code(),
                stdout: out.standard_output_content().unwrap_or_default().to_owned(),
                stderr: out.standard_error_content().unwrap_or_default().to_owned(),
            });
        }
        if started.elapsed() > timeout + Duration::from_secs(120) {
            return Err(StepError::failed(format!(
                "command {command_id} on {id} did not finish within {} s",
                timeout.as_secs()
            )));
        }
    }
}

/// The memory of an instance's type, as EC2 describes it.
#[derive(Debug, Clone)]
struct TypeMemory {
    instance_type: String,
    bytes: u64,
}

async fn instance_type_memory(
    config: &aws_types::SdkConfig,
    case: &Case,
) -> Result<TypeMemory, StepError> {
    let (account, region, id) = (
        case.subject.account.as_str(),
        case.subject.region.as_str(),
        case.subject.instance_id.as_str(),
    );
    let ec2 = aws_sdk_ec2::Client::new(config);
    let described = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .map_err(|err| AwsError::from_sdk("ec2:DescribeInstances", account, region, &err))?;
    let instance_type = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find_map(|i| i.instance_type().cloned())
        .ok_or_else(|| StepError::failed(format!("EC2 names no instance type for {id}")))?;
    let types = ec2
        .describe_instance_types()
        .instance_types(instance_type.clone())
        .send()
        .await
        .map_err(|err| AwsError::from_sdk("ec2:DescribeInstanceTypes", account, region, &err))?;
    let mib = types
        .instance_types()
        .iter()
        .find_map(|t| t.memory_info().and_then(|m| m.size_in_mib()))
        .and_then(|mib| u64::try_from(mib).ok())
        .ok_or_else(|| {
            StepError::failed(format!(
                "EC2 gives no memory size for instance type {}",
                instance_type.as_str()
            ))
        })?;
    Ok(TypeMemory {
        instance_type: instance_type.as_str().to_owned(),
        bytes: mib << 20,
    })
}

/// Waits until Systems Manager reports the instance's agent Online: an instance that
/// prepare just gave a profile is not reachable until its agent has picked up the
/// credentials.
pub async fn wait_for_agent(
    ssm: &aws_sdk_ssm::Client,
    target: &ScriptTarget<'_>,
) -> Result<(), StepError> {
    let started = Instant::now();
    loop {
        let filter = aws_sdk_ssm::types::InstanceInformationStringFilter::builder()
            .key("InstanceIds")
            .values(target.instance_id)
            .build()
            .map_err(|err| StepError::failed(err.to_string()))?;
        let out = ssm
            .describe_instance_information()
            .filters(filter)
            .send()
            .await
            .map_err(|err| {
                AwsError::from_sdk(
                    "ssm:DescribeInstanceInformation",
                    target.account,
                    target.region,
                    &err,
                )
            })?;
        let online = out.instance_information_list().iter().any(|i| {
            i.instance_id() == Some(target.instance_id)
                && i.ping_status() == Some(&aws_sdk_ssm::types::PingStatus::Online)
        });
        if online {
            return Ok(());
        }
        if started.elapsed() >= AGENT_ONLINE_WITHIN {
            return Err(StepError::failed(format!(
                "the SSM agent on {} did not report Online within {} minutes; memory capture runs through it: check the agent, its instance profile and its route to Systems Manager",
                target.instance_id,
                AGENT_ONLINE_WITHIN.as_secs() / 60
            )));
        }
        tokio::time::sleep(AGENT_POLL).await;
    }
}

/// Watches the parts of a multipart upload arrive, for progress while a host uploads.
pub struct UploadWatch<'a> {
    s3: &'a aws_sdk_s3::Client,
    bucket: &'a str,
    key: &'a str,
    upload_id: &'a str,
    expected: u64,
    report: Box<dyn FnMut(irf_forensics::imaging::ImagingProgress) + Send + 'a>,
}

impl std::fmt::Debug for UploadWatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadWatch")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl UploadWatch<'_> {
    async fn poll(&mut self) {
        let listed = self
            .s3
            .list_parts()
            .bucket(self.bucket)
            .key(self.key)
            .upload_id(self.upload_id)
            .send()
            .await;
        if let Ok(out) = listed {
            let done: u64 = out
                .parts()
                .iter()
                .map(|p| u64::try_from(p.size().unwrap_or(0)).unwrap_or(0))
                .sum();
            (self.report)(irf_forensics::imaging::ImagingProgress {
                bytes_done: done,
                bytes_total: self.expected,
                blocks_fetched: 0,
                blocks_retried: 0,
            });
        }
    }
}

/// The last line of output that parses as `T`.
fn last_json<T: for<'de> Deserialize<'de>>(stdout: &str) -> Option<T> {
    stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line.trim()).ok())
}

/// Runs the memory branch for `case`.
pub async fn capture(plane: &Plane, case: &Case) -> Result<Value, StepError> {
    let config = plane.member_config(case).await?;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let id = &case.subject.instance_id;
    let started_at = now_rfc3339();
    wait_for_agent(
        &ssm,
        &ScriptTarget {
            account: case.subject.account.as_str(),
            region: &case.subject.region,
            instance_id: id,
        },
    )
    .await?;

    let preflight = run_script(
        &ssm,
        case,
        "irf memory preflight",
        PREFLIGHT_SCRIPT,
        Duration::from_secs(120),
        None,
    )
    .await?;
    if preflight.status != "Success" {
        return Err(StepError::failed(format!(
            "the memory preflight on {id} ended {} (code {}): {}",
            preflight.status,
            preflight.code,
            preflight.stderr.trim()
        )));
    }
    let facts: Preflight = last_json(&preflight.stdout).ok_or_else(|| {
        StepError::failed(format!(
            "the memory preflight on {id} printed no report: {:?}",
            preflight.stdout
        ))
    })?;
    if let Some(blocker) = facts.blocker() {
        return Err(StepError::invalid(format!(
            "memory capture on {id} is not possible: {blocker}"
        )));
    }
    // What the host says it holds is bounded by what its instance type has: a host whose
    // root is compromised cannot make irf store (and lock for years) more than that.
    let type_memory = instance_type_memory(&config, case).await?;
    if facts.ram_bytes > type_memory.bytes || facts.ram_ranges > MAX_RAM_RANGES {
        return Err(StepError::integrity(format!(
            "the host {id} claims {} bytes of RAM in {} ranges, but its instance type {} has {} bytes: nothing was captured",
            facts.ram_bytes, facts.ram_ranges, type_memory.instance_type, type_memory.bytes
        )));
    }

    let tooling = plane.tooling_bucket.clone().ok_or_else(|| {
        StepError::invalid("workflow.tooling_bucket is not set: deploy 4-security-memory-tooling.yaml and name its bucket in the config")
    })?;
    let s3 = plane.evidence()?.client();
    let tool = tool_key(&facts.arch);
    let head = s3
        .head_object()
        .bucket(&tooling)
        .key(&tool)
        .send()
        .await
        .map_err(|err| AwsError::from_sdk("s3:HeadObject", "security", &plane.region, &err))?;
    let tool_sha256 = head
        .metadata()
        .and_then(|m| m.get("sha256"))
        .cloned()
        .ok_or_else(|| {
            StepError::invalid(format!(
                "s3://{tooling}/{tool} has no sha256 metadata: publish the tool with its hash"
            ))
        })?;

    let key = artifact_key(
        &case.case_id,
        case.subject.account.as_str(),
        id,
        ArtifactKind::Memory,
        &format!("{id}.lime"),
    );
    let manifest_at = manifest_key(&key);
    if let Some(done) = plane.evidence()?.get_json::<Manifest>(&manifest_at).await? {
        return Ok(
            json!({"kind": "memory", "status": "succeeded", "artifacts": [ArtifactRef {
                key, manifest_key: manifest_at, sha256: done.stored_sha256().to_owned(), size: done.stored_size(), source: id.clone(),
            }]}),
        );
    }
    plane.evidence()?.abort_stale_uploads(&key).await?;
    let expected = facts.ram_bytes + facts.ram_ranges * LIME_HEADER;
    let part_size = (16u64 << 20).max(expected.div_ceil(MAX_PARTS));
    let parts = expected.div_ceil(part_size) + 1;
    let upload = plane
        .evidence()?
        .start_upload(&key, PartChecks::ContentMd5)
        .await?;
    let mut urls = Vec::new();
    for number in 1..=parts {
        urls.push(
            upload
                .presigned_part_url(i32::try_from(number).unwrap_or(i32::MAX), URL_LIFETIME)
                .await?,
        );
    }
    let plan_key = format!("staging/{}/{id}/memory-plan.json", case.case_id);
    let plan = serde_json::to_vec(&UploadPlan { part_size, urls })
        .map_err(|err| StepError::failed(err.to_string()))?;
    s3.put_object()
        .bucket(&tooling)
        .key(&plan_key)
        .body(ByteStream::from(plan))
        .send()
        .await
        .map_err(|err| AwsError::from_sdk("s3:PutObject", "security", &plane.region, &err))?;
    let presign = |lifetime| {
        aws_sdk_s3::presigning::PresigningConfig::expires_in(lifetime)
            .map_err(|err| StepError::failed(format!("bad pre-signing lifetime: {err}")))
    };
    let tool_url = s3
        .get_object()
        .bucket(&tooling)
        .key(&tool)
        .presigned(presign(URL_LIFETIME)?)
        .await
        .map_err(|err| {
            AwsError::from_sdk("s3:GetObject (pre-sign)", "security", &plane.region, &err)
        })?;
    let plan_url = s3
        .get_object()
        .bucket(&tooling)
        .key(&plan_key)
        .presigned(presign(URL_LIFETIME)?)
        .await
        .map_err(|err| {
            AwsError::from_sdk("s3:GetObject (pre-sign)", "security", &plane.region, &err)
        })?;

    let progress = ProgressReporter::start(
        plane.clone(),
        case.clone(),
        ArtifactKind::Memory,
        key.clone(),
        id.clone(),
        expected,
    );
    let timeout = Duration::from_secs(600 + expected / (20 << 20));
    let mut watch = UploadWatch {
        s3,
        bucket: &plane.evidence()?.bucket,
        key: &key,
        upload_id: &upload.upload_id,
        expected,
        report: Box::new(progress.sink()),
    };
    let outcome = run_script(
        &ssm,
        case,
        "irf memory capture",
        &capture_script(tool_url.uri(), &tool_sha256, plan_url.uri()),
        timeout,
        Some(&mut watch),
    )
    .await;
    drop(watch);
    // The plan holds live upload URLs: gone as soon as the host is done with it.
    if let Err(err) = s3
        .delete_object()
        .bucket(&tooling)
        .key(&plan_key)
        .send()
        .await
    {
        tracing::warn!(key = plan_key, error = %crate::aws::describe_sdk_error(&err), "cannot delete the upload plan; the bucket's lifecycle expires it");
    }
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            let _ = upload.abort().await;
            let message = err.to_string();
            progress
                .finish(ArtifactState::Failed, None, Some(message.clone()))
                .await;
            return Err(StepError {
                code: err.code,
                message,
            });
        }
    };
    let report: Option<CaptureReport> = last_json(&outcome.stdout);
    let report = match (outcome.status.as_str(), report) {
        ("Success", Some(report)) => report,
        (status, _) => {
            let _ = upload.abort().await;
            let message = format!(
                "the capture on {id} ended {status} (code {}): {}",
                outcome.code,
                outcome
                    .stderr
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or("no error output")
            );
            progress
                .finish(ArtifactState::Failed, None, Some(message.clone()))
                .await;
            return Err(StepError::failed(message));
        }
    };
    // The parts as S3 holds them (the host's own list would not fit the command output).
    let (stored, stored_bytes) = upload.stored_parts().await?;
    if stored_bytes > expected {
        let _ = upload.abort().await;
        let message = format!(
            "the host {id} uploaded {stored_bytes} bytes where its RAM makes at most {expected}; the upload was abandoned, nothing was kept"
        );
        progress
            .finish(ArtifactState::Failed, None, Some(message.clone()))
            .await;
        return Err(StepError::integrity(message));
    }
    if stored.len() as u64 != report.parts {
        let _ = upload.abort().await;
        let message = format!(
            "the host on {id} reported {} parts but S3 holds {}; nothing was kept",
            report.parts,
            stored.len()
        );
        progress
            .finish(ArtifactState::Failed, None, Some(message.clone()))
            .await;
        return Err(StepError::integrity(message));
    }
    let version_id = upload.complete(&stored).await?;
    // The host's hash is only a claim until the bytes in S3 say the same; the ranges are
    // read from the image's own headers.
    let (read, ranges) = plane
        .evidence()?
        .hash_object_with(&key, LimeRanges::default())
        .await
        .map(|(read, walker)| (read, walker.finish()))?;
    let ranges = match ranges {
        Ok(ranges) => ranges,
        Err(problem) => {
            let message = format!("the memory image of {id} in S3 is not a LiME image: {problem}");
            progress
                .finish(ArtifactState::Failed, None, Some(message.clone()))
                .await;
            return Err(StepError::integrity(message));
        }
    };
    let captured: u64 = ranges.iter().map(|r| r.len()).sum();
    if ranges.len() as u64 + report.missing_count != facts.ram_ranges || captured > facts.ram_bytes
    {
        let message = format!(
            "the memory image of {id} holds {} ranges ({captured} bytes) where the preflight found {} ({} bytes)",
            ranges.len(),
            facts.ram_ranges,
            facts.ram_bytes
        );
        progress
            .finish(ArtifactState::Failed, None, Some(message.clone()))
            .await;
        return Err(StepError::integrity(message));
    }
    if read.sha256 != report.sha256 || read.size != report.size {
        let message = format!(
            "the memory image in S3 ({} bytes, SHA-256 {}) differs from what the host sent ({} bytes, SHA-256 {}); no manifest was written",
            read.size, read.sha256, report.size, report.sha256
        );
        progress
            .finish(ArtifactState::Failed, None, Some(message.clone()))
            .await;
        return Err(StepError::integrity(message));
    }
    let manifest = Manifest {
        case_id: case.case_id.clone(),
        kind: ArtifactKind::Memory,
        bucket: plane.evidence()?.bucket.clone(),
        key: key.clone(),
        version_id,
        source_account: case.subject.account.to_string(),
        region: case.subject.region.clone(),
        instance_id: id.clone(),
        volume_id: None,
        snapshot_id: None,
        device: None,
        sha256: Some(report.sha256.clone()),
        size: report.size,
        // The object is the LiME image itself.
        format: ImageFormat::Raw,
        stored_size: None,
        stored_sha256: None,
        blocks_sha256: None,
        block_size: None,
        allocated_blocks: None,
        bytes_fetched: None,
        blocks_retried: None,
        parts: stored.len(),
        details: json!({
            "format": "lime",
            "method": "/proc/kcore at the System RAM ranges of /proc/iomem, uploaded through pre-signed URLs",
            "kernel": facts.kernel,
            "arch": facts.arch,
            "lockdown": facts.lockdown,
            "mem_total_kib": facts.mem_total_kib,
            "ranges": ranges,
            "missing_ranges": report.missing,
            "missing_range_count": report.missing_count,
            "host_sha256": report.sha256,
            // What irf checked is that S3 holds what the host sent, shaped as its preflight
            // said; the bytes themselves are what the host's kernel gave, which a host whose
            // root is compromised can forge.
            "attestation": "host",
        }),
        started_at,
        finished_at: now_rfc3339(),
        tool: tool_version(),
        operator: plane.operator.clone(),
    };
    let artifact = super::disk::seal(plane, progress, &manifest, id.clone()).await?;
    Ok(json!({"kind": "memory", "status": "succeeded", "artifacts": [artifact]}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preflight() -> Preflight {
        Preflight {
            kernel: "6.1.0".into(),
            arch: "x86_64".into(),
            kcore_readable: true,
            lockdown: "none".into(),
            mem_total_kib: 1024,
            ram_bytes: 1 << 20,
            ram_ranges: 2,
            curl: true,
        }
    }

    #[test]
    fn preflight_blockers_say_why() {
        assert_eq!(preflight().blocker(), None);
        let locked = Preflight {
            lockdown: "confidentiality".into(),
            ..preflight()
        };
        assert!(locked.blocker().expect("blocked").contains("lockdown"));
        let closed = Preflight {
            kcore_readable: false,
            ..preflight()
        };
        assert!(closed.blocker().expect("blocked").contains("LiME"));
    }

    #[test]
    fn the_report_is_the_last_json_line() {
        let out = "noise\n{\"kernel\":\"k\",\"arch\":\"x86_64\",\"kcore_readable\":true,\"lockdown\":\"none\",\"mem_total_kib\":1,\"ram_bytes\":2,\"ram_ranges\":1,\"curl\":true}\n";
        let facts: Preflight = last_json(out).expect("parsed");
        assert_eq!(facts.ram_bytes, 2);
    }

    #[test]
    fn the_capture_script_checks_the_tool_before_running_it() {
        let script = capture_script("https://t", "abc", "https://p");
        let check = script.find("sha256sum -c").expect("hash check");
        let run = script.find("irf-memcap\" memcap").expect("run");
        assert!(check < run);
        assert!(!script.contains("AWS_SECRET"), "no credentials on the host");
        assert!(
            script.starts_with("tool_url='https://t'\ntool_sha256='abc'\nplan_url='https://p'\n")
        );
    }

    /// A pre-signed URL is one shell word whatever it holds: a quote cannot end the quoting
    /// and nothing in it is run.
    #[test]
    fn a_quote_in_a_url_cannot_end_the_quoting() {
        let hostile = "https://t/x?a='$(touch /tmp/irf-pwned)'&b=`id`";
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf %s {}", crate::shell_quote(hostile))])
            .output()
            .expect("sh runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), hostile);
    }
}
