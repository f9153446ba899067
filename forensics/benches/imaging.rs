//! Disk imaging throughput, side by side in one run on the same sparse raw image:
//!
//! * irf's pipeline storing a raw image (block checksums verified, zero blocks synthesised,
//!   whole-image SHA-256 in order, block list hash, per-part checksums), fed from the image
//!   file the way the EBS direct APIs feed it (allocated blocks only, each with the checksum
//!   the service sends along) and storing parts nowhere, so that the pipeline's own cost is
//!   what is measured;
//! * the same pipeline storing QCOW2 (the allocated blocks only, the same hashes): the bytes
//!   it would upload are reported beside the raw image's;
//! * the same QCOW2 pipeline with the raw image's SHA-256 left for later, as production
//!   does for a mostly empty volume: the one contender whose time follows the data;
//! * `openssl dgst -sha256` over the image (the bar: 0.9x of its speed or better);
//! * the original framework's `dd bs=512 | tee >(gzip) >(md5sum) | sha256sum` pipeline
//!   (the bar: irf at least 20x faster).
//!
//! Run with `cargo bench -p irf-forensics --bench imaging`; `IRF_BENCH_IMAGE_GIB` sets the image
//! size (default 2) and `IRF_BENCH_ALLOCATED_PERCENT` how much of it holds data (default 20).

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use irf_forensics::imaging::{
    BlockRef, BlockSource, FetchedBlock, ImageFormat, ImagingError, ImagingOptions, checksum_b64,
    image,
};
use irf_forensics::memory_source::DiscardParts;
use rand::{Rng, SeedableRng};

const BLOCK: u64 = 512 * 1024;

/// Blocks of an image file, with checksums computed beforehand as the service has them.
struct FileVolume {
    file: std::fs::File,
    size: u64,
    blocks: Vec<(u64, String)>,
}

impl BlockSource for FileVolume {
    fn block_size(&self) -> u64 {
        BLOCK
    }

    fn volume_size(&self) -> u64 {
        self.size
    }

    async fn list(&self) -> Result<Vec<BlockRef>, ImagingError> {
        Ok(self
            .blocks
            .iter()
            .map(|(index, _)| BlockRef {
                index: *index,
                token: String::new(),
            })
            .collect())
    }

    async fn fetch(&self, block: &BlockRef) -> Result<FetchedBlock, ImagingError> {
        let position = self
            .blocks
            .binary_search_by_key(&block.index, |(i, _)| *i)
            .map_err(|_| ImagingError::Fetch(format!("block {} is not allocated", block.index)))?;
        let mut data = vec![0u8; BLOCK as usize];
        self.file
            .read_exact_at(&mut data, block.index * BLOCK)
            .map_err(|err| ImagingError::Fetch(err.to_string()))?;
        Ok(FetchedBlock {
            data: Bytes::from(data),
            checksum: Some(self.blocks[position].1.clone()),
        })
    }
}

fn make_image(dir: &Path, gib: u64, percent: u64) -> (PathBuf, Vec<u64>) {
    let path = dir.join("volume.raw");
    let size = gib << 30;
    let file = std::fs::File::create(&path).expect("create image");
    file.set_len(size).expect("size image");
    let total = size / BLOCK;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(42);
    let mut written: Vec<u64> = (0..total)
        .filter(|_| rng.random_range(0..100) < percent)
        .collect();
    written.sort_unstable();
    let mut block = vec![0u8; BLOCK as usize];
    for index in &written {
        rng.fill(&mut block[..]);
        file.write_all_at(&block, index * BLOCK)
            .expect("write block");
    }
    file.sync_all().expect("sync image");
    (path, written)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time_command(script: &str) -> Duration {
    let started = Instant::now();
    let status = Command::new("bash")
        .arg("-c")
        .arg(script)
        .status()
        .expect("run command");
    assert!(status.success(), "'{script}' failed");
    started.elapsed()
}

fn mib_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / took.as_secs_f64()
}

