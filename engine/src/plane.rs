//! The workflow's connected context: the Security account's case table, state machine and
//! topic, the Forensics evidence bucket, the ledger key, and per-account credentials, as the
//! configuration names them. Every service runs against a [`Plane`].

use std::sync::Arc;

use crate::aws::{AwsContext, AwsError};
use crate::model::case::Case;
use crate::store::case_table::CaseTable;
use crate::store::evidence_bucket::EvidenceBucket;
use crate::store::ledger_key::LedgerSigner;

/// Why a plane cannot do what was asked of it.
#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    #[error(
        "{setting} is not set in the configuration: deploy {template} and put its outputs in the config (see 'irf config path'), or run 'irf lab' to use the local lab"
    )]
    NotConfigured {
        setting: &'static str,
        template: &'static str,
    },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Everything the workflow runs against: the Security account's case table, state
/// machine and topic, the Forensics evidence bucket, and per-account credentials.
#[derive(Debug, Clone)]
pub struct Plane {
    pub ctx: Arc<AwsContext>,
    pub region: String,
    pub table: CaseTable,
    pub sfn: aws_sdk_sfn::Client,
    pub state_machine_arn: Option<String>,
    pub sns: aws_sdk_sns::Client,
    pub topic_arn: Option<String>,
    /// The evidence bucket; `None` for a plane that only opens cases (the triggers).
    pub evidence: Option<EvidenceBucket>,
    pub tooling_bucket: Option<String>,
    pub ir_instance_profile: String,
    /// Signs ledger entries and checks them; `None` where the deployment names no key.
    pub ledger_signer: Option<LedgerSigner>,
    /// The STS identity this process acts as, written into manifests.
    pub operator: String,
}

impl Plane {
    /// Connects to the workflow the configuration names.
    pub async fn connect(ctx: Arc<AwsContext>) -> Result<Self, PlaneError> {
        let config = ctx.config().clone();
        let workflow = &config.workflow;
        let region = workflow.region.clone().unwrap_or_else(|| ctx.home_region());
        let table = workflow
            .case_table
            .clone()
            .ok_or(PlaneError::NotConfigured {
                setting: "workflow.case_table",
                template: "3-security-acquisition-automation.yaml",
            })?;
        let identity = ctx.caller_identity().await?;
        let base = ctx.base_config(&region);
        Ok(Self {
            region: region.clone(),
            table: CaseTable::new(&base, table, identity.account.clone()),
            sfn: aws_sdk_sfn::Client::new(&base),
            state_machine_arn: workflow.state_machine_arn.clone(),
            sns: aws_sdk_sns::Client::new(&base),
            topic_arn: workflow.notification_topic_arn.clone(),
            evidence: config.evidence.bucket.clone().map(|bucket| {
                EvidenceBucket::new(
                    &base,
                    bucket,
                    config.evidence.kms_key_arn.clone(),
                    identity.account.clone(),
                )
            }),
            tooling_bucket: workflow.tooling_bucket.clone(),
            ir_instance_profile: workflow
                .ir_instance_profile
                .clone()
                .unwrap_or_else(|| "IRInstanceProfile".to_owned()),
            ledger_signer: config
                .evidence
                .ledger_key_arn
                .clone()
                .map(|key| LedgerSigner::new(&base, key)),
            operator: identity.arn,
            ctx,
        })
    }

    /// This plane acting for `operator`: the same credentials, with `operator` recorded as
    /// whoever asked (the desk for a checked sender, the trigger for whoever set the tag).
    pub fn acting_for(&self, operator: &str) -> Self {
        Self {
            operator: operator.to_owned(),
            ..self.clone()
        }
    }

    /// The evidence bucket, which every step that writes or reads evidence needs.
    pub fn evidence(&self) -> Result<&EvidenceBucket, PlaneError> {
        self.evidence.as_ref().ok_or(PlaneError::NotConfigured {
            setting: "evidence.bucket (IRF_EVIDENCE_BUCKET)",
            template: "1-forensic-analysis-vpc-and-buckets.yaml",
        })
    }

    /// The state machine's ARN.
    pub fn state_machine(&self) -> Result<&str, PlaneError> {
        self.state_machine_arn
            .as_deref()
            .ok_or(PlaneError::NotConfigured {
                setting: "workflow.state_machine_arn",
                template: "3-security-acquisition-automation.yaml",
            })
    }

    /// SDK configuration in the case's member account and region.
    pub async fn member_config(&self, case: &Case) -> Result<aws_types::SdkConfig, AwsError> {
        self.ctx
            .account_config(&case.subject.account, &case.subject.region)
            .await
    }
}
