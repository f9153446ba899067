//! Sparse disk images in QCOW2 (version 3), written front to back in one pass because the
//! allocation is known before the first byte: the header, refcounts and mapping tables
//! come first, then the data clusters in the order of the volume. Also reads such an image
//! back, cluster by cluster, for verification and export.
//!
//! QCOW2 because the field's tools open it without conversion (`qemu-img`, `qemu-nbd`,
//! libqcow and so dfVFS/Plaso, Dissect) and because a mapping known up front makes it a
//! streamable format; no maintained crate writes QCOW2 as a stream into an upload (they
//! write through a seekable file), so the layout is computed here, in a page of code, and
//! every layout is checked against `qemu-img check` in the tests.

use sha2::{Digest, Sha256};

/// The QCOW2 magic: "QFI" and 0xfb.
const MAGIC: u32 = 0x5146_49fb;
/// The version 3 header's length without extensions (the spec's fixed fields).
const HEADER_LENGTH: u32 = 104;
/// Refcounts are 16 bits wide (refcount_order 4), as qemu writes them.
const REFCOUNT_ORDER: u32 = 4;
/// An L1 or L2 entry whose cluster has refcount 1 and may be written in place.
const COPIED: u64 = 1 << 63;
/// Bits 9 to 55 of a table entry hold the host offset.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// L2 entry bit 62: a compressed cluster, which irf never writes.
const COMPRESSED: u64 = 1 << 62;
/// L2 entry bit 0: the cluster reads as zeros (version 3).
const ZERO_FLAG: u64 = 1;

/// Why a layout cannot be made, or an image not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Qcow2Error {
    #[error(
        "a cluster of {0} bytes cannot be a QCOW2 cluster: it must be a power of two from 512 bytes to 2 MiB"
    )]
    ClusterSize(u64),
    #[error(
        "data cluster {index} is listed out of order or twice (after {previous}); the allocation must be ascending"
    )]
    Unordered { index: u64, previous: u64 },
    #[error("data cluster {index} is past the end of a {clusters}-cluster volume")]
    OutOfRange { index: u64, clusters: u64 },
    #[error("not a QCOW2 image irf can read: {0}")]
    Unreadable(String),
    #[error("not the QCOW2 image irf wrote: {0}")]
    Edited(String),
}

/// Where everything of one image goes, computed from the volume size and its allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qcow2Layout {
    virtual_size: u64,
    cluster_bits: u32,
    /// Volume clusters holding data, ascending; data cluster `n` of the image is the
    /// volume's cluster `data_clusters[n]`.
    data_clusters: Vec<u64>,
    /// L1 indexes that have an L2 table, ascending.
    l2_tables: Vec<u64>,
    l1_entries: u64,
    refcount_table_clusters: u64,
    refcount_blocks: u64,
}

impl Qcow2Layout {
    /// The layout of a `virtual_size`-byte volume whose clusters of `cluster_size` bytes
    /// listed in `data_clusters` (ascending) hold data; every other cluster reads as zeros.
    pub fn new(
        virtual_size: u64,
        cluster_size: u64,
        data_clusters: Vec<u64>,
    ) -> Result<Self, Qcow2Error> {
        if !cluster_size.is_power_of_two() || !(512..=2 << 20).contains(&cluster_size) {
            return Err(Qcow2Error::ClusterSize(cluster_size));
        }
        let cluster_bits = cluster_size.trailing_zeros();
        let clusters = virtual_size.div_ceil(cluster_size);
        let mut previous: Option<u64> = None;
        for &index in &data_clusters {
            if let Some(previous) = previous
                && index <= previous
            {
                return Err(Qcow2Error::Unordered { index, previous });
            }
            if index >= clusters {
                return Err(Qcow2Error::OutOfRange { index, clusters });
            }
            previous = Some(index);
        }
        let l2_entries = cluster_size / 8;
        let mut l2_tables: Vec<u64> = data_clusters.iter().map(|c| c / l2_entries).collect();
        l2_tables.dedup();
        let l1_entries = clusters.div_ceil(l2_entries).max(1);
        let mut layout = Self {
            virtual_size,
            cluster_bits,
            data_clusters,
            l2_tables,
            l1_entries,
            refcount_table_clusters: 1,
            refcount_blocks: 1,
        };
        // The refcount blocks count every cluster, themselves included: settle the counts.
        loop {
            let host_clusters = layout.host_clusters();
            let blocks = host_clusters.div_ceil(layout.refcounts_per_block());
            let table = (blocks * 8).div_ceil(cluster_size);
            if (blocks, table) == (layout.refcount_blocks, layout.refcount_table_clusters) {
                return Ok(layout);
            }
            layout.refcount_blocks = blocks.max(layout.refcount_blocks);
            layout.refcount_table_clusters = table.max(layout.refcount_table_clusters);
        }
    }

    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// Volume clusters holding data, in the order the image stores them.
    pub fn data_clusters(&self) -> &[u64] {
        &self.data_clusters
    }

