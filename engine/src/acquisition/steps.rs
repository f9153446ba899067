//! The step handlers: what each callback task of the state machine does, the error codes
//! the state machine retries on, and the notifications at start, failure and end.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ExecutionInput;
use crate::acquisition::task::{ArtifactRef, StepError};
use crate::aws::AwsError;
use crate::model::case::{
    ArtifactState, Case, CaseStatus, PendingApproval, StepStatus, now_rfc3339,
};
use crate::model::containment::InterfaceGroups;
use crate::model::manifest::Manifest;
use crate::plane::Plane;

/// A step of the state machine that runs project code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Opened,
    Prepare,
    Memory,
    Disk,
    Verify,
    Approval,
    Contain,
    Closed,
    Failed,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Prepare => "prepare",
            Self::Memory => "memory",
            Self::Disk => "disk",
            Self::Verify => "verify",
            Self::Approval => "approval",
            Self::Contain => "contain",
            Self::Closed => "closed",
            Self::Failed => "failed",
        }
    }

    /// Whether the handler answers the task itself; the approval wait is answered later by
    /// an approver.
    pub fn answers(self) -> bool {
        self != Self::Approval
    }
}

/// The message a callback task puts on a step queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepMessage {
    pub step: Step,
    pub token: String,
    #[serde(default)]
    pub execution: Option<String>,
    pub state: Value,
}

impl StepMessage {
    /// Reads a queue message body, naming what is wrong with a malformed one.
    pub fn parse(body: &str) -> Result<Self, String> {
        serde_json::from_str(body).map_err(|err| {
            let shown: String = body.chars().take(200).collect();
            format!("not a step message ({err}): {shown:?}")
        })
    }

    /// The case the message is about.
    pub fn case(&self) -> Result<Case, StepError> {
        ExecutionInput::deserialize(&self.state)
            .map(|input| input.case)
            .map_err(|err| {
                StepError::invalid(format!("the execution state has no valid case: {err}"))
            })
    }
}

/// Runs one step for `message`; `Ok` carries the task's output.
pub async fn run(plane: &Plane, message: &StepMessage) -> Result<Value, StepError> {
    let case = message.case()?;
    let step = message.step;
    if !matches!(step, Step::Closed | Step::Failed | Step::Approval) {
        plane
            .table
            .record_step(&case.case_id, step.as_str(), StepStatus::Running, None)
            .await?;
    }
    let outcome = match step {
        Step::Opened => opened(plane, &case, message).await,
        Step::Prepare => prepare(plane, &case).await,
        Step::Memory => Box::pin(super::memory::capture(plane, &case)).await,
        Step::Disk => super::disk::acquire(plane, &case).await,
        Step::Verify => verify(plane, &case, &message.state).await,
        Step::Approval => approval(plane, &case, message).await,
        Step::Contain => contain(plane, &case).await,
        Step::Closed => closed(plane, &case, &message.state).await,
        Step::Failed => failed(plane, &case, &message.state).await,
    };
    if !matches!(step, Step::Closed | Step::Failed | Step::Approval) {
        let (status, detail) = match &outcome {
            Ok(_) => (StepStatus::Succeeded, None),
            Err(err) => (StepStatus::Failed, Some(err.to_string())),
        };
        let entry = crate::model::ledger::NewEntry {
            action: crate::model::ledger::Action::Step {
                step: step.as_str(),
                succeeded: outcome.is_ok(),
            }
            .text()
            .into_owned(),
            target: case.subject.ledger_target(),
            detail: detail.clone(),
            ..Default::default()
        };
        if let Err(err) = plane
            .table
            .record_step(&case.case_id, step.as_str(), status, detail)
            .await
        {
            tracing::warn!(case = %case.case_id, step = step.as_str(), error = %err, "cannot record the step's end");
        }
        // Custody is not optional: a step whose ledger entry cannot be written is retried.
        if let Err(err) = crate::ledger::append(plane, &case.case_id, entry).await {
            return Err(err.into());
        }
    }
    outcome
}

