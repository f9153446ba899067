//! Everything known of one case at once: the case, its steps and artifacts, the approval it
//! waits on, its instance's containment and its chain of custody; and what it says of an
//! artifact's hash.

use serde::Serialize;

use super::case::{ArtifactProgress, ArtifactState, Case, PendingApproval, StepRecord};
use super::containment::ContainmentRecord;
use super::ledger::LedgerEntry;

/// Everything the case table holds about one case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseDetail {
    pub case: Case,
    pub steps: Vec<StepRecord>,
    pub artifacts: Vec<ArtifactProgress>,
    pub approval: Option<PendingApproval>,
    /// The containment record of the case's instance, whichever case or request made it.
    pub containment: Option<ContainmentRecord>,
    /// The case's chain of custody, in key order (which is sequence order unless tampered with).
    pub ledger: Vec<LedgerEntry>,
}

/// What a case and `irf verify` say of a disk image whose raw hash was left for later, until
/// an export computes it.
pub const RAW_HASH_LEFT_FOR_LATER: &str = "raw image SHA-256 not yet computed (left for later at acquisition: the volume is mostly empty; 'irf evidence export <key> -o FILE --raw' computes it and records it in the ledger)";

/// An artifact's SHA-256 as an examiner expects it (for a disk, the raw image's), and where
/// it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactSha256<'a> {
    Known(&'a str),
    /// A disk image whose raw hash was left for later at acquisition, not yet computed.
    LeftForLater,
    /// Not written yet, or failed.
    None,
}

impl CaseDetail {
    /// `artifact`'s SHA-256: its writer's, or for a disk image whose raw hash was left for
    /// later, the first one the ledger records (an export computed it).
    pub fn sha256_of<'a>(&'a self, artifact: &'a ArtifactProgress) -> ArtifactSha256<'a> {
        if let Some(sha256) = &artifact.sha256 {
            return ArtifactSha256::Known(sha256);
        }
        if !matches!(
            artifact.state,
            ArtifactState::Written | ArtifactState::Verified
        ) {
            return ArtifactSha256::None;
        }
        self.ledger
            .iter()
            .flat_map(|entry| &entry.artifacts)
            .filter(|recorded| recorded.key == artifact.key)
            .find_map(|recorded| recorded.raw_sha256.as_deref())
            .map_or(ArtifactSha256::LeftForLater, ArtifactSha256::Known)
    }
}
