//! Acquisition: starting (or joining) a case's Step Functions execution, and the step
//! handlers the workers run for it: prepare, memory, disk, verify, approval, contain, and
//! the opening and closing notifications.

pub mod disk;
pub mod memory;
pub mod steps;
pub mod task;

use serde::{Deserialize, Serialize};

use crate::aws::{AwsError, describe_sdk_error};
use crate::config::AccountId;
use crate::ec2::find_instance;
use crate::model::case::{Case, CaseStatus, CaseSubject, Trigger};
use crate::plane::{Plane, PlaneError};
use crate::store::case_table::{CaseError, Opened};

/// The step queues, by the name the configuration and the state machine use.
pub const STEPS_QUEUE: &str = "steps";
pub const IMAGING_QUEUE: &str = "imaging";
pub const APPROVALS_QUEUE: &str = "approvals";

/// Why the workflow cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error(transparent)]
    Plane(#[from] PlaneError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(
        "instance {instance} was not found in account {account}, region {region}: check the id, account and region ('irf instances' lists them)"
    )]
    UnknownInstance {
        instance: String,
        account: AccountId,
        region: String,
    },
    #[error(
        "case {case} is not waiting for approval ({status}): 'irf case {case}' shows where it is"
    )]
    NotAwaitingApproval { case: String, status: String },
    #[error(
        "four-eyes: {operator} opened case {case}, so another operator must approve its containment"
    )]
    FourEyes { case: String, operator: String },
    #[error("answering the approval of case {case} failed: {message}")]
    Answer { case: String, message: String },
    #[error("starting the execution of case {case} failed: {message}")]
    Start { case: String, message: String },
    #[error("cannot read who opened case {case} from its execution: {message}")]
    Requester { case: String, message: String },
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// What the execution receives: `{"case": {...}}`; handlers add their results beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecutionInput {
    pub case: Case,
}

/// Opens a case for `subject` and starts its execution, or joins the instance's open case.
pub async fn start(
    plane: &Plane,
    subject: CaseSubject,
    trigger: Trigger,
) -> Result<Opened, WorkflowError> {
    let state_machine = plane.state_machine()?.to_owned();
    check_instance(plane, &subject).await?;
    let opened = plane
        .table
        .open_or_join(subject, &plane.operator, trigger)
        .await?;
    let Opened::New(mut case) = opened else {
        return Ok(opened);
    };
    let input = serde_json::to_string(&ExecutionInput { case: case.clone() }).map_err(|err| {
        AwsError::Request {
            operation: "states:StartExecution",
            message: format!("cannot encode the execution input: {err}"),
        }
    })?;
    let started = plane
        .sfn
        .start_execution()
        .state_machine_arn(&state_machine)
        .name(case.case_id.as_str())
        .input(input)
        .send()
        .await;
    match started {
        Ok(out) => {
            case.execution_arn = Some(out.execution_arn().to_owned());
            case.status = CaseStatus::Running;
            plane.table.save_case(&case).await?;
            crate::ledger::append(
                plane,
                &case.case_id,
                crate::model::ledger::NewEntry::new(
                    crate::model::ledger::Action::CaseOpened,
                    case.subject.ledger_target(),
                )
                .detail(format!(
                    "trigger {trigger}; memory {}, disk {}, containment {}; execution {}",
                    case.subject.memory,
                    case.subject.disk,
                    case.subject.containment.as_str(),
                    out.execution_arn()
                )),
            )
            .await?;
            Ok(Opened::New(case))
        }
        Err(err) => {
            let message = describe_sdk_error(&err);
            // Release the instance so that the next trigger can try again.
            plane
                .table
                .close(&case.case_id, CaseStatus::Failed, Some(message.clone()))
                .await?;
            Err(WorkflowError::Start {
                case: case.case_id.to_string(),
                message,
            })
        }
    }
}

/// `case_id` as it was opened (who opened it, and how), as its execution's input says. Only the Security account's automation
/// starts executions (the desk for operators, and the triggers), so no operator wrote it, where
/// the case item's `requested_by` shares a partition operators write ledger entries to.
async fn opened_case(
    plane: &Plane,
    case_id: &crate::model::case::CaseId,
) -> Result<Case, WorkflowError> {
    let failed = |message: String| WorkflowError::Requester {
        case: case_id.to_string(),
        message,
    };
    let execution = execution_arn(plane.state_machine()?, case_id);
    let described = plane
        .sfn
        .describe_execution()
        .execution_arn(&execution)
        .send()
        .await
        .map_err(|err| failed(describe_sdk_error(&err)))?;
    let input: ExecutionInput = serde_json::from_str(described.input().unwrap_or_default())
        .map_err(|err| failed(format!("its input is not a case: {err}")))?;
    if &input.case.case_id != case_id {
        return Err(failed(format!(
            "execution {execution} is case {}",
            input.case.case_id
        )));
    }
    Ok(input.case)
}

