//! The disk imaging pipeline: allocated blocks fetched in parallel and checked against their
//! checksums, the whole raw image hashed in order (zeros included) along with the list of its
//! blocks' hashes, and the stored image (raw, or QCOW2 holding the allocated blocks only) cut
//! into parts that upload while later blocks are still being fetched.
//!
//! The pipeline knows nothing of AWS: a [`BlockSource`] (EBS direct APIs in production) and
//! a [`PartSink`] (an S3 multipart upload) are passed in, which is also how the benchmark
//! measures the pipeline's own cost.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt};
use sha2::{Digest, Sha256};

use crate::hex;

/// One allocated block of a snapshot, as the block list names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRef {
    pub index: u64,
    pub token: String,
}

/// A fetched block with the checksum its source sent along (base64 SHA-256).
#[derive(Debug, Clone)]
pub struct FetchedBlock {
    pub data: Bytes,
    pub checksum: Option<String>,
}

/// What reads an object's bytes beside the hash, in order.
pub trait Observe: Send + 'static {
    fn observe(&mut self, bytes: &[u8]);
}

/// Nothing beside the hash.
impl Observe for () {
    fn observe(&mut self, _: &[u8]) {}
}

/// Where blocks come from.
pub trait BlockSource: Send + Sync {
    /// Bytes per block.
    fn block_size(&self) -> u64;
    /// Size of the whole volume in bytes.
    fn volume_size(&self) -> u64;
    /// Every allocated block, in any order.
    fn list(&self) -> impl Future<Output = Result<Vec<BlockRef>, ImagingError>> + Send;
    /// One block's data.
    fn fetch(
        &self,
        block: &BlockRef,
    ) -> impl Future<Output = Result<FetchedBlock, ImagingError>> + Send;
}

/// A part of the image once stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub number: i32,
    pub etag: String,
    /// The part's [`part_checksum`], as S3 checks it.
    pub checksum: String,
    /// The request id of the call that stored it, where the store answers with one.
    pub request_id: Option<String>,
}

/// Where the image's parts go.
pub trait PartSink: Send + Sync {
    /// Stores part `number` (1-based), whose [`part_checksum`] is `checksum`.
    fn store(
        &self,
        number: i32,
        data: Bytes,
        checksum: String,
    ) -> impl Future<Output = Result<StoredPart, ImagingError>> + Send;
}

/// How the stored image lays the volume out. A manifest without one is raw: every
/// artifact written before QCOW2 was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// Every byte of the volume, zeros included.
    #[default]
    Raw,
    /// QCOW2 holding the allocated blocks only ([`super::qcow2`]): bytes stored and uploaded
    /// in proportion to the data.
    Qcow2,
}

/// How the pipeline runs.
#[derive(Debug, Clone, Copy)]
pub struct ImagingOptions {
    /// The stored image's format.
    pub format: ImageFormat,
    /// Blocks fetched at once, to hide each call's latency.
    pub fetch_concurrency: usize,
    /// Fetches started per second at most (retries included). EBS allows 1,000
    /// GetSnapshotBlock calls per second per snapshot; `None` for a source without a limit.
    pub max_fetches_per_second: Option<u32>,
    /// Parts uploading at once.
    pub upload_concurrency: usize,
    /// Smallest part size; the pipeline raises it for volumes that would need more than
    /// [`MAX_PARTS`] parts.
    pub min_part_size: u64,
    /// Attempts per block when a fetch fails or its checksum does not match.
    pub block_attempts: u32,
    /// For QCOW2, the most zero bytes the raw image's SHA-256 may hash while imaging (it
    /// reads every zero of the volume, at one core's speed); past it the raw hash is left
    /// for later ([`ImageSummary::sha256`] is `None`) and the image costs what it stores.
    /// `None`: always hashed while imaging.
    pub inline_raw_hash_zeros: Option<u64>,
}

impl Default for ImagingOptions {
    fn default() -> Self {
        Self {
            format: ImageFormat::Raw,
            fetch_concurrency: 64,
            max_fetches_per_second: Some(1_000),
            upload_concurrency: 4,
            min_part_size: 16 << 20,
            block_attempts: 4,
            inline_raw_hash_zeros: None,
        }
    }
}

/// S3 allows 10,000 parts; leave room.
pub const MAX_PARTS: u64 = 9_000;