    fn refcounts_per_block(&self) -> u64 {
        self.cluster_size() * 8 / (1 << REFCOUNT_ORDER)
    }

    fn l1_clusters(&self) -> u64 {
        (self.l1_entries * 8).div_ceil(self.cluster_size())
    }

    /// Clusters before the data: header, refcount table and blocks, L1, L2 tables.
    fn metadata_clusters(&self) -> u64 {
        1 + self.refcount_table_clusters
            + self.refcount_blocks
            + self.l1_clusters()
            + self.l2_tables.len() as u64
    }

    fn host_clusters(&self) -> u64 {
        self.metadata_clusters() + self.data_clusters.len() as u64
    }

    /// Bytes before the first data cluster.
    pub fn metadata_len(&self) -> u64 {
        self.metadata_clusters() << self.cluster_bits
    }

    /// The whole image's length.
    pub fn image_len(&self) -> u64 {
        self.host_clusters() << self.cluster_bits
    }

    /// Where data cluster `n` (the n-th of [`Self::data_clusters`]) starts in the image.
    pub fn data_offset(&self, n: u64) -> u64 {
        self.metadata_len() + (n << self.cluster_bits)
    }

    /// The metadata, cluster by cluster, in image order, each made when it is asked for, so
    /// that an image of a 16 TiB volume never holds all its tables at once.
    pub fn metadata(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        let refcount_blocks_at = 1 + self.refcount_table_clusters;
        let l1_at = refcount_blocks_at + self.refcount_blocks;
        let l2_at = l1_at + self.l1_clusters();
        let data_at = self.metadata_clusters();
        let entries = self.cluster_size() / 8;
        // Table `table` of a run of tables of 8-byte entries, entry `n` overall given by `entry`.
        let table = move |table: u64, entry: &dyn Fn(u64) -> u64| {
            let mut bytes = self.empty_cluster();
            for slot in 0..entries {
                let value = entry(table * entries + slot);
                if value != 0 {
                    let at = usize::try_from(slot * 8).unwrap_or(usize::MAX);
                    bytes[at..at + 8].copy_from_slice(&value.to_be_bytes());
                }
            }
            bytes
        };
        let refcount_table = (0..self.refcount_table_clusters).map(move |n| {
            table(n, &|block| {
                if block < self.refcount_blocks {
                    self.offset_of(refcount_blocks_at + block)
                } else {
                    0
                }
            })
        });
        let per_block = self.refcounts_per_block();
        let refcount_blocks = (0..self.refcount_blocks).map(move |block| {
            let mut bytes = self.empty_cluster();
            let used = self
                .host_clusters()
                .saturating_sub(block * per_block)
                .min(per_block);
            for slot in 0..used {
                let at = usize::try_from(slot * 2).unwrap_or(usize::MAX);
                bytes[at..at + 2].copy_from_slice(&1u16.to_be_bytes());
            }
            bytes
        });
        let l1 = (0..self.l1_clusters()).map(move |n| {
            table(n, &|index| match self.l2_tables.binary_search(&index) {
                Ok(position) => self.offset_of(l2_at + position as u64) | COPIED,
                Err(_) => 0,
            })
        });
        let l2 = self.l2_tables.iter().map(move |&l1_index| {
            let mut bytes = self.empty_cluster();
            // The data clusters this table maps, and where the first of them is stored.
            let first = self
                .data_clusters
                .partition_point(|&c| c < l1_index * entries);
            let last = self
                .data_clusters
                .partition_point(|&c| c < (l1_index + 1) * entries);
            for (n, &index) in (first..last).zip(&self.data_clusters[first..last]) {
                let at = usize::try_from((index % entries) * 8).unwrap_or(usize::MAX);
                let entry = self.offset_of(data_at + n as u64) | COPIED;
                bytes[at..at + 8].copy_from_slice(&entry.to_be_bytes());
            }
            bytes
        });
        std::iter::once(self.header(l1_at))
            .chain(refcount_table)
            .chain(refcount_blocks)
            .chain(l1)
            .chain(l2)
    }

    fn empty_cluster(&self) -> Vec<u8> {
        vec![0u8; usize::try_from(self.cluster_size()).unwrap_or(usize::MAX)]
    }

    /// The byte offset of host cluster `index`.
    fn offset_of(&self, index: u64) -> u64 {
        index << self.cluster_bits
    }

