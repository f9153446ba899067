//! A case's evidence onto a host: where each artifact lands, the script the host runs to fetch
//! and check it with its own credentials, and the report the script gives back.

use serde::{Deserialize, Serialize};

use crate::model::case::CaseId;

/// Where an artifact lands under the case's evidence directory on the host: its key below
/// `cases/<case>/` (account, instance, kind, name, so two instances' artifacts of one
/// name stay apart), each part reduced to characters safe in a path.
pub(super) fn host_path_of(case_id: &CaseId, key: &str) -> String {
    let below = key
        .strip_prefix(&format!("cases/{case_id}/"))
        .unwrap_or(key);
    below
        .split('/')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let safe: String = part
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if safe.chars().all(|c| c == '.') {
                safe.replace('.', "_")
            } else {
                safe
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// One artifact the host fetches: the exact object version its manifest names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub key: String,
    pub version_id: Option<String>,
    pub sha256: String,
}

/// Where the host fetches from: the evidence bucket, through the S3 gateway endpoint of
/// the Analysis VPC in its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceSource<'a> {
    pub bucket: &'a str,
    pub region: &'a str,
}

/// One artifact as the host holds it, its hash checked there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostArtifact {
    pub key: String,
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// The script that fetches and checks a case's evidence on a host.
const FETCH_EVIDENCE: &str = include_str!("../../../scripts/fetch-evidence.sh");

/// The status the evidence script ends with when the host has no AWS CLI.
pub(super) const NO_CLI_STATUS: i32 = 4;

/// The script that fetches each artifact into the host's evidence directory with the
/// host's own credentials (its instance profile: no URL or key of the operator's travels
/// in the command), checks its SHA-256 there, and leaves it read-only. The exact version
/// the manifest names is fetched: with `aws s3 cp`'s parallel byte ranges while it is the
/// key's current version (S3's own advice for large objects, as one stream is limited per
/// connection), with `get-object --version-id` in one stream once the key has been written
/// again. Either way the hash on the host decides. It prints
/// `irf-evidence <sha256> <size> <path>` per artifact; a mismatch stops it with status 3,
/// a missing AWS CLI with status 4. A QCOW2 disk image gets a sparse raw image beside it
/// (`irf-evidence-raw <path>`) where the host has `qemu-img`.
pub fn evidence_script(
    case_id: &CaseId,
    source: &EvidenceSource<'_>,
    fetches: &[Fetch],
) -> Result<String, String> {
    let plain = |what: &str, value: &str, extra: &[char]| {
        if value.is_empty()
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
        {
            Err(format!(
                "{what} {value:?} holds characters irf does not put in a script"
            ))
        } else {
            Ok(())
        }
    };
    plain("the evidence bucket name", source.bucket, &['.', '-'])?;
    plain("the region", source.region, &['-'])?;
    let mut script = format!(
        "region='{region}'\nbucket='{bucket}'\ncase_id='{case_id}'\nno_cli_status={NO_CLI_STATUS}\n{FETCH_EVIDENCE}",
        region = source.region,
        bucket = source.bucket,
    );
    let mut paths: Vec<String> = Vec::new();
    for fetch in fetches {
        // Two keys reduced to one path (or one a directory of the other) would overwrite
        // each other on the host while both reports still verify.
        let path = host_path_of(case_id, &fetch.key);
        if let Some(other) = paths.iter().find(|p| {
            **p == path || path.starts_with(&format!("{p}/")) || p.starts_with(&format!("{path}/"))
        }) {
            return Err(format!(
                "{} and another artifact would both be {other} on the host",
                fetch.key.escape_debug()
            ));
        }
        paths.push(path);
        // The key and version id are single-quoted: nothing in them may end the quote or
        // reach the terminal of whoever reads the command's history.
        for (what, value) in [
            ("key", fetch.key.as_str()),
            (
                "version id",
                fetch.version_id.as_deref().unwrap_or_default(),
            ),
        ] {
            if value.chars().any(|c| c == '\'' || c.is_control()) {
                return Err(format!(
                    "the {what} of {} holds a quote or a control character",
                    fetch.key.escape_debug()
                ));
            }
        }
        if fetch.sha256.len() != 64 || !fetch.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "the SHA-256 of {} is not 64 hex digits: {:?}",
                fetch.key, fetch.sha256
            ));
        }
        script.push_str(&format!(
            "fetch '{}' '{}' '{}' '{}'\n",
            fetch.key,
            fetch.version_id.as_deref().unwrap_or_default(),
            host_path_of(case_id, &fetch.key),
            fetch.sha256.to_ascii_lowercase()
        ));
    }
    script.push_str("find \"$dir\" -type d -exec chmod 0555 {} +\n");
    Ok(script)
}

/// Reads the host's `irf-evidence` lines back, in the order of `fetches`, checking each
/// reported hash against the expected one.
pub fn parse_evidence_report(
    case_id: &CaseId,
    fetches: &[Fetch],
    stdout: &str,
) -> Result<Vec<HostArtifact>, String> {
    let mut held = Vec::new();
    for fetch in fetches {
        let name = host_path_of(case_id, &fetch.key);
        let line = stdout
            .lines()
            .filter_map(|line| line.strip_prefix("irf-evidence "))
            .find(|rest| rest.ends_with(&format!("/{case_id}/{name}")))
            .ok_or_else(|| format!("the host did not report {}", fetch.key))?;
        let mut parts = line.splitn(3, ' ');
        let (Some(sha), Some(size), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("unreadable report line '{line}'"));
        };
        if !sha.eq_ignore_ascii_case(&fetch.sha256) {
            return Err(format!(
                "{} has SHA-256 {sha} on the host, its manifest says {}",
                fetch.key, fetch.sha256
            ));
        }
        held.push(HostArtifact {
            key: fetch.key.clone(),
            path: path.to_owned(),
            sha256: sha.to_ascii_lowercase(),
            size: size
                .parse()
                .map_err(|_| format!("unreadable size '{size}' for {}", fetch.key))?,
        });
    }
    Ok(held)
}
