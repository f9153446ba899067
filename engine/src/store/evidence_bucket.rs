//! The evidence bucket in the Forensics account: artifacts and manifests put and read,
//! multipart uploads with per-part checksums, re-hashing an object from S3, Object Lock and
//! legal holds, restores from archive, and exports.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::{AwsError, CallSite};
use crate::hex;
use crate::model::case::CaseId;
use crate::model::manifest::Manifest;
use irf_forensics::imaging::{ImageFormat, ImagingError, Observe, PartSink, StoredPart};
use irf_forensics::qcow2::Qcow2Reader;

/// The evidence bucket, as the Security account's workers write to it.
#[derive(Debug, Clone)]
pub struct EvidenceBucket {
    client: aws_sdk_s3::Client,
    pub bucket: String,
    kms_key_arn: Option<String>,
    site: CallSite,
}

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
    /// The export was written and checked, but recording it in the ledger failed.
    #[error("the export was written, but recording it in the case's ledger failed: {0}")]
    Record(String),
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
    pub fn new(
        config: &aws_types::SdkConfig,
        bucket: impl Into<String>,
        kms_key_arn: Option<String>,
        account: impl Into<String>,
    ) -> Self {
        // Multipart evidence carries part-level checksums the SDK cannot check on download;
        // irf hashes every byte it reads itself.
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            )
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(s3_config),
            bucket: bucket.into(),
            kms_key_arn,
            site: CallSite::new(config, account),
        }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Aborts uploads to `key` left by a worker that died, so that nothing half-written
    /// can ever be completed.
    pub async fn abort_stale_uploads(&self, key: &str) -> Result<usize, AwsError> {
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .await
            .map_err(|err| self.site.error("s3:ListMultipartUploads", &err))?;
        let mut aborted = 0;
        for upload in out.uploads() {
            let (Some(upload_key), Some(id)) = (upload.key(), upload.upload_id()) else {
                continue;
            };
            if upload_key != key {
                continue;
            }
            self.client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(upload_key)
                .upload_id(id)
                .send()
                .await
                .map_err(|err| self.site.error("s3:AbortMultipartUpload", &err))?;
            aborted += 1;
        }
        Ok(aborted)
    }

    /// Starts a multipart upload under the evidence key, its parts checked as `checks` says.
    pub async fn start_upload(
        &self,
        key: &str,
        checks: PartChecks,
    ) -> Result<MultipartUpload, AwsError> {
        let mut request = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/octet-stream");
        if checks == PartChecks::Crc32 {
            request = request.checksum_algorithm(ChecksumAlgorithm::Crc32);
        }
        if let Some(kms) = &self.kms_key_arn {
            request = request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms);
        }
        let out = request
            .send()
            .await
            .map_err(|err| self.site.error("s3:CreateMultipartUpload", &err))?;
        let upload_id = out
            .upload_id()
            .ok_or_else(|| AwsError::Incomplete {
                operation: "s3:CreateMultipartUpload",
                missing: "an upload id".to_owned(),
            })?
            .to_owned();
        Ok(MultipartUpload {
            bucket: self.clone(),
            key: key.to_owned(),
            upload_id,
        })
    }

    /// Writes a small object (a manifest, a record) with its checksum.
    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), AwsError> {
        self.json_put(key, value)?
            .send()
            .await
            .map_err(|err| self.site.error("s3:PutObject", &err))?;
        Ok(())
    }

    /// The PutObject of a small JSON object: its SHA-256 checksum and the evidence key.
    fn json_put<T: Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder, AwsError> {
        let body = serde_json::to_vec_pretty(value).map_err(|err| AwsError::Request {
            operation: "s3:PutObject",
            message: format!("cannot encode {key}: {err}"),
        })?;
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(body));
        if let Some(kms) = &self.kms_key_arn {
            request = request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms);
        }
        Ok(request)
    }

    /// Writes a record of custody (a manifest, a ledger seal) once: the write is
    /// conditional on the key not existing (the bucket policy refuses any other), and
    /// finding it written already is fine when it holds the same record (a step that runs
    /// again), an error naming the key when it does not.
    pub async fn put_json_once<T>(&self, key: &str, value: &T) -> Result<(), AwsError>
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq,
    {
        let request = self.json_put(key, value)?.if_none_match("*");
        match request.send().await {
            Ok(_) => Ok(()),
            // 412: written already; 409: another writer's conditional write is under way.
            Err(err)
                if err
                    .raw_response()
                    .is_some_and(|raw| matches!(raw.status().as_u16(), 409 | 412)) =>
            {
                match self.get_json::<T>(key).await? {
                    Some(existing) if existing == *value => Ok(()),
                    _ => Err(AwsError::WrittenOnce {
                        uri: format!("s3://{}/{key}", self.bucket),
                    }),
                }
            }
            Err(err) => Err(self.site.error("s3:PutObject", &err)),
        }
    }

    /// How many versions (delete markers included) the bucket holds of exactly `key`.
    pub async fn versions_of(&self, key: &str) -> Result<usize, AwsError> {
        let out = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .await
            .map_err(|err| self.site.error("s3:ListObjectVersions", &err))?;
        Ok(out
            .versions()
            .iter()
            .filter(|v| v.key() == Some(key))
            .count()
            + out
                .delete_markers()
                .iter()
                .filter(|m| m.key() == Some(key))
                .count())
    }

    /// Reads a small JSON object; `None` when it does not exist.
    pub async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
    ) -> Result<Option<T>, AwsError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err)
                if err.as_service_error().is_some_and(
                    aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key,
                ) =>
            {
                return Ok(None);
            }
            Err(err) => return Err(self.site.error("s3:GetObject", &err)),
        };
        let body = out.body.collect().await.map_err(|err| AwsError::Read {
            uri: format!("s3://{}/{key}", self.bucket),
            message: err.to_string(),
        })?;
        serde_json::from_slice(&body.into_bytes())
            .map(Some)
            .map_err(|err| AwsError::Read {
                uri: format!("s3://{}/{key}", self.bucket),
                message: format!("not valid JSON: {err}"),
            })
    }

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

    /// Streams an object and returns its SHA-256 (lowercase hex), size and version.
    pub async fn hash_object(&self, key: &str) -> Result<ObjectHash, AwsError> {
        Ok(self.hash_object_with(key, ()).await?.0)
    }

    /// Streams an object, hashing it and showing every byte to `observe` (on the hashing
    /// thread, in order), and returns the hash with the observer. An archived object is
    /// restored first (see [`Self::make_readable`]).
    pub async fn hash_object_with<F>(
        &self,
        key: &str,
        mut observe: F,
    ) -> Result<(ObjectHash, F), AwsError>
    where
        F: Observe,
    {
        let read_failed = |message: &str| AwsError::Read {
            uri: format!("s3://{}/{key}", self.bucket),
            message: message.to_owned(),
        };
        let get = || {
            self.client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
        };
        let out = match get().await {
            Ok(out) => out,
            // Archived (template 1's lifecycle): restored, then read. Asked only when S3
            // says so, so that reading what is not archived costs no extra call.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_invalid_object_state()) =>
            {
                self.make_readable(key, None, |status| tracing::info!(status, "read waits"))
                    .await?;
                get()
                    .await
                    .map_err(|err| self.site.error("s3:GetObject", &err))?
            }
            Err(err) => return Err(self.site.error("s3:GetObject", &err)),
        };
        let version_id = out.version_id().map(str::to_owned);
        let mut body = out.body;
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Bytes>(8);
        let hasher = std::thread::spawn(move || {
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            while let Ok(chunk) = receiver.recv() {
                size += chunk.len() as u64;
                hasher.update(&chunk);
                observe.observe(&chunk);
            }
            (hex(&hasher.finalize()), size, observe)
        });
        while let Some(chunk) = body.try_next().await.map_err(|err| AwsError::Read {
            uri: format!("s3://{}/{key}", self.bucket),
            message: err.to_string(),
        })? {
            let sender = sender.clone();
            tokio::task::spawn_blocking(move || sender.send(chunk))
                .await
                .map_err(|err| read_failed(&err.to_string()))?
                .map_err(|_| read_failed("the hashing thread ended early"))?;
        }
        drop(sender);
        let (sha256, size, observe) = tokio::task::spawn_blocking(move || hasher.join())
            .await
            .map_err(|err| read_failed(&err.to_string()))?
            .map_err(|_| read_failed("the hashing thread panicked"))?;
        Ok((
            ObjectHash {
                sha256,
                size,
                version_id,
            },
            observe,
        ))
    }

    /// Makes an archived object readable: template 1's lifecycle moves artifacts to an
    /// archive class, where GetObject answers InvalidObjectState until a restore is done.
    /// Asks for the restore (once) and waits for it, telling `waiting` how it stands; an
    /// object in a readable class returns at once.
    pub async fn make_readable(
        &self,
        key: &str,
        version_id: Option<&str>,
        mut waiting: impl FnMut(&str),
    ) -> Result<(), AwsError> {
        use aws_sdk_s3::types::StorageClass;
        let started = std::time::Instant::now();
        let mut asked = false;
        loop {
            let head = self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .set_version_id(version_id.map(str::to_owned))
                .send()
                .await
                .map_err(|err| self.site.error("s3:HeadObject", &err))?;
            let class = match head.storage_class() {
                Some(class @ (StorageClass::Glacier | StorageClass::DeepArchive)) => class.clone(),
                _ => return Ok(()),
            };
            let restore = head.restore().unwrap_or_default();
            if restore.contains("ongoing-request=\"false\"") {
                return Ok(());
            }
            if restore.is_empty() && !asked {
                let request = aws_sdk_s3::types::RestoreRequest::builder()
                    .days(RESTORED_DAYS)
                    .glacier_job_parameters(
                        aws_sdk_s3::types::GlacierJobParameters::builder()
                            .tier(aws_sdk_s3::types::Tier::Standard)
                            .build()
                            .map_err(|err| AwsError::Request {
                                operation: "s3:RestoreObject",
                                message: err.to_string(),
                            })?,
                    )
                    .build();
                match self
                    .client
                    .restore_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .set_version_id(version_id.map(str::to_owned))
                    .restore_request(request)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    // Another reader asked first: wait for the same restore.
                    Err(err)
                        if err
                            .raw_response()
                            .is_some_and(|raw| raw.status().as_u16() == 409) => {}
                    Err(err) => return Err(self.site.error("s3:RestoreObject", &err)),
                }
                asked = true;
            }
            waiting(&format!(
                "s3://{}/{key} is archived ({}): restoring it for {RESTORED_DAYS} days, {} s so far (a Standard restore takes hours)",
                self.bucket,
                class.as_str(),
                started.elapsed().as_secs()
            ));
            tokio::time::sleep(RESTORE_POLL).await;
        }
    }

    /// Whether an object exists.
    pub async fn exists(&self, key: &str) -> Result<bool, AwsError> {
        Ok(self.lock_state(key).await?.is_some())
    }

    /// The object's Object Lock state: retention mode and date, legal hold; `None` when
    /// the object is gone.
    pub async fn lock_state(&self, key: &str) -> Result<Option<LockState>, AwsError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Some(LockState {
                mode: head.object_lock_mode().map(|m| m.as_str().to_owned()),
                retain_until: head.object_lock_retain_until_date().map(|d| {
                    d.fmt(aws_smithy_types::date_time::Format::DateTime)
                        .unwrap_or_default()
                }),
                legal_hold: head.object_lock_legal_hold_status()
                    == Some(&aws_sdk_s3::types::ObjectLockLegalHoldStatus::On),
            })),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(self.site.error("s3:HeadObject", &err)),
        }
    }

    /// Places (`on`) or removes a legal hold on the object's current version.
    pub async fn set_legal_hold(&self, key: &str, on: bool) -> Result<(), AwsError> {
        let status = if on {
            aws_sdk_s3::types::ObjectLockLegalHoldStatus::On
        } else {
            aws_sdk_s3::types::ObjectLockLegalHoldStatus::Off
        };
        self.client
            .put_object_legal_hold()
            .bucket(&self.bucket)
            .key(key)
            .legal_hold(
                aws_sdk_s3::types::ObjectLockLegalHold::builder()
                    .status(status)
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(|err| self.site.error("s3:PutObjectLegalHold", &err))
    }
}