    /// The header cluster; its header extension area, all zeros, is its end marker.
    fn header(&self, l1_at: u64) -> Vec<u8> {
        let mut header = self.empty_cluster();
        let mut put = |at: usize, bytes: &[u8]| header[at..at + bytes.len()].copy_from_slice(bytes);
        put(0, &MAGIC.to_be_bytes());
        put(4, &3u32.to_be_bytes());
        put(20, &self.cluster_bits.to_be_bytes());
        put(24, &self.virtual_size.to_be_bytes());
        let l1_entries = u32::try_from(self.l1_entries).unwrap_or(u32::MAX);
        put(36, &l1_entries.to_be_bytes());
        put(40, &self.offset_of(l1_at).to_be_bytes());
        // The refcount table is the cluster after the header.
        put(48, &self.offset_of(1).to_be_bytes());
        let table_clusters = u32::try_from(self.refcount_table_clusters).unwrap_or(u32::MAX);
        put(56, &table_clusters.to_be_bytes());
        put(96, &REFCOUNT_ORDER.to_be_bytes());
        put(100, &HEADER_LENGTH.to_be_bytes());
        header
    }
}

/// The SHA-256 of the concatenated SHA-256 digests of every block of a raw image, in
/// order, with zero blocks counted by the digest of a block of zeros.
///
/// It proves what the raw image's SHA-256 proves, and EBS hands irf every data block's
/// digest, so it costs 32 bytes of hashing per block instead of the block: a 16 TiB volume
/// is 33.5 million blocks, a gigabyte of digests, under a second. An examiner recomputes it
/// from a raw image with coreutils: `split -b 512K --filter='sha256sum' image | xxd -r -p |
/// sha256sum` (for 512 KiB blocks).
#[derive(Debug, Clone)]
pub struct BlockListHash {
    block_size: u64,
    zero_digest: [u8; 32],
    next_block: u64,
    hasher: Sha256,
}

impl BlockListHash {
    pub fn new(block_size: u64) -> Self {
        let zeros = vec![0u8; usize::try_from(block_size).unwrap_or(0)];
        Self {
            block_size,
            zero_digest: Sha256::digest(&zeros).into(),
            next_block: 0,
            hasher: Sha256::new(),
        }
    }

    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// Adds block `index` (blocks come in ascending order; skipped ones are zeros) with its
    /// SHA-256 digest.
    pub fn add(&mut self, index: u64, digest: &[u8; 32]) {
        self.zeros_until(index);
        self.hasher.update(digest);
        self.next_block = index + 1;
    }

    fn zeros_until(&mut self, index: u64) {
        while self.next_block < index {
            self.hasher.update(self.zero_digest);
            self.next_block += 1;
        }
    }

    /// The lowercase hex hash of a volume of `blocks` blocks.
    pub fn finish(mut self, blocks: u64) -> String {
        self.zeros_until(blocks);
        crate::hex(&self.hasher.finalize())
    }
}

/// Hashes `count` zero bytes into `hasher`, as a raw image holds them where no block has
/// data: the one cost of the raw SHA-256 that grows with the volume, not its data.
pub fn hash_zeros(hasher: &mut Sha256, mut count: u64) {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    while count > 0 {
        let take = count.min(ZEROS.len() as u64);
        hasher.update(&ZEROS[..usize::try_from(take).unwrap_or(0)]);
        count -= take;
    }
}

/// The SHA-256 of a raw image from its data alone, given in the order of the volume: the
/// zeros between are hashed as the image holds them.
#[derive(Debug, Clone, Default)]
pub struct RawImageHash {
    hasher: Sha256,
    next: u64,
}

impl RawImageHash {
    /// The data at byte `at` of the volume (at or after the end of the last data given).
    pub fn data(&mut self, at: u64, bytes: &[u8]) {
        hash_zeros(&mut self.hasher, at.saturating_sub(self.next));
        self.hasher.update(bytes);
        self.next = self.next.max(at) + bytes.len() as u64;
    }

    /// The lowercase hex SHA-256 of the raw image of `len` bytes.
    pub fn finish(mut self, len: u64) -> String {
        hash_zeros(&mut self.hasher, len.saturating_sub(self.next));
        crate::hex(&self.hasher.finalize())
    }
}

/// What reading an image through found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qcow2Reading {
    pub virtual_size: u64,
    pub cluster_size: u64,
    /// Volume clusters stored as data.
    pub data_clusters: u64,
    /// The [`BlockListHash`] of the raw image the image stands for.
    pub blocks_sha256: String,
}

/// Where each data cluster goes as it passes: its offset in the volume and its bytes.
type DataSink = Box<dyn FnMut(u64, &[u8]) + Send>;

