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

use std::future::Future;

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

/// The mapping of an image read back: which host offset holds each data cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qcow2Map {
    pub virtual_size: u64,
    pub cluster_size: u64,
    /// (volume cluster, host offset), ascending by volume cluster.
    pub clusters: Vec<(u64, u64)>,
}

impl Qcow2Map {
    /// Reads the mapping of the image that `read` returns ranges of (`read(offset, len)`),
    /// refusing what irf never writes: backing files, encryption, compression, snapshots,
    /// external data files.
    pub async fn read<F, Fut, E>(mut read: F) -> Result<Self, Qcow2Error>
    where
        F: FnMut(u64, u64) -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
        E: std::fmt::Display,
    {
        let unreadable = |why: String| Qcow2Error::Unreadable(why);
        let mut fetch = async |offset: u64, len: u64| {
            let bytes = read(offset, len)
                .await
                .map_err(|err| unreadable(format!("reading {len} bytes at {offset}: {err}")))?;
            if bytes.len() as u64 != len {
                return Err(unreadable(format!(
                    "{len} bytes at {offset} asked, {} read: the image is cut short",
                    bytes.len()
                )));
            }
            Ok(bytes)
        };
        let header = fetch(0, u64::from(HEADER_LENGTH)).await?;
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
        let l2_entries = cluster_size / 8;
        if l1_entries < virtual_size.div_ceil(cluster_size).div_ceil(l2_entries) {
            return Err(unreadable(format!(
                "its L1 table ({l1_entries} entries) does not cover {virtual_size} bytes"
            )));
        }
        let l1 = fetch(l1_at, l1_entries * 8).await?;
        let mut clusters = Vec::new();
        for (l1_index, entry) in l1.chunks_exact(8).enumerate() {
            let entry = u64::from_be_bytes(entry.try_into().unwrap_or([0; 8]));
            let l2_at = entry & OFFSET_MASK;
            if l2_at == 0 {
                continue;
            }
            let l2 = fetch(l2_at, cluster_size).await?;
            for (slot, entry) in l2.chunks_exact(8).enumerate() {
                let entry = u64::from_be_bytes(entry.try_into().unwrap_or([0; 8]));
                if entry & COMPRESSED != 0 {
                    return Err(unreadable("it holds compressed clusters".into()));
                }
                let host = entry & OFFSET_MASK;
                if host == 0 || entry & ZERO_FLAG != 0 {
                    continue;
                }
                let volume_cluster = l1_index as u64 * l2_entries + slot as u64;
                if volume_cluster << cluster_bits >= virtual_size {
                    return Err(unreadable(format!(
                        "cluster {volume_cluster} is mapped past the volume's end"
                    )));
                }
                clusters.push((volume_cluster, host));
            }
        }
        Ok(Self {
            virtual_size,
            cluster_size,
            clusters,
        })
    }
}

impl Qcow2Map {
    /// The mapping of an image held in memory.
    pub async fn of_bytes(image: &[u8]) -> Result<Self, Qcow2Error> {
        Self::read(|offset, len| {
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
            let bytes = image
                .get(start..end.min(image.len()))
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            async move { Ok::<_, std::convert::Infallible>(bytes) }
        })
        .await
    }
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
mod tests {
    use super::*;

    /// The image of `volume` (a raw image) with the given clusters as data, assembled in
    /// memory the way the pipeline streams it.
    fn image_of(volume: &[u8], cluster_size: u64, data: Vec<u64>) -> (Qcow2Layout, Vec<u8>) {
        let layout = Qcow2Layout::new(volume.len() as u64, cluster_size, data).expect("layout");
        let mut image = Vec::new();
        for cluster in layout.metadata() {
            image.extend_from_slice(&cluster);
        }
        assert_eq!(image.len() as u64, layout.metadata_len());
        for &index in layout.data_clusters() {
            let start = (index * cluster_size) as usize;
            let end = (start + cluster_size as usize).min(volume.len());
            image.extend_from_slice(&volume[start..end]);
            image.resize(image.len().next_multiple_of(cluster_size as usize), 0);
        }
        assert_eq!(image.len() as u64, layout.image_len());
        (layout, image)
    }

    fn sample_volume(size: usize, cluster: usize, data: &[u64]) -> Vec<u8> {
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

    async fn map_of(image: &[u8]) -> Result<Qcow2Map, Qcow2Error> {
        Qcow2Map::of_bytes(image).await
    }

    #[tokio::test]
    async fn an_image_maps_back_to_the_clusters_it_was_written_with() {
        let cluster = 4096u64;
        // Clusters in two L2 tables (512 entries of 8 bytes each per 4 KiB table).
        let data = vec![0, 3, 511, 512, 700];
        let volume = sample_volume(800 * cluster as usize, cluster as usize, &data);
        let (layout, image) = image_of(&volume, cluster, data.clone());
        let map = map_of(&image).await.expect("readable");
        assert_eq!(map.virtual_size, volume.len() as u64);
        assert_eq!(map.cluster_size, cluster);
        let mapped: Vec<u64> = map.clusters.iter().map(|(c, _)| *c).collect();
        assert_eq!(mapped, data);
        for (n, (index, host)) in map.clusters.iter().enumerate() {
            assert_eq!(*host, layout.data_offset(n as u64));
            let stored = &image[*host as usize..(*host + cluster) as usize];
            let original = &volume[(*index * cluster) as usize..((*index + 1) * cluster) as usize];
            assert_eq!(stored, original, "cluster {index}");
        }
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

    #[tokio::test]
    async fn what_irf_never_writes_is_refused() {
        let (_, mut image) = image_of(&[0u8; 8192], 4096, vec![]);
        image[8..16].copy_from_slice(&4096u64.to_be_bytes()); // a backing file
        let err = map_of(&image).await.expect_err("backing file");
        assert!(err.to_string().contains("backing file"), "{err}");
        let err = map_of(b"not an image at all, far too short ....")
            .await
            .expect_err("short");
        assert!(matches!(err, Qcow2Error::Unreadable(_)), "{err}");
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
