//! irf's engine: every AWS call and all domain logic, behind domain types and event streams.

pub mod acquisition;
pub mod analysis;
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

/// Lowercase hex of bytes, as the forensic tools write digests.
pub use irf_forensics::hex;