/// Reads an image front to back as it streams (from S3, or a file), checking that it is
/// exactly the image [`Qcow2Layout`] makes for the mapping its own tables name, and hashing
/// its data clusters into the block list hash as they pass: an image is verified in one
/// read of what it stores, never of the zeros it stands for. Any other image is refused by
/// name: one with a backing file, encryption, snapshots or compression, one whose tables
/// come after what they map, and one whose header, refcounts or tables differ in a single
/// byte from those irf writes (an edited mapping is an edited image even where qemu would
/// still open it).
pub struct Qcow2Reader {
    /// The bytes of the cluster being read.
    pending: Vec<u8>,
    header: Option<Header>,
    /// The next host cluster to complete.
    host_cluster: u64,
    l1: Vec<u64>,
    /// Host cluster of each L2 table, with its L1 index; known once the L1 table is read.
    l2_tables: std::collections::BTreeMap<u64, u64>,
    /// Volume clusters, in the order the tables map them.
    mapped: Vec<u64>,
    /// The first data cluster, once the L1 table is read.
    data_from: Option<u64>,
    metadata: Sha256,
    blocks: Option<BlockListHash>,
    data: Option<DataSink>,
    error: Option<Qcow2Error>,
}

/// The fields of a version 3 header irf reads.
#[derive(Debug, Clone, Copy)]
struct Header {
    cluster_bits: u32,
    virtual_size: u64,
    l1_entries: u64,
    l1_cluster: u64,
    l1_clusters: u64,
}

impl Header {
    fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    fn parse(header: &[u8]) -> Result<Self, Qcow2Error> {
        let unreadable = |why: String| Qcow2Error::Unreadable(why);
        let u32_at = |at: usize| {
            u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let u64_at = |at: usize| (u64::from(u32_at(at)) << 32) | u64::from(u32_at(at + 4));
        if u32_at(0) != MAGIC {
            return Err(unreadable("no QCOW2 magic at its start".into()));
        }
        if u32_at(4) != 3 {
            return Err(unreadable(format!("version {}, not 3", u32_at(4))));
        }
        if u64_at(8) != 0 || u32_at(32) != 0 || u32_at(60) != 0 || u64_at(72) != 0 {
            return Err(unreadable(
                "it has a backing file, encryption, snapshots or incompatible features".into(),
            ));
        }
        let cluster_bits = u32_at(20);
        if !(9..=21).contains(&cluster_bits) {
            return Err(unreadable(format!("cluster bits {cluster_bits}")));
        }
        let cluster_size = 1u64 << cluster_bits;
        let virtual_size = u64_at(24);
        let l1_entries = u64::from(u32_at(36));
        let l1_at = u64_at(40);
        if l1_entries
            < virtual_size
                .div_ceil(cluster_size)
                .div_ceil(cluster_size / 8)
        {
            return Err(unreadable(format!(
                "its L1 table ({l1_entries} entries) does not cover {virtual_size} bytes"
            )));
        }
        if !l1_at.is_multiple_of(cluster_size) || l1_at == 0 {
            return Err(unreadable(format!(
                "its L1 table is at {l1_at}, not on a cluster after the header"
            )));
        }
        Ok(Self {
            cluster_bits,
            virtual_size,
            l1_entries,
            l1_cluster: l1_at >> cluster_bits,
            l1_clusters: (l1_entries * 8).div_ceil(cluster_size),
        })
    }
}

impl Default for Qcow2Reader {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            header: None,
            host_cluster: 0,
            l1: Vec::new(),
            l2_tables: std::collections::BTreeMap::new(),
            mapped: Vec::new(),
            data_from: None,
            metadata: Sha256::new(),
            blocks: None,
            data: None,
            error: None,
        }
    }
}