fn main() {
    let gib: u64 = std::env::var("IRF_BENCH_IMAGE_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let percent: u64 = std::env::var("IRF_BENCH_ALLOCATED_PERCENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, written) = make_image(dir.path(), gib, percent);
    let size = gib << 30;
    let quoted = format!("'{}'", path.display());
    println!(
        "image: {gib} GiB raw, {} of {} blocks of 512 KiB allocated ({percent}%)",
        written.len(),
        size / BLOCK
    );

    let file = std::fs::File::open(&path).expect("open image");
    let blocks: Vec<(u64, String)> = written
        .iter()
        .map(|index| {
            let mut data = vec![0u8; BLOCK as usize];
            file.read_exact_at(&mut data, index * BLOCK)
                .expect("read block");
            (*index, checksum_b64(&data))
        })
        .collect();
    let volume = Arc::new(FileVolume { file, size, blocks });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // The pipeline's own cost: EBS's 1,000 calls per second per snapshot is the service's
    // bound, not the pipeline's, and a local file has none.
    let unpaced = ImagingOptions {
        max_fetches_per_second: None,
        ..ImagingOptions::default()
    };
    // Warm the page cache so that every contender reads from memory.
    time_command(&format!("cat {quoted} > /dev/null"));
    let sparse = ImagingOptions {
        format: ImageFormat::Qcow2,
        ..unpaced
    };
    // What production does with a mostly empty volume: the raw hash left for later.
    let sparse_deferred = ImagingOptions {
        inline_raw_hash_zeros: Some(0),
        ..sparse
    };
    let mut irf = Vec::new();
    let mut irf_qcow2 = Vec::new();
    let mut irf_deferred = Vec::new();
    let mut openssl = Vec::new();
    let mut expected_sha = String::new();
    let mut stored_qcow2 = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let summary = runtime
            .block_on(image(
                volume.clone(),
                Arc::new(DiscardParts),
                unpaced,
                |_| {},
            ))
            .expect("pipeline");
        irf.push(started.elapsed());
        assert_eq!(
            summary.bytes_fetched,
            written.len() as u64 * BLOCK,
            "only allocated blocks fetched"
        );
        expected_sha = summary
            .sha256
            .expect("a raw image's hash is its stored hash");
        let started = Instant::now();
        let summary = runtime
            .block_on(image(
                volume.clone(),
                Arc::new(DiscardParts),
                sparse,
                |_| {},
            ))
            .expect("pipeline, QCOW2");
        irf_qcow2.push(started.elapsed());
        assert_eq!(
            summary.sha256.as_ref(),
            Some(&expected_sha),
            "both formats hash the raw image"
        );
        stored_qcow2 = summary.stored_size;
        let blocks_sha256 = summary.blocks_sha256;
        let started = Instant::now();
        let summary = runtime
            .block_on(image(
                volume.clone(),
                Arc::new(DiscardParts),
                sparse_deferred,
                |_| {},
            ))
            .expect("pipeline, QCOW2, raw hash left for later");
        irf_deferred.push(started.elapsed());
        assert_eq!(summary.sha256, None);
        assert_eq!(summary.blocks_sha256, blocks_sha256);
        openssl.push(time_command(&format!(
            "openssl dgst -sha256 {quoted} > /dev/null"
        )));
    }
    let check = Command::new("openssl")
        .args(["dgst", "-sha256", "-r"])
        .arg(&path)
        .output()
        .expect("openssl");
    let openssl_sha = String::from_utf8_lossy(&check.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        openssl_sha, expected_sha,
        "the pipeline's SHA-256 equals openssl's"
    );
    let seed = time_command(&format!(
        "dd if={quoted} bs=512 status=none | tee >(gzip > /dev/null) >(md5sum > /dev/null) | sha256sum > /dev/null"
    ));

    let (irf, irf_qcow2, irf_deferred, openssl) = (
        median(irf),
        median(irf_qcow2),
        median(irf_deferred),
        median(openssl),
    );
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "{:<46} {:>9} {:>10} {:>12}",
        "contender", "seconds", "MiB/s", "stored MiB"
    );
    println!(
        "{:<46} {:>9.2} {:>10.0} {:>12.0}",
        "irf pipeline, raw (fetch, verify, hash, parts)",
        irf.as_secs_f64(),
        mib_per_s(size, irf),
        mib(size)
    );
    println!(
        "{:<46} {:>9.2} {:>10.0} {:>12.0}",
        "irf pipeline, QCOW2 (the same, data only)",
        irf_qcow2.as_secs_f64(),
        mib_per_s(size, irf_qcow2),
        mib(stored_qcow2)
    );
    println!(
        "{:<46} {:>9.2} {:>10.0} {:>12.0}",
        "irf pipeline, QCOW2, raw hash left for later",
        irf_deferred.as_secs_f64(),
        mib_per_s(size, irf_deferred),
        mib(stored_qcow2)
    );
    println!(
        "{:<46} {:>9.2} {:>10.0} {:>12}",
        "openssl dgst -sha256",
        openssl.as_secs_f64(),
        mib_per_s(size, openssl),
        "-"
    );
    println!(
        "{:<46} {:>9.2} {:>10.0} {:>12}",
        "dd bs=512 | tee >(gzip) >(md5sum) | sha256sum",
        seed.as_secs_f64(),
        mib_per_s(size, seed),
        "-"
    );
    println!(
        "irf vs openssl: {:.2}x (bar 0.9x); irf vs the seed's pipeline: {:.1}x (bar 20x)",
        openssl.as_secs_f64() / irf.as_secs_f64(),
        seed.as_secs_f64() / irf.as_secs_f64()
    );
}
