//! The decision desk: the decisions the four-eyes rule governs are taken in the Security
//! account, not on an operator's machine. An operator sends what they decide (open a case;
//! approve or reject a case's containment; contain an instance, refuse a containment request,
//! roll one back) to the Security account's decisions queue; the automation takes it under the
//! deployment's rule and writes the answer where the operator reads it.
//!
//! Why a queue: SQS stamps every message with its sender's user id (`SenderId`: the role's
//! unique id and the session name, or the IAM user's id), which the sender cannot choose. The
//! desk checks that stamp against the ARN the message claims before it records anyone as
//! requester or approver. Operators hold neither `states:SendTaskSuccess` nor the member
//! containment role, so nothing they run steps around the rule.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::acquisition::{Decided, Decision, WorkflowError};

use crate::aws::{AwsError, describe_sdk_error};
use crate::containment::{self, ContainmentError, ContainmentOptions, ContainmentOutcome};
use crate::model::case::{CaseId, CaseSubject, Trigger};
use crate::model::containment::{ContainmentRecord, ContainmentState, InstanceRef};
use crate::plane::Plane;
use crate::store::case_table::Opened;

/// The decisions queue, by the name the configuration uses (`workflow.step_queues`).
pub const DECISIONS_QUEUE: &str = "decisions";

/// How long an operator waits for the desk's answer before being told where it will appear.
const PATIENCE: Duration = Duration::from_secs(120);
const POLL_EVERY: Duration = Duration::from_millis(400);

/// What an operator asks the desk to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ask {
    /// Open a case for an instance (or join its open one) and start its execution: the
    /// execution's input names the sender as requester, which the four-eyes rule reads.
    OpenCase { subject: CaseSubject },
    /// Answer the containment approval a case's workflow waits for.
    DecideCase { case_id: CaseId, decision: Decision },
    /// Contain an instance: applied at once, or recorded as a request a second person
    /// approves when the deployment requires four eyes.
    Contain {
        instance: InstanceRef,
        reason: Option<String>,
    },
    /// Refuse an instance's waiting containment request.
    RejectContainment {
        instance: InstanceRef,
        reason: String,
    },
    /// Restore what containment of an instance replaced.
    RollBack { instance: InstanceRef },
}

/// One message on the decisions queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeskMessage {
    /// Where the answer is written (`DESK#<id>` in the case table).
    pub id: String,
    /// The STS ARN the sender says it acts as; the desk checks it against SQS's `SenderId`.
    pub sender: String,
    pub ask: Ask,
}

/// What the desk did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    Opened {
        opened: Opened,
    },
    /// The case's decision is recorded, and its workflow told or a second approval awaited.
    Decided {
        case_id: CaseId,
        decided: Decided,
    },
    /// The containment waits for a second person's approval.
    Requested {
        record: ContainmentRecord,
    },
    Contained {
        outcome: ContainmentOutcome,
    },
    ContainmentRejected {
        record: ContainmentRecord,
    },
    RolledBack {
        outcome: ContainmentOutcome,
    },
    Refused {
        refusal: Refusal,
    },
}

/// Why the desk did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// The same person asked and would approve.
    #[error("{message}")]
    FourEyes { message: String },
    /// The message claims an identity SQS did not see send it.
    #[error(
        "the decision claims to come from {claimed}, but SQS received it from user id '{sender_id}': only the sender's own identity may decide"
    )]
    Sender { claimed: String, sender_id: String },
    /// What was asked could not be done (no such case, not waiting, an AWS error).
    #[error("{message}")]
    Failed { message: String },
}

