//! Reading an artifact back against its manifest, by its format, and copying it out of
//! the bucket as stored or as the raw image, checked on the way.

use super::bucket::{EvidenceBucket, ObjectHash};
use crate::aws::AwsError;
use crate::model::case::CaseId;
use crate::model::manifest::Manifest;
use irf_forensics::imaging::{ImageFormat, Observe};
use irf_forensics::qcow2::Qcow2Reader;

/// What reading an artifact back against its manifest found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactCheck {
    /// The stored object as read.
    pub read: ObjectHash,
    /// What differs from the manifest, in words that name both values; `None` when the
    /// object is the one the manifest describes.
    pub problem: Option<String>,
}

/// An artifact copied out of the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub path: std::path::PathBuf,
    /// The file's length (a raw image's apparent length; its holes take no space).
    pub size: u64,
    /// What `sha256sum` prints over the file, computed from the bytes read (for a raw
    /// image, the manifest's raw hash when it has one, which the export checks).
    pub sha256: String,
    /// The manifest left the raw image's hash for later: this export computed it.
    pub raw_hash_was_deferred: bool,
    /// The stored object the copy was made from, as read.
    pub stored: ObjectHash,
}

/// Why an export left nothing behind.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("evidence.bucket is not set: artifacts are exported from the evidence bucket")]
    NoEvidenceBucket,
    #[error("'{}' has no manifest in {bucket}: 'irf evidence' lists the artifacts", key.escape_debug())]
    NoManifest { key: String, bucket: String },
    #[error("'{}' is not an artifact of case {case}: 'irf evidence' lists them", key.escape_debug())]
    NotAnArtifact { key: String, case: CaseId },
    #[error("{0} exists; irf never replaces a file with evidence: name another")]
    Exists(std::path::PathBuf),
    #[error("writing {path}: {err}")]
    Io {
        path: std::path::PathBuf,
        err: std::io::Error,
    },
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("{0}")]
    Case(#[from] crate::store::case_table::CaseError),
    #[error(
        "the artifact read from the bucket is not the one its manifest describes ({0}); nothing was written"
    )]
    Check(String),
}

/// What reads an artifact beside its hash: the QCOW2 reader of a QCOW2 image, and a copy.
struct ArtifactRead {
    reader: Option<Qcow2Reader>,
    copy: Option<StoredCopy>,
}

/// Where a copy of the stored bytes goes, and the first write that failed.
struct StoredCopy {
    /// The stored bytes, in order.
    file: Option<std::fs::File>,
    failed: Option<std::io::Error>,
    /// The raw image written from a QCOW2 image's clusters instead.
    raw: Option<SharedRawExport>,
}

/// The raw image being written from a QCOW2 image's clusters, shared with the reader that
/// hands them over: its hash as they pass (zeros between included) and the first write
/// that failed.
type SharedRawExport = std::sync::Arc<std::sync::Mutex<RawExport>>;

#[derive(Debug, Default)]
struct RawExport {
    hash: irf_forensics::qcow2::RawImageHash,
    failed: Option<std::io::Error>,
}

impl Observe for ArtifactRead {
    fn observe(&mut self, bytes: &[u8]) {
        if let Some(reader) = &mut self.reader {
            reader.push(bytes);
        }
        if let Some(copy) = &mut self.copy
            && copy.failed.is_none()
            && let Some(file) = &mut copy.file
            && let Err(err) = std::io::Write::write_all(file, bytes)
        {
            copy.failed = Some(err);
        }
    }
}

impl EvidenceBucket {
    /// Reads the artifact a manifest describes back from the bucket and checks it by its
    /// format: the stored object's SHA-256 and length; for a QCOW2 disk image also that it
    /// is exactly the image irf writes for its mapping, of the manifest's volume, and that
    /// its data makes the manifest's block list hash. The zeros a sparse image stands for
    /// are never read, so the check costs what the image stores.
    pub async fn check_artifact(&self, manifest: &Manifest) -> Result<ArtifactCheck, AwsError> {
        let reader = match manifest.format {
            ImageFormat::Raw => None,
            ImageFormat::Qcow2 => Some(Qcow2Reader::default()),
        };
        // Boxed: the read's state is large, and callers hold it across their own loops.
        Box::pin(self.read_artifact(manifest, ArtifactRead { reader, copy: None }))
            .await
            .map(|(check, _)| check)
    }

