//! AWS access: base credentials from the standard chain, per-account credentials through
//! STS AssumeRole (cached and refreshed), and per-region clients with timeouts and retries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_types::SdkConfig;
use aws_types::region::Region;
use tokio::sync::{Mutex, OnceCell};

use crate::config::{AccountId, Config, RetryMode};

mod error;

pub use error::{AwsError, CallSite, FailedCall, Retry, describe_sdk_error};

/// Credentials are renewed this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Lifetime asked for assumed-role sessions: the default maximum of a role.
const SESSION_DURATION_SECS: i32 = 3600;
/// Connecting should be quick; a slow connect is a network problem worth reporting early.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach AWS: everything that may differ between a real Organization and the lab.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// A named profile of the shared config files (`--profile`).
    pub profile: Option<String>,
    /// The home region for global calls and the default for regional ones (`--region`).
    pub region: Option<String>,
    /// An endpoint for every service, as `AWS_ENDPOINT_URL` does.
    pub endpoint_url: Option<String>,
    /// Fixed credentials instead of the standard chain.
    pub static_credentials: Option<StaticCredentials>,
}

/// A validated IAM role ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    arn: String,
    account: AccountId,
}

impl RoleArn {
    /// Parses `arn:<partition>:iam::<account>:role/<name>`, naming the bad value.
    pub fn parse(text: &str) -> Result<Self, String> {
        let fields: Vec<&str> = text.trim().splitn(6, ':').collect();
        let bad = |why: &str| {
            format!(
                "'{text}' is not an IAM role ARN ({why}); expected arn:aws:iam::<12-digit account>:role/<name>"
            )
        };
        let [prefix, partition, service, region, account, resource] = fields[..] else {
            return Err(bad("too few fields"));
        };
        if prefix != "arn"
            || !partition.starts_with("aws")
            || service != "iam"
            || !region.is_empty()
        {
            return Err(bad("not an IAM ARN"));
        }
        let name = resource
            .strip_prefix("role/")
            .filter(|name| !name.is_empty())
            .ok_or_else(|| bad("no role/<name>"))?;
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
        {
            return Err(bad("the role name has characters IAM does not allow"));
        }
        let account = AccountId::parse(account).map_err(|err| bad(&err.to_string()))?;
        Ok(Self {
            arn: text.trim().to_owned(),
            account,
        })
    }

    /// The ARN as given.
    pub fn as_str(&self) -> &str {
        &self.arn
    }

    /// The account the role belongs to.
    pub fn account(&self) -> &AccountId {
        &self.account
    }
}

/// An access key pair given explicitly.
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The session token of temporary (assumed-role) credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "** redacted **"),
            )
            .finish()
    }
}

/// The caller's identity, from STS GetCallerIdentity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
    pub user_id: String,
}

/// A credentials provider for one member account: STS AssumeRole from the base
/// credentials, cached until shortly before expiry.
#[derive(Debug)]
struct AssumedRole {
    sts: aws_sdk_sts::Client,
    account: AccountId,
    role_arn: String,
    session_name: String,
    /// Set on the session, where role chaining carries it into every account after.
    source_identity: Option<String>,
    cached: Mutex<Option<Credentials>>,
}

impl AssumedRole {
    async fn credentials(&self) -> Result<Credentials, AwsError> {
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref() {
            let fresh = credentials
                .expiry()
                .is_none_or(|expiry| expiry > SystemTime::now() + REFRESH_MARGIN);
            if fresh {
                return Ok(credentials.clone());
            }
        }
        let output = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session_name)
            .set_source_identity(self.source_identity.clone())
            .duration_seconds(SESSION_DURATION_SECS)
            .send()
            .await
            .map_err(|err| AwsError::AssumeRole {
                account: self.account.clone(),
                role_arn: self.role_arn.clone(),
                message: describe_sdk_error(&err),
            })?;
        let issued = output.credentials().ok_or_else(|| AwsError::AssumeRole {
            account: self.account.clone(),
            role_arn: self.role_arn.clone(),
            message: "STS returned no credentials".to_owned(),
        })?;
        let expiry = SystemTime::try_from(*issued.expiration()).ok();
        let credentials = Credentials::new(
            issued.access_key_id(),
            issued.secret_access_key(),
            Some(issued.session_token().to_owned()),
            expiry,
            "irf-assume-role",
        );
        *cached = Some(credentials.clone());
        Ok(credentials)
    }
}