impl std::fmt::Debug for Qcow2Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qcow2Reader")
            .field("host_cluster", &self.host_cluster)
            .field("mapped", &self.mapped.len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Qcow2Reader {
    /// A reader that also hands every data cluster to `data`, with its byte offset in the
    /// volume, in the order of the volume (an export writes them where they belong); the
    /// volume's last cluster is cut at the volume's end.
    pub fn with_data(data: impl FnMut(u64, &[u8]) + Send + 'static) -> Self {
        Self {
            data: Some(Box::new(data)),
            ..Self::default()
        }
    }

    /// Reads the image's next bytes.
    pub fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.error.is_none() {
            let want = match &self.header {
                Some(header) => header.cluster_size(),
                None => u64::from(HEADER_LENGTH),
            };
            let room = usize::try_from(want)
                .unwrap_or(usize::MAX)
                .saturating_sub(self.pending.len());
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.pending.extend_from_slice(now);
            bytes = later;
            if self.pending.len() as u64 == want
                && let Err(err) = self.complete()
            {
                self.error = Some(err);
            }
        }
    }

    /// Takes the completed cluster (or, first, the header's fixed fields).
    fn complete(&mut self) -> Result<(), Qcow2Error> {
        let Some(header) = self.header else {
            let header = Header::parse(&self.pending)?;
            self.header = Some(header);
            self.blocks = Some(BlockListHash::new(header.cluster_size()));
            // The rest of the header cluster follows.
            return Ok(());
        };
        let cluster = std::mem::take(&mut self.pending);
        let host = self.host_cluster;
        self.host_cluster += 1;
        let is_data = self.data_from.is_some_and(|from| host >= from);
        if !is_data {
            self.metadata.update(&cluster);
        }
        let l1_end = header.l1_cluster + header.l1_clusters;
        if (header.l1_cluster..l1_end).contains(&host) {
            self.l1.extend(
                cluster
                    .chunks_exact(8)
                    .map(|e| u64::from_be_bytes(e.try_into().unwrap_or([0; 8]))),
            );
            if host + 1 == l1_end {
                self.l1
                    .truncate(usize::try_from(header.l1_entries).unwrap_or(usize::MAX));
                self.tables_known(header, host)?;
            }
        } else if let Some(l1_index) = self.l2_tables.get(&host).copied() {
            let entries = header.cluster_size() / 8;
            for (slot, entry) in cluster.chunks_exact(8).enumerate() {
                let entry = u64::from_be_bytes(entry.try_into().unwrap_or([0; 8]));
                if entry & COMPRESSED != 0 {
                    return Err(Qcow2Error::Unreadable(
                        "it holds compressed clusters".into(),
                    ));
                }
                if entry & OFFSET_MASK != 0 && entry & ZERO_FLAG == 0 {
                    self.mapped.push(l1_index * entries + slot as u64);
                }
            }
        } else if is_data {
            let n = usize::try_from(host - self.data_from.unwrap_or(host)).unwrap_or(usize::MAX);
            let Some(&volume_cluster) = self.mapped.get(n) else {
                return Err(Qcow2Error::Edited(format!(
                    "it stores more clusters than its tables map ({})",
                    self.mapped.len()
                )));
            };
            if let Some(blocks) = &mut self.blocks {
                blocks.add(volume_cluster, &Sha256::digest(&cluster).into());
            }
            if let Some(data) = &mut self.data {
                let start = volume_cluster << header.cluster_bits;
                let len = header
                    .cluster_size()
                    .min(header.virtual_size.saturating_sub(start));
                data(start, &cluster[..usize::try_from(len).unwrap_or(0)]);
            }
        }
        Ok(())
    }

    /// The L1 table is read (it ended at host cluster `host`): where each L2 table is, and
    /// so where the data begins.
    fn tables_known(&mut self, header: Header, host: u64) -> Result<(), Qcow2Error> {
        for (l1_index, entry) in self.l1.iter().enumerate() {
            let at = entry & OFFSET_MASK;
            if at == 0 {
                continue;
            }
            let table = at >> header.cluster_bits;
            if !at.is_multiple_of(header.cluster_size()) || table <= host {
                return Err(Qcow2Error::Edited(format!(
                    "L1 entry {l1_index} puts its L2 table at {at}, not after the L1 table"
                )));
            }
            if self.l2_tables.insert(table, l1_index as u64).is_some() {
                return Err(Qcow2Error::Edited(format!(
                    "two L1 entries share the L2 table at {at}"
                )));
            }
        }
        self.data_from = Some(
            self.l2_tables
                .last_key_value()
                .map_or(host + 1, |(table, _)| table + 1),
        );
        Ok(())
    }

    /// The reading of the whole image, once its last byte is pushed.
    pub fn finish(self) -> Result<Qcow2Reading, Qcow2Error> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let Some(header) = self.header else {
            return Err(Qcow2Error::Unreadable("it ends inside its header".into()));
        };
        if !self.pending.is_empty() {
            return Err(Qcow2Error::Unreadable(format!(
                "it ends {} bytes into a cluster of {}",
                self.pending.len(),
                header.cluster_size()
            )));
        }
        let Some(data_from) = self.data_from else {
            return Err(Qcow2Error::Unreadable("it ends before its L1 table".into()));
        };
        let layout = Qcow2Layout::new(header.virtual_size, header.cluster_size(), self.mapped)
            .map_err(|err| Qcow2Error::Edited(format!("its tables map {err}")))?;
        let stored = self.host_cluster << header.cluster_bits;
        if layout.metadata_len() != data_from << header.cluster_bits || layout.image_len() != stored
        {
            return Err(Qcow2Error::Edited(format!(
                "it is {stored} bytes with data from {}, where the image of its mapping is {} bytes with data from {}",
                data_from << header.cluster_bits,
                layout.image_len(),
                layout.metadata_len()
            )));
        }
        let mut written = Sha256::new();
        for cluster in layout.metadata() {
            written.update(&cluster);
        }
        if written.finalize() != self.metadata.finalize() {
            return Err(Qcow2Error::Edited(
                "its header, refcounts or mapping tables differ from those irf writes for the clusters they map"
                    .into(),
            ));
        }
        let blocks = header.virtual_size.div_ceil(header.cluster_size());
        Ok(Qcow2Reading {
            virtual_size: header.virtual_size,
            cluster_size: header.cluster_size(),
            data_clusters: layout.data_clusters().len() as u64,
            blocks_sha256: self.blocks.map(|b| b.finish(blocks)).unwrap_or_default(),
        })
    }

    /// Reads a whole image held in memory.
    pub fn read_all(image: &[u8]) -> Result<Qcow2Reading, Qcow2Error> {
        let mut reader = Self::default();
        reader.push(image);
        reader.finish()
    }
}

