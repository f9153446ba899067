//! What seeding created, as the lab's state file keeps it, and the ways the seeder names a
//! failed call.

use aws_sdk_ec2::types::Tag;
use serde::{Deserialize, Serialize};

use crate::common::LabError;
use irf_engine::aws::AwsError;
use irf_engine::config::AccountId;

use super::plan::SeedOptions;

/// An account the lab created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabAccount {
    pub id: AccountId,
    pub name: String,
    /// Whether the IR member role exists in it.
    pub managed: bool,
}

/// An instance the lab created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabInstance {
    pub id: String,
    /// The root volume (`/dev/xvda`).
    pub root_volume_id: String,
    pub account: AccountId,
    pub region: String,
    pub name: String,
    pub state: String,
}

/// What seeding created, kept in the lab's state file for commands and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeededLab {
    pub options: SeedOptions,
    pub organization_id: String,
    pub security: AccountId,
    pub forensics: AccountId,
    pub members: Vec<LabAccount>,
    pub instances: Vec<LabInstance>,
    pub findings: usize,
    /// Root volumes with a real filesystem (every Linux instance).
    pub disks: Vec<crate::disks::SeededDisk>,
    /// The workflow resources (absent in state files of older labs).
    #[serde(default)]
    pub plane: Option<crate::plane::LabPlane>,
    /// The Analysis VPC and SIFT pipeline (absent in state files of older labs).
    #[serde(default)]
    pub analysis: Option<crate::analysis::LabAnalysis>,
}

pub(super) fn seed_err(step: &'static str) -> impl Fn(AwsError) -> LabError {
    move |err| LabError::Seed {
        step,
        message: err.to_string(),
    }
}

pub(super) fn sdk_err<E>(
    step: &'static str,
    account: &str,
    region: &str,
) -> impl Fn(
    aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> LabError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let account = account.to_owned();
    let region = region.to_owned();
    move |err| LabError::Seed {
        step,
        message: AwsError::from_sdk(step, &account, &region, &err).to_string(),
    }
}

pub(super) fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}
