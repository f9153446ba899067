//! The memory capture tool that runs on a suspect host (`irf-memcap`, or `irf memcap`):
//! physical memory read from `/proc/kcore` at the System RAM ranges of `/proc/iomem`,
//! written in LiME format, hashed as it streams, and uploaded in parts to pre-signed URLs
//! with `curl`, so that the host never holds AWS credentials and nothing touches its disk.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hex;

/// LiME's header magic ("EMiL" little-endian) and version.
const LIME_MAGIC: u32 = 0x4C69_4D45;
const LIME_VERSION: u32 = 1;
/// Bytes of one LiME range header.
pub const LIME_HEADER: u64 = 32;

/// A physical address range, inclusive of `end` as /proc/iomem writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RamRange {
    pub start: u64,
    pub end: u64,
}

impl RamRange {
    pub fn len(self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(self) -> bool {
        self.end < self.start
    }
}

/// Errors of the capture, each naming the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum MemcapError {
    #[error(
        "cannot read {path}: {source} (capture needs root and a kernel without lockdown=confidentiality)"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a usable ELF core: {problem}")]
    BadCore { path: PathBuf, problem: String },
    #[error("{path} lists no 'System RAM' range")]
    NoRam { path: PathBuf },
    #[error("the upload plan {path} is invalid: {problem}")]
    BadPlan { path: PathBuf, problem: String },
    #[error("the capture needs {needed} parts but the plan has {available} upload URLs")]
    TooFewParts { needed: u64, available: usize },
    #[error("uploading part {part} failed: {problem}")]
    Upload { part: usize, problem: String },
}

/// The top-level System RAM ranges of an iomem listing.
pub fn ram_ranges(iomem: &str) -> Vec<RamRange> {
    iomem
        .lines()
        .filter(|line| !line.starts_with(' '))
        .filter_map(|line| {
            let (range, name) = line.split_once(" : ")?;
            if name.trim() != "System RAM" {
                return None;
            }
            let (start, end) = range.trim().split_once('-')?;
            Some(RamRange {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
            })
        })
        .filter(|r| !r.is_empty())
        .collect()
}

/// A loadable segment of an ELF core: where physical memory sits in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub offset: u64,
    pub paddr: u64,
    pub size: u64,
}

/// Reads the PT_LOAD segments of a 64-bit little-endian ELF core (what /proc/kcore is).
pub fn core_segments(core: &mut impl Read, path: &Path) -> Result<Vec<Segment>, MemcapError> {
    let bad = |problem: &str| MemcapError::BadCore {
        path: path.to_owned(),
        problem: problem.to_owned(),
    };
    let read_err = |source| MemcapError::Read {
        path: path.to_owned(),
        source,
    };
    let mut header = [0u8; 64];
    core.read_exact(&mut header).map_err(read_err)?;
    if &header[..4] != b"\x7fELF" {
        return Err(bad("no ELF magic"));
    }
    if header[4] != 2 || header[5] != 1 {
        return Err(bad("not a 64-bit little-endian ELF"));
    }
    let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    let u64_at = |bytes: &[u8], at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let phoff = u64_at(&header, 0x20);
    let phentsize = usize::from(u16_at(0x36));
    let phnum = usize::from(u16_at(0x38));
    if phentsize < 56 || phnum == 0 {
        return Err(bad("no program headers"));
    }
    // Program headers follow; read them without seeking so that pipes work too.
    let skip = phoff
        .checked_sub(64)
        .ok_or_else(|| bad("program headers overlap the ELF header"))?;
    std::io::copy(&mut core.by_ref().take(skip), &mut std::io::sink()).map_err(read_err)?;
    let mut table = vec![0u8; phentsize * phnum];
    core.read_exact(&mut table).map_err(read_err)?;
    Ok(table
        .chunks(phentsize)
        .filter(|ph| u32::from_le_bytes([ph[0], ph[1], ph[2], ph[3]]) == 1)
        .map(|ph| Segment {
            offset: u64_at(ph, 8),
            paddr: u64_at(ph, 24),
            size: u64_at(ph, 32),
        })
        .filter(|s| s.size > 0 && s.paddr != u64::MAX)
        .collect())
}

