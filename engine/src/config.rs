//! irf's configuration: where the file lives, what it holds, and the defaults in force.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::paths;

/// Environment variable that names the configuration file, overriding the default location.
pub const CONFIG_ENV: &str = "IRF_CONFIG";

/// Default name of the role irf assumes in every member account.
pub const DEFAULT_MEMBER_ROLE: &str = "IRAutomation";
/// The role containment acts through in member accounts (template 5): changing an instance's
/// network, profile and role policies is not what capturing it needs.
pub const DEFAULT_CONTAINMENT_ROLE: &str = "IRContainment";

/// A 12-digit AWS account id, validated on parse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    /// Parses an account id, naming the bad value when it is not 12 digits.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let trimmed = value.trim();
        if trimmed.len() == 12 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(ConfigError::BadAccountId(value.to_owned()))
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountId {
    type Error = ConfigError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AccountId> for String {
    fn from(value: AccountId) -> Self {
        value.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Errors reading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("'{0}' is not an AWS account id: expected 12 digits, for example '123456789012'")]
    BadAccountId(String),
    #[error("cannot read the configuration file '{path}': {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the configuration file '{path}' is not valid: {message}\n  fix the file, or run 'irf config show' to see the settings in force"
    )]
    Parse { path: PathBuf, message: String },
    #[error("cannot write the configuration file '{path}': {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no configuration directory could be found for this user: set {CONFIG_ENV} to a file path"
    )]
    NoConfigDir,
    #[error(
        "the configuration names no regions: set 'regions' to at least one, for example [\"us-east-1\"]"
    )]
    NoRegions,
    #[error("in 'regions': {0}")]
    BadRegion(NotARegion),
    #[error("'{0}' is not a retry mode: use 'standard' or 'adaptive'")]
    BadRetryMode(String),
}

/// How the SDK retries failed calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RetryMode {
    Standard,
    /// Standard retries plus client-side rate limiting once throttling is seen.
    #[default]
    Adaptive,
}

/// The Organization's accounts as irf sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsConfig {
    /// The Security account: orchestration, Security Hub aggregation, the case table.
    pub security: Option<AccountId>,
    /// The Forensics account: evidence bucket, Analysis VPC, SIFT pipeline.
    pub forensics: Option<AccountId>,
    /// The role irf assumes in member accounts to see and capture.
    #[serde(default = "default_member_role")]
    pub member_role: String,
    /// The role irf assumes in member accounts to contain and roll back.
    #[serde(default = "default_containment_role")]
    pub containment_role: String,
    /// Member accounts to sweep. Empty: every active account Organizations lists.
    #[serde(default)]
    pub members: Vec<AccountId>,
    /// Accounts never swept (for example the management account).
    #[serde(default)]
    pub exclude: Vec<AccountId>,
    /// Template 3's OperatorRole (output OperatorRoleArn), for responders without Identity
    /// Center: irf assumes it from the IAM user's own credentials, under the user's name as
    /// session name and source identity, as the role's trust requires.
    #[serde(default)]
    pub operator_role: Option<String>,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            security: None,
            forensics: None,
            member_role: default_member_role(),
            containment_role: default_containment_role(),
            members: Vec::new(),
            exclude: Vec::new(),
            operator_role: None,
        }
    }
}

fn default_member_role() -> String {
    DEFAULT_MEMBER_ROLE.to_owned()
}

fn default_containment_role() -> String {
    DEFAULT_CONTAINMENT_ROLE.to_owned()
}

