//! A case and what it is made of: its id, its subject instance, its steps, its artifacts'
//! progress and the approval it waits on. Pure types: the case table stores them, every
//! service and view reads them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::AccountId;

/// A value that is not what a case field takes, named with what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadInput {
    #[error(
        "'{0}' is not a case id: case ids are 1 to 80 letters, digits, '-' or '_' (list them with 'irf cases')"
    )]
    CaseId(String),
    #[error("'{0}' is not a containment policy: use approval, auto or never")]
    Policy(String),
}

/// A case id: also the name of its Step Functions execution, so it keeps to the
/// characters and length execution names allow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CaseId(String);

impl CaseId {
    /// Checks a case id typed by an operator or read from a message.
    pub fn parse(text: &str) -> Result<Self, BadInput> {
        let valid = !text.is_empty()
            && text.len() <= 80
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(BadInput::CaseId(text.to_owned()))
        }
    }

    /// A new id for a case on `instance_id` opened at `at`: sortable by time, and naming
    /// the instance so that an operator recognises it.
    pub fn new(at: OffsetDateTime, instance_id: &str) -> Self {
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        );
        let instance: String = instance_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(40)
            .collect();
        Self(format!("{stamp}-{instance}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The EC2 instance the id names (an id made by [`CaseId::new`] for an instance), for
    /// where the case's record is not at hand.
    pub fn named_instance(&self) -> Option<&str> {
        let (_, instance) = self.0.split_once('-')?;
        instance.starts_with("i-").then_some(instance)
    }
}

impl std::fmt::Display for CaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CaseId {
    type Error = BadInput;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CaseId> for String {
    fn from(value: CaseId) -> Self {
        value.0
    }
}

/// What happens once evidence is verified.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainmentPolicy {
    /// Wait for an approver (the default: containment can break production).
    #[default]
    Approval,
    /// Contain at once.
    Auto,
    /// Never contain from this case.
    Never,
}

impl ContainmentPolicy {
    pub fn parse(text: &str) -> Result<Self, BadInput> {
        match text {
            "approval" => Ok(Self::Approval),
            "auto" => Ok(Self::Auto),
            "never" => Ok(Self::Never),
            other => Err(BadInput::Policy(other.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approval => "approval",
            Self::Auto => "auto",
            Self::Never => "never",
        }
    }
}

/// Where a case is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Recorded; the execution is being started.
    Opening,
    Running,
    AwaitingApproval,
    Succeeded,
    Failed,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opening => "opening",
            Self::Running => "running",
            Self::AwaitingApproval => "awaiting approval",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn is_open(self) -> bool {
        !matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// The instance a case is about, and what to acquire from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseSubject {
    pub account: AccountId,
    pub region: String,
    pub instance_id: String,
    pub memory: bool,
    pub disk: bool,
    pub containment: ContainmentPolicy,
}

/// A case as the case table keeps it; also the `case` object of the execution's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub case_id: CaseId,
    #[serde(flatten)]
    pub subject: CaseSubject,
    /// The STS identity (ARN) that asked for it.
    pub requested_by: String,
    /// What started it.
    pub trigger: Trigger,
    pub opened_at: String,
    pub status: CaseStatus,
    #[serde(default)]
    pub execution_arn: Option<String>,
    #[serde(default)]
    pub closed_at: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

/// The state of one step of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Running,
    Succeeded,
    Failed,
    Waiting,
}

/// One step as its handler recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: String,
    pub status: StepStatus,
    pub started_at: String,
    #[serde(default)]
    pub ended_at: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    /// How many times the step was started (a retry after a lost worker counts).
    #[serde(default)]
    pub attempts: u32,
}

/// The kind of an artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    Disk,
    Memory,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disk => "disk",
            Self::Memory => "memory",
        }
    }
}

/// Where an artifact is in its acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactState {
    Acquiring,
    Written,
    Verified,
    Failed,
}

/// Byte-level progress of one artifact, updated every few seconds while it is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactProgress {
    /// The evidence bucket key of the artifact.
    pub key: String,
    pub kind: ArtifactKind,
    /// What it is an image of: a volume id, or the instance id for memory.
    pub source: String,
    pub state: ArtifactState,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Bytes per second over the last interval.
    pub rate: f64,
    pub updated_at: String,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