/// The execution of `case_id`: executions are named after their case.
fn execution_arn(state_machine_arn: &str, case_id: &crate::model::case::CaseId) -> String {
    format!(
        "{}:{case_id}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// [`find_instance`] for a step: an instance that is gone is an invalid step.
pub async fn describe_instance(
    ec2: &aws_sdk_ec2::Client,
    subject: &CaseSubject,
) -> Result<aws_sdk_ec2::types::Instance, task::StepError> {
    find_instance(ec2, &subject.into()).await?.ok_or_else(|| {
        task::StepError::invalid(format!(
            "instance {} no longer exists in account {}, region {}",
            subject.instance_id, subject.account, subject.region
        ))
    })
}

/// Refuses a case on an instance that does not exist, before anything is recorded.
async fn check_instance(plane: &Plane, subject: &CaseSubject) -> Result<(), WorkflowError> {
    let config = plane
        .ctx
        .account_config(&subject.account, &subject.region)
        .await?;
    match find_instance(&aws_sdk_ec2::Client::new(&config), &subject.into()).await? {
        Some(_) => Ok(()),
        None => Err(WorkflowError::UnknownInstance {
            instance: subject.instance_id.clone(),
            account: subject.account.clone(),
            region: subject.region.clone(),
        }),
    }
}

/// An approver's answer to a case waiting for containment approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject { reason: String },
}

/// Answers the approval wait of `case_id`: the workflow contains (approve) or closes
/// without containment (reject). The decision and the approver (`plane.operator`) are
/// recorded. The desk ([`crate::desk`]) calls it in the Security account with the sender it
/// checked; operators ask the desk.
pub async fn decide(
    plane: &Plane,
    case_id: &crate::model::case::CaseId,
    decision: Decision,
) -> Result<Decided, WorkflowError> {
    let detail = plane.table.detail(case_id).await?;
    let not_waiting = || WorkflowError::NotAwaitingApproval {
        case: case_id.to_string(),
        status: detail.case.status.as_str().to_owned(),
    };
    let waiting = detail.case.status == CaseStatus::AwaitingApproval
        && detail
            .approval
            .as_ref()
            .is_some_and(|p| p.decided.is_none());
    if !waiting {
        return Err(not_waiting());
    }
    // The token as the approval step kept it, where operators cannot write.
    let token = plane
        .table
        .approval_token(case_id)
        .await?
        .ok_or_else(not_waiting)?;
    if decision == Decision::Approve && plane.ctx.config().workflow.four_eyes {
        let opened = opened_case(plane, case_id).await?;
        let people = crate::identity::People::of(plane.ctx.config());
        if people.same(&opened.requested_by, &plane.operator) {
            return Err(WorkflowError::FourEyes {
                case: case_id.to_string(),
                operator: plane.operator.clone(),
            });
        }
        // No one is known to have asked: two people approve.
        if opened.trigger == Trigger::SecurityHubAction {
            match plane.table.first_approval(case_id).await? {
                None => {
                    let first = crate::model::case::ApprovalDecision {
                        decision: crate::model::case::Verdict::Approved,
                        by: plane.operator.clone(),
                        at: crate::model::case::now_rfc3339(),
                        reason: None,
                    };
                    plane.table.save_first_approval(case_id, &first).await?;
                    let mut entry = crate::model::ledger::NewEntry::new(
                        crate::model::ledger::Action::ContainmentFirstApproval,
                        detail.case.subject.ledger_target(),
                    );
                    entry.detail = Some(
                        "a Security Hub action opened the case and its event names no one: a second person approves".to_owned(),
                    );
                    crate::ledger::append(plane, case_id, entry).await?;
                    return Ok(Decided::AwaitsSecondApproval);
                }
                Some(first) if people.same(&first.by, &plane.operator) => {
                    return Err(WorkflowError::FourEyes {
                        case: case_id.to_string(),
                        operator: plane.operator.clone(),
                    });
                }
                Some(_) => {}
            }
        }
    }
    let (verdict, reason) = match &decision {
        Decision::Approve => (crate::model::case::Verdict::Approved, None),
        Decision::Reject { reason } => {
            (crate::model::case::Verdict::Rejected, Some(reason.clone()))
        }
    };
    let word = verdict.as_str();
    let answer = crate::model::case::ApprovalDecision {
        decision: verdict,
        by: plane.operator.clone(),
        at: crate::model::case::now_rfc3339(),
        reason,
    };
    let output = serde_json::to_string(&answer).map_err(|err| AwsError::Request {
        operation: "states:SendTaskSuccess",
        message: format!("cannot encode the decision: {err}"),
    })?;
    // Recorded before the workflow hears of it: the closing step may run at once, and
    // must find the decision already there.
    let mut entry = crate::model::ledger::NewEntry::new(
        crate::model::ledger::Action::ContainmentDecided(verdict),
        detail.case.subject.ledger_target(),
    );
    entry.detail = answer.reason.clone();
    plane.table.decide(case_id, answer).await?;
    crate::ledger::append(plane, case_id, entry).await?;
    plane
        .table
        .record_step(
            case_id,
            "approval",
            crate::model::case::StepStatus::Succeeded,
            Some(format!("{word} by {}", plane.operator)),
        )
        .await?;
    if let Err(err) = plane
        .sfn
        .send_task_success()
        .task_token(token.expose())
        .output(output)
        .send()
        .await
    {
        // The workflow still waits: put the case back as it was so the decision can be retried.
        plane.table.undecide(case_id).await?;
        return Err(WorkflowError::Answer {
            case: case_id.to_string(),
            message: describe_sdk_error(&err),
        });
    }
    Ok(Decided::Answered)
}

/// What a decision on a case's approval led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decided {
    /// The workflow has its answer.
    Answered,
    /// A first approval of a case no one is known to have asked for: a second person approves.
    AwaitsSecondApproval,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cases_execution_is_named_after_it() {
        let case =
            crate::model::case::CaseId::parse("20261206T190000Z-i-0123456789abcdef0").expect("id");
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-east-1:111122223333:stateMachine:irf-acquisition",
                &case
            ),
            "arn:aws:states:us-east-1:111122223333:execution:irf-acquisition:20261206T190000Z-i-0123456789abcdef0"
        );
    }
}