/// Progress as the pipeline reports it, after every stored part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImagingProgress {
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub blocks_fetched: u64,
    pub blocks_retried: u64,
}

/// The finished image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// Lowercase hex SHA-256 of the whole raw image (what `sha256sum` prints over it),
    /// computed in order; `None` where [`ImagingOptions::inline_raw_hash_zeros`] left it
    /// for later.
    pub sha256: Option<String>,
    /// The volume's size: the raw image's length.
    pub size: u64,
    pub format: ImageFormat,
    /// The stored image's length (the raw image's for [`ImageFormat::Raw`]).
    pub stored_size: u64,
    /// Lowercase hex SHA-256 of the stored image (the raw image's for [`ImageFormat::Raw`]):
    /// what S3 holds, so what a read-back checks.
    pub stored_sha256: String,
    /// [`crate::qcow2::BlockListHash`] of the raw image, in `block_size` blocks.
    pub blocks_sha256: String,
    pub block_size: u64,
    pub allocated_blocks: u64,
    pub bytes_fetched: u64,
    pub blocks_retried: u64,
    /// Bytes per part (the last part may be shorter).
    pub part_size: u64,
    pub parts: Vec<StoredPart>,
}

/// The bytes of the stored image one part holds, with the part's CRC-32 as S3 checked it on upload
/// (the whole image's SHA-256 is the manifest's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRange {
    pub number: i32,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Base64 CRC-32 of the part's bytes ([`part_checksum`]).
    pub crc32: String,
    /// The request id of the upload that stored it.
    pub request_id: Option<String>,
}

impl ImageSummary {
    /// Each part's byte range and hash, in order.
    pub fn part_ranges(&self) -> Vec<PartRange> {
        self.parts
            .iter()
            .map(|part| {
                let index = u64::try_from(part.number.max(1) - 1).unwrap_or(0);
                let start = (index * self.part_size).min(self.stored_size);
                PartRange {
                    number: part.number,
                    start,
                    end: (start + self.part_size).min(self.stored_size),
                    crc32: part.checksum.clone(),
                    request_id: part.request_id.clone(),
                }
            })
            .collect()
    }
}

/// Why imaging failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ImagingError {
    #[error(
        "block {index} failed its checksum {attempts} times (expected {expected}, got {actual}): the snapshot or the network corrupts data; the image was not completed"
    )]
    Corrupt {
        index: u64,
        attempts: u32,
        expected: String,
        actual: String,
    },
    #[error("block {index} came back with {got} bytes, not the block size {want}")]
    ShortBlock { index: u64, got: usize, want: u64 },
    #[error("block {index} is past the end of the volume ({blocks} blocks)")]
    OutOfRange { index: u64, blocks: u64 },
    #[error("fetching blocks failed: {0}")]
    Fetch(String),
    #[error("a block source of {0}-byte blocks: a block holds at least one byte")]
    BlockSize(u64),
    #[error("no QCOW2 image can hold the volume: {0}")]
    Layout(#[from] crate::qcow2::Qcow2Error),
    #[error("{stored} bytes of the image were stored where it is {expected}: parts were lost")]
    StoredSize { stored: u64, expected: u64 },
    #[error("storing part {number} failed: {message}")]
    Store { number: i32, message: String },
    #[error("the hashing thread stopped: {0}")]
    Hasher(String),
}

