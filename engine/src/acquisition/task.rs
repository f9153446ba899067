//! What every step handler returns: the artifacts it wrote, or a failure with the error code
//! the state machine retries or ends on.

use serde::{Deserialize, Serialize};

use crate::aws::{AwsError, Retry};
use crate::containment::ContainmentError;
use crate::ledger::LedgerError;
use crate::plane::PlaneError;
use crate::store::case_table::CaseError;

/// One artifact as a branch reports it: the object it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    pub key: String,
    pub manifest_key: String,
    /// SHA-256 of the stored object.
    pub sha256: String,
    /// The stored object's length.
    pub size: u64,
    pub source: String,
}

/// The error a failed step reports to Step Functions: the state machine retries
/// [`StepCode::Throttled`] and [`StepCode::Transient`] and catches the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepCode {
    Throttled,
    Transient,
    /// The input or the resource is not what the step can work on: trying again cannot help.
    Invalid,
    /// Evidence does not match its hash or its structure.
    Integrity,
    /// The member account has no IR role to assume.
    MissingRole,
    /// The workflow's own credentials failed.
    Credentials,
    Failed,
}

impl StepCode {
    /// Every code, for checks against the state machine's definition.
    pub const ALL: [StepCode; 7] = [
        Self::Throttled,
        Self::Transient,
        Self::Invalid,
        Self::Integrity,
        Self::MissingRole,
        Self::Credentials,
        Self::Failed,
    ];

    /// The name the state machine's `Retry` and `Catch` match on.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttled => "irf.Throttled",
            Self::Transient => "irf.Transient",
            Self::Invalid => "irf.Invalid",
            Self::Integrity => "irf.Integrity",
            Self::MissingRole => "irf.MissingRole",
            Self::Credentials => "irf.Credentials",
            Self::Failed => "irf.Failed",
        }
    }

    /// Whether the state machine tries the step again.
    pub fn is_retried(self) -> bool {
        matches!(self, Self::Throttled | Self::Transient)
    }
}

impl std::fmt::Display for StepCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step's failure, with the error code the state machine sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct StepError {
    pub code: StepCode,
    pub message: String,
}

impl StepError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: StepCode::Invalid,
            message: message.into(),
        }
    }

    pub fn integrity(message: impl Into<String>) -> Self {
        Self {
            code: StepCode::Integrity,
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: StepCode::Failed,
            message: message.into(),
        }
    }
}

impl From<AwsError> for StepError {
    fn from(err: AwsError) -> Self {
        let code = match (&err, err.retry()) {
            (AwsError::AssumeRole { .. }, _) => StepCode::MissingRole,
            (AwsError::Credentials { .. }, _) => StepCode::Credentials,
            (_, Retry::Throttled) => StepCode::Throttled,
            (_, Retry::Transient) => StepCode::Transient,
            (_, Retry::Never) => StepCode::Failed,
        };
        Self {
            code,
            message: err.to_string(),
        }
    }
}

impl From<CaseError> for StepError {
    fn from(err: CaseError) -> Self {
        match err {
            CaseError::Aws(aws) => aws.into(),
            other => Self::failed(other.to_string()),
        }
    }
}

impl From<ContainmentError> for StepError {
    fn from(err: ContainmentError) -> Self {
        match err {
            ContainmentError::Aws(aws) => aws.into(),
            ContainmentError::Case(case) => case.into(),
            ContainmentError::Ledger(ledger) => ledger.into(),
            other => Self::invalid(other.to_string()),
        }
    }
}

impl From<LedgerError> for StepError {
    fn from(err: LedgerError) -> Self {
        match err {
            LedgerError::Aws(aws) => aws.into(),
            LedgerError::Case(case) => case.into(),
            // Another writer kept taking the next sequence: the step may append when tried again.
            contended @ LedgerError::Contended { .. } => Self {
                code: StepCode::Transient,
                message: contended.to_string(),
            },
            LedgerError::NotAnArtifact { .. }
            | LedgerError::NoEvidenceBucket { .. }
            | LedgerError::Export(_)
            | LedgerError::ExportNotRecorded { .. } => Self::invalid(err.to_string()),
            unsealed @ LedgerError::Unsealed { .. } => Self::integrity(unsealed.to_string()),
        }
    }
}

impl From<PlaneError> for StepError {
    fn from(err: PlaneError) -> Self {
        match err {
            PlaneError::Aws(aws) => aws.into(),
            missing @ PlaneError::NotConfigured { .. } => Self::invalid(missing.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::SdkError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn failed(status: u16, code: &str) -> AwsError {
        let err = aws_sdk_ebs::operation::get_snapshot_block::GetSnapshotBlockError::generic(
            ErrorMetadata::builder().code(code).message("m").build(),
        );
        let raw = Response::new(
            StatusCode::try_from(status).expect("status"),
            SdkBody::empty(),
        );
        AwsError::from_sdk(
            "ebs:GetSnapshotBlock",
            "1",
            "r",
            &SdkError::service_error(err, raw),
        )
    }

    /// A step's retry code follows the call's retry class, which follows the SDK's own
    /// classification of the service's answer, never the wording of a message.
    #[test]
    fn aws_errors_map_to_retryable_codes_by_the_answer_not_its_words() {
        assert_eq!(
            StepError::from(failed(400, "ThrottlingException")).code,
            StepCode::Throttled
        );
        assert_eq!(
            StepError::from(failed(503, "SlowDown")).code,
            StepCode::Throttled
        );
        assert_eq!(
            StepError::from(failed(503, "ServiceUnavailable")).code,
            StepCode::Transient
        );
        assert_eq!(
            StepError::from(failed(500, "InternalError")).code,
            StepCode::Transient
        );
        assert_eq!(
            StepError::from(failed(400, "RequestTimeout")).code,
            StepCode::Transient
        );
        // A message that merely mentions throttling is not a throttled call.
        let denied = failed(403, "AccessDenied");
        assert!(
            matches!(&denied, AwsError::Call(call) if call.code.as_deref() == Some("AccessDenied"))
        );
        assert_eq!(StepError::from(denied).code, StepCode::Failed);
        let timeout: SdkError<
            aws_sdk_ebs::operation::get_snapshot_block::GetSnapshotBlockError,
            Response,
        > = SdkError::timeout_error("slow");
        let timeout = AwsError::from_sdk("ebs:GetSnapshotBlock", "1", "r", &timeout);
        assert_eq!(StepError::from(timeout).code, StepCode::Transient);
    }
}
