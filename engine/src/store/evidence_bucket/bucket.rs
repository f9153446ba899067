//! The evidence bucket itself: its client, small records put and read (once, for custody),
//! objects re-hashed as they stream, Object Lock state and legal holds, and restores of
//! archived evidence before it is read.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ServerSideEncryption};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::{AwsError, CallSite};
use crate::hex;
use irf_forensics::imaging::Observe;

/// The evidence bucket, as the Security account's workers write to it.
#[derive(Debug, Clone)]
pub struct EvidenceBucket {
    pub(super) client: aws_sdk_s3::Client,
    pub bucket: String,
    pub(super) kms_key_arn: Option<String>,
    pub(super) site: CallSite,
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
}

impl EvidenceBucket {
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
            .map_err(|err| AwsError::Malformed {
                uri: format!("s3://{}/{key}", self.bucket),
                message: format!("not valid JSON: {err}"),
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

/// How long a restored copy of archived evidence stays readable.
const RESTORED_DAYS: i32 = 7;
/// How often a restore's progress is asked for.
const RESTORE_POLL: std::time::Duration = std::time::Duration::from_secs(3);
