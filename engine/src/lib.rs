//! irf's engine: every AWS call and all domain logic, behind domain types and event streams.

pub mod acquisition;
pub mod analysis;
pub mod aws;
pub mod cases;
pub mod config;
pub mod containment;
pub mod desk;
pub mod evidence;
pub mod findings;
pub mod identity;
pub mod inventory;
pub mod ledger;
pub mod organization;
pub mod paths;
pub mod report;
pub mod request_ids;
pub mod trigger;
pub mod worker;

/// Lowercase hex of bytes: digests in manifests, ids derived from hashes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}