/// Publishes a case notification; a missing topic only logs, a failed publish is an error
/// (a silent case is worse than a retried step).
pub async fn notify(
    plane: &Plane,
    case: &Case,
    event: &str,
    detail: Value,
) -> Result<(), StepError> {
    let Some(topic) = &plane.topic_arn else {
        tracing::info!(case = %case.case_id, event, "no notification topic configured");
        return Ok(());
    };
    let body = json!({
        "event": event,
        "case_id": case.case_id,
        "account": case.subject.account,
        "region": case.subject.region,
        "instance_id": case.subject.instance_id,
        "at": now_rfc3339(),
        "detail": detail,
    });
    let subject: String = format!("irf case {}: {event}", case.case_id)
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    plane
        .sns
        .publish()
        .topic_arn(topic)
        .subject(subject)
        .message(body.to_string())
        .send()
        .await
        .map_err(|err| AwsError::from_sdk("sns:Publish", "security", &plane.region, &err))?;
    Ok(())
}

async fn opened(plane: &Plane, case: &Case, message: &StepMessage) -> Result<Value, StepError> {
    let mut record = plane.table.case(&case.case_id).await?;
    record.status = CaseStatus::Running;
    if record.execution_arn.is_none() {
        record.execution_arn.clone_from(&message.execution);
    }
    plane.table.save_case(&record).await?;
    notify(
        plane,
        case,
        "acquisition started",
        json!({
            "memory": case.subject.memory,
            "disk": case.subject.disk,
            "containment": case.subject.containment,
            "requested_by": case.requested_by,
            "trigger": case.trigger,
        }),
    )
    .await?;
    Ok(json!({}))
}

/// The instance's state before anything changes, for containment and its rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreIncidentState {
    pub instance_id: String,
    pub state: String,
    /// Security groups of every network interface, by interface id.
    pub interfaces: Vec<InterfaceGroups>,
    pub instance_profile_arn: Option<String>,
    pub profile_association_id: Option<String>,
    pub elastic_ips: Vec<String>,
    pub tags: std::collections::BTreeMap<String, String>,
    /// From the `aws:autoscaling:groupName` tag.
    pub autoscaling_group: Option<String>,
    pub termination_protection_was: bool,
    pub ssm_managed: bool,
    pub recorded_at: String,
}