    async fn read_artifact(
        &self,
        manifest: &Manifest,
        read: ArtifactRead,
    ) -> Result<(ArtifactCheck, Option<std::io::Error>), AwsError> {
        let (read, observed) = self.hash_object_with(&manifest.key, read).await?;
        let reading = observed.reader.map(Qcow2Reader::finish);
        let (want_sha256, want_size) = (manifest.stored_sha256(), manifest.stored_size());
        let stored = match manifest.format {
            ImageFormat::Raw => "",
            ImageFormat::Qcow2 => " for the stored QCOW2 image",
        };
        // Every finding is named: a changed byte of data shows as both the stored hash and
        // the block list hash, a changed mapping as the stored hash and the layout.
        let mut problems = Vec::new();
        if read.sha256 != want_sha256 || read.size != want_size {
            problems.push(format!(
                "read back SHA-256 {} ({} bytes), manifest says {want_sha256} ({want_size} bytes){stored}",
                read.sha256, read.size
            ));
        }
        match reading {
            None => {}
            Some(Err(err)) => problems.push(err.to_string()),
            Some(Ok(reading)) => {
                if reading.virtual_size != manifest.size {
                    problems.push(format!(
                        "the image holds a volume of {} bytes, manifest says {}",
                        reading.virtual_size, manifest.size
                    ));
                }
                if Some(&reading.blocks_sha256) != manifest.blocks_sha256.as_ref() {
                    problems.push(format!(
                        "its data makes block list hash {}, manifest says {}",
                        reading.blocks_sha256,
                        manifest.blocks_sha256.as_deref().unwrap_or("none")
                    ));
                }
            }
        }
        let problem = (!problems.is_empty()).then(|| problems.join("; "));
        let written = observed.copy.and_then(|copy| {
            copy.failed.or_else(|| {
                copy.raw
                    .and_then(|raw| raw.lock().ok().and_then(|mut raw| raw.failed.take()))
            })
        });
        Ok((ArtifactCheck { read, problem }, written))
    }

    /// Copies an artifact out of the bucket to `to`, as stored or (`raw`) as the raw image
    /// a QCOW2 disk image stands for, written sparse so that it takes the disk space of the
    /// data. The copy is checked as [`Self::check_artifact`] checks, on the bytes it is
    /// made of; it is written beside `to` and put in place only when it checks, so that a
    /// failed export leaves nothing that could be taken for the evidence. An existing file
    /// is never replaced.
    pub async fn export_artifact(
        &self,
        manifest: &Manifest,
        to: &std::path::Path,
        raw: bool,
    ) -> Result<Exported, ExportError> {
        let io = |err: std::io::Error| ExportError::Io {
            path: to.to_owned(),
            err,
        };
        if to.exists() {
            return Err(ExportError::Exists(to.to_owned()));
        }
        let mut part = to.as_os_str().to_owned();
        part.push(".part");
        let part = std::path::PathBuf::from(part);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(|err| ExportError::Io {
                path: part.clone(),
                err,
            })?;
        let expand = raw && manifest.format == ImageFormat::Qcow2;
        let synced = file.try_clone().map_err(io)?;
        let raw_export = SharedRawExport::default();
        let read = if expand {
            // The raw image's length first: the clusters land at their offsets, and what
            // no cluster covers stays a hole.
            file.set_len(manifest.size).map_err(io)?;
            let clusters = raw_export.clone();
            let reader = Qcow2Reader::with_data(move |at, bytes| {
                let written = std::os::unix::fs::FileExt::write_all_at(&file, bytes, at);
                if let Ok(mut raw) = clusters.lock() {
                    raw.hash.data(at, bytes);
                    if let Err(err) = written {
                        raw.failed.get_or_insert(err);
                    }
                }
            });
            ArtifactRead {
                reader: Some(reader),
                copy: Some(StoredCopy {
                    file: None,
                    failed: None,
                    raw: Some(raw_export.clone()),
                }),
            }
        } else {
            ArtifactRead {
                reader: (manifest.format == ImageFormat::Qcow2).then(Qcow2Reader::default),
                copy: Some(StoredCopy {
                    file: Some(file),
                    failed: None,
                    raw: None,
                }),
            }
        };
        let outcome = Box::pin(self.read_artifact(manifest, read)).await;
        let failed = |why: ExportError| {
            let _ = std::fs::remove_file(&part);
            Err(why)
        };
        let (check, written) = match outcome {
            Ok(done) => done,
            Err(err) => return failed(ExportError::Aws(err)),
        };
        if let Some(err) = written.or_else(|| synced.sync_all().err()) {
            return failed(ExportError::Io {
                path: part.clone(),
                err,
            });
        }
        if let Some(problem) = check.problem {
            return failed(ExportError::Check(problem));
        }
        let (size, sha256) = if expand {
            let hash = match raw_export.lock() {
                Ok(mut raw) => std::mem::take(&mut raw.hash),
                Err(_) => {
                    return failed(ExportError::Check("the raw image's hash was lost".into()));
                }
            };
            // Every zero of the volume is hashed here: the one cost that follows the
            // volume's size, paid where the raw image is wanted.
            let volume_size = manifest.size;
            let sha256 = tokio::task::spawn_blocking(move || hash.finish(volume_size))
                .await
                .map_err(|err| ExportError::Check(err.to_string()));
            let sha256 = match sha256 {
                Ok(sha256) => sha256,
                Err(err) => return failed(err),
            };
            if let Some(written) = &manifest.sha256
                && *written != sha256
            {
                return failed(ExportError::Check(format!(
                    "its raw image hashes to {sha256}, manifest says {written}"
                )));
            }
            (manifest.size, sha256)
        } else {
            (check.read.size, check.read.sha256.clone())
        };
        if let Err(err) = std::fs::rename(&part, to) {
            return failed(io(err));
        }
        Ok(Exported {
            path: to.to_owned(),
            size,
            sha256,
            raw_hash_was_deferred: expand && manifest.sha256.is_none(),
            stored: check.read,
        })
    }
}
