//! The chain of custody's entries: what each records (action, actor, target, artifacts'
//! hashes, request ids), the hash that chains it to the one before, and its signature.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::case::{ArtifactKind, CaseId, Verdict};

/// The `prev_sha256` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The only signing algorithm irf asks KMS for: ECDSA over SHA-256 on an `ECC_NIST_P256` key.
pub const ALGORITHM: &str = "ECDSA_SHA_256";

/// An entry's signature, as the entry carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntrySignature {
    /// The KMS key that signed.
    pub key_arn: String,
    /// KMS's name of the algorithm ([`ALGORITHM`]).
    pub algorithm: String,
    /// The DER-encoded ECDSA signature of the entry's `sha256` (its 64 hex characters, as
    /// KMS's RAW message: KMS hashes them with SHA-256 and signs), base64.
    pub value: String,
}

/// What a ledger entry records, as irf writes it. An entry keeps the text (it is hashed into
/// the chain, and entries of every version must verify as written); this type is how irf
/// writes it and recognises it, so no writer spells an action by hand and no reader matches
/// on a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    CaseOpened,
    /// A workflow step ended (its name as the case table records it).
    Step {
        step: &'static str,
        succeeded: bool,
    },
    SnapshotCreated,
    DiskRangeImaged,
    ArtifactWritten(ArtifactKind),
    /// The first of two approvals when no one is known to have asked.
    ContainmentFirstApproval,
    ContainmentDecided(Verdict),
    /// One change of a containment (the plan's words for it).
    ContainmentChange(String),
    LegalHold {
        placed: bool,
    },
    ArtifactExported,
    AnalysisHostLaunched,
    AnalysisHostEvidenceVerified,
    AnalysisHostEvidenceFailed,
    AnalysisHostTerminated,
    SessionOpened,
    SessionClosed,
    FindingUpdated,
}

impl Action {
    /// What analysis did with a case's evidence: hosts and sessions.
    pub const ANALYSIS: [Action; 6] = [
        Self::AnalysisHostLaunched,
        Self::AnalysisHostEvidenceVerified,
        Self::AnalysisHostEvidenceFailed,
        Self::AnalysisHostTerminated,
        Self::SessionOpened,
        Self::SessionClosed,
    ];

    /// The text the entry records; borrowed where it is fixed, so that recognising an
    /// entry (the report, the case view's panels, every frame) allocates nothing.
    pub fn text(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::CaseOpened => "case opened",
            Self::Step { step, succeeded } => {
                let word = if *succeeded { "succeeded" } else { "failed" };
                return Cow::Owned(format!("step {step} {word}"));
            }
            Self::SnapshotCreated => "snapshot created",
            Self::DiskRangeImaged => "disk block range imaged",
            Self::ArtifactWritten(kind) => {
                return Cow::Owned(format!("{} artifact written", kind.as_str()));
            }
            Self::ContainmentFirstApproval => "containment approved (first of two)",
            Self::ContainmentDecided(verdict) => {
                return Cow::Owned(format!("containment {verdict}"));
            }
            Self::ContainmentChange(change) => {
                return Cow::Owned(format!("containment: {change}"));
            }
            Self::LegalHold { placed: true } => "legal hold placed",
            Self::LegalHold { placed: false } => "legal hold removed",
            Self::ArtifactExported => "artifact exported",
            Self::AnalysisHostLaunched => "analysis host launched",
            Self::AnalysisHostEvidenceVerified => "analysis host evidence verified",
            Self::AnalysisHostEvidenceFailed => "analysis host evidence failed",
            Self::AnalysisHostTerminated => "analysis host terminated",
            Self::SessionOpened => "session opened",
            Self::SessionClosed => "session closed",
            Self::FindingUpdated => "finding updated",
        })
    }

    /// Whether `recorded` (an entry's action) is this action.
    pub fn is(&self, recorded: &str) -> bool {
        self.text() == recorded
    }

    /// Whether `recorded` is one of the [`Action::ANALYSIS`] actions.
    pub fn is_analysis(recorded: &str) -> bool {
        Self::ANALYSIS.iter().any(|action| action.is(recorded))
    }
}