/// A Step Functions task token: whoever holds it (and `states:SendTaskSuccess`) answers
/// the wait outside irf, so it is kept apart in the case table, where only the Security
/// account's automation writes (the desk's partition), and shown nowhere: its Debug is
/// redacted and no JSON irf prints carries it.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskToken(String);

impl TaskToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the one call that answers the wait.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TaskToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TaskToken(redacted)")
    }
}

/// An approval the case waits on. Its task token is kept apart (see
/// [`CaseTable::approval_token`]): the case's partition is one operators write ledger entries
/// to, and a token put there by one of them would answer another case's wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingApproval {
    pub case_id: CaseId,
    pub requested_at: String,
    #[serde(default)]
    pub decided: Option<ApprovalDecision>,
}

/// What an approver answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approved,
    Rejected,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What opened a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Trigger {
    /// An operator, from the workstation or the command line.
    #[serde(rename = "operator")]
    Operator,
    /// Someone set the incident tag on the instance.
    #[serde(rename = "tag")]
    Tag,
    /// A Security Hub custom action. Its event names no one, so under four eyes such a
    /// case's containment needs two approvers.
    #[serde(rename = "securityhub-action")]
    SecurityHubAction,
}

impl Trigger {
    /// The name the case records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Tag => "tag",
            Self::SecurityHubAction => "securityhub-action",
        }
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An approver's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    pub decision: Verdict,
    pub by: String,
    pub at: String,
    #[serde(default)]
    pub reason: Option<String>,
}

impl CaseSubject {
    /// The instance as a ledger target: `account/region/instance`.
    pub fn ledger_target(&self) -> String {
        format!("{}/{}/{}", self.account, self.region, self.instance_id)
    }
}

/// The current time as RFC 3339, the format of every time in the case table.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_are_execution_names() {
        let at = time::macros::datetime!(2026-11-28 09:30:15 UTC);
        let id = CaseId::new(at, "i-0123456789abcdef0");
        assert_eq!(id.as_str(), "20261128T093015Z-i-0123456789abcdef0");
        assert!(CaseId::parse(id.as_str()).is_ok());
        assert!(id.as_str().len() <= 80);
        assert_eq!(id.named_instance(), Some("i-0123456789abcdef0"));
        let other = CaseId::parse("case-7").expect("a hand-made id");
        assert_eq!(other.named_instance(), None, "names no instance");
    }

    #[test]
    fn hostile_instance_ids_cannot_break_a_case_id() {
        let at = time::macros::datetime!(2026-11-28 09:30:15 UTC);
        let id = CaseId::new(at, "i-\u{1b}[31mevil;rm -rf /");
        assert!(CaseId::parse(id.as_str()).is_ok());
        assert!(!id.as_str().contains('\u{1b}'));
    }

    #[test]
    fn bad_case_ids_are_named() {
        let err = CaseId::parse("bad id!").expect_err("space and bang");
        assert!(err.to_string().contains("'bad id!'"));
        assert!(CaseId::parse("").is_err());
        assert!(CaseId::parse(&"a".repeat(81)).is_err());
    }

    #[test]
    fn policies_round_trip_and_reject_unknown() {
        for policy in [
            ContainmentPolicy::Approval,
            ContainmentPolicy::Auto,
            ContainmentPolicy::Never,
        ] {
            assert_eq!(ContainmentPolicy::parse(policy.as_str()).ok(), Some(policy));
        }
        let err = ContainmentPolicy::parse("yolo").expect_err("unknown");
        assert!(err.to_string().contains("'yolo'"));
    }

    #[test]
    fn a_case_is_the_execution_input_shape() {
        let case = Case {
            case_id: CaseId::parse("c-1").expect("valid"),
            subject: CaseSubject {
                account: AccountId::parse("111122223333").expect("valid"),
                region: "us-east-1".into(),
                instance_id: "i-1".into(),
                memory: true,
                disk: false,
                containment: ContainmentPolicy::Never,
            },
            requested_by: "arn:aws:sts::123456789012:assumed-role/r/s".into(),
            trigger: Trigger::Operator,
            opened_at: "2026-11-28T09:30:15Z".into(),
            status: CaseStatus::Running,
            execution_arn: None,
            closed_at: None,
            error: None,
        };
        let json = serde_json::to_value(&case).expect("serialize");
        assert_eq!(json["instance_id"], "i-1");
        assert_eq!(json["memory"], true);
        assert_eq!(json["containment"], "never");
        let back: Case = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, case);
    }
}