/// The whole image of `volume`, a raw image held in memory, with the clusters `data` as data:
/// the bytes the pipeline would stream for it, for fixtures small enough to hold.
pub fn image_of(volume: &[u8], cluster_size: u64, data: Vec<u64>) -> Result<Vec<u8>, Qcow2Error> {
    let layout = Qcow2Layout::new(volume.len() as u64, cluster_size, data)?;
    let mut image = Vec::with_capacity(usize::try_from(layout.image_len()).unwrap_or_default());
    for cluster in layout.metadata() {
        image.extend_from_slice(&cluster);
    }
    let cluster = usize::try_from(cluster_size).unwrap_or(usize::MAX);
    for &index in layout.data_clusters() {
        let start = usize::try_from(index)
            .unwrap_or(usize::MAX)
            .saturating_mul(cluster);
        let end = start.saturating_add(cluster).min(volume.len());
        image.extend_from_slice(volume.get(start..end).unwrap_or_default());
        image.resize(image.len().next_multiple_of(cluster), 0);
    }
    Ok(image)
}

/// Runs qemu-img (Debian's qemu-utils, which `.ci/run` installs) and fails the test with its
/// output when it refuses.
#[cfg(test)]
pub(crate) fn qemu_img(args: &[&std::ffi::OsStr]) {
    let out = std::process::Command::new("qemu-img")
        .args(args)
        .output()
        .expect("qemu-img runs: install qemu-utils (.ci/run does)");
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The image of `volume` (a raw image) with the given clusters as data, assembled in
    /// memory the way the pipeline streams it.
    pub(crate) fn image_of(
        volume: &[u8],
        cluster_size: u64,
        data: Vec<u64>,
    ) -> (Qcow2Layout, Vec<u8>) {
        let layout =
            Qcow2Layout::new(volume.len() as u64, cluster_size, data.clone()).expect("layout");
        let image = super::image_of(volume, cluster_size, data).expect("image");
        assert_eq!(image.len() as u64, layout.image_len());
        (layout, image)
    }

    pub(crate) fn sample_volume(size: usize, cluster: usize, data: &[u64]) -> Vec<u8> {
        let mut volume = vec![0u8; size];
        for &index in data {
            let start = index as usize * cluster;
            for (i, byte) in volume[start..(start + cluster).min(size)]
                .iter_mut()
                .enumerate()
            {
                *byte = (index as u8).wrapping_mul(31).wrapping_add(i as u8) | 1;
            }
        }
        volume
    }

    /// The raw image an image stands for, and the reading, through the streaming reader fed
    /// in uneven pieces.
    pub(crate) fn expand(
        image: &[u8],
        volume_len: usize,
    ) -> Result<(Vec<u8>, Qcow2Reading), Qcow2Error> {
        let raw = std::sync::Arc::new(std::sync::Mutex::new(vec![0u8; volume_len]));
        let sink = raw.clone();
        let mut reader = Qcow2Reader::with_data(move |at, bytes| {
            let mut raw = sink.lock().expect("raw");
            let at = at as usize;
            raw[at..at + bytes.len()].copy_from_slice(bytes);
        });
        for piece in image.chunks(1000) {
            reader.push(piece);
        }
        let reading = reader.finish()?;
        let raw = raw.lock().expect("raw").clone();
        Ok((raw, reading))
    }

    pub(crate) fn block_list_hash_of(volume: &[u8], cluster: usize) -> String {
        let mut hasher = Sha256::new();
        for block in volume.chunks(cluster) {
            let mut block = block.to_vec();
            block.resize(cluster, 0);
            hasher.update(Sha256::digest(&block));
        }
        crate::hex(&hasher.finalize())
    }

    #[test]
    fn an_image_reads_back_as_the_volume_it_was_written_from() {
        let cluster = 4096u64;
        // Clusters in two L2 tables (512 entries of 8 bytes each per 4 KiB table).
        let data = vec![0, 3, 511, 512, 700];
        let volume = sample_volume(800 * cluster as usize, cluster as usize, &data);
        let (_, image) = image_of(&volume, cluster, data.clone());
        let (raw, reading) = expand(&image, volume.len()).expect("readable");
        assert_eq!(raw, volume);
        assert_eq!(
            reading,
            Qcow2Reading {
                virtual_size: volume.len() as u64,
                cluster_size: cluster,
                data_clusters: data.len() as u64,
                blocks_sha256: block_list_hash_of(&volume, cluster as usize),
            }
        );
        // No data at all.
        let (_, empty) = image_of(&[0u8; 8192], 4096, vec![]);
        let reading = Qcow2Reader::read_all(&empty).expect("an empty image");
        assert_eq!(reading.data_clusters, 0);
        assert_eq!(
            reading.blocks_sha256,
            block_list_hash_of(&[0u8; 8192], 4096)
        );
    }

    /// Every kind of change to a stored image is caught: in the data by the block list
    /// hash (which the manifest holds), anywhere else by the reader itself, by name.
    #[test]
    fn a_changed_image_is_named() {
        let cluster = 4096usize;
        let data = vec![1u64, 2, 600];
        let volume = sample_volume(800 * cluster, cluster, &data);
        let (layout, image) = image_of(&volume, cluster as u64, data);
        let honest = Qcow2Reader::read_all(&image).expect("readable");
        let l1_at = usize::try_from(u64::from_be_bytes(image[40..48].try_into().expect("8")))
            .expect("fits");
        let first_l2 = l1_at + cluster;
        let first_data = usize::try_from(layout.data_offset(0)).expect("fits");

        // A flipped bit in a data cluster: still a well-formed image, of other blocks.
        let mut changed = image.clone();
        changed[first_data + 17] ^= 1;
        let reading = Qcow2Reader::read_all(&changed).expect("well formed");
        assert_ne!(reading.blocks_sha256, honest.blocks_sha256);

        // A zero cluster made to read as data: an L2 entry pointed at a stored cluster.
        let mut changed = image.clone();
        let entry = (layout.data_offset(0) | COPIED).to_be_bytes();
        changed[first_l2 + 5 * 8..first_l2 + 6 * 8].copy_from_slice(&entry);
        let err = Qcow2Reader::read_all(&changed).expect_err("an edited mapping");
        assert!(matches!(err, Qcow2Error::Edited(_)), "{err}");

        // Two data clusters swapped in the mapping.
        let mut changed = image.clone();
        let (a, b) = (first_l2 + 8, first_l2 + 16);
        let (one, two) = (changed[a..a + 8].to_vec(), changed[b..b + 8].to_vec());
        changed[a..a + 8].copy_from_slice(&two);
        changed[b..b + 8].copy_from_slice(&one);
        let err = Qcow2Reader::read_all(&changed).expect_err("swapped clusters");
        assert!(matches!(err, Qcow2Error::Edited(_)), "{err}");

        // A byte in the header cluster's padding, which qemu ignores.
        let mut changed = image.clone();
        changed[cluster - 1] = 1;
        let err = Qcow2Reader::read_all(&changed).expect_err("edited padding");
        assert!(
            err.to_string().contains("differ from those irf writes"),
            "{err}"
        );

        // A refcount.
        let mut changed = image.clone();
        changed[2 * cluster + 1] = 2;
        let err = Qcow2Reader::read_all(&changed).expect_err("edited refcount");
        assert!(matches!(err, Qcow2Error::Edited(_)), "{err}");

        // A cluster appended, or the last one cut.
        let mut longer = image.clone();
        longer.extend_from_slice(&vec![0u8; cluster]);
        let err = Qcow2Reader::read_all(&longer).expect_err("appended");
        assert!(
            err.to_string()
                .contains("more clusters than its tables map"),
            "{err}"
        );
        let err = Qcow2Reader::read_all(&image[..image.len() - cluster]).expect_err("cut");
        assert!(matches!(err, Qcow2Error::Edited(_)), "{err}");
        let err = Qcow2Reader::read_all(&image[..image.len() - 1]).expect_err("cut short");
        assert!(
            err.to_string().contains("ends 4095 bytes into a cluster"),
            "{err}"
        );
    }

    #[test]
    fn the_allocation_is_checked_by_name() {
        assert_eq!(
            Qcow2Layout::new(1 << 20, 3000, vec![]),
            Err(Qcow2Error::ClusterSize(3000))
        );
        assert_eq!(
            Qcow2Layout::new(1 << 20, 4096, vec![2, 1]),
            Err(Qcow2Error::Unordered {
                index: 1,
                previous: 2
            })
        );
        assert_eq!(
            Qcow2Layout::new(1 << 20, 4096, vec![256]),
            Err(Qcow2Error::OutOfRange {
                index: 256,
                clusters: 256
            })
        );
    }

    #[test]
    fn metadata_stays_small_for_a_large_sparse_volume() {
        // 16 TiB in EBS's 512 KiB blocks, one block in a hundred holding data.
        let blocks = (16u64 << 40) / (512 << 10);
        let data: Vec<u64> = (0..blocks).step_by(100).collect();
        let layout = Qcow2Layout::new(16 << 40, 512 << 10, data.clone()).expect("layout");
        // Header, one refcount table cluster, refcount blocks, one L1 cluster, 512 L2 tables.
        assert!(
            layout.metadata_len() < 300 << 20,
            "{}",
            layout.metadata_len()
        );
        assert_eq!(
            layout.image_len(),
            layout.metadata_len() + data.len() as u64 * (512 << 10)
        );
    }

    #[test]
    fn what_irf_never_writes_is_refused() {
        let (_, mut image) = image_of(&[0u8; 8192], 4096, vec![]);
        image[8..16].copy_from_slice(&4096u64.to_be_bytes()); // a backing file
        let err = Qcow2Reader::read_all(&image).expect_err("backing file");
        assert!(err.to_string().contains("backing file"), "{err}");
        let err =
            Qcow2Reader::read_all(b"not an image at all, far too short ....").expect_err("short");
        assert!(matches!(err, Qcow2Error::Unreadable(_)), "{err}");
        let err = Qcow2Reader::read_all(&[0u8; 200]).expect_err("no magic");
        assert!(err.to_string().contains("magic"), "{err}");
    }

    #[test]
    fn the_raw_hash_of_data_in_order_is_the_raw_images() {
        let mut volume = vec![0u8; 300_000];
        volume[10..20].fill(7);
        volume[200_000..200_100].fill(9);
        let mut raw = RawImageHash::default();
        raw.data(10, &volume[10..20]);
        raw.data(200_000, &volume[200_000..200_100]);
        assert_eq!(raw.finish(300_000), crate::hex(&Sha256::digest(&volume)));
        assert_eq!(
            RawImageHash::default().finish(70_000),
            crate::hex(&Sha256::digest(vec![0u8; 70_000]))
        );
    }

    #[test]
    fn the_block_list_hash_counts_skipped_blocks_as_zeros() {
        let block = 1024u64;
        let mut volume = vec![0u8; 6 * block as usize];
        volume[2 * 1024 + 5] = 7;
        volume[5 * 1024] = 9;
        let mut expected = Sha256::new();
        for chunk in volume.chunks(block as usize) {
            expected.update(Sha256::digest(chunk));
        }
        let mut hash = BlockListHash::new(block);
        for index in [2u64, 5] {
            let start = (index * block) as usize;
            hash.add(
                index,
                &Sha256::digest(&volume[start..start + block as usize]).into(),
            );
        }
        assert_eq!(hash.finish(6), crate::hex(&expected.finalize()));
    }

    /// qemu's own checker and comparer agree with the layout: refcounts, tables, flags, and
    /// the content against the raw image.
    #[test]
    fn qemu_img_checks_and_compares_the_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (size, cluster, data) in [
            (8u64 << 20, 64u64 << 10, vec![0u64, 1, 5, 127]),
            (40 << 20, 512 << 10, vec![3, 40, 79]),
            ((3 << 20) + 4096 + 512, 4096, vec![0, 600, 768]),
            (1 << 20, 512 << 10, vec![]),
        ] {
            let volume = sample_volume(size as usize, cluster as usize, &data);
            let (_, image) = image_of(&volume, cluster, data);
            let raw = dir.path().join("volume.raw");
            let qcow2 = dir.path().join("volume.qcow2");
            std::fs::write(&raw, &volume).expect("raw");
            std::fs::write(&qcow2, &image).expect("qcow2");
            qemu_img(&[
                "check".as_ref(),
                "-f".as_ref(),
                "qcow2".as_ref(),
                qcow2.as_os_str(),
            ]);
            qemu_img(&[
                "compare".as_ref(),
                "-f".as_ref(),
                "qcow2".as_ref(),
                "-F".as_ref(),
                "raw".as_ref(),
                qcow2.as_os_str(),
                raw.as_os_str(),
            ]);
        }
    }
}
