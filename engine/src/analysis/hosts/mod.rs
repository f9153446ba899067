//! Analysis hosts: launched from the newest SIFT image into a private subnet of the
//! Analysis VPC (no public address, analyst instance profile, IMDSv2 only, encrypted
//! root, case tags), given the case's evidence with every hash checked on the host, listed
//! by their case tag, and terminated only after a typed confirmation.

mod evidence;
mod host;
mod launch;
mod placement;
#[cfg(test)]
mod tests;

pub use evidence::{EvidenceSource, Fetch, HostArtifact, evidence_script, parse_evidence_report};
pub use host::{
    AnalysisHost, CASE_TAG, DEFAULT_INSTANCE_TYPE, EVIDENCE_TAG, ROLE_TAG, ROLE_VALUE,
    Reachability, cost_so_far, host, hourly_price, list, terminate,
};
pub use launch::{LaunchOutcome, LaunchRequest, LaunchStage, launch};
pub use placement::{SubnetFacts, choose_subnet, root_volume_gib};