/// The deployed acquisition workflow in the Security account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowConfig {
    /// The region the workflow is deployed in; the home region when unset.
    pub region: Option<String>,
    pub state_machine_arn: Option<String>,
    pub case_table: Option<String>,
    pub notification_topic_arn: Option<String>,
    /// Step queue URLs: `steps` (short steps), `imaging` (disk and memory), `approvals`.
    #[serde(default)]
    pub step_queues: std::collections::BTreeMap<String, String>,
    /// The bucket holding the memory capture tool (template 4).
    pub tooling_bucket: Option<String>,
    /// The instance profile that makes a suspect reachable by SSM for capture.
    pub ir_instance_profile: Option<String>,
    /// What a case does once its evidence is verified: approval (default), auto, never.
    pub containment: Option<String>,
    /// How long a worker holds a step message before another worker may take it over,
    /// in seconds; the worker renews it while it works.
    pub lease_secs: Option<u64>,
    /// The most GiB of zeros a disk image's raw SHA-256 hashes while the disk is imaged
    /// (64 when unset: under a minute of one core); a volume emptier than that has its raw
    /// hash left for the first export of its raw image, so that its acquisition costs
    /// what it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_hash_inline_max_gib: Option<u64>,
    /// The deny-all instance profile of contained instances (template 5's
    /// IsolationProfileName; `IRIsolationProfile` when unset).
    pub isolation_profile: Option<String>,
    /// Containment keeps SSM reachable: outbound HTTPS to the VPC's SSM endpoints only and
    /// the SSM-only IR profile instead of deny-all.
    #[serde(default)]
    pub isolation_keeps_ssm: bool,
    /// Containment needs two people: whoever asked for it cannot approve it. The deployment's
    /// rule (template 3's FourEyes, `IRF_FOUR_EYES`), read by the Security account's desk
    /// (see `irf_engine::desk`), which takes every such decision; an operator's own setting
    /// changes nothing.
    #[serde(default)]
    pub four_eyes: bool,
    /// Roles whose trust policy names each session after the IAM user who assumes it (template
    /// 3's OperatorRole; `IRF_NAMED_SESSION_ROLES`): the four-eyes rule tells their sessions
    /// apart by name, where any other role's sessions are one person.
    #[serde(default)]
    pub named_session_roles: Vec<String>,
}

/// Evidence storage in the Forensics account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    pub bucket: Option<String>,
    pub kms_key_arn: Option<String>,
    /// The asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY) that signs every ledger entry
    /// (template 3 output LedgerSigningKeyArn). Set, every entry must carry its signature.
    pub ledger_key_arn: Option<String>,
}

/// The isolated Analysis VPC and the SIFT image pipeline in the Forensics account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    pub instance_profile: Option<String>,
    pub image_pipeline_arn: Option<String>,
    /// The analysis hosts' security group (template 1's AnalysisSecurityGroupId).
    #[serde(default)]
    pub security_group_id: Option<String>,
    /// The instance type of analysis hosts when none is asked for.
    #[serde(default)]
    pub instance_type: Option<String>,
    /// KMS key for analysis hosts' volumes; the account's EBS default key when unset.
    #[serde(default)]
    pub kms_key_id: Option<String>,
}

/// How irf talks to AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Upper bound for one call including its retries, in seconds.
    #[serde(default = "default_operation_timeout")]
    pub operation_timeout_secs: u64,
    /// Upper bound for one attempt of a call, in seconds.
    #[serde(default = "default_attempt_timeout")]
    pub attempt_timeout_secs: u64,
    #[serde(default)]
    pub retry_mode: RetryMode,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Accounts swept at the same time.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            operation_timeout_secs: default_operation_timeout(),
            attempt_timeout_secs: default_attempt_timeout(),
            retry_mode: RetryMode::default(),
            max_attempts: default_max_attempts(),
            concurrency: default_concurrency(),
        }
    }
}

fn default_operation_timeout() -> u64 {
    60
}
fn default_attempt_timeout() -> u64 {
    20
}
fn default_max_attempts() -> u32 {
    6
}
fn default_concurrency() -> usize {
    16
}

/// Workstation preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    #[serde(default = "default_theme")]
    pub theme: String,
    #[serde(default = "default_refresh")]
    pub refresh_interval_secs: u64,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            theme: default_theme(),
            refresh_interval_secs: default_refresh(),
        }
    }
}