/// Where each RAM range lies in the core file; ranges no segment covers are returned apart.
pub fn map_ranges(
    ranges: &[RamRange],
    segments: &[Segment],
) -> (Vec<(RamRange, u64)>, Vec<RamRange>) {
    let mut mapped = Vec::new();
    let mut missing = Vec::new();
    for range in ranges {
        let found = segments
            .iter()
            .find(|s| s.paddr <= range.start && range.end < s.paddr.saturating_add(s.size));
        match found {
            Some(segment) => mapped.push((*range, segment.offset + (range.start - segment.paddr))),
            None => missing.push(*range),
        }
    }
    (mapped, missing)
}

/// The LiME header of one range.
pub fn lime_header(range: RamRange) -> [u8; 32] {
    let mut header = [0u8; 32];
    header[0..4].copy_from_slice(&LIME_MAGIC.to_le_bytes());
    header[4..8].copy_from_slice(&LIME_VERSION.to_le_bytes());
    header[8..16].copy_from_slice(&range.start.to_le_bytes());
    header[16..24].copy_from_slice(&range.end.to_le_bytes());
    header
}

/// The size of the LiME image of `ranges`.
pub fn lime_size(ranges: &[RamRange]) -> u64 {
    ranges.iter().map(|r| LIME_HEADER + r.len()).sum()
}

/// Where a capture's parts go.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadPlan {
    pub part_size: u64,
    /// Pre-signed UploadPart URLs for parts 1, 2, ...
    pub urls: Vec<String>,
}

/// Missing ranges the report lists by value; the rest are counted.
pub const MISSING_LISTED: usize = 32;

/// What the tool prints when it is done: the worker reads it from the command output,
/// which Run Command cuts at 24,000 characters, so it stays small whatever the host's
/// memory: the parts' ETags are read from S3 (ListParts) and the captured ranges from
/// the image's own LiME headers, not from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureReport {
    pub format: String,
    pub sha256: String,
    pub size: u64,
    /// Parts uploaded.
    pub parts: u64,
    /// RAM ranges captured.
    pub ranges: u64,
    /// The first [`MISSING_LISTED`] RAM ranges no segment of the core covered.
    pub missing: Vec<RamRange>,
    /// How many ranges were missing in all.
    pub missing_count: u64,
    pub source: String,
}

/// Writes parts as they fill: to pre-signed URLs through curl, or anywhere in tests.
pub trait PartWriter {
    fn write_part(&mut self, number: usize, data: &[u8]) -> Result<String, MemcapError>;
}

/// The base64 MD5 of a part, as S3 checks it in `Content-MD5`.
pub fn content_md5(data: &[u8]) -> String {
    use base64::Engine as _;
    use md5::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data))
}

/// Uploads each part with `curl -X PUT` to its pre-signed URL, with the part's
/// `Content-MD5` (S3 refuses a part to an Object Lock bucket without it, and a
/// pre-signed URL cannot carry the SDK's checksum headers); returns the ETag.
#[derive(Debug)]
pub struct CurlUploader {
    pub urls: Vec<String>,
}

impl PartWriter for CurlUploader {
    fn write_part(&mut self, number: usize, data: &[u8]) -> Result<String, MemcapError> {
        let url = self.urls.get(number - 1).ok_or(MemcapError::TooFewParts {
            needed: number as u64,
            available: self.urls.len(),
        })?;
        let fail = |problem: String| MemcapError::Upload {
            part: number,
            problem,
        };
        let mut child = Command::new("curl")
            .args([
                "-fsS",
                "--retry",
                "3",
                "-X",
                "PUT",
                "-H",
                "Content-Type:",
                "-H",
            ])
            .arg(format!("Content-MD5: {}", content_md5(data)))
            .args(["--data-binary", "@-", "-D", "-", "-o", "/dev/null"])
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| fail(format!("cannot run curl ({err}); install curl on the host")))?;
        {
            let mut stdin = child
                .stdin
                .take()
                .ok_or_else(|| fail("no stdin for curl".into()))?;
            stdin.write_all(data).map_err(|err| fail(err.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|err| fail(err.to_string()))?;
        if !out.status.success() {
            return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
        }
        let headers = String::from_utf8_lossy(&out.stdout);
        headers
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("etag")
                    .then(|| value.trim().to_owned())
            })
            .ok_or_else(|| fail("the upload answer carried no ETag".into()))
    }
}

