//! irf's engine: every AWS call and all domain logic, behind domain types and event streams.

pub mod acquisition;

pub mod analysis;
pub mod approvals;
pub mod aws;
pub mod config;
pub mod containment;
pub mod desk;
pub mod ec2;
pub mod findings;
pub mod identity;
pub mod inventory;
pub mod ledger;
pub mod model;
pub mod organization;
pub mod paths;
pub mod plane;
pub mod report;
pub mod request_ids;
pub mod store;
pub mod trigger;
pub mod worker;

/// `value` as one POSIX shell word: single-quoted, each single quote closed, escaped and
/// reopened, so that nothing in it can end the quoting or be run.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Lowercase hex of bytes, as the forensic tools write digests.
pub use irf_forensics::hex;