fn default_theme() -> String {
    "default-dark".to_owned()
}
fn default_refresh() -> u64 {
    30
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Regions swept for instances.
    #[serde(default = "default_regions")]
    pub regions: Vec<String>,
    #[serde(default)]
    pub accounts: AccountsConfig,
    #[serde(default)]
    pub workflow: WorkflowConfig,
    #[serde(default)]
    pub evidence: EvidenceConfig,
    #[serde(default)]
    pub analysis: AnalysisConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub ui: UiConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            regions: default_regions(),
            accounts: AccountsConfig::default(),
            workflow: WorkflowConfig::default(),
            evidence: EvidenceConfig::default(),
            analysis: AnalysisConfig::default(),
            api: ApiConfig::default(),
            ui: UiConfig::default(),
        }
    }
}

/// A name that is not an AWS region's, said the same wherever it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not an AWS region name (like us-east-1, eu-central-2, us-gov-west-1): 'aws ec2 describe-regions' lists them"
)]
pub struct NotARegion(pub String);

/// `name` as a region name, or why it is not one.
pub fn region_name(name: &str) -> Result<String, NotARegion> {
    if is_region_name(name) {
        Ok(name.to_owned())
    } else {
        Err(NotARegion(name.to_owned()))
    }
}

/// Whether `name` has the shape of an AWS region name: a two-letter area, an optional
/// `gov`/`iso...` partition mark, a direction or place, and a number (`us-east-1`,
/// `us-gov-west-1`, `us-isob-east-1`, `ap-southeast-5`). The shape, not a list: a region
/// AWS opens after this was written is taken, a typo such as `mars-1` or `us-east1` is not.
pub fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    let area_ok = |p: &str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_lowercase());
    let word_ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    let number_ok =
        |p: &str| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        [area, place, number] => area_ok(area) && word_ok(place) && number_ok(number),
        [area, mark, place, number] => {
            area_ok(area)
                && (*mark == "gov" || mark.starts_with("iso"))
                && word_ok(mark)
                && word_ok(place)
                && number_ok(number)
        }
        _ => false,
    }
}

fn default_regions() -> Vec<String> {
    vec!["us-east-1".to_owned()]
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// Read from this file.
    File(PathBuf),
    /// No file at this path: built-in defaults are in force.
    Defaults(PathBuf),
}

impl ConfigSource {
    /// The path the configuration is (or would be) read from.
    pub fn path(&self) -> &Path {
        match self {
            Self::File(path) | Self::Defaults(path) => path,
        }
    }
}

/// A configuration together with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub source: ConfigSource,
}