/// Standard base64 with padding, as EBS and S3 write checksums.
fn base64_encode(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The base64 SHA-256 of `data`, as EBS and S3 express checksums.
pub fn checksum_b64(data: &[u8]) -> String {
    base64_encode(Sha256::digest(data))
}

/// The transport checksum of a part: base64 of its CRC-32, big-endian, as S3 takes it.
/// Each part travels with it; the evidence hash is the whole image's SHA-256. CRC-32 runs at
/// memory speed, so checking parts costs the second core nothing the block checks need.
pub fn part_checksum(data: &[u8]) -> String {
    base64_encode(crc32fast::hash(data).to_be_bytes())
}

/// The part size for a volume: at least `min`, a whole number of blocks, and few enough
/// parts for S3.
pub fn part_size_for(volume_size: u64, block_size: u64, min: u64) -> u64 {
    let block_size = block_size.max(1);
    let wanted = min.max(volume_size.div_ceil(MAX_PARTS));
    wanted.div_ceil(block_size) * block_size
}

/// Spaces calls evenly so that they never exceed a rate, however many are in flight.
#[derive(Debug)]
struct Pacer {
    interval: std::time::Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Pacer {
    fn per_second(rate: u32) -> Self {
        Self {
            interval: std::time::Duration::from_secs(1) / rate.max(1),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for this call's slot.
    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// A fetched block checked against its checksum, with its SHA-256.
struct VerifiedBlock {
    index: u64,
    data: Bytes,
    digest: [u8; 32],
}

/// Fetches one block, retrying failures and checksum mismatches.
async fn fetch_verified<S: BlockSource>(
    source: &S,
    block: &BlockRef,
    attempts: u32,
    retried: &AtomicU64,
    pacer: Option<&Pacer>,
) -> Result<VerifiedBlock, ImagingError> {
    let want = source.block_size();
    let mut last = None;
    for attempt in 1..=attempts.max(1) {
        if attempt > 1 {
            retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(std::time::Duration::from_millis(50 << attempt.min(6))).await;
        }
        if let Some(pacer) = pacer {
            pacer.wait().await;
        }
        match source.fetch(block).await {
            Ok(fetched) => {
                if fetched.data.len() as u64 != want {
                    return Err(ImagingError::ShortBlock {
                        index: block.index,
                        got: fetched.data.len(),
                        want,
                    });
                }
                let data = fetched.data;
                // The digest serves the block list hash, and the service's checksum is the
                // same SHA-256 in base64.
                let (digest, data) = tokio::task::spawn_blocking(move || {
                    let digest: [u8; 32] = Sha256::digest(&data).into();
                    (digest, data)
                })
                .await
                .map_err(|err| ImagingError::Hasher(err.to_string()))?;
                let Some(expected) = fetched.checksum else {
                    return Ok(VerifiedBlock {
                        index: block.index,
                        data,
                        digest,
                    });
                };
                let actual = base64_encode(digest);
                if actual == expected {
                    return Ok(VerifiedBlock {
                        index: block.index,
                        data,
                        digest,
                    });
                }
                tracing::warn!(
                    block = block.index,
                    attempt,
                    "block checksum mismatch; fetching it again"
                );
                last = Some(ImagingError::Corrupt {
                    index: block.index,
                    attempts: attempt,
                    expected,
                    actual,
                });
            }
            Err(err) => {
                tracing::warn!(block = block.index, attempt, error = %err, "block fetch failed");
                last = Some(err);
            }
        }
    }
    Err(last.unwrap_or_else(|| ImagingError::Fetch("no attempt made".to_owned())))
}

/// The in-order whole-image hash, on its own thread so that the async workers never wait
/// on it and the part checksums run beside it on the other core.
struct OrderedHasher {
    sender: Option<std::sync::mpsc::SyncSender<RawBytes>>,
    thread: Option<std::thread::JoinHandle<[u8; 32]>>,
}

/// The next bytes of the raw image, for its hash.
enum RawBytes {
    Data(Bytes),
    /// This many zero bytes: a stretch no block of the allocation covers.
    Zeros(u64),
}

impl OrderedHasher {
    fn start() -> Result<Self, ImagingError> {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<RawBytes>(2);
        let thread = std::thread::Builder::new()
            .name("irf-image-hash".to_owned())
            .spawn(move || {
                let mut hasher = Sha256::new();
                while let Ok(next) = receiver.recv() {
                    match next {
                        RawBytes::Data(chunk) => hasher.update(&chunk),
                        RawBytes::Zeros(count) => crate::qcow2::hash_zeros(&mut hasher, count),
                    }
                }
                hasher.finalize().into()
            })
            .map_err(|err| ImagingError::Hasher(err.to_string()))?;
        Ok(Self {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    async fn push(&self, chunk: RawBytes) -> Result<(), ImagingError> {
        let sender = self
            .sender
            .clone()
            .ok_or_else(|| ImagingError::Hasher("already finished".to_owned()))?;
        // A full channel blocks; do that off the async workers.
        tokio::task::spawn_blocking(move || sender.send(chunk))
            .await
            .map_err(|err| ImagingError::Hasher(err.to_string()))?
            .map_err(|_| ImagingError::Hasher("the hashing thread ended early".to_owned()))
    }

    async fn finish(mut self) -> Result<String, ImagingError> {
        drop(self.sender.take());
        let thread = self
            .thread
            .take()
            .ok_or_else(|| ImagingError::Hasher("already finished".to_owned()))?;
        let digest = tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|err| ImagingError::Hasher(err.to_string()))?
            .map_err(|_| ImagingError::Hasher("the hashing thread panicked".to_owned()))?;
        Ok(hex(&digest))
    }
}

/// Cuts the stored image into parts and uploads them, a few at a time.
struct PartWriter<K> {
    sink: Arc<K>,
    part_size: u64,
    stored_size: u64,
    upload_concurrency: usize,
    part: BytesMut,
    part_number: i32,
    uploads: FuturesUnordered<tokio::task::JoinHandle<Result<(StoredPart, u64), ImagingError>>>,
    parts: Vec<StoredPart>,
    bytes_done: u64,
    /// The stored image's hasher (the raw image's too when the format is raw).
    stored_hasher: Arc<OrderedHasher>,
}

impl<K: PartSink + 'static> PartWriter<K> {
    /// Appends stored bytes; `progress` hears of every part stored meanwhile.
    async fn append(
        &mut self,
        mut bytes: &[u8],
        progress: &mut impl FnMut(u64),
    ) -> Result<(), ImagingError> {
        while !bytes.is_empty() {
            let room = usize::try_from(self.part_size)
                .unwrap_or(usize::MAX)
                .saturating_sub(self.part.len());
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.part.extend_from_slice(now);
            bytes = later;
            if self.part.len() as u64 >= self.part_size {
                self.cut(progress).await?;
            }
        }
        Ok(())
    }

    /// Appends `count` zero bytes, a `zeros` buffer at a time.
    async fn append_zeros(
        &mut self,
        mut count: u64,
        zeros: &[u8],
        progress: &mut impl FnMut(u64),
    ) -> Result<(), ImagingError> {
        while count > 0 {
            let take = usize::try_from(count)
                .unwrap_or(usize::MAX)
                .min(zeros.len());
            self.append(&zeros[..take], progress).await?;
            count -= take as u64;
        }
        Ok(())
    }

    async fn cut(&mut self, progress: &mut impl FnMut(u64)) -> Result<(), ImagingError> {
        if self.part.is_empty() {
            return Ok(());
        }
        self.part_number += 1;
        let capacity = usize::try_from(self.part_size).unwrap_or(0);
        let data = std::mem::replace(&mut self.part, BytesMut::with_capacity(capacity)).freeze();
        self.stored_hasher
            .push(RawBytes::Data(data.clone()))
            .await?;
        while self.uploads.len() >= self.upload_concurrency.max(1) {
            self.collect_one(progress).await?;
        }
        let sink = self.sink.clone();
        let number = self.part_number;
        self.uploads.push(tokio::spawn(async move {
            let len = data.len() as u64;
            let checksum = part_checksum(&data);
            let stored = sink.store(number, data, checksum).await?;
            Ok((stored, len))
        }));
        Ok(())
    }

    async fn collect_one(&mut self, progress: &mut impl FnMut(u64)) -> Result<(), ImagingError> {
        let Some(stored) = self.uploads.next().await else {
            return Ok(());
        };
        let (stored, len) = stored.map_err(|err| ImagingError::Store {
            number: self.part_number,
            message: format!("upload task ended: {err}"),
        })??;
        self.bytes_done += len;
        self.parts.push(stored);
        progress(self.bytes_done);
        Ok(())
    }

    /// Stores the last part and waits for every upload.
    async fn finish(
        mut self,
        progress: &mut impl FnMut(u64),
    ) -> Result<Vec<StoredPart>, ImagingError> {
        self.cut(progress).await?;
        while !self.uploads.is_empty() {
            self.collect_one(progress).await?;
        }
        if self.bytes_done != self.stored_size {
            return Err(ImagingError::StoredSize {
                stored: self.bytes_done,
                expected: self.stored_size,
            });
        }
        self.parts.sort_by_key(|p| p.number);
        Ok(self.parts)
    }
}

/// Images the volume behind `source` into `sink`.
pub async fn image<S, K>(
    source: Arc<S>,
    sink: Arc<K>,
    options: ImagingOptions,
    mut progress: impl FnMut(ImagingProgress) + Send,
) -> Result<ImageSummary, ImagingError>
where
    S: BlockSource + 'static,
    K: PartSink + 'static,
{
    let block_size = source.block_size();
    if block_size == 0 {
        return Err(ImagingError::BlockSize(block_size));
    }
    let volume_size = source.volume_size();
    let total_blocks = volume_size.div_ceil(block_size);
    let mut blocks = source.list().await?;
    blocks.sort_by_key(|b| b.index);
    blocks.dedup_by_key(|b| b.index);
    if let Some(last) = blocks.last()
        && last.index >= total_blocks
    {
        return Err(ImagingError::OutOfRange {
            index: last.index,
            blocks: total_blocks,
        });
    }
    let allocated = blocks.len() as u64;
    let layout = match options.format {
        ImageFormat::Raw => None,
        ImageFormat::Qcow2 => Some(crate::qcow2::Qcow2Layout::new(
            volume_size,
            block_size,
            blocks.iter().map(|b| b.index).collect(),
        )?),
    };
    let stored_size = layout.as_ref().map_or(volume_size, |l| l.image_len());
    let part_size = part_size_for(stored_size, block_size, options.min_part_size);
    let retried = Arc::new(AtomicU64::new(0));

    let pacer = options
        .max_fetches_per_second
        .map(|rate| Arc::new(Pacer::per_second(rate)));
    let fetches = {
        let source = source.clone();
        let retried = retried.clone();
        futures::stream::iter(blocks)
            .map(move |block| {
                let source = source.clone();
                let retried = retried.clone();
                let pacer = pacer.clone();
                // Spawned, so that fetches proceed while the assembler is busy elsewhere.
                let task = tokio::spawn(async move {
                    fetch_verified(
                        &*source,
                        &block,
                        options.block_attempts,
                        &retried,
                        pacer.as_deref(),
                    )
                    .await
                });
                async move {
                    task.await
                        .map_err(|err| ImagingError::Fetch(format!("fetch task ended: {err}")))?
                }
            })
            .buffered(options.fetch_concurrency.max(1))
    };
    let mut fetches = std::pin::pin!(fetches);

    let stored_hasher = Arc::new(OrderedHasher::start()?);
    // QCOW2 stores other bytes than the raw image: the raw image is hashed on its own,
    // unless its zeros would cost more than the image.
    let zeros = volume_size.saturating_sub(allocated * block_size);
    let raw_inline = options
        .inline_raw_hash_zeros
        .is_none_or(|most| zeros <= most);
    let raw_hasher = match &layout {
        Some(_) if raw_inline => Some(OrderedHasher::start()?),
        _ => None,
    };
    let mut block_list = crate::qcow2::BlockListHash::new(block_size);
    let mut writer = PartWriter {
        sink,
        part_size,
        stored_size,
        upload_concurrency: options.upload_concurrency,
        part: BytesMut::with_capacity(usize::try_from(part_size).unwrap_or(0)),
        part_number: 0,
        uploads: FuturesUnordered::new(),
        parts: Vec::new(),
        bytes_done: 0,
        stored_hasher: stored_hasher.clone(),
    };
    let mut report = |bytes_done| {
        progress(ImagingProgress {
            bytes_done,
            bytes_total: stored_size,
            blocks_fetched: allocated,
            blocks_retried: retried.load(Ordering::Relaxed),
        });
    };
    if let Some(layout) = &layout {
        for cluster in layout.metadata() {
            writer.append(&cluster, &mut report).await?;
        }
    }

    let zero_block = vec![0u8; usize::try_from(block_size).unwrap_or(usize::MAX)];
    // The raw image's next offset: everything before it is stored (raw) or hashed (QCOW2).
    let mut offset = 0u64;
    while let Some(block) = fetches.next().await.transpose()? {
        let start = block.index * block_size;
        let take = usize::try_from(block_size.min(volume_size - start)).unwrap_or(0);
        match &layout {
            None => {
                writer
                    .append_zeros(start - offset, &zero_block, &mut report)
                    .await?;
                writer.append(&block.data[..take], &mut report).await?;
            }
            Some(_) => {
                if let Some(hasher) = &raw_hasher {
                    if offset < start {
                        hasher.push(RawBytes::Zeros(start - offset)).await?;
                    }
                    hasher
                        .push(RawBytes::Data(block.data.slice(..take)))
                        .await?;
                }
                // A cluster is whole in the image, the volume's last one included.
                writer.append(&block.data, &mut report).await?;
            }
        }
        block_list.add(block.index, &block.digest);
        offset = start + take as u64;
    }
    match &layout {
        None => {
            writer
                .append_zeros(volume_size - offset, &zero_block, &mut report)
                .await?;
        }
        Some(_) => {
            if let Some(hasher) = &raw_hasher
                && offset < volume_size
            {
                hasher.push(RawBytes::Zeros(volume_size - offset)).await?;
            }
        }
    }
    let parts = writer.finish(&mut report).await?;
    let stored_sha256 = Arc::into_inner(stored_hasher)
        .ok_or_else(|| ImagingError::Hasher("the hasher is still shared".to_owned()))?
        .finish()
        .await?;
    let sha256 = match (&layout, raw_hasher) {
        (None, _) => Some(stored_sha256.clone()),
        (Some(_), Some(hasher)) => Some(hasher.finish().await?),
        (Some(_), None) => None,
    };
    Ok(ImageSummary {
        sha256,
        stored_sha256,
        size: volume_size,
        format: options.format,
        stored_size,
        blocks_sha256: block_list.finish(total_blocks),
        block_size,
        allocated_blocks: allocated,
        bytes_fetched: allocated * block_size,
        blocks_retried: retried.load(Ordering::Relaxed),
        part_size,
        parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_source::{InMemoryParts, InMemoryVolume};

    fn sparse_image(blocks: u64, block_size: u64, written: &[u64]) -> Bytes {
        let mut image = vec![0u8; usize::try_from(blocks * block_size).expect("fits")];
        for &index in written {
            let start = usize::try_from(index * block_size).expect("fits");
            for (i, byte) in image[start..start + 4096].iter_mut().enumerate() {
                *byte = u8::try_from((index as usize + i) % 251).expect("byte") | 1;
            }
        }
        Bytes::from(image)
    }

    fn options() -> ImagingOptions {
        ImagingOptions {
            format: ImageFormat::Raw,
            fetch_concurrency: 8,
            max_fetches_per_second: Some(1_000),
            upload_concurrency: 2,
            min_part_size: 4 * 65536,
            block_attempts: 3,
            inline_raw_hash_zeros: None,
        }
    }

    #[tokio::test]
    async fn image_is_byte_identical_and_hashed_in_order() {
        let image = sparse_image(40, 65536, &[0, 3, 4, 17, 39]);
        let source = Arc::new(InMemoryVolume::new(image.clone(), 65536));
        let sink = Arc::new(InMemoryParts::default());
        let mut reports = Vec::new();
        let summary = image_volume(source, sink.clone(), &mut reports)
            .await
            .expect("imaged");
        assert_eq!(sink.assembled(), image.to_vec());
        assert_eq!(summary.sha256, Some(hex(&Sha256::digest(&image))));
        assert_eq!(summary.allocated_blocks, 5);
        assert_eq!(summary.bytes_fetched, 5 * 65536);
        assert_eq!(summary.parts.len(), 10);
        assert_eq!(
            summary.parts.iter().map(|p| p.number).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        // Every part's checksum is its own, the cached ones of zero parts included.
        for part in &summary.parts {
            let data = sink.part(part.number).expect("stored");
            assert_eq!(part.checksum, part_checksum(&data), "part {}", part.number);
        }
        let last = reports.last().expect("progress reported");
        assert_eq!(last.bytes_done, image.len() as u64);
        assert!(
            reports
                .windows(2)
                .all(|w| w[0].bytes_done < w[1].bytes_done)
        );
    }

    /// The raw image of `len` bytes a QCOW2 image stands for.
    fn expanded(qcow2: &[u8], len: usize) -> Vec<u8> {
        crate::qcow2::tests::expand(qcow2, len)
            .expect("a readable image")
            .0
    }

    #[tokio::test]
    async fn a_qcow2_image_stores_only_the_data_and_hashes_as_the_raw_image() {
        // 64 blocks, five holding data, the last one cut short by the volume's end.
        let mut raw = sparse_image(64, 65536, &[0, 3, 4, 17, 62]).to_vec();
        raw.truncate(63 * 65536 + 4096);
        let raw = Bytes::from(raw);
        let source = Arc::new(InMemoryVolume::new(raw.clone(), 65536));
        let sink = Arc::new(InMemoryParts::default());
        let mut reports = Vec::new();
        let qcow2 = ImagingOptions {
            format: ImageFormat::Qcow2,
            ..options()
        };
        let summary = image(source.clone(), sink.clone(), qcow2, |p| reports.push(p))
            .await
            .expect("imaged");
        let stored = sink.assembled();
        assert_eq!(summary.format, ImageFormat::Qcow2);
        assert_eq!(summary.stored_size, stored.len() as u64);
        assert!(
            stored.len() < raw.len() / 4,
            "{} bytes stored for {} of raw image",
            stored.len(),
            raw.len()
        );
        assert_eq!(expanded(&stored, raw.len()), raw.to_vec());
        assert_eq!(summary.sha256, Some(hex(&Sha256::digest(&raw))));
        assert_eq!(summary.stored_sha256, hex(&Sha256::digest(&stored)));
        assert_eq!(
            summary.blocks_sha256,
            crate::qcow2::tests::block_list_hash_of(&raw, 65536)
        );
        assert_eq!(
            reports.last().map(|r| (r.bytes_done, r.bytes_total)),
            Some((stored.len() as u64, stored.len() as u64))
        );
        // The raw format's hashes are the same.
        let raw_summary = image(
            source,
            Arc::new(InMemoryParts::default()),
            options(),
            |_| {},
        )
        .await
        .expect("imaged raw");
        assert_eq!(raw_summary.sha256, summary.sha256);
        assert_eq!(
            Some(&raw_summary.stored_sha256),
            raw_summary.sha256.as_ref()
        );
        assert_eq!(raw_summary.blocks_sha256, summary.blocks_sha256);
    }

    /// Past the bound on zeros, the raw image's hash is left for later: the image stores,
    /// hashes and proves the same data, in time that follows the data.
    #[tokio::test]
    async fn a_sparse_image_past_the_bound_leaves_its_raw_hash_for_later() {
        let raw = sparse_image(64, 65536, &[5, 40]);
        let source = Arc::new(InMemoryVolume::new(raw.clone(), 65536));
        let qcow2 = |most| ImagingOptions {
            format: ImageFormat::Qcow2,
            inline_raw_hash_zeros: Some(most),
            ..options()
        };
        let zeros = 62 * 65536;
        let sink = Arc::new(InMemoryParts::default());
        let deferred = image(source.clone(), sink.clone(), qcow2(zeros - 1), |_| {})
            .await
            .expect("imaged");
        assert_eq!(deferred.sha256, None);
        assert_eq!(
            deferred.stored_sha256,
            hex(&Sha256::digest(sink.assembled()))
        );
        assert_eq!(
            deferred.blocks_sha256,
            crate::qcow2::tests::block_list_hash_of(&raw, 65536)
        );
        let inline = image(
            source,
            Arc::new(InMemoryParts::default()),
            qcow2(zeros),
            |_| {},
        )
        .await
        .expect("imaged");
        assert_eq!(inline.sha256, Some(hex(&Sha256::digest(&raw))));
        assert_eq!(inline.stored_sha256, deferred.stored_sha256);
    }

    /// qemu's own tools open what the pipeline writes and find the raw image in it.
    #[tokio::test]
    async fn qemu_img_reads_the_pipelines_qcow2_as_the_raw_image() {
        let raw = sparse_image(48, 512 << 10, &[1, 2, 30, 47]);
        let source = Arc::new(InMemoryVolume::new(raw.clone(), 512 << 10));
        let sink = Arc::new(InMemoryParts::default());
        let qcow2 = ImagingOptions {
            format: ImageFormat::Qcow2,
            min_part_size: 1 << 20,
            ..options()
        };
        image(source, sink.clone(), qcow2, |_| {})
            .await
            .expect("imaged");
        let dir = tempfile::tempdir().expect("tempdir");
        let stored = dir.path().join("volume.qcow2");
        let converted = dir.path().join("volume.raw");
        std::fs::write(&stored, sink.assembled()).expect("written");
        let qemu_img = crate::qcow2::qemu_img;
        qemu_img(&["check".as_ref(), stored.as_os_str()]);
        qemu_img(&[
            "convert".as_ref(),
            "-O".as_ref(),
            "raw".as_ref(),
            stored.as_os_str(),
            converted.as_os_str(),
        ]);
        assert_eq!(std::fs::read(&converted).expect("converted"), raw.to_vec());
    }

    async fn image_volume(
        source: Arc<InMemoryVolume>,
        sink: Arc<InMemoryParts>,
        reports: &mut Vec<ImagingProgress>,
    ) -> Result<ImageSummary, ImagingError> {
        image(source, sink, options(), |p| reports.push(p)).await
    }

    #[tokio::test]
    async fn a_volume_of_zeros_images_without_fetching() {
        let image = Bytes::from(vec![0u8; 8 * 65536]);
        let source = Arc::new(InMemoryVolume::new(image.clone(), 65536));
        let sink = Arc::new(InMemoryParts::default());
        let summary = image_volume(source, sink.clone(), &mut Vec::new())
            .await
            .expect("imaged");
        assert_eq!(summary.bytes_fetched, 0);
        assert_eq!(sink.assembled(), image.to_vec());
    }

    #[tokio::test]
    async fn a_corrupted_block_is_fetched_again() {
        let image = sparse_image(16, 65536, &[2, 9]);
        let source = Arc::new(InMemoryVolume::new(image.clone(), 65536).corrupt(9, 2));
        let sink = Arc::new(InMemoryParts::default());
        let summary = image_volume(source, sink.clone(), &mut Vec::new())
            .await
            .expect("imaged");
        assert_eq!(summary.blocks_retried, 2);
        assert_eq!(sink.assembled(), image.to_vec());
    }

    #[tokio::test]
    async fn a_block_corrupt_every_time_fails_the_image_and_names_the_block() {
        let image = sparse_image(16, 65536, &[2, 9]);
        let source = Arc::new(InMemoryVolume::new(image, 65536).corrupt(9, 99));
        let sink = Arc::new(InMemoryParts::default());
        let err = image_volume(source, sink, &mut Vec::new())
            .await
            .expect_err("corrupt");
        assert!(
            matches!(
                err,
                ImagingError::Corrupt {
                    index: 9,
                    attempts: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("block 9"));
    }

    #[test]
    fn part_sizes_keep_within_the_part_limit() {
        const MIB: u64 = 1 << 20;
        const BLOCK: u64 = 512 * 1024;
        assert_eq!(part_size_for(8 << 30, BLOCK, 16 * MIB), 16 * MIB);
        let huge = 16u64 << 40;
        let size = part_size_for(huge, BLOCK, 16 * MIB);
        assert!(huge.div_ceil(size) <= MAX_PARTS);
        assert_eq!(size % BLOCK, 0);
    }

    #[tokio::test]
    async fn fetches_keep_to_the_rate_limit_however_many_are_in_flight() {
        let raw = sparse_image(20, 65536, &(0..20).collect::<Vec<_>>());
        let source = Arc::new(InMemoryVolume::new(raw, 65536));
        let started = tokio::time::Instant::now();
        let options = ImagingOptions {
            fetch_concurrency: 32,
            max_fetches_per_second: Some(50),
            ..options()
        };
        image(source, Arc::new(InMemoryParts::default()), options, |_| {})
            .await
            .expect("imaged");
        // 20 fetches at 50 per second: the last starts 380 ms after the first.
        let took = started.elapsed();
        assert!(took >= std::time::Duration::from_millis(380), "{took:?}");
    }

    #[test]
    fn part_ranges_cover_the_image_once_in_order() {
        let part = |number: i32| StoredPart {
            number,
            etag: String::new(),
            checksum: format!("c{number}"),
            request_id: None,
        };
        let summary = ImageSummary {
            sha256: None,
            size: 40,
            format: ImageFormat::Raw,
            stored_size: 40,
            stored_sha256: String::new(),
            blocks_sha256: String::new(),
            block_size: 4,
            allocated_blocks: 10,
            bytes_fetched: 40,
            blocks_retried: 0,
            part_size: 16,
            parts: vec![part(1), part(2), part(3)],
        };
        let ranges: Vec<(u64, u64, String)> = summary
            .part_ranges()
            .into_iter()
            .map(|r| (r.start, r.end, r.crc32))
            .collect();
        assert_eq!(
            ranges,
            [
                (0, 16, "c1".to_owned()),
                (16, 32, "c2".to_owned()),
                (32, 40, "c3".to_owned())
            ]
        );
    }

    #[test]
    fn part_checksums_are_s3_crc32() {
        // S3's documented example: CRC-32 of "Hello, World!" is 0xec4ac3d0.
        assert_eq!(part_checksum(b"Hello, World!"), "7ErD0A==");
    }

    #[test]
    fn checksums_are_base64_sha256() {
        assert_eq!(
            checksum_b64(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