#[derive(Debug, Clone)]
struct AssumedRoleProvider(Arc<AssumedRole>);

impl ProvideCredentials for AssumedRoleProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.0
                .credentials()
                .await
                .map_err(CredentialsError::provider_error)
        })
    }
}

/// Credentials that could not be had, and why: every call fails with the reason.
#[derive(Debug)]
struct Unavailable(String);

impl ProvideCredentials for Unavailable {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::provider_error(self.0.clone())))
    }
}

/// `accounts.operator_role`: template 3's OperatorRole, assumed from the operator's own IAM
/// user credentials under the user's name as session name and source identity, as its trust
/// requires (the four-eyes rule tells its sessions apart by that name).
async fn operator_role(base: &SdkConfig, role_arn: &str) -> Result<Arc<AssumedRole>, AwsError> {
    let role = RoleArn::parse(role_arn).map_err(|why| AwsError::Setting {
        setting: "accounts.operator_role",
        message: why.to_string(),
    })?;
    let sts = aws_sdk_sts::Client::new(base);
    let me = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|err| AwsError::from_sdk("sts:GetCallerIdentity", "-", "-", &err))?;
    let arn = me.arn().unwrap_or_default();
    let name = iam_user_name(arn).ok_or_else(|| {
        AwsError::Setting {
            setting: "accounts.operator_role",
            message: format!(
                "irf assumes {role_arn} from your IAM user's own credentials, under your user name, and {arn} is not an IAM user: use your IAM user's profile, or sign in with Identity Center and remove operator_role"
            ),
        }
    })?;
    Ok(Arc::new(AssumedRole {
        sts,
        account: role.account.clone(),
        role_arn: role_arn.to_owned(),
        session_name: name.clone(),
        source_identity: Some(name),
        cached: Mutex::new(None),
    }))
}

/// The user name of an IAM user ARN (`arn:<partition>:iam::<account>:user/<path/>name`).
fn iam_user_name(arn: &str) -> Option<String> {
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _, "iam", _, _, resource] = fields.as_slice() else {
        return None;
    };
    resource
        .strip_prefix("user/")
        .and_then(|path| path.rsplit('/').next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

/// Access to AWS for one operator session: base configuration plus a cache of
/// assumed-role credentials per account. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct AwsContext {
    base: SdkConfig,
    config: Arc<Config>,
    caller: OnceCell<CallerIdentity>,
    /// Each (account, role name) assumed so far.
    members: std::sync::Mutex<HashMap<(AccountId, String), Arc<AssumedRole>>>,
}