impl Config {
    /// The configuration file's path: `$IRF_CONFIG`, else `config.toml` in the user's config directory.
    pub fn path() -> Result<PathBuf, ConfigError> {
        if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(path));
        }
        paths::config_dir()
            .map(|dir| dir.join("config.toml"))
            .ok_or(ConfigError::NoConfigDir)
    }

    /// Loads the configuration from [`Config::path`], or the defaults when there is no file.
    pub fn load() -> Result<LoadedConfig, ConfigError> {
        Self::load_from(&Self::path()?)
    }

    /// Loads the configuration from `path`, or the defaults when the file does not exist.
    pub fn load_from(path: &Path) -> Result<LoadedConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(LoadedConfig {
                config: Self::parse(&text, path)?,
                source: ConfigSource::File(path.to_owned()),
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(LoadedConfig {
                config: Self::default(),
                source: ConfigSource::Defaults(path.to_owned()),
            }),
            Err(source) => Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses and validates configuration text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: path.to_owned(),
            message: err.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.regions.is_empty() {
            return Err(ConfigError::NoRegions);
        }
        if let Some(bad) = self.regions.iter().find(|r| !is_region_name(r)) {
            return Err(ConfigError::BadRegion(NotARegion(bad.clone())));
        }
        Ok(())
    }

    /// The configuration as TOML, as `irf config show` prints it.
    pub fn to_toml(&self) -> String {
        // Serialising plain data structs to TOML cannot fail; fall back to Debug just in case.
        toml::to_string_pretty(self).unwrap_or_else(|err| format!("# {err}\n{self:#?}"))
    }

    /// Writes the configuration to `path`, creating its directory.
    pub fn write_to(&self, path: &Path) -> Result<(), ConfigError> {
        let write = |path: &Path| -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, self.to_toml())
        };
        write(path).map_err(|source| ConfigError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// The per-call timeout settings.
    pub fn operation_timeout(&self) -> Duration {
        Duration::from_secs(self.api.operation_timeout_secs.max(1))
    }

    /// The per-attempt timeout.
    pub fn attempt_timeout(&self) -> Duration {
        Duration::from_secs(self.api.attempt_timeout_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let config = Config::parse("", Path::new("c.toml")).expect("empty config parses");
        assert_eq!(config, Config::default());
        assert_eq!(config.accounts.member_role, "IRAutomation");
        assert_eq!(config.regions, vec!["us-east-1"]);
    }

    #[test]
    fn full_file_round_trips() {
        let text = include_str!("../tests/fixtures/config-full.toml");
        let config = Config::parse(text, Path::new("full.toml")).expect("fixture parses");
        assert_eq!(
            config.accounts.security.as_ref().map(AccountId::as_str),
            Some("123456789012")
        );
        assert_eq!(config.accounts.members.len(), 2);
        assert_eq!(config.api.retry_mode, RetryMode::Standard);
        assert_eq!(config.analysis.instance_type.as_deref(), Some("m5.2xlarge"));
        assert_eq!(config.analysis.subnet_ids.len(), 3);
        let again = Config::parse(&config.to_toml(), Path::new("again.toml")).expect("reparses");
        assert_eq!(again, config);
    }

    #[test]
    fn bad_account_id_names_the_value() {
        let err = Config::parse("[accounts]\nsecurity = \"12345\"\n", Path::new("bad.toml"))
            .expect_err("short id is rejected");
        let message = err.to_string();
        assert!(message.contains("'12345'"), "{message}");
        assert!(message.contains("bad.toml"), "{message}");
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let err = Config::parse("regoins = [\"us-east-1\"]\n", Path::new("typo.toml"))
            .expect_err("typo is rejected");
        assert!(err.to_string().contains("regoins"), "{err}");
    }

    #[test]
    fn region_names_are_checked_by_shape() {
        for good in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-5",
            "us-gov-west-1",
            "us-isob-east-1",
            "il-central-1",
        ] {
            assert!(is_region_name(good), "{good}");
        }
        for bad in [
            "mars-1",
            "us-east1",
            "US-EAST-1",
            "us-east-",
            "useast-1",
            "us-east-1a",
            "",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
        let err = Config::parse(
            "regions = [\"us-east-1\", \"mars-1\"]\n",
            Path::new("r.toml"),
        )
        .expect_err("refused");
        assert!(err.to_string().contains("'mars-1'"), "{err}");
    }

    #[test]
    fn empty_regions_rejected() {
        let err = Config::parse("regions = []\n", Path::new("r.toml")).expect_err("rejected");
        assert!(matches!(err, ConfigError::NoRegions));
    }

    #[test]
    fn missing_file_is_defaults_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("absent.toml");
        let loaded = Config::load_from(&path).expect("defaults");
        assert_eq!(loaded.source, ConfigSource::Defaults(path));
        assert_eq!(loaded.config, Config::default());
    }

    #[test]
    fn write_then_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/config.toml");
        let config = Config {
            regions: vec!["eu-west-1".into(), "us-west-2".into()],
            ..Config::default()
        };
        config.write_to(&path).expect("written");
        let loaded = Config::load_from(&path).expect("loaded");
        assert_eq!(loaded.config, config);
        assert_eq!(loaded.source, ConfigSource::File(path));
    }
}