/// Reads the pre-incident state of the case's instance.
pub async fn pre_incident_state(
    ec2: &aws_sdk_ec2::Client,
    ssm: &aws_sdk_ssm::Client,
    case: &Case,
) -> Result<PreIncidentState, StepError> {
    let account = case.subject.account.as_str();
    let region = &case.subject.region;
    let id = &case.subject.instance_id;
    let instance = super::describe_instance(ec2, &case.subject).await?;
    let site = crate::aws::CallSite {
        account: account.to_owned(),
        region: region.to_owned(),
    };
    let protection = crate::ec2::termination_protection(ec2, &site, id).await?;
    let addresses = ec2
        .describe_addresses()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-id")
                .values(id)
                .build(),
        )
        .send()
        .await
        .map_err(|err| AwsError::from_sdk("ec2:DescribeAddresses", account, region, &err))?;
    let association = crate::ec2::profile_association(ec2, &site, id).await?;
    let association = association.as_ref();
    let tags: std::collections::BTreeMap<String, String> = instance
        .tags()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect();
    let managed = ssm
        .describe_instance_information()
        .instance_information_filter_list(
            aws_sdk_ssm::types::InstanceInformationFilter::builder()
                .key(aws_sdk_ssm::types::InstanceInformationFilterKey::InstanceIds)
                .value_set(id)
                .build()
                .map_err(|err| StepError::failed(err.to_string()))?,
        )
        .send()
        .await
        .map(|out| {
            out.instance_information_list().iter().any(|i| {
                i.instance_id() == Some(id.as_str())
                    && i.ping_status() == Some(&aws_sdk_ssm::types::PingStatus::Online)
            })
        })
        .map_err(|err| {
            AwsError::from_sdk("ssm:DescribeInstanceInformation", account, region, &err)
        })?;
    Ok(PreIncidentState {
        instance_id: id.clone(),
        state: instance
            .state()
            .and_then(|s| s.name())
            .map_or_else(|| "unknown".to_owned(), |n| n.as_str().to_owned()),
        interfaces: instance
            .network_interfaces()
            .iter()
            .map(|eni| InterfaceGroups {
                interface_id: eni.network_interface_id().unwrap_or_default().to_owned(),
                groups: eni
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_owned))
                    .collect(),
            })
            .collect(),
        instance_profile_arn: association
            .and_then(|a| a.iam_instance_profile())
            .and_then(|p| p.arn())
            .map(str::to_owned)
            .or_else(|| {
                instance
                    .iam_instance_profile()
                    .and_then(|p| p.arn())
                    .map(str::to_owned)
            }),
        profile_association_id: association
            .and_then(|a| a.association_id())
            .map(str::to_owned),
        elastic_ips: addresses
            .addresses()
            .iter()
            .filter_map(|a| a.public_ip().map(str::to_owned))
            .collect(),
        autoscaling_group: tags.get("aws:autoscaling:groupName").cloned(),
        tags,
        termination_protection_was: protection,
        ssm_managed: managed,
        recorded_at: now_rfc3339(),
    })
}

/// The evidence key of the pre-incident record.
pub fn pre_incident_key(case: &Case) -> String {
    format!(
        "cases/{}/{}/{}/pre-incident-state.json",
        case.case_id, case.subject.account, case.subject.instance_id
    )
}

async fn prepare(plane: &Plane, case: &Case) -> Result<Value, StepError> {
    let config = plane.member_config(case).await?;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let ssm = aws_sdk_ssm::Client::new(&config);
    let account = case.subject.account.as_str();
    let region = &case.subject.region;
    let id = &case.subject.instance_id;
    let state = pre_incident_state(&ec2, &ssm, case).await?;
    // Recorded before anything changes, and written where it cannot be altered.
    let key = pre_incident_key(case);
    if !plane.evidence()?.exists(&key).await? {
        plane.evidence()?.put_json(&key, &state).await?;
    }
    let site = crate::aws::CallSite::new(&config, account);
    crate::ec2::set_termination_protection(&ec2, &site, id, true).await?;
    let mut warnings = Vec::new();
    if case.subject.memory && !state.ssm_managed {
        if state.instance_profile_arn.is_none() {
            // No profile at all: the IR profile (SSM only) makes the agent reachable.
            ec2.associate_iam_instance_profile()
                .instance_id(id)
                .iam_instance_profile(
                    aws_sdk_ec2::types::IamInstanceProfileSpecification::builder()
                        .name(&plane.ir_instance_profile)
                        .build(),
                )
                .send()
                .await
                .map_err(|err| {
                    AwsError::from_sdk("ec2:AssociateIamInstanceProfile", account, region, &err)
                })?;
            warnings.push(format!(
                "attached the IR instance profile {} so that SSM can reach the instance",
                plane.ir_instance_profile
            ));
        } else {
            warnings.push(format!(
                "the instance is not reachable by SSM and already has the profile {}: memory capture will fail unless its role allows SSM",
                state.instance_profile_arn.as_deref().unwrap_or_default()
            ));
        }
    }
    Ok(json!({
        "pre_incident_key": key,
        "termination_protection_was": state.termination_protection_was,
        "ssm_managed": state.ssm_managed,
        "warnings": warnings,
    }))
}

/// A branch's result: `kind`, `status` (`succeeded`, `failed`, `skipped`) and artifacts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BranchResult {
    pub kind: String,
    pub status: String,
    #[serde(default)]
    pub artifacts: Vec<ArtifactRef>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

