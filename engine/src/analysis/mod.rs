//! Analysis hosts: the SIFT image pipeline, hosts launched from its images into the
//! isolated Analysis VPC of the Forensics account with a case's evidence, and Session
//! Manager sessions into them.

pub mod hosts;
pub mod images;
pub mod session;

use std::sync::Arc;

use crate::aws::{AwsContext, AwsError};
use crate::config::{AccountId, AnalysisConfig};
use crate::store::case_table::CaseError;

/// Where analysis happens: the Forensics account, in the workflow's region.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub ctx: Arc<AwsContext>,
    pub account: AccountId,
    pub region: String,
    pub settings: AnalysisConfig,
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub imagebuilder: aws_sdk_imagebuilder::Client,
}

impl Analysis {
    /// Connects to the Forensics account the configuration names (through the member role
    /// there, unless the operator is already in it).
    pub async fn connect(ctx: Arc<AwsContext>) -> Result<Self, AnalysisError> {
        let config = ctx.config();
        let account = config
            .accounts
            .forensics
            .clone()
            .ok_or(AnalysisError::NoForensicsAccount)?;
        let region = config
            .workflow
            .region
            .clone()
            .unwrap_or_else(|| ctx.home_region());
        let settings = config.analysis.clone();
        let sdk = ctx.account_config(&account, &region).await?;
        Ok(Self {
            ec2: aws_sdk_ec2::Client::new(&sdk),
            ssm: aws_sdk_ssm::Client::new(&sdk),
            imagebuilder: aws_sdk_imagebuilder::Client::new(&sdk),
            ctx,
            account,
            region,
            settings,
        })
    }

    /// The image pipeline's ARN, or what to set.
    pub fn pipeline_arn(&self) -> Result<&str, AnalysisError> {
        self.settings
            .image_pipeline_arn
            .as_deref()
            .ok_or(AnalysisError::NotConfigured {
                setting: "analysis.image_pipeline_arn",
                template: "2-forensic-maintenance-vpc-and-sift-pipeline.yaml",
            })
    }

    /// `account/region/resource`, as ledger entries name their targets.
    pub fn target(&self, resource: &str) -> String {
        format!("{}/{}/{resource}", self.account, self.region)
    }

    pub(crate) fn call_error<E>(
        &self,
        operation: &'static str,
        err: &aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::http::Response,
        >,
    ) -> AnalysisError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        AnalysisError::Aws(AwsError::from_sdk(
            operation,
            self.account.as_str(),
            &self.region,
            err,
        ))
    }
}

/// Errors of image builds, analysis hosts and sessions, each naming the bad value.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(
        "{setting} is not set\n  deploy {template} in the Forensics account and set {setting} from its outputs"
    )]
    NotConfigured {
        setting: &'static str,
        template: &'static str,
    },
    #[error(
        "accounts.forensics is not set\n  name the Forensics account (where templates 1 and 2 deploy the Analysis VPC, the evidence bucket and the SIFT pipeline) in the configuration: 'irf config path' shows where it is"
    )]
    NoForensicsAccount,
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(
        "the image pipeline {pipeline} has no available image with an AMI in {region}\n  start a build ('irf images build' or 'b' in the images view) and launch when it is AVAILABLE"
    )]
    NoImage { pipeline: String, region: String },
    #[error(
        "no private subnet of the Analysis VPC {vpc} to launch into: {why}\n  set analysis.subnet_ids to the AnalysisSubnetIds output of template 1"
    )]
    NoSubnet { vpc: String, why: String },
    #[error(
        "case {case} has no evidence written yet\n  wait until its acquisition has written an artifact ('irf case {case}'), then launch"
    )]
    NoEvidence { case: String },
    #[error(
        "{instance} is not an analysis host (no irf:role=analysis-host tag in account {account}, region {region}); irf launches and terminates only its own analysis hosts"
    )]
    NotAnalysisHost {
        instance: String,
        account: String,
        region: String,
    },
    #[error(
        "confirmation '{given}' does not match '{expected}'; nothing was changed\n  repeat with --confirm {expected}"
    )]
    Confirmation { expected: String, given: String },
    #[error("the evidence of case {case} could not be made available on {instance}: {why}")]
    Evidence {
        case: String,
        instance: String,
        why: String,
    },
    #[error("{instance} did not come up: {why}")]
    NotReady { instance: String, why: String },
    #[error("session to {target}: {why}")]
    Session { target: String, why: String },
}