/// An artifact's identity as the ledger records it: the object S3 holds, whoever hashed it
/// (the worker that wrote it, an analysis host that fetched it), so that every record of
/// one artifact names the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactHash {
    pub key: String,
    /// SHA-256 of the stored object (for a raw image or a memory image, the artifact).
    pub sha256: String,
    /// The stored object's length.
    pub size: u64,
    /// A QCOW2 disk image's raw image SHA-256, as its writer computed it. Absent in every
    /// other record, and so in every entry written before QCOW2: their hashes stay theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_sha256: Option<String>,
}

/// One entry of a case's chain of custody.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub seq: u64,
    pub at: String,
    /// The STS identity (ARN) that acted.
    pub actor: String,
    pub action: String,
    /// `account/region/resource`.
    pub target: String,
    #[serde(default)]
    pub request_ids: Vec<String>,
    #[serde(default)]
    pub artifacts: Vec<ArtifactHash>,
    #[serde(default)]
    pub detail: Option<String>,
    pub prev_sha256: String,
    /// SHA-256 of the entry's other fields (see [`LedgerEntry::digest`]).
    pub sha256: String,
    /// The ledger key's signature of `sha256`; absent where the deployment names no key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<EntrySignature>,
}

/// The fields an entry's hash covers, in a fixed order.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    at: &'a str,
    actor: &'a str,
    action: &'a str,
    target: &'a str,
    request_ids: &'a [String],
    artifacts: &'a [ArtifactHash],
    detail: Option<&'a str>,
    prev_sha256: &'a str,
}

impl LedgerEntry {
    /// The SHA-256 of every field but `sha256`, as compact JSON in declaration order.
    pub fn digest(&self) -> String {
        let hashed = Hashed {
            seq: self.seq,
            at: &self.at,
            actor: &self.actor,
            action: &self.action,
            target: &self.target,
            request_ids: &self.request_ids,
            artifacts: &self.artifacts,
            detail: self.detail.as_deref(),
            prev_sha256: &self.prev_sha256,
        };
        // Serialising plain strings, numbers and vectors of them cannot fail.
        let bytes = serde_json::to_vec(&hashed).unwrap_or_default();
        crate::hex(&Sha256::digest(&bytes))
    }
}

/// What an action adds to the ledger; the sequence, time, actor and chain are filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewEntry {
    pub action: String,
    pub target: String,
    pub request_ids: Vec<String>,
    pub artifacts: Vec<ArtifactHash>,
    pub detail: Option<String>,
}

impl NewEntry {
    pub fn new(action: Action, target: impl Into<String>) -> Self {
        Self {
            action: action.text().into_owned(),
            target: target.into(),
            ..Self::default()
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn artifact(mut self, artifact: ArtifactHash) -> Self {
        self.artifacts.push(artifact);
        self
    }
}

/// The evidence key an entry is sealed at.
pub fn sealed_key(case_id: &CaseId, seq: u64) -> String {
    format!("cases/{case_id}/ledger/{seq:010}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ledgers already written hold these texts: the report recognises analysis by them, so
    /// a rewording would hide the analysis of every earlier case.
    #[test]
    fn actions_keep_the_texts_ledgers_already_hold() {
        assert_eq!(
            Action::Step {
                step: "Prepare",
                succeeded: false
            }
            .text(),
            "step Prepare failed"
        );
        assert_eq!(
            Action::ArtifactWritten(ArtifactKind::Memory).text(),
            "memory artifact written"
        );
        assert_eq!(
            Action::ContainmentDecided(Verdict::Rejected).text(),
            "containment rejected"
        );
        let analysis: Vec<String> = Action::ANALYSIS
            .iter()
            .map(|a| a.text().into_owned())
            .collect();
        assert_eq!(
            analysis,
            [
                "analysis host launched",
                "analysis host evidence verified",
                "analysis host evidence failed",
                "analysis host terminated",
                "session opened",
                "session closed",
            ]
        );
        assert!(
            !Action::ANALYSIS
                .iter()
                .any(|a| a.is("analysis host launched by hand"))
        );
    }
}
