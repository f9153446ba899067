//! Why containment could not be planned, applied or rolled back, each error naming the
//! instance and what to do.

use crate::aws::AwsError;
use crate::config::AccountId;
use crate::model::containment::InstanceRef;
use crate::store::case_table::CaseError;

/// Why containment could not be planned, applied or rolled back.
#[derive(Debug, thiserror::Error)]
pub enum ContainmentError {
    #[error(
        "instance {0} was not found: check the id, account and region ('irf instances' lists them)"
    )]
    UnknownInstance(InstanceRef),
    #[error("instance {0} is not in a VPC: containment works on security groups, which need one")]
    NoVpc(InstanceRef),
    #[error(
        "the confirmation '{typed}' does not match instance {expected}: type the instance id exactly to confirm"
    )]
    Confirmation { typed: String, expected: String },
    #[error(
        "instance {0} has no containment to roll back: irf never contained it, or it was rolled back already"
    )]
    NothingToRollBack(InstanceRef),
    #[error(
        "the deny-all instance profile '{profile}' does not exist in account {account}: deploy 5-member-ir-automation.yaml there, or set workflow.isolation_profile"
    )]
    NoIsolationProfile { profile: String, account: AccountId },
    #[error(
        "four-eyes: {operator} requested the containment of {instance}, so another operator must approve it"
    )]
    FourEyes { operator: String, instance: String },
    #[error("instance {instance} has no containment request waiting ({state})")]
    NoRequest { instance: String, state: String },
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Aws(#[from] AwsError),
}