fn branches(state: &Value) -> Vec<BranchResult> {
    state
        .get("acquired")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter_map(|b| BranchResult::deserialize(b).ok())
                .collect()
        })
        .unwrap_or_default()
}

async fn verify(plane: &Plane, case: &Case, state: &Value) -> Result<Value, StepError> {
    let results = branches(state);
    let artifacts: Vec<ArtifactRef> = results.iter().flat_map(|b| b.artifacts.clone()).collect();
    if artifacts.is_empty() {
        let why: Vec<String> = results
            .iter()
            .map(|b| {
                format!(
                    "{}: {} {}",
                    b.kind,
                    b.status,
                    b.cause.as_deref().unwrap_or_default()
                )
            })
            .collect();
        return Err(StepError::failed(format!(
            "no artifact was acquired ({})",
            why.join("; ")
        )));
    }
    let mut verified = Vec::new();
    let mut failures = Vec::new();
    // The recorded progress of every artifact, read once for the whole step.
    let mut recorded = plane.table.detail(&case.case_id).await?.artifacts;
    for artifact in &artifacts {
        let manifest: Option<Manifest> = plane.evidence()?.get_json(&artifact.manifest_key).await?;
        let Some(manifest) = manifest else {
            failures.push(format!(
                "{}: its manifest {} is missing",
                artifact.key, artifact.manifest_key
            ));
            continue;
        };
        let writes = plane
            .evidence()?
            .versions_of(&artifact.manifest_key)
            .await?;
        if writes > 1 {
            failures.push(format!(
                "{}: its manifest {} was written {writes} times (a manifest is written once)",
                artifact.key, artifact.manifest_key
            ));
            continue;
        }
        let check = plane.evidence()?.check_artifact(&manifest).await?;
        let problem = check.problem.or_else(|| {
            (check.read.sha256 != artifact.sha256).then(|| {
                format!(
                    "hashes to {} now, the branch reported {}",
                    check.read.sha256, artifact.sha256
                )
            })
        });
        let ok = problem.is_none();
        match problem {
            None => verified.push(json!({
                "key": artifact.key,
                "sha256": manifest.sha256,
                "size": manifest.size,
                "stored_sha256": check.read.sha256,
                "stored_size": check.read.size,
                "version_id": check.read.version_id,
            })),
            Some(problem) => failures.push(format!("{}: {problem}", artifact.key)),
        }
        if let Some(progress) = recorded.iter_mut().find(|p| p.key == artifact.key) {
            progress.state = if ok {
                ArtifactState::Verified
            } else {
                ArtifactState::Failed
            };
            progress.updated_at = now_rfc3339();
            if !ok {
                progress.error = failures.last().cloned();
            }
            plane.table.record_artifact(&case.case_id, progress).await?;
        }
    }
    if !failures.is_empty() {
        return Err(StepError::integrity(failures.join("; ")));
    }
    Ok(json!({"verified": verified}))
}

async fn approval(plane: &Plane, case: &Case, message: &StepMessage) -> Result<Value, StepError> {
    plane
        .table
        .await_approval(
            &PendingApproval {
                case_id: case.case_id.clone(),
                requested_at: now_rfc3339(),
                decided: None,
            },
            &crate::model::case::TaskToken::new(message.token.clone()),
        )
        .await?;
    plane
        .table
        .record_step(
            &case.case_id,
            "approval",
            StepStatus::Waiting,
            Some("waiting for an approver".to_owned()),
        )
        .await?;
    notify(plane, case, "containment awaits approval", json!({
        "approve": format!("irf approve {} --confirm {}", case.case_id, case.subject.instance_id),
    }))
    .await?;
    Ok(json!({}))
}

