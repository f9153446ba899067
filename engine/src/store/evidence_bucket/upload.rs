//! Multipart uploads into the evidence bucket: started with per-part checks, parts stored,
//! listed, completed, aborted, or pre-signed for a host that holds no credentials.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use bytes::Bytes;

use super::bucket::EvidenceBucket;
use crate::aws::AwsError;
use irf_forensics::imaging::{ImagingError, PartSink, StoredPart};

/// How long CompleteMultipartUpload may take to assemble an object.
const COMPLETE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl EvidenceBucket {
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
}

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