/// An object's Object Lock state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockState {
    /// `GOVERNANCE` or `COMPLIANCE`, when the object has a retention.
    pub mode: Option<String>,
    /// Until when the retention holds (RFC 3339).
    pub retain_until: Option<String>,
    pub legal_hold: bool,
}

/// The hash of an object as read back from S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHash {
    pub sha256: String,
    pub size: u64,
    pub version_id: Option<String>,
}

/// How long CompleteMultipartUpload may take to assemble an object.
const COMPLETE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// How long a restored copy of archived evidence stays readable.
const RESTORED_DAYS: i32 = 7;
/// How often a restore's progress is asked for.
const RESTORE_POLL: std::time::Duration = std::time::Duration::from_secs(3);

/// How the parts of a multipart upload are checked by S3 (which demands one check or the
/// other on every part with Object Lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartChecks {
    /// A CRC-32 per part, declared when the upload starts: what irf's own uploads send.
    Crc32,
    /// A `Content-MD5` per part and no declared algorithm: what a host sends through
    /// pre-signed URLs, which cannot carry the SDK's checksum headers.
    ContentMd5,
}

/// An open multipart upload of one artifact.
#[derive(Debug, Clone)]
pub struct MultipartUpload {
    bucket: EvidenceBucket,
    pub key: String,
    pub upload_id: String,
}