/// Streams the LiME image of `mapped` from `core` into parts of `part_size`.
pub fn capture(
    core: &mut (impl Read + Seek),
    mapped: &[(RamRange, u64)],
    part_size: u64,
    writer: &mut impl PartWriter,
) -> Result<(String, u64, u64), std::io::Error> {
    let part_size = usize::try_from(part_size.max(1)).unwrap_or(usize::MAX);
    let mut hasher = Sha256::new();
    let mut part = Vec::with_capacity(part_size);
    let mut parts = 0u64;
    let mut size = 0u64;
    let mut chunk = vec![0u8; 1 << 20];
    let mut flush = |part: &mut Vec<u8>, parts: &mut u64| -> std::io::Result<()> {
        *parts += 1;
        writer
            .write_part(usize::try_from(*parts).unwrap_or(usize::MAX), part)
            .map_err(|err| std::io::Error::other(err.to_string()))?;
        part.clear();
        Ok(())
    };
    let mut emit = |bytes: &[u8], part: &mut Vec<u8>, parts: &mut u64| -> std::io::Result<()> {
        hasher.update(bytes);
        size += bytes.len() as u64;
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = part_size - part.len();
            let take = room.min(rest.len());
            part.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if part.len() == part_size {
                flush(part, parts)?;
            }
        }
        Ok(())
    };
    for (range, offset) in mapped {
        emit(&lime_header(*range), &mut part, &mut parts)?;
        core.seek(SeekFrom::Start(*offset))?;
        let mut left = range.len();
        while left > 0 {
            let want = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
            core.read_exact(&mut chunk[..want])?;
            emit(&chunk[..want], &mut part, &mut parts)?;
            left -= want as u64;
        }
    }
    if !part.is_empty() {
        flush(&mut part, &mut parts)?;
    }
    Ok((hex(&hasher.finalize()), size, parts))
}

/// The tool's entry point: `memcap --source /proc/kcore --iomem /proc/iomem --plan FILE`.
/// Prints the [`CaptureReport`] as one JSON line.
pub fn run(source: &Path, iomem: &Path, plan: &Path) -> Result<CaptureReport, MemcapError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| MemcapError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let ranges = ram_ranges(&read(iomem)?);
    if ranges.is_empty() {
        return Err(MemcapError::NoRam {
            path: iomem.to_owned(),
        });
    }
    let plan: UploadPlan =
        serde_json::from_str(&read(plan)?).map_err(|err| MemcapError::BadPlan {
            path: plan.to_owned(),
            problem: err.to_string(),
        })?;
    let mut core = File::open(source).map_err(|err| MemcapError::Read {
        path: source.to_owned(),
        source: err,
    })?;
    let segments = core_segments(&mut core, source)?;
    let (mapped, missing) = map_ranges(&ranges, &segments);
    let captured: Vec<RamRange> = mapped.iter().map(|(r, _)| *r).collect();
    let needed = lime_size(&captured).div_ceil(plan.part_size.max(1));
    if needed > plan.urls.len() as u64 {
        return Err(MemcapError::TooFewParts {
            needed,
            available: plan.urls.len(),
        });
    }
    let mut uploader = CurlUploader { urls: plan.urls };
    let (sha256, size, parts) = capture(&mut core, &mapped, plan.part_size, &mut uploader)
        .map_err(|err| MemcapError::Read {
            path: source.to_owned(),
            source: err,
        })?;
    Ok(CaptureReport {
        format: "lime".to_owned(),
        sha256,
        size,
        parts,
        ranges: captured.len() as u64,
        missing_count: missing.len() as u64,
        missing: missing.into_iter().take(MISSING_LISTED).collect(),
        source: source.display().to_string(),
    })
}

