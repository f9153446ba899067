//! What every step handler returns: the artifacts it wrote, or a failure with the error code
//! the state machine retries or ends on.

use serde::{Deserialize, Serialize};

use crate::aws::AwsError;
use crate::containment::ContainmentError;
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

/// A step's failure, with the error code the state machine sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct StepError {
    /// `irf.Throttled` and `irf.Transient` are retried by the state machine; the others end
    /// the step.
    pub code: &'static str,
    pub message: String,
}

impl StepError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: "irf.Invalid",
            message: message.into(),
        }
    }

    pub fn integrity(message: impl Into<String>) -> Self {
        Self {
            code: "irf.Integrity",
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: "irf.Failed",
            message: message.into(),
        }
    }
}

impl From<AwsError> for StepError {
    fn from(err: AwsError) -> Self {
        let message = err.to_string();
        let code = match &err {
            AwsError::AssumeRole { .. } => "irf.MissingRole",
            AwsError::Credentials { .. } => "irf.Credentials",
            _ if message.contains("Throttl")
                || message.contains("RequestLimitExceeded")
                || message.contains("SlowDown") =>
            {
                "irf.Throttled"
            }
            _ if message.contains("timed out")
                || message.contains("InternalError")
                || message.contains("ServiceUnavailable")
                || message.contains("dispatch failure") =>
            {
                "irf.Transient"
            }
            _ => "irf.Failed",
        };
        Self { code, message }
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
            other => Self::invalid(other.to_string()),
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
