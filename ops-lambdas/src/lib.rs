//! Runtime plumbing shared by irf's Lambda binaries and the long-running acquisition worker:
//! logging, and the configuration a deployed runtime takes from its environment.

use std::sync::Arc;

use irf_engine::aws::{AwsContext, ConnectOptions};
use irf_engine::config::{CONFIG_ENV, Config};
use tracing_subscriber::EnvFilter;

/// Environment variable with the log filter of the runtimes (`RUST_LOG` syntax).
pub const LOG_ENV: &str = "IRF_LOG";

/// Logs to standard output, where Lambda and the worker's container send lines to
/// CloudWatch Logs; no ANSI colours, which CloudWatch shows as garbage.
pub fn init_logging() {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(true)
        .try_init();
}

/// The environment variables a deployed runtime reads (template 3 sets them), and the
/// configuration field each fills.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("IRF_CASE_TABLE", "workflow.case_table"),
    ("IRF_STATE_MACHINE_ARN", "workflow.state_machine_arn"),
    ("IRF_TOPIC_ARN", "workflow.notification_topic_arn"),
    ("IRF_STEPS_QUEUE_URL", "workflow.step_queues.steps"),
    ("IRF_IMAGING_QUEUE_URL", "workflow.step_queues.imaging"),
    ("IRF_APPROVALS_QUEUE_URL", "workflow.step_queues.approvals"),
    ("IRF_DECISIONS_QUEUE_URL", "workflow.step_queues.decisions"),
    ("IRF_FOUR_EYES", "workflow.four_eyes"),
    ("IRF_NAMED_SESSION_ROLES", "workflow.named_session_roles"),
    ("IRF_TOOLING_BUCKET", "workflow.tooling_bucket"),
    ("IRF_IR_INSTANCE_PROFILE", "workflow.ir_instance_profile"),
    ("IRF_CONTAINMENT", "workflow.containment"),
    ("IRF_EVIDENCE_BUCKET", "evidence.bucket"),
    ("IRF_EVIDENCE_KMS_KEY_ARN", "evidence.kms_key_arn"),
    ("IRF_LEDGER_KEY_ARN", "evidence.ledger_key_arn"),
    ("IRF_MEMBER_ROLE", "accounts.member_role"),
    ("IRF_CONTAINMENT_ROLE", "accounts.containment_role"),
    ("IRF_WORKFLOW_REGION", "workflow.region"),
];

/// The configuration of a deployed runtime: the file `IRF_CONFIG` names, if any, then
/// each variable of [`ENVIRONMENT`] that is set.
pub fn config_from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
    let mut config = match lookup(CONFIG_ENV) {
        Some(path) => {
            Config::load_from(std::path::Path::new(&path))
                .map_err(|err| err.to_string())?
                .config
        }
        None => Config::default(),
    };
    let set = |name: &str| lookup(name).filter(|v| !v.is_empty());
    let workflow = &mut config.workflow;
    if let Some(v) = set("IRF_CASE_TABLE") {
        workflow.case_table = Some(v);
    }
    if let Some(v) = set("IRF_STATE_MACHINE_ARN") {
        workflow.state_machine_arn = Some(v);
    }
    if let Some(v) = set("IRF_TOPIC_ARN") {
        workflow.notification_topic_arn = Some(v);
    }
    for (name, queue) in [
        ("IRF_STEPS_QUEUE_URL", irf_engine::acquisition::STEPS_QUEUE),
        (
            "IRF_IMAGING_QUEUE_URL",
            irf_engine::acquisition::IMAGING_QUEUE,
        ),
        (
            "IRF_APPROVALS_QUEUE_URL",
            irf_engine::acquisition::APPROVALS_QUEUE,
        ),
        ("IRF_DECISIONS_QUEUE_URL", irf_engine::desk::DECISIONS_QUEUE),
    ] {
        if let Some(v) = set(name) {
            workflow.step_queues.insert(queue.to_owned(), v);
        }
    }
    if let Some(v) = set("IRF_FOUR_EYES") {
        workflow.four_eyes = match v.as_str() {
            "required" => true,
            "off" => false,
            other => {
                return Err(format!(
                    "IRF_FOUR_EYES: '{other}' is neither 'required' nor 'off' (template 3's FourEyes parameter)"
                ));
            }
        };
    }
    if let Some(v) = set("IRF_NAMED_SESSION_ROLES") {
        workflow.named_session_roles = v
            .split(',')
            .map(str::trim)
            .filter(|arn| !arn.is_empty())
            .map(str::to_owned)
            .collect();
    }
    if let Some(v) = set("IRF_TOOLING_BUCKET") {
        workflow.tooling_bucket = Some(v);
    }
    if let Some(v) = set("IRF_IR_INSTANCE_PROFILE") {
        workflow.ir_instance_profile = Some(v);
    }
    if let Some(v) = set("IRF_CONTAINMENT") {
        irf_engine::model::case::ContainmentPolicy::parse(&v)
            .map_err(|err| format!("IRF_CONTAINMENT: {err}"))?;
        workflow.containment = Some(v);
    }
    if let Some(v) = set("IRF_EVIDENCE_BUCKET") {
        config.evidence.bucket = Some(v);
    }
    if let Some(v) = set("IRF_EVIDENCE_KMS_KEY_ARN") {
        config.evidence.kms_key_arn = Some(v);
    }
    if let Some(v) = set("IRF_LEDGER_KEY_ARN") {
        config.evidence.ledger_key_arn = Some(v);
    }
    if let Some(v) = set("IRF_MEMBER_ROLE") {
        config.accounts.member_role = v;
    }
    if let Some(v) = set("IRF_CONTAINMENT_ROLE") {
        config.accounts.containment_role = v;
    }
    if let Some(v) = set("IRF_WORKFLOW_REGION") {
        config.workflow.region = Some(v);
    }
    Ok(config)
}