impl AwsContext {
    /// Loads base credentials and settings from the standard AWS chain and `options`.
    pub async fn connect(config: Arc<Config>, options: &ConnectOptions) -> Self {
        let http = crate::request_ids::client(default_https_client());
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_timeout(config.operation_timeout())
                    .operation_attempt_timeout(config.attempt_timeout())
                    .build(),
            )
            .retry_config(retry_config(&config));
        loader = loader.http_client(http);
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = options
            .region
            .clone()
            .or_else(|| config.regions.first().cloned())
        {
            loader = loader.region(Region::new(region));
        }
        if let Some(endpoint) = &options.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(keys) = &options.static_credentials {
            loader = loader.credentials_provider(Credentials::new(
                &keys.access_key_id,
                &keys.secret_access_key,
                keys.session_token.clone(),
                None,
                "irf-static",
            ));
        }
        let mut base = loader.load().await;
        if base.region().is_none() {
            // Global calls (STS, Organizations) need some region; the first configured one is
            // the operator's home region in practice.
            base = base.to_builder().region(Region::new("us-east-1")).build();
        }
        if let Some(role) = &config.accounts.operator_role {
            let provider = match operator_role(&base, role).await {
                Ok(assumed) => SharedCredentialsProvider::new(AssumedRoleProvider(assumed)),
                // Said at the first call, as any credentials failure is.
                Err(err) => SharedCredentialsProvider::new(Unavailable(err.to_string())),
            };
            base = base
                .to_builder()
                .credentials_provider(provider)
                .identity_cache(IdentityCache::no_cache())
                .build();
        }
        Self {
            base,
            config,
            caller: OnceCell::new(),
            members: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The home region of the base configuration.
    pub fn home_region(&self) -> String {
        self.base
            .region()
            .map_or_else(|| "us-east-1".to_owned(), |r| r.as_ref().to_owned())
    }

    /// The endpoint override in force, if any (`AWS_ENDPOINT_URL` or `--endpoint-url`).
    pub fn endpoint_url(&self) -> Option<&str> {
        self.base.endpoint_url()
    }

    /// When the base credentials end, as RFC 3339; `None` when they do not (or cannot be had:
    /// the caller's identity says why).
    pub async fn credentials_expire(&self) -> Option<String> {
        let provider = self.base.credentials_provider()?;
        let credentials = provider.provide_credentials().await.ok()?;
        let expiry = credentials.expiry()?;
        let at = time::OffsetDateTime::from(expiry);
        at.format(&time::format_description::well_known::Rfc3339)
            .ok()
    }

    /// Who the base credentials belong to (called once, then remembered).
    pub async fn caller_identity(&self) -> Result<CallerIdentity, AwsError> {
        let base = &self.base;
        self.caller
            .get_or_try_init(|| async move {
                let sts = aws_sdk_sts::Client::new(base);
                let out =
                    sts.get_caller_identity().send().await.map_err(|err| {
                        AwsError::from_sdk("sts:GetCallerIdentity", "-", "-", &err)
                    })?;
                Ok(CallerIdentity {
                    account: out.account().unwrap_or_default().to_owned(),
                    arn: out.arn().unwrap_or_default().to_owned(),
                    user_id: out.user_id().unwrap_or_default().to_owned(),
                })
            })
            .await
            .cloned()
    }

    /// SDK configuration acting as the base credentials, in `region`.
    pub fn base_config(&self, region: &str) -> SdkConfig {
        self.base
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build()
    }

    /// SDK configuration acting in `account` through the member role, in `region`.
    ///
    /// Calls made with it assume the role on first use; a missing or untrusted role
    /// surfaces as [`AwsError::AssumeRole`] through [`AwsError::from_sdk`].
    pub async fn account_config(
        &self,
        account: &AccountId,
        region: &str,
    ) -> Result<SdkConfig, AwsError> {
        self.account_config_as(account, region, &self.config.accounts.member_role)
            .await
    }

    /// SDK configuration acting in `account` through the containment role, in `region`.
    pub async fn containment_config(
        &self,
        account: &AccountId,
        region: &str,
    ) -> Result<SdkConfig, AwsError> {
        self.account_config_as(account, region, &self.config.accounts.containment_role)
            .await
    }

    async fn account_config_as(
        &self,
        account: &AccountId,
        region: &str,
        role_name: &str,
    ) -> Result<SdkConfig, AwsError> {
        let caller = self.caller_identity().await?;
        if caller.account == account.as_str() {
            return Ok(self.base_config(region));
        }
        let role = self.assumed_role(account, role_name, &caller);
        Ok(self
            .base
            .to_builder()
            .region(Region::new(region.to_owned()))
            .credentials_provider(SharedCredentialsProvider::new(AssumedRoleProvider(role)))
            // The provider caches and refreshes itself; a second cache would only hide
            // which account a credentials failure belongs to.
            .identity_cache(IdentityCache::no_cache())
            .build())
    }

    /// Assumes the member role in `account` now, so that a missing role is reported up front.
    pub async fn check_account(&self, account: &AccountId) -> Result<(), AwsError> {
        let caller = self.caller_identity().await?;
        if caller.account == account.as_str() {
            return Ok(());
        }
        self.assumed_role(account, &self.config.accounts.member_role, &caller)
            .credentials()
            .await
            .map(drop)
    }

    fn assumed_role(
        &self,
        account: &AccountId,
        role_name: &str,
        caller: &CallerIdentity,
    ) -> Arc<AssumedRole> {
        let mut members = self
            .members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        members
            .entry((account.clone(), role_name.to_owned()))
            .or_insert_with(|| {
                let partition = partition_of(&self.home_region());
                Arc::new(AssumedRole {
                    sts: aws_sdk_sts::Client::new(&self.base),
                    account: account.clone(),
                    role_arn: format!("arn:{partition}:iam::{account}:role/{role_name}"),
                    session_name: role_session_name(&caller.arn),
                    source_identity: None,
                    cached: Mutex::new(None),
                })
            })
            .clone()
    }
}

/// The role session name irf assumes member roles with: `irf-` and the operator's own name
/// (the last part of their ARN: an IAM user, or the session name of the role they signed
/// in with), so that CloudTrail, Session Manager's session ids and IAM conditions on
/// `aws:userid` tell operators apart. Reduced to what STS accepts, at most 64 characters.
pub fn role_session_name(caller_arn: &str) -> String {
    let operator: String = caller_arn
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = if operator.is_empty() {
        "irf-operator".to_owned()
    } else {
        format!("irf-{operator}")
    };
    name.chars().take(64).collect()
}

/// The SDK's default HTTPS client (hyper 1, rustls with aws-lc, proxies from the
/// environment), built here so that [`crate::request_ids`] can wrap it.
fn default_https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{Builder, ConnectorBuilder, tls};
    Builder::new().build_with_connector_fn(move |settings, runtime_components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

fn retry_config(config: &Config) -> RetryConfig {
    let retry = match config.api.retry_mode {
        RetryMode::Standard => RetryConfig::standard(),
        RetryMode::Adaptive => RetryConfig::adaptive(),
    };
    retry.with_max_attempts(config.api.max_attempts.max(1))
}

/// The ARN partition of a region.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_role_is_assumed_from_an_iam_user_under_its_name() {
        assert_eq!(
            iam_user_name("arn:aws:iam::111122223333:user/responders/alice").as_deref(),
            Some("alice")
        );
        assert_eq!(
            iam_user_name("arn:aws:iam::111122223333:user/bob").as_deref(),
            Some("bob")
        );
        for not_a_user in [
            "arn:aws:sts::111122223333:assumed-role/irf-operator/alice",
            "arn:aws:iam::111122223333:root",
            "arn:aws:iam::111122223333:user/",
            "alice",
        ] {
            assert_eq!(iam_user_name(not_a_user), None, "{not_a_user}");
        }
    }

