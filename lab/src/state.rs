//! The running lab's state file: where its emulator and runtime are, what was seeded, and
//! the operator's session; and the environment a shell needs to act in the lab.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::common::{LAB_ACCESS_KEY, LAB_REGION, LAB_SECRET_KEY, LabCredentials, LabError};
use crate::emulator;
use crate::seed::SeededLab;
use irf_engine::aws::{AwsContext, ConnectOptions};
use irf_engine::config::{CONFIG_ENV, Config};

/// What the state file records about a running lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    pub endpoint: String,
    pub port: u16,
    pub emulator_pid: u32,
    pub started_at: String,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    pub seeded: SeededLab,
    /// The lab runtime beside the emulator (tag events, step queues, SSM agent).
    #[serde(default)]
    pub runtime_pid: Option<u32>,
    /// The operator's session: template 3's operator role, which irf and the AWS CLI act as.
    #[serde(default)]
    pub operator: Option<LabCredentials>,
    /// The tag events a runtime started on this lab delivers: those after this sequence
    /// number (set by a reset, so that a tag set right after it is not missed); without it,
    /// those after the runtime starts.
    #[serde(default)]
    pub events_after: Option<u64>,
    /// What the lab divides the step function's time limit by (see [`LabOptions`]).
    #[serde(default)]
    pub time_scale: Option<u32>,
}

impl LabState {
    pub(crate) fn file(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// Reads the state file in `dir`, if there is one.
    pub fn load(dir: &Path) -> Result<Option<Self>, LabError> {
        let path = Self::file(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|err| LabError::BadState {
                    path,
                    message: err.to_string(),
                }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LabError::Io {
                what: "read the lab state",
                path,
                source,
            }),
        }
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<(), LabError> {
        let path = Self::file(dir);
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        // Written beside, then renamed: a reader never sees half a file.
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|source| LabError::Io {
                what: "write the lab state",
                path,
                source,
            })
    }

    /// Whether the emulator this state names is still running.
    pub fn is_running(&self) -> bool {
        emulator::is_our_emulator(self.emulator_pid)
    }

    /// How irf connects to this lab as its operator (template 3's operator role).
    pub fn operator_options(&self) -> Result<ConnectOptions, LabError> {
        self.operator
            .as_ref()
            .map(|operator| operator.connect_options(&self.endpoint))
            .ok_or(LabError::NoOperator)
    }

    /// Shell `export` lines that point the AWS CLI, the SDKs and irf at this lab, acting as
    /// its operator.
    pub fn env_exports(&self) -> String {
        let quote = irf_engine::shell_quote;
        let (key, secret, token) = match &self.operator {
            Some(operator) => (
                operator.access_key_id.as_str(),
                operator.secret_access_key.as_str(),
                Some(operator.session_token.as_str()),
            ),
            None => (LAB_ACCESS_KEY, LAB_SECRET_KEY, None),
        };
        let mut lines = vec![
            format!("export AWS_ENDPOINT_URL={}", quote(&self.endpoint)),
            format!("export AWS_ACCESS_KEY_ID={}", quote(key)),
            format!("export AWS_SECRET_ACCESS_KEY={}", quote(secret)),
            match token {
                Some(token) => format!("export AWS_SESSION_TOKEN={}", quote(token)),
                None => "unset AWS_SESSION_TOKEN".to_owned(),
            },
            format!("export AWS_REGION={LAB_REGION}"),
            format!("export AWS_DEFAULT_REGION={LAB_REGION}"),
            format!(
                "export {CONFIG_ENV}={}",
                quote(&self.config_path.display().to_string())
            ),
            "unset AWS_PROFILE AWS_SECURITY_TOKEN".to_owned(),
        ];
        lines.push(format!(
            "# irf lab at {} (Security account {}, Forensics {}, {} member accounts)",
            self.endpoint,
            self.seeded.security,
            self.seeded.forensics,
            self.seeded.members.len()
        ));
        lines.join("\n") + "\n"
    }

    /// The context irf uses against this lab, as its operator, with the lab's configuration.
    pub async fn connect(&self) -> Result<Arc<AwsContext>, LabError> {
        let config = Config::load_from(&self.config_path)?.config;
        Ok(Arc::new(
            AwsContext::connect(Arc::new(config), &self.operator_options()?).await,
        ))
    }
}