/// Connects a deployed runtime: its own credentials (the Lambda or task role), its region,
/// the configuration of its environment.
pub async fn connect() -> Result<Arc<irf_engine::plane::Plane>, String> {
    let lookup = |name: &str| std::env::var(name).ok();
    let config = config_from_env(lookup)?;
    // Every runtime runs in the Security account as its own role: none assumes another first.
    let context = Arc::new(AwsContext::connect(Arc::new(config), &ConnectOptions::default()).await);
    irf_engine::plane::Plane::connect(context)
        .await
        .map(Arc::new)
        .map_err(|err| {
            let names: Vec<&str> = ENVIRONMENT.iter().map(|(name, _)| *name).collect();
            format!(
                "{err}\n  a deployed runtime reads its settings from the environment ({}): the templates set them",
                names.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_fills_the_workflow() {
        let env: std::collections::HashMap<&str, &str> = [
            ("IRF_CASE_TABLE", "cases"),
            ("IRF_STEPS_QUEUE_URL", "https://sqs/steps"),
            ("IRF_EVIDENCE_BUCKET", "evidence"),
            ("IRF_CONTAINMENT", "never"),
            ("IRF_WORKFLOW_REGION", "eu-central-1"),
        ]
        .into_iter()
        .collect();
        let config = config_from_env(|name| env.get(name).map(|v| (*v).to_owned())).expect("valid");
        assert_eq!(config.workflow.case_table.as_deref(), Some("cases"));
        assert_eq!(
            config.workflow.step_queues.get("steps").map(String::as_str),
            Some("https://sqs/steps")
        );
        assert_eq!(config.evidence.bucket.as_deref(), Some("evidence"));
        assert_eq!(config.workflow.containment.as_deref(), Some("never"));
        assert_eq!(config.workflow.region.as_deref(), Some("eu-central-1"));
    }

    #[test]
    fn a_bad_policy_is_named() {
        let err =
            config_from_env(|name| (name == "IRF_CONTAINMENT").then(|| "sometimes".to_owned()))
                .expect_err("bad");
        assert!(err.contains("sometimes"), "{err}");
    }

    #[test]
    fn four_eyes_is_the_deployments_word() {
        let required =
            config_from_env(|name| (name == "IRF_FOUR_EYES").then(|| "required".to_owned()))
                .expect("valid");
        assert!(required.workflow.four_eyes);
        let off = config_from_env(|name| (name == "IRF_FOUR_EYES").then(|| "off".to_owned()))
            .expect("valid");
        assert!(!off.workflow.four_eyes);
        let err = config_from_env(|name| (name == "IRF_FOUR_EYES").then(|| "maybe".to_owned()))
            .expect_err("bad");
        assert!(err.contains("'maybe'") && err.contains("FourEyes"), "{err}");
    }
}