    #[test]
    fn member_role_sessions_are_named_after_the_operator() {
        assert_eq!(
            role_session_name(
                "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_IR_0a1b/alice@example.com"
            ),
            "irf-alice@example.com"
        );
        assert_eq!(
            role_session_name("arn:aws:iam::111111111111:user/bob"),
            "irf-bob"
        );
        assert_eq!(
            role_session_name("arn:aws:iam::111111111111:root"),
            "irf-root"
        );
        assert_eq!(
            role_session_name("arn:aws:sts::1:assumed-role/r/x y\u{1b}"),
            "irf-x-y-"
        );
        assert_eq!(
            role_session_name(&format!("arn:aws:iam::1:user/{}", "a".repeat(100))).len(),
            64
        );
    }

    #[test]
    fn partitions() {
        assert_eq!(partition_of("us-east-1"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }

    #[test]
    fn static_credentials_never_print_the_secret() {
        let keys = StaticCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI".into(),
            session_token: Some("FwoGZXIvYXdzEXAMPLETOKEN".into()),
        };
        let printed = format!("{keys:?}");
        assert!(printed.contains("AKIDEXAMPLE"));
        assert!(!printed.contains("wJalrXUtnFEMI"));
        assert!(!printed.contains("EXAMPLETOKEN"), "{printed}");
    }

    #[test]
    fn role_arns_are_checked_by_field() {
        let role = RoleArn::parse("arn:aws:iam::111122223333:role/irf-trigger").expect("valid");
        assert_eq!(role.account().as_str(), "111122223333");
        assert_eq!(role.as_str(), "arn:aws:iam::111122223333:role/irf-trigger");
        for bad in [
            "irf-trigger",
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:sts::111122223333:role/x",
            "arn:aws:iam::1111:role/x",
            "arn:aws:iam::111122223333:role/a b",
        ] {
            let err = RoleArn::parse(bad).expect_err(bad);
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn assume_role_error_tells_what_to_do() {
        let err = AwsError::AssumeRole {
            account: AccountId::parse("111122223333").expect("valid"),
            role_arn: "arn:aws:iam::111122223333:role/IRAutomation".into(),
            message: "AccessDenied: not authorized".into(),
        };
        let text = err.to_string();
        assert!(text.contains("111122223333"));
        assert!(text.contains("5-member-ir-automation.yaml"));
        assert_eq!(err.account(), Some("111122223333"));
    }
}
