//! The evidence bucket in the Forensics account (S3 with Object Lock): artifacts and
//! manifests put and read, multipart uploads with per-part checksums, re-hashing an object
//! from S3, Object Lock and legal holds, restores from archive, and exports.

mod bucket;
mod check;
mod upload;

pub use bucket::{EvidenceBucket, LockState, ObjectHash};
pub use check::{ArtifactCheck, ExportError, Exported};
pub use upload::{MultipartUpload, PartChecks};
