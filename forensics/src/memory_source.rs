//! A block source over a raw image held in memory, and part sinks that keep or discard what
//! they are given: the pipeline's tests and its benchmark feed it with these.

use crate::imaging::{
    BlockRef, BlockSource, FetchedBlock, ImagingError, PartSink, StoredPart, checksum_b64,
};
use bytes::Bytes;
use std::sync::Arc;

/// An image held in memory, listing the blocks that are not all zeros.
#[derive(Debug, Clone)]
pub struct InMemoryVolume {
    pub image: Bytes,
    pub block_size: u64,
    /// Block indexes whose checksum is reported wrongly for the next N fetches.
    pub corrupt_first: std::collections::HashMap<u64, u32>,
    corrupted: Arc<std::sync::Mutex<std::collections::HashMap<u64, u32>>>,
}

impl InMemoryVolume {
    pub fn new(image: Bytes, block_size: u64) -> Self {
        Self {
            image,
            block_size,
            corrupt_first: Default::default(),
            corrupted: Default::default(),
        }
    }

    /// Reports a wrong checksum for `index` the first `times` fetches.
    pub fn corrupt(mut self, index: u64, times: u32) -> Self {
        self.corrupt_first.insert(index, times);
        self
    }
}

impl BlockSource for InMemoryVolume {
    fn block_size(&self) -> u64 {
        self.block_size
    }

    fn volume_size(&self) -> u64 {
        self.image.len() as u64
    }

    async fn list(&self) -> Result<Vec<BlockRef>, ImagingError> {
        Ok(self
            .image
            .chunks(usize::try_from(self.block_size).unwrap_or(usize::MAX))
            .enumerate()
            .filter(|(_, chunk)| chunk.iter().any(|b| *b != 0))
            .map(|(i, _)| BlockRef {
                index: i as u64,
                token: format!("t{i}"),
            })
            .collect())
    }

    async fn fetch(&self, block: &BlockRef) -> Result<FetchedBlock, ImagingError> {
        let start = usize::try_from(block.index * self.block_size).unwrap_or(usize::MAX);
        let end = (start + usize::try_from(self.block_size).unwrap_or(0)).min(self.image.len());
        let mut data = self.image.slice(start..end).to_vec();
        data.resize(usize::try_from(self.block_size).unwrap_or(0), 0);
        let checksum = checksum_b64(&data);
        let mut corrupted = self
            .corrupted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let served = corrupted.entry(block.index).or_insert(0);
        if self
            .corrupt_first
            .get(&block.index)
            .is_some_and(|times| *served < *times)
        {
            *served += 1;
            if let Some(first) = data.first_mut() {
                *first ^= 0xff;
            }
        }
        Ok(FetchedBlock {
            data: Bytes::from(data),
            checksum: Some(checksum),
        })
    }
}

/// A sink that keeps parts in memory and can reassemble them.
#[derive(Debug, Default)]
pub struct InMemoryParts {
    parts: std::sync::Mutex<std::collections::BTreeMap<i32, Bytes>>,
}

impl InMemoryParts {
    /// One stored part's bytes.
    pub fn part(&self, number: i32) -> Option<Bytes> {
        self.parts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&number)
            .cloned()
    }

    pub fn assembled(&self) -> Vec<u8> {
        let parts = self
            .parts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        parts.values().flat_map(|p| p.iter().copied()).collect()
    }
}

impl PartSink for InMemoryParts {
    async fn store(
        &self,
        number: i32,
        data: Bytes,
        checksum: String,
    ) -> Result<StoredPart, ImagingError> {
        self.parts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(number, data);
        Ok(StoredPart {
            number,
            etag: format!("\"etag-{number}\""),
            checksum,
            request_id: None,
        })
    }
}

/// A sink that only counts (for measuring the pipeline without a copy).
#[derive(Debug, Default)]
pub struct DiscardParts;

impl PartSink for DiscardParts {
    async fn store(
        &self,
        number: i32,
        _data: Bytes,
        checksum: String,
    ) -> Result<StoredPart, ImagingError> {
        Ok(StoredPart {
            number,
            etag: String::new(),
            checksum,
            request_id: None,
        })
    }
}