/// Why an operator's decision did not reach an answer.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error(
        "workflow.step_queues.decisions is not set in the configuration: deploy 3-security-acquisition-automation.yaml and put its DecisionsQueueUrl output there (see 'irf config path'), or run 'irf lab'"
    )]
    NotConfigured,
    #[error("sending the decision to {queue} failed: {message}")]
    Send { queue: String, message: String },
    #[error(
        "the Security account has not answered decision {id} within {seconds} s; it stays queued and is taken when the desk runs (check the step function's decisions event source mapping and its dead-letter queue)"
    )]
    NoAnswer { id: String, seconds: u64 },
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Case(#[from] crate::store::case_table::CaseError),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// The decisions queue's URL, as the configuration names it.
pub fn queue_url(config: &crate::config::Config) -> Option<&str> {
    config
        .workflow
        .step_queues
        .get(DECISIONS_QUEUE)
        .map(String::as_str)
}

/// Sends `ask` to the desk as this plane's operator and waits for its answer.
pub async fn ask(plane: &Plane, ask: Ask) -> Result<Answer, DeskError> {
    let queue = queue_url(plane.ctx.config())
        .ok_or(DeskError::NotConfigured)?
        .to_owned();
    let id = message_id();
    let message = DeskMessage {
        id: id.clone(),
        sender: plane.operator.clone(),
        ask,
    };
    let body = serde_json::to_string(&message).map_err(|err| AwsError::Request {
        operation: "sqs:SendMessage",
        message: format!("cannot encode the decision: {err}"),
    })?;
    aws_sdk_sqs::Client::new(&plane.ctx.base_config(&plane.region))
        .send_message()
        .queue_url(&queue)
        .message_body(body)
        .send()
        .await
        .map_err(|err| DeskError::Send {
            queue: queue.clone(),
            message: describe_sdk_error(&err),
        })?;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(answer) = plane.table.desk_answer::<Answer>(&id).await? {
            return match answer {
                Answer::Refused { refusal } => Err(DeskError::Refused(refusal)),
                answer => Ok(answer),
            };
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DeskError::NoAnswer {
                id,
                seconds: PATIENCE.as_secs(),
            });
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

fn message_id() -> String {
    use rand::Rng;
    let random: u64 = rand::rng().random();
    format!(
        "{}-{random:016x}",
        time::OffsetDateTime::now_utc().unix_timestamp()
    )
}

/// Takes one message of the decisions queue, sent by `sender_id` (SQS's `SenderId`), and
/// writes its answer. Returns false when the message could not be read or answered, so that
/// it comes back (and ends in the dead-letter queue if it never can be).
pub async fn take(plane: &Plane, body: &str, sender_id: Option<&str>) -> bool {
    let message: DeskMessage = match serde_json::from_str(body) {
        Ok(message) => message,
        Err(err) => {
            tracing::error!(error = %err, "malformed decision; leaving it for the dead-letter queue");
            return false;
        }
    };
    let answer = match verify_sender(plane, &message.sender, sender_id).await {
        Ok(()) => {
            // The desk acts with the automation's credentials, and records the sender.
            let acting = plane.acting_for(&message.sender);
            // Its ledger entries name the AWS requests behind them, as a step's do.
            Box::pin(crate::request_ids::recording(decide(
                &acting,
                message.ask.clone(),
            )))
            .await
        }
        Err(refusal) => Answer::Refused { refusal },
    };
    if let Answer::Refused { refusal } = &answer {
        tracing::warn!(id = message.id, sender = message.sender, %refusal, "decision refused");
    } else {
        tracing::info!(id = message.id, sender = message.sender, "decision taken");
    }
    match plane.table.save_desk_answer(&message.id, &answer).await {
        Ok(()) => true,
        Err(err) => {
            tracing::error!(id = message.id, error = %err, "cannot record the decision's answer; it will be taken again");
            false
        }
    }
}

/// Checks that `claimed` (an STS or IAM ARN of this account) is who SQS saw send the message.
async fn verify_sender(
    plane: &Plane,
    claimed: &str,
    sender_id: Option<&str>,
) -> Result<(), Refusal> {
    let refuse = || Refusal::Sender {
        claimed: claimed.to_owned(),
        sender_id: sender_id.unwrap_or("(none)").to_owned(),
    };
    let sender_id = sender_id.ok_or_else(refuse)?;
    let principal = SenderArn::parse(claimed).ok_or_else(refuse)?;
    let own = plane
        .ctx
        .caller_identity()
        .await
        .map_err(|err| Refusal::Failed {
            message: err.to_string(),
        })?;
    if principal.account() != own.account {
        return Err(refuse());
    }
    let iam = aws_sdk_iam::Client::new(&plane.ctx.base_config(&plane.region));
    let failed = |action: &str, message: String| Refusal::Failed {
        message: format!("{action} for the decision's sender {claimed}: {message}"),
    };
    let expected = match &principal {
        SenderArn::Session { role, session, .. } => {
            let out = iam
                .get_role()
                .role_name(role)
                .send()
                .await
                .map_err(|err| failed("iam:GetRole", describe_sdk_error(&err)))?;
            let role_id = out.role().map(|r| r.role_id()).unwrap_or_default();
            format!("{role_id}:{session}")
        }
        SenderArn::User { name, .. } => iam
            .get_user()
            .user_name(name)
            .send()
            .await
            .map_err(|err| failed("iam:GetUser", describe_sdk_error(&err)))?
            .user()
            .map(|u| u.user_id().to_owned())
            .unwrap_or_default(),
    };
    if expected == sender_id {
        Ok(())
    } else {
        Err(refuse())
    }
}

/// The identities that may send decisions: an assumed-role session or an IAM user.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SenderArn {
    Session {
        account: String,
        role: String,
        session: String,
    },
    User {
        account: String,
        name: String,
    },
}

impl SenderArn {
    fn parse(arn: &str) -> Option<Self> {
        let fields: Vec<&str> = arn.splitn(6, ':').collect();
        let ["arn", _, service, "", account, resource] = fields.as_slice() else {
            return None;
        };
        match *service {
            "sts" => {
                let rest = resource.strip_prefix("assumed-role/")?;
                let (role, session) = rest.split_once('/')?;
                (!role.is_empty() && !session.is_empty()).then(|| Self::Session {
                    account: (*account).to_owned(),
                    role: role.to_owned(),
                    session: session.to_owned(),
                })
            }
            "iam" => {
                let path = resource.strip_prefix("user/")?;
                // A user's ARN carries its path; GetUser takes the name alone.
                let name = path.rsplit('/').next().filter(|n| !n.is_empty())?;
                Some(Self::User {
                    account: (*account).to_owned(),
                    name: name.to_owned(),
                })
            }
            _ => None,
        }
    }

    fn account(&self) -> &str {
        match self {
            Self::Session { account, .. } | Self::User { account, .. } => account,
        }
    }
}

/// Takes a decision as `acting.operator`, under the deployment's four-eyes rule.
async fn decide(acting: &Plane, ask: Ask) -> Answer {
    let four_eyes = acting.ctx.config().workflow.four_eyes;
    let result: Result<Answer, Refusal> = match ask {
        Ask::OpenCase { subject } => crate::acquisition::start(acting, subject, Trigger::Operator)
            .await
            .map(|opened| Answer::Opened { opened })
            .map_err(Refusal::from),
        Ask::DecideCase { case_id, decision } => {
            crate::acquisition::decide(acting, &case_id, decision)
                .await
                .map(|decided| Answer::Decided { case_id, decided })
                .map_err(Refusal::from)
        }
        Ask::Contain { instance, reason } => contain(acting, &instance, reason, four_eyes)
            .await
            .map_err(Refusal::from),
        Ask::RejectContainment { instance, reason } => {
            containment::reject_request(acting, &instance, &reason)
                .await
                .map(|record| Answer::ContainmentRejected { record })
                .map_err(Refusal::from)
        }
        Ask::RollBack { instance } => containment::rollback(acting, &instance)
            .await
            .map(|outcome| Answer::RolledBack { outcome })
            .map_err(Refusal::from),
    };
    result.unwrap_or_else(|refusal| Answer::Refused { refusal })
}

/// Contains `instance`, or records the request when four eyes are required and no one else
/// asked for it first.
async fn contain(
    acting: &Plane,
    instance: &InstanceRef,
    reason: Option<String>,
    four_eyes: bool,
) -> Result<Answer, ContainmentError> {
    let existing = containment::record(acting, instance).await?;
    let people = crate::identity::People::of(acting.ctx.config());
    let requested_by_other = existing.as_ref().is_some_and(|r| {
        r.state == ContainmentState::Requested && !people.same(&r.requested_by, &acting.operator)
    });
    let begun = existing.as_ref().is_some_and(|r| r.state.holds_originals());
    if four_eyes && !requested_by_other && !begun {
        let record = containment::request(acting, instance, reason, None).await?;
        if people.same(&record.requested_by, &acting.operator) {
            return Ok(Answer::Requested { record });
        }
    }
    let options = ContainmentOptions::from_config(acting.ctx.config());
    let outcome = containment::apply(acting, instance, &options, None, four_eyes).await?;
    Ok(Answer::Contained { outcome })
}

impl From<WorkflowError> for Refusal {
    fn from(err: WorkflowError) -> Self {
        match err {
            WorkflowError::FourEyes { .. } => Self::FourEyes {
                message: err.to_string(),
            },
            other => Self::Failed {
                message: other.to_string(),
            },
        }
    }
}

impl From<ContainmentError> for Refusal {
    fn from(err: ContainmentError) -> Self {
        match err {
            ContainmentError::FourEyes { .. } => Self::FourEyes {
                message: err.to_string(),
            },
            other => Self::Failed {
                message: other.to_string(),
            },
        }
    }
}

/// The operator's side of each decision.
pub mod client {
    use super::{Answer, Ask, DeskError, Refusal};
    use crate::acquisition::Decision;
    use crate::containment::ContainmentOutcome;
    use crate::model::case::CaseId;
    use crate::model::containment::{ContainmentRecord, InstanceRef};
    use crate::plane::Plane;

    /// What asking to contain an instance led to.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Containing {
        /// Recorded as a request; a second person approves it.
        Requested(ContainmentRecord),
        Contained(ContainmentOutcome),
    }

    fn unexpected(answer: &Answer) -> DeskError {
        DeskError::Refused(Refusal::Failed {
            message: format!("the desk answered with something else than asked: {answer:?}"),
        })
    }

    /// Opens a case for `subject` (or joins its open one).
    pub async fn open_case(
        plane: &Plane,
        subject: crate::model::case::CaseSubject,
    ) -> Result<crate::store::case_table::Opened, DeskError> {
        match super::ask(plane, Ask::OpenCase { subject }).await? {
            Answer::Opened { opened } => Ok(opened),
            other => Err(unexpected(&other)),
        }
    }

    /// Approves or rejects the containment a case waits for.
    pub async fn decide_case(
        plane: &Plane,
        case_id: &CaseId,
        decision: Decision,
    ) -> Result<crate::acquisition::Decided, DeskError> {
        let ask = Ask::DecideCase {
            case_id: case_id.clone(),
            decision,
        };
        match super::ask(plane, ask).await? {
            Answer::Decided { decided, .. } => Ok(decided),
            other => Err(unexpected(&other)),
        }
    }

    /// Contains `instance` (or asks for it, under four eyes).
    pub async fn contain(
        plane: &Plane,
        instance: &InstanceRef,
        reason: Option<String>,
    ) -> Result<Containing, DeskError> {
        let ask = Ask::Contain {
            instance: instance.clone(),
            reason,
        };
        match super::ask(plane, ask).await? {
            Answer::Requested { record } => Ok(Containing::Requested(record)),
            Answer::Contained { outcome } => Ok(Containing::Contained(outcome)),
            other => Err(unexpected(&other)),
        }
    }

    /// Refuses `instance`'s waiting containment request.
    pub async fn reject_containment(
        plane: &Plane,
        instance: &InstanceRef,
        reason: &str,
    ) -> Result<ContainmentRecord, DeskError> {
        let ask = Ask::RejectContainment {
            instance: instance.clone(),
            reason: reason.to_owned(),
        };
        match super::ask(plane, ask).await? {
            Answer::ContainmentRejected { record } => Ok(record),
            other => Err(unexpected(&other)),
        }
    }

    /// Rolls back `instance`'s containment.
    pub async fn roll_back(
        plane: &Plane,
        instance: &InstanceRef,
    ) -> Result<ContainmentOutcome, DeskError> {
        let ask = Ask::RollBack {
            instance: instance.clone(),
        };
        match super::ask(plane, ask).await? {
            Answer::RolledBack { outcome } => Ok(outcome),
            other => Err(unexpected(&other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_arns_name_a_session_or_a_user() {
        assert_eq!(
            SenderArn::parse("arn:aws:sts::111122223333:assumed-role/irf-operator/alice"),
            Some(SenderArn::Session {
                account: "111122223333".to_owned(),
                role: "irf-operator".to_owned(),
                session: "alice".to_owned(),
            })
        );
        assert_eq!(
            SenderArn::parse("arn:aws:iam::111122223333:user/team/bob"),
            Some(SenderArn::User {
                account: "111122223333".to_owned(),
                name: "bob".to_owned(),
            })
        );
        for bad in [
            "arn:aws:sts::111122223333:assumed-role/irf-operator",
            "arn:aws:sts::111122223333:federated-user/alice",
            "arn:aws:iam::111122223333:role/irf-operator",
            "arn:aws:s3:::bucket",
            "alice",
        ] {
            assert_eq!(SenderArn::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn messages_and_answers_round_trip() {
        let message = DeskMessage {
            id: "1-00".to_owned(),
            sender: "arn:aws:sts::111122223333:assumed-role/irf-operator/alice".to_owned(),
            ask: Ask::DecideCase {
                case_id: CaseId::parse("20261206T190000Z-i-0123456789abcdef0").expect("id"),
                decision: Decision::Reject {
                    reason: "false positive".to_owned(),
                },
            },
        };
        let text = serde_json::to_string(&message).expect("encode");
        assert_eq!(
            serde_json::from_str::<DeskMessage>(&text).expect("decode"),
            message
        );
        let refused = Answer::Refused {
            refusal: Refusal::FourEyes {
                message: "four-eyes".to_owned(),
            },
        };
        let text = serde_json::to_string(&refused).expect("encode");
        assert!(text.contains("\"reason\":\"four_eyes\""), "{text}");
        assert_eq!(
            serde_json::from_str::<Answer>(&text).expect("decode"),
            refused
        );
    }
}