/// The ranges of a LiME image, read from its own range headers as the image streams by
/// (the worker's check of what a host uploaded, which needs nothing the host says).
#[derive(Debug, Default)]
pub struct LimeRanges {
    /// Bytes of the image seen so far.
    seen: u64,
    /// Where the next range header starts.
    next_header: u64,
    header: Vec<u8>,
    ranges: Vec<RamRange>,
    problem: Option<String>,
}

impl LimeRanges {
    /// Takes the next bytes of the image.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.problem.is_none() {
            if self.seen < self.next_header {
                let skip = usize::try_from(self.next_header - self.seen)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.seen += skip as u64;
                bytes = &bytes[skip..];
                continue;
            }
            let want = LIME_HEADER as usize - self.header.len();
            let take = want.min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            self.seen += take as u64;
            bytes = &bytes[take..];
            if self.header.len() == LIME_HEADER as usize {
                self.read_header();
            }
        }
    }

    fn read_header(&mut self) {
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.header[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let magic = u32::from_le_bytes([
            self.header[0],
            self.header[1],
            self.header[2],
            self.header[3],
        ]);
        let range = RamRange {
            start: word(8),
            end: word(16),
        };
        if magic != LIME_MAGIC || range.is_empty() {
            self.problem = Some(format!(
                "no LiME range header at byte {}",
                self.seen - LIME_HEADER
            ));
            return;
        }
        self.ranges.push(range);
        self.next_header = self.seen.saturating_add(range.len());
        self.header.clear();
    }

    /// The ranges, or where the image stopped being a LiME image.
    pub fn finish(self) -> Result<Vec<RamRange>, String> {
        if let Some(problem) = self.problem {
            return Err(problem);
        }
        if !self.header.is_empty() || self.seen != self.next_header {
            return Err(format!(
                "the image ends at byte {} inside a range or its header",
                self.seen
            ));
        }
        Ok(self.ranges)
    }
}

impl crate::imaging::Observe for LimeRanges {
    fn observe(&mut self, bytes: &[u8]) {
        self.feed(bytes);
    }
}

