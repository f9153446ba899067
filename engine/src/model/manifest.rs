//! What the evidence bucket holds of one artifact, by name: where the artifact and its
//! manifest live, and what the manifest records (its hashes, sizes, format and provenance).

use serde::{Deserialize, Serialize};

use super::case::{ArtifactKind, CaseId};
use irf_forensics::imaging::ImageFormat;

/// The key of an artifact: `cases/<case>/<account>/<instance>/<kind>/<name>`.
pub fn artifact_key(
    case: &CaseId,
    account: &str,
    instance: &str,
    kind: ArtifactKind,
    name: &str,
) -> String {
    format!("cases/{case}/{account}/{instance}/{}/{name}", kind.as_str())
}

/// The key of an artifact's manifest, beside it.
pub fn manifest_key(artifact_key: &str) -> String {
    format!("{artifact_key}.manifest.json")
}

/// What a manifest records about one artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub case_id: CaseId,
    pub kind: ArtifactKind,
    pub bucket: String,
    pub key: String,
    #[serde(default)]
    pub version_id: Option<String>,
    pub source_account: String,
    pub region: String,
    pub instance_id: String,
    /// The volume for a disk image; absent for memory.
    #[serde(default)]
    pub volume_id: Option<String>,
    #[serde(default)]
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub device: Option<String>,
    /// Lowercase hex SHA-256 of the whole artifact; for a disk, of the raw image (what
    /// `sha256sum` prints over it), whatever the stored format. Absent where a QCOW2 image's
    /// raw hash was left for later (a large, mostly empty volume): the first export of its
    /// raw image computes it and records it in the case's ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The artifact's length; for a disk, the volume's (the raw image's).
    pub size: u64,
    /// How a disk image is stored; raw when absent (memory images, and every disk image
    /// written before QCOW2).
    #[serde(default)]
    pub format: ImageFormat,
    /// The stored object's length and SHA-256, where it is not the raw image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_sha256: Option<String>,
    /// The block list hash of the raw image ([`irf_forensics::qcow2::BlockListHash`],
    /// in `block_size` blocks): checked from the stored data alone, never its zeros.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks_sha256: Option<String>,
    #[serde(default)]
    pub block_size: Option<u64>,
    #[serde(default)]
    pub allocated_blocks: Option<u64>,
    #[serde(default)]
    pub bytes_fetched: Option<u64>,
    #[serde(default)]
    pub blocks_retried: Option<u64>,
    pub parts: usize,
    /// Free-form facts of the capture (kernel, format, ranges...).
    #[serde(default)]
    pub details: serde_json::Value,
    pub started_at: String,
    pub finished_at: String,
    pub tool: String,
    pub operator: String,
}

impl Manifest {
    /// The SHA-256 of the object S3 holds.
    pub fn stored_sha256(&self) -> &str {
        self.stored_sha256
            .as_deref()
            .or(self.sha256.as_deref())
            .unwrap_or_default()
    }

    /// The length of the object S3 holds.
    pub fn stored_size(&self) -> u64 {
        self.stored_size.unwrap_or(self.size)
    }
}

/// The tool and version written into manifests.
pub fn tool_version() -> String {
    format!("irf {}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_case_layout() {
        let case = CaseId::parse("20261128T093015Z-i-1").expect("valid");
        let key = artifact_key(
            &case,
            "111122223333",
            "i-1",
            ArtifactKind::Disk,
            "vol-1.raw",
        );
        assert_eq!(
            key,
            "cases/20261128T093015Z-i-1/111122223333/i-1/disk/vol-1.raw"
        );
        assert_eq!(manifest_key(&key), format!("{key}.manifest.json"));
    }

    /// A manifest written before QCOW2 (no format, no stored hash) is a raw image whose
    /// stored object is the artifact: it still verifies as it did.
    #[test]
    fn a_manifest_from_before_qcow2_reads_as_raw() {
        let old = serde_json::json!({
            "case_id": "20261128T093015Z-i-1", "kind": "disk", "bucket": "b",
            "key": "cases/20261128T093015Z-i-1/111122223333/i-1/disk/vol-1.raw",
            "source_account": "111122223333", "region": "eu-west-1", "instance_id": "i-1",
            "sha256": "ab".repeat(32), "size": 1024, "parts": 1,
            "started_at": "2026-11-28T09:30:15Z", "finished_at": "2026-11-28T09:31:15Z",
            "tool": "irf 0.1.0", "operator": "arn:aws:sts::111122223333:assumed-role/r/s"
        });
        let manifest: Manifest = serde_json::from_value(old).expect("an old manifest reads");
        assert_eq!(manifest.format, ImageFormat::Raw);
        assert_eq!(manifest.stored_sha256(), "ab".repeat(32));
        assert_eq!(manifest.stored_size(), 1024);
        // A QCOW2 manifest names its format and its stored object apart from the raw image.
        let qcow2 = Manifest {
            format: ImageFormat::Qcow2,
            stored_size: Some(300),
            stored_sha256: Some("cd".repeat(32)),
            ..manifest
        };
        let written = serde_json::to_value(&qcow2).expect("json");
        assert_eq!(written["format"], "qcow2");
        assert_eq!(written["sha256"], "ab".repeat(32));
        let read: Manifest = serde_json::from_value(written).expect("round trip");
        assert_eq!(
            (read.stored_sha256(), read.stored_size()),
            ("cd".repeat(32).as_str(), 300)
        );
    }
}