async fn contain(plane: &Plane, case: &Case) -> Result<Value, StepError> {
    use crate::containment::{ContainmentOptions, apply};
    use crate::model::containment::InstanceRef;
    let instance = InstanceRef::from(&case.subject);
    let options = ContainmentOptions::from_config(plane.ctx.config());
    // The approval wait (with its four-eyes rule) was the decision; `auto` needs none.
    let outcome = apply(plane, &instance, &options, Some(&case.case_id), false).await?;
    let summary = json!({
        "state": outcome.record.state.as_str(),
        "isolation_group": outcome.record.isolation_group_id,
        "profile": outcome.record.profile_after,
        "changes": outcome.changed.iter().map(|a| format!("{}: {}", a.action, a.detail)).collect::<Vec<_>>(),
    });
    notify(plane, case, "contained", summary.clone()).await?;
    Ok(summary)
}

async fn closed(plane: &Plane, case: &Case, state: &Value) -> Result<Value, StepError> {
    let results = branches(state);
    let failed: Vec<String> = results
        .iter()
        .filter(|b| b.status == "failed")
        .map(|b| {
            format!(
                "{} failed: {}",
                b.kind,
                b.cause.as_deref().unwrap_or("unknown cause")
            )
        })
        .collect();
    let partial = (!failed.is_empty()).then(|| failed.join("; "));
    let closed = plane
        .table
        .close(&case.case_id, CaseStatus::Succeeded, partial.clone())
        .await?;
    plane
        .table
        .record_step(
            &case.case_id,
            "closed",
            StepStatus::Succeeded,
            partial.clone(),
        )
        .await?;
    notify(
        plane,
        case,
        "acquisition finished",
        json!({
            "artifacts": results.iter().flat_map(|b| b.artifacts.clone()).collect::<Vec<_>>(),
            "partial": partial,
            "approval": state.get("approval"),
            "containment": state.get("containment"),
            "closed_at": closed.closed_at,
        }),
    )
    .await?;
    Ok(json!({}))
}

async fn failed(plane: &Plane, case: &Case, state: &Value) -> Result<Value, StepError> {
    let error = state.get("error");
    let cause = error
        .and_then(|e| e.get("Cause"))
        .and_then(Value::as_str)
        .unwrap_or("no cause recorded");
    let code = error
        .and_then(|e| e.get("Error"))
        .and_then(Value::as_str)
        .unwrap_or("irf.Failed");
    let text = format!("{code}: {cause}");
    plane
        .table
        .close(&case.case_id, CaseStatus::Failed, Some(text.clone()))
        .await?;
    plane
        .table
        .record_step(
            &case.case_id,
            "failed",
            StepStatus::Failed,
            Some(text.clone()),
        )
        .await?;
    notify(
        plane,
        case,
        "acquisition failed",
        json!({"error": code, "cause": cause}),
    )
    .await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_messages_parse_and_bad_ones_are_named() {
        let body = r#"{"step":"disk","token":"t","execution":"arn:x","state":{"case":{}}}"#;
        let message = StepMessage::parse(body).expect("parses");
        assert_eq!(message.step, Step::Disk);
        assert!(message.case().is_err(), "an empty case is not a case");
        let err = StepMessage::parse(r#"{"step":"explode"}"#).expect_err("unknown step");
        assert!(err.contains("explode"));
    }

    #[test]
    fn failed_branches_are_read_from_the_state() {
        let state = json!({"acquired": [
            {"kind": "memory", "status": "failed", "error": "irf.Invalid", "cause": "not managed", "artifacts": []},
            {"kind": "disk", "status": "succeeded", "artifacts": [
                {"key": "k", "manifest_key": "k.manifest.json", "sha256": "ab", "size": 1, "source": "vol-1"}
            ]}
        ]});
        let results = branches(&state);
        assert_eq!(results.len(), 2);
        assert_eq!(results[1].artifacts[0].source, "vol-1");
        assert_eq!(results[0].cause.as_deref(), Some("not managed"));
    }
}