/// Builds an ELF core in the layout of /proc/kcore: one PT_LOAD per RAM range, with the
/// physical address in `p_paddr`. The lab gives its instances memory this way; tests use it.
pub fn write_core(out: &mut impl Write, ranges: &[(RamRange, Vec<u8>)]) -> std::io::Result<()> {
    let phnum =
        u16::try_from(ranges.len()).map_err(|_| std::io::Error::other("too many ranges"))?;
    let mut header = [0u8; 64];
    header[..4].copy_from_slice(b"\x7fELF");
    header[4] = 2; // 64-bit
    header[5] = 1; // little-endian
    header[6] = 1; // version
    header[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
    header[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    header[20..24].copy_from_slice(&1u32.to_le_bytes());
    header[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
    header[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
    header[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    header[0x38..0x3a].copy_from_slice(&phnum.to_le_bytes());
    out.write_all(&header)?;
    let mut offset = 64 + 56 * u64::from(phnum);
    for (range, data) in ranges {
        let mut ph = [0u8; 56];
        ph[0..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        ph[4..8].copy_from_slice(&7u32.to_le_bytes());
        ph[8..16].copy_from_slice(&offset.to_le_bytes());
        ph[16..24].copy_from_slice(&(0xffff_8880_0000_0000u64 + range.start).to_le_bytes());
        ph[24..32].copy_from_slice(&range.start.to_le_bytes());
        ph[32..40].copy_from_slice(&(data.len() as u64).to_le_bytes());
        ph[40..48].copy_from_slice(&(data.len() as u64).to_le_bytes());
        ph[48..56].copy_from_slice(&4096u64.to_le_bytes());
        out.write_all(&ph)?;
        offset += data.len() as u64;
    }
    for (_, data) in ranges {
        out.write_all(data)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const IOMEM: &str = "00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n  00001000-00001fff : Kernel code\n000a0000-000fffff : Reserved\n00100000-001fffff : System RAM\nfee00000-fee00fff : Local APIC\n";

    struct Collect(Vec<Vec<u8>>);
    impl PartWriter for Collect {
        fn write_part(&mut self, number: usize, data: &[u8]) -> Result<String, MemcapError> {
            assert_eq!(number, self.0.len() + 1);
            self.0.push(data.to_vec());
            Ok(format!("\"e{number}\""))
        }
    }

    #[test]
    fn content_md5_is_base64_of_the_digest() {
        assert_eq!(content_md5(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert_eq!(content_md5(b"abc"), "kAFQmDzST7DWlj99KOF/cg==");
    }

    #[test]
    fn an_image_that_is_not_lime_says_where() {
        let mut walker = LimeRanges::default();
        walker.feed(&[0u8; 64]);
        assert_eq!(
            walker.finish(),
            Err("no LiME range header at byte 0".to_owned())
        );
        let mut cut = LimeRanges::default();
        cut.feed(&lime_header(RamRange { start: 0, end: 99 }));
        cut.feed(&[0u8; 50]);
        assert!(cut.finish().is_err(), "a range cut short");
    }

    #[test]
    fn iomem_top_level_ram_only() {
        let ranges = ram_ranges(IOMEM);
        assert_eq!(
            ranges,
            vec![
                RamRange {
                    start: 0x1000,
                    end: 0x9fbff
                },
                RamRange {
                    start: 0x100000,
                    end: 0x1fffff
                }
            ]
        );
    }

    #[test]
    fn captures_the_ram_ranges_as_lime_and_hashes_what_it_uploads() {
        let ranges = ram_ranges(IOMEM);
        let contents: Vec<(RamRange, Vec<u8>)> = ranges
            .iter()
            .map(|r| {
                let data: Vec<u8> = (0..r.len()).map(|i| (i % 253) as u8).collect();
                (*r, data)
            })
            .collect();
        let mut core = Vec::new();
        write_core(&mut core, &contents).expect("core");
        let mut cursor = Cursor::new(core);
        let segments = core_segments(&mut cursor, Path::new("kcore")).expect("segments");
        assert_eq!(segments.len(), 2);
        let (mapped, missing) = map_ranges(&ranges, &segments);
        assert!(missing.is_empty());
        let mut parts = Collect(Vec::new());
        let (sha, size, uploaded) =
            capture(&mut cursor, &mapped, 100_000, &mut parts).expect("capture");
        let image: Vec<u8> = parts.0.concat();
        assert_eq!(size, lime_size(&ranges));
        assert_eq!(image.len() as u64, size);
        assert_eq!(sha, hex(&Sha256::digest(&image)));
        assert_eq!(uploaded as usize, parts.0.len());
        // The worker reads the ranges back from the image's own headers.
        let mut walker = LimeRanges::default();
        for chunk in image.chunks(777) {
            walker.feed(chunk);
        }
        assert_eq!(walker.finish(), Ok(ranges.clone()));
        assert!(
            parts.0[..parts.0.len() - 1]
                .iter()
                .all(|p| p.len() == 100_000)
        );
        // First range: header then the bytes of the range.
        assert_eq!(&image[..4], &LIME_MAGIC.to_le_bytes());
        assert_eq!(&image[8..16], &0x1000u64.to_le_bytes());
        assert_eq!(&image[16..24], &0x9fbffu64.to_le_bytes());
        assert_eq!(&image[32..32 + 10], &contents[0].1[..10]);
    }

    #[test]
    fn ranges_outside_the_core_are_reported_missing() {
        let ranges = vec![
            RamRange {
                start: 0x1000,
                end: 0x1fff,
            },
            RamRange {
                start: 0x10_0000,
                end: 0x10_0fff,
            },
        ];
        let mut core = Vec::new();
        write_core(&mut core, &[(ranges[0], vec![1u8; 0x1000])]).expect("core");
        let segments = core_segments(&mut Cursor::new(core), Path::new("kcore")).expect("segments");
        let (mapped, missing) = map_ranges(&ranges, &segments);
        assert_eq!(mapped.len(), 1);
        assert_eq!(missing, vec![ranges[1]]);
    }

    #[test]
    fn a_file_that_is_not_a_core_is_named() {
        let err = core_segments(&mut Cursor::new(vec![0u8; 64]), Path::new("/tmp/not-core"))
            .expect_err("bad");
        assert!(err.to_string().contains("/tmp/not-core"));
    }
}
