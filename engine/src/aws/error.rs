//! What a failed AWS call says: the service's code and message, the request id, the account
//! and region it was made in, and whether trying again can help.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use aws_types::SdkConfig;

use crate::config::AccountId;

/// Whether a failed call may succeed when tried again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The service refused for now because of the call rate: back off, then try again.
    Throttled,
    /// The call did not get through or the service failed on its side (a timeout, a lost
    /// connection, a 5xx): try again.
    Transient,
    /// The answer will be the same (denied, not found, malformed): do not try again.
    Never,
}

impl Retry {
    /// Classifies a failed SDK call by the AWS SDK's own lists of throttling and transient
    /// error codes (`aws-runtime`'s retry classifiers) and the HTTP status, as its retry
    /// strategy does.
    pub fn of<E>(err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata,
    {
        use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
        match err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => Self::Transient,
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or_default();
                if THROTTLING_ERRORS.contains(&code) || service.raw().status().as_u16() == 429 {
                    Self::Throttled
                } else if TRANSIENT_ERRORS.contains(&code)
                    || matches!(service.raw().status().as_u16(), 500 | 502 | 503 | 504)
                {
                    Self::Transient
                } else {
                    Self::Never
                }
            }
            _ => Self::Never,
        }
    }
}

/// A call AWS refused or that did not get through, with what the service said of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed in account {account}, region {region}: {message}")]
pub struct FailedCall {
    pub operation: &'static str,
    pub account: String,
    pub region: String,
    /// The service's error code (`AccessDenied`, `ThrottlingException`), when it answered.
    pub code: Option<String>,
    /// The request id of the failed call, when the service answered.
    pub request_id: Option<String>,
    /// Whether trying again later may succeed, as the SDK's own retry classifiers judge.
    pub retry: Retry,
    pub message: String,
}

/// Errors reaching AWS, each naming the account, region and call involved.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AwsError {
    #[error(
        "cannot assume role '{role_arn}' in account {account}: {message}\n  deploy the member stack (5-member-ir-automation.yaml) to account {account}, or set accounts.member_role to the role that exists there"
    )]
    AssumeRole {
        account: AccountId,
        role_arn: String,
        message: String,
    },
    #[error(transparent)]
    Call(Box<FailedCall>),
    #[error(
        "no usable AWS credentials: {message}\n  sign in (for example 'aws sso login --profile NAME' and pass --profile NAME), or run 'irf lab' to use the local lab"
    )]
    Credentials { message: String },
    /// An answer without what the service documents it always gives.
    #[error("{operation} answered without {missing}")]
    Incomplete {
        operation: &'static str,
        missing: String,
    },
    /// Reading an answer's body stopped midway, or what it held could not be read.
    #[error("reading {uri}: {message}")]
    Read { uri: String, message: String },
    /// An object that holds what irf cannot read (a record that is not the JSON it wrote).
    #[error("{uri} is not what irf wrote there: {message}")]
    Malformed { uri: String, message: String },
    /// A request irf could not put together (a body it could not encode, a bad lifetime).
    #[error("cannot make the request {operation}: {message}")]
    Request {
        operation: &'static str,
        message: String,
    },
    /// A setting of the configuration that cannot be used to reach AWS.
    #[error("{setting}: {message}")]
    Setting {
        setting: &'static str,
        message: String,
    },
    /// A record written once (Object Lock evidence) already holds another record.
    #[error("{uri} is written already with another record; records of custody are written once")]
    WrittenOnce { uri: String },
    /// Part of a batch the service did not apply, each item with its reason.
    #[error("{operation} did not apply {count} of the items: {refused}")]
    Unprocessed {
        operation: &'static str,
        count: usize,
        refused: String,
    },
    /// Listing the Organization's accounts failed where irf needs it to know what to sweep.
    #[error(
        "cannot list the Organization's accounts ({source})\n  list the member accounts in the configuration ('accounts.members' in {config}), or run from the management account or a delegated administrator"
    )]
    NoAccountList {
        source: Box<AwsError>,
        config: String,
    },
}

impl AwsError {
    /// Describes a failed SDK call, recognising a failed role assumption behind it.
    pub fn from_sdk<E>(
        operation: &'static str,
        account: &str,
        region: &str,
        err: &SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        if let Some(assume) = find_source::<AwsError>(err) {
            return assume.clone();
        }
        if let Some(credentials) = find_source::<CredentialsError>(err) {
            return Self::Credentials {
                message: chain_summary(credentials),
            };
        }
        let service = err.as_service_error();
        Self::Call(Box::new(FailedCall {
            operation,
            account: account.to_owned(),
            region: region.to_owned(),
            code: service
                .and_then(ProvideErrorMetadata::code)
                .map(str::to_owned),
            request_id: service
                .and_then(|e| {
                    e.meta()
                        .extra("aws_request_id")
                        .or_else(|| request_id_of(e.meta()))
                })
                .map(str::to_owned),
            retry: Retry::of(err),
            message: describe_sdk_error(err),
        }))
    }

    /// Whether trying again later may succeed.
    pub fn retry(&self) -> Retry {
        match self {
            Self::Call(call) => call.retry,
            // A body that stopped midway is a lost connection: reading it again may succeed.
            Self::Read { .. } => Retry::Transient,
            Self::NoAccountList { source, .. } => source.retry(),
            _ => Retry::Never,
        }
    }

    /// The account this error is about, when it is about one.
    pub fn account(&self) -> Option<&str> {
        match self {
            Self::AssumeRole { account, .. } => Some(account.as_str()),
            Self::Call(call) => Some(&call.account),
            Self::NoAccountList { source, .. } => source.account(),
            _ => None,
        }
    }
}

/// The account and region a client calls, so that its errors say where they happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSite {
    pub account: String,
    pub region: String,
}

impl CallSite {
    /// The site of clients built from `config` acting in `account`.
    pub fn new(config: &SdkConfig, account: impl Into<String>) -> Self {
        Self {
            account: account.into(),
            region: config
                .region()
                .map_or_else(String::new, |r| r.as_ref().to_owned()),
        }
    }

    /// Describes a failed call made here.
    pub fn error<E>(&self, operation: &'static str, err: &SdkError<E, HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        AwsError::from_sdk(operation, &self.account, &self.region, err)
    }
}

/// Walks an error's sources looking for one of type `T`.
fn find_source<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The messages of an error and its sources joined on one line, without debug dumps.
fn chain_summary(err: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// One line for an SDK error: the service's code and message when it answered, the
/// whole cause chain otherwise (timeouts, connection failures, credential errors).
pub fn describe_sdk_error<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: std::fmt::Debug + 'static,
{
    match err {
        // An answer the SDK could not read has neither: say what it could not read.
        SdkError::ServiceError(service)
            if service.err().code().is_none() && service.err().message().is_none() =>
        {
            format!(
                "an answer that could not be read: {}",
                DisplayErrorContext(err)
            )
        }
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let code = inner.code().unwrap_or("UnknownError");
            let message = inner.message().unwrap_or("no message");
            match inner
                .meta()
                .extra("aws_request_id")
                .or_else(|| request_id_of(inner.meta()))
            {
                Some(id) => format!("{code}: {message} (request id {id})"),
                None => format!("{code}: {message}"),
            }
        }
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        other => DisplayErrorContext(other).to_string(),
    }
}

fn request_id_of(meta: &aws_smithy_types::error::ErrorMetadata) -> Option<&str> {
    meta.extra("request_id")
}