impl MultipartUpload {
    /// Completes the upload from its stored parts; returns the object's version id.
    pub async fn complete(&self, parts: &[StoredPart]) -> Result<Option<String>, AwsError> {
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        let mut part = CompletedPart::builder()
                            .part_number(p.number)
                            .e_tag(&p.etag);
                        if !p.checksum.is_empty() {
                            part = part.checksum_crc32(&p.checksum);
                        }
                        part.build()
                    })
                    .collect(),
            ))
            .build();
        // S3 may take minutes to assemble a large object ("Processing of a Complete
        // Multipart Upload request could take several minutes"): the API timeouts that suit
        // every other call would abandon a complete image at its last step.
        let assembling = aws_sdk_s3::config::Builder::default().timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(COMPLETE_TIMEOUT)
                .operation_attempt_timeout(COMPLETE_TIMEOUT)
                .build(),
        );
        let out = self
            .bucket
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(completed)
            .customize()
            .config_override(assembling)
            .send()
            .await
            .map_err(|err| self.bucket.site.error("s3:CompleteMultipartUpload", &err))?;
        Ok(out.version_id().map(str::to_owned))
    }

    /// The parts S3 holds for this upload, in order, from ListParts (page by page), and
    /// their bytes in all.
    pub async fn stored_parts(&self) -> Result<(Vec<StoredPart>, u64), AwsError> {
        let mut parts = Vec::new();
        let mut bytes = 0u64;
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .bucket
                .client
                .list_parts()
                .bucket(&self.bucket.bucket)
                .key(&self.key)
                .upload_id(&self.upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await
                .map_err(|err| self.bucket.site.error("s3:ListParts", &err))?;
            bytes += out
                .parts()
                .iter()
                .map(|p| u64::try_from(p.size().unwrap_or(0)).unwrap_or(0))
                .sum::<u64>();
            parts.extend(out.parts().iter().map(|p| StoredPart {
                number: p.part_number().unwrap_or_default(),
                etag: p.e_tag().unwrap_or_default().to_owned(),
                checksum: p.checksum_crc32().unwrap_or_default().to_owned(),
                request_id: None,
            }));
            match (out.is_truncated(), out.next_part_number_marker()) {
                (Some(true), Some(next)) => marker = Some(next.to_owned()),
                _ => return Ok((parts, bytes)),
            }
        }
    }

    /// Abandons the upload (its parts are deleted).
    pub async fn abort(&self) -> Result<(), AwsError> {
        self.bucket
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await
            .map_err(|err| self.bucket.site.error("s3:AbortMultipartUpload", &err))?;
        Ok(())
    }

    /// A pre-signed URL for uploading part `number`, for a host that must hold no
    /// AWS credentials.
    pub async fn presigned_part_url(
        &self,
        number: i32,
        expires_in: std::time::Duration,
    ) -> Result<String, AwsError> {
        let presigning =
            aws_sdk_s3::presigning::PresigningConfig::expires_in(expires_in).map_err(|err| {
                AwsError::Request {
                    operation: "s3:UploadPart (pre-signed)",
                    message: format!("bad pre-signing lifetime: {err}"),
                }
            })?;
        let request = self
            .bucket
            .client
            .upload_part()
            .bucket(&self.bucket.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .presigned(presigning)
            .await
            .map_err(|err| self.bucket.site.error("s3:UploadPart (pre-sign)", &err))?;
        Ok(request.uri().to_owned())
    }
}

impl PartSink for MultipartUpload {
    async fn store(
        &self,
        number: i32,
        data: Bytes,
        checksum: String,
    ) -> Result<StoredPart, ImagingError> {
        let out = self
            .bucket
            .client
            .upload_part()
            .bucket(&self.bucket.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .checksum_crc32(&checksum)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|err| ImagingError::Store {
                number,
                message: self.bucket.site.error("s3:UploadPart", &err).to_string(),
            })?;
        Ok(StoredPart {
            number,
            etag: out.e_tag().unwrap_or_default().to_owned(),
            checksum,
            // The upload runs on a task of its own, outside the step's record of request
            // ids: the part carries its id to the ledger instead.
            request_id: aws_types::request_id::RequestId::request_id(&out).map(str::to_owned),
        })
    }
}
