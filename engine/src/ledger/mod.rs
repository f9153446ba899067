//! The chain of custody: every action on a case becomes a ledger entry that carries the
//! SHA-256 of the entry before it and a signature by the deployment's ledger key, kept in the
//! case table and sealed, entry by entry, into the Object Lock evidence bucket; and the
//! verification of a case against it.

use serde::{Deserialize, Serialize};

use crate::aws::AwsError;
use crate::model::case::{CaseId, now_rfc3339};
use crate::model::ledger::{ArtifactHash, GENESIS, LedgerEntry, NewEntry, sealed_key};
use crate::plane::Plane;
use crate::store::case_table::CaseError;
pub use crate::store::ledger_key::LedgerSigner;

/// Why the ledger could not be written, read or checked.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger of case {case} kept moving under {attempts} attempts to append to it")]
    Contended { case: CaseId, attempts: usize },
    #[error(
        "ledger entry {seq} of case {case} is not sealed: {problem}. Someone wrote it into the case table outside irf; 'irf verify {case}' names it"
    )]
    Unsealed {
        case: CaseId,
        seq: u64,
        problem: String,
    },
    #[error("evidence.bucket is not set: {needs} the evidence bucket")]
    NoEvidenceBucket { needs: &'static str },
    #[error("'{}' is not an artifact of case {case}: 'irf evidence' lists them", key.escape_debug())]
    NotAnArtifact { case: CaseId, key: String },
    /// The export was written and checked, but recording it in the ledger failed.
    #[error(
        "{} was written and checked, but recording the export in the case's ledger failed: {source}",
        path.display()
    )]
    ExportNotRecorded {
        path: std::path::PathBuf,
        source: Box<LedgerError>,
    },
    #[error(transparent)]
    Export(#[from] crate::store::evidence_bucket::ExportError),
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// How often an append retries when other writers take the next sequence first.
const APPEND_ATTEMPTS: usize = 8;

/// Appends an entry to the case's ledger and seals what is not sealed yet. Concurrent
/// writers (the steps of one case run in parallel) each get their own sequence. The entry
/// carries the request ids of the AWS calls its task made since its previous entry.
pub async fn append(
    plane: &Plane,
    case_id: &CaseId,
    mut entry: NewEntry,
) -> Result<LedgerEntry, LedgerError> {
    // The request ids of the calls that made the action, since the entry before it.
    for id in crate::request_ids::take() {
        if !entry.request_ids.contains(&id) {
            entry.request_ids.push(id);
        }
    }
    let appended = append_now(plane, case_id, &entry).await;
    // The ledger's own reads and writes are bookkeeping, not the next action's calls.
    crate::request_ids::take();
    appended
}

async fn append_now(
    plane: &Plane,
    case_id: &CaseId,
    entry: &NewEntry,
) -> Result<LedgerEntry, LedgerError> {
    for _ in 0..APPEND_ATTEMPTS {
        // Only the tail is read: a long case's appends stay one small query each.
        let last = plane.table.last_ledger_entry(case_id).await?;
        let (seq, prev) = last.as_ref().map_or((1, GENESIS.to_owned()), |last| {
            (last.seq + 1, last.sha256.clone())
        });
        let mut next = LedgerEntry {
            seq,
            at: now_rfc3339(),
            actor: plane.operator.clone(),
            action: entry.action.clone(),
            target: entry.target.clone(),
            request_ids: entry.request_ids.clone(),
            artifacts: entry.artifacts.clone(),
            detail: entry.detail.clone(),
            prev_sha256: prev,
            sha256: String::new(),
            signature: None,
        };
        next.sha256 = next.digest();
        if let Some(signer) = &plane.ledger_signer {
            next.signature = Some(signer.sign(&next.sha256).await?);
        }
        if plane.table.append_ledger(case_id, &next).await? {
            seal_after(plane, case_id, &next).await?;
            return Ok(next);
        }
    }
    Err(LedgerError::Contended {
        case: case_id.clone(),
        attempts: APPEND_ATTEMPTS,
    })
}

/// Seals `entry`, just appended: on its own when the entry before it is sealed (the usual
/// case), else with every other entry still waiting.
async fn seal_after(
    plane: &Plane,
    case_id: &CaseId,
    entry: &LedgerEntry,
) -> Result<(), LedgerError> {
    let Some(evidence) = &plane.evidence else {
        return Ok(());
    };
    if entry.seq == 1 || evidence.exists(&sealed_key(case_id, entry.seq - 1)).await? {
        check_before_sealing(plane, case_id, entry).await?;
        evidence
            .put_json_once(&sealed_key(case_id, entry.seq), entry)
            .await?;
        Ok(())
    } else {
        seal(plane, case_id).await
    }
}

/// Writes every entry not yet in the evidence bucket there, newest last. A plane without an
/// evidence bucket (a trigger) leaves sealing to the next step that has one.
pub async fn seal(plane: &Plane, case_id: &CaseId) -> Result<(), LedgerError> {
    let Some(evidence) = &plane.evidence else {
        return Ok(());
    };
    let entries = plane.table.ledger(case_id).await?;
    // Entries are sealed in order: walk back to the newest sealed one.
    let mut unsealed = Vec::new();
    for entry in entries.iter().rev() {
        if evidence.exists(&sealed_key(case_id, entry.seq)).await? {
            break;
        }
        unsealed.push(entry);
    }
    for entry in unsealed.into_iter().rev() {
        check_before_sealing(plane, case_id, entry).await?;
        evidence
            .put_json_once(&sealed_key(case_id, entry.seq), entry)
            .await?;
    }
    Ok(())
}

/// Refuses to seal an entry that its own hash or the ledger key's signature does not vouch
/// for: whoever wrote it into the table without the key must not get it sealed by the next
/// honest append.
async fn check_before_sealing(
    plane: &Plane,
    case_id: &CaseId,
    entry: &LedgerEntry,
) -> Result<(), LedgerError> {
    let problem = if entry.digest() != entry.sha256 {
        Some("its content does not hash to its recorded SHA-256".to_owned())
    } else if let Some(signer) = &plane.ledger_signer {
        signer
            .check(&entry.sha256, entry.signature.as_ref())
            .await?
            .err()
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(LedgerError::Unsealed {
            case: case_id.clone(),
            seq: entry.seq,
            problem,
        }),
    }
}

/// One artifact across cases, as the evidence view lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceItem {
    pub case_id: CaseId,
    pub key: String,
    pub kind: String,
    pub size: u64,
    pub sha256: Option<String>,
    /// The workflow's verification state of the artifact.
    pub state: String,
    /// `None` when the object is gone from the bucket.
    pub lock: Option<crate::store::evidence_bucket::LockState>,
}

/// Every artifact of every case, newest case first, with its Object Lock state.
pub async fn evidence(plane: &Plane) -> Result<Vec<EvidenceItem>, LedgerError> {
    let bucket = plane
        .evidence
        .as_ref()
        .ok_or(LedgerError::NoEvidenceBucket {
            needs: "the evidence view reads",
        })?;
    let mut items = Vec::new();
    for case in plane.table.cases().await? {
        let detail = plane.table.detail(&case.case_id).await?;
        for artifact in detail.artifacts {
            let lock = bucket.lock_state(&artifact.key).await?;
            items.push(EvidenceItem {
                case_id: case.case_id.clone(),
                kind: artifact.kind.as_str().to_owned(),
                size: artifact.bytes_total,
                sha256: artifact.sha256.clone(),
                state: format!("{:?}", artifact.state).to_lowercase(),
                key: artifact.key,
                lock,
            });
        }
    }
    Ok(items)
}

/// Places or removes the legal hold on one of a case's artifacts, and records it in the
/// case's ledger.
pub async fn set_legal_hold(
    plane: &Plane,
    case_id: &CaseId,
    key: &str,
    on: bool,
) -> Result<LedgerEntry, LedgerError> {
    let detail = plane.table.detail(case_id).await?;
    let artifact = detail
        .artifacts
        .iter()
        .find(|a| a.key == key)
        .ok_or_else(|| LedgerError::NotAnArtifact {
            case: case_id.clone(),
            key: key.to_owned(),
        })?;
    let bucket = plane
        .evidence
        .as_ref()
        .ok_or(LedgerError::NoEvidenceBucket {
            needs: "legal holds are placed in",
        })?;
    bucket.set_legal_hold(&artifact.key, on).await?;
    let subject = &detail.case.subject;
    append(
        plane,
        case_id,
        NewEntry::new(
            crate::model::ledger::Action::LegalHold { placed: on },
            format!("{}/{}/{}", subject.account, subject.region, artifact.source),
        )
        .detail(format!("s3://{}/{}", bucket.bucket, artifact.key)),
    )
    .await
}

/// Copies one of a case's artifacts out of the evidence bucket to `to` (as stored, or with
/// `raw` as the raw image a QCOW2 disk image stands for), checked on the way against its
/// manifest, and records the copy in the case's ledger: who took which artifact where.
pub async fn export_artifact(
    plane: &Plane,
    key: &str,
    to: &std::path::Path,
    raw: bool,
) -> Result<(crate::store::evidence_bucket::Exported, LedgerEntry), LedgerError> {
    use crate::model::manifest::{Manifest, manifest_key};
    use crate::store::evidence_bucket::ExportError;
    let bucket = plane
        .evidence
        .as_ref()
        .ok_or(ExportError::NoEvidenceBucket)?;
    let manifest: Manifest =
        bucket
            .get_json(&manifest_key(key))
            .await?
            .ok_or_else(|| ExportError::NoManifest {
                key: key.to_owned(),
                bucket: bucket.bucket.clone(),
            })?;
    let detail = plane.table.detail(&manifest.case_id).await?;
    let Some(artifact) = detail.artifacts.iter().find(|a| a.key == key) else {
        return Err(ExportError::NotAnArtifact {
            key: key.to_owned(),
            case: manifest.case_id,
        }
        .into());
    };
    let exported = bucket.export_artifact(&manifest, to, raw).await?;
    let subject = &detail.case.subject;
    let expanded = raw && manifest.format == irf_forensics::imaging::ImageFormat::Qcow2;
    let form = if expanded {
        "as its raw image"
    } else {
        "as stored"
    };
    let mut what = format!(
        "s3://{}/{} {form} to {} ({} bytes, SHA-256 {})",
        bucket.bucket,
        key,
        exported.path.display(),
        exported.size,
        exported.sha256
    );
    if exported.raw_hash_was_deferred {
        what.push_str("; the raw image's SHA-256, left for later at acquisition, computed here");
    }
    let entry = append(
        plane,
        &manifest.case_id,
        NewEntry::new(
            crate::model::ledger::Action::ArtifactExported,
            format!("{}/{}/{}", subject.account, subject.region, artifact.source),
        )
        .detail(what)
        // The bytes the copy was made from, and the raw image's hash where it was made.
        .artifact(ArtifactHash {
            key: key.to_owned(),
            sha256: exported.stored.sha256.clone(),
            size: exported.stored.size,
            raw_sha256: expanded.then(|| exported.sha256.clone()),
        }),
    )
    .await
    .map_err(|err| LedgerError::ExportNotRecorded {
        path: exported.path.clone(),
        source: Box::new(err),
    })?;
    Ok((exported, entry))
}

/// A disk image's raw image SHA-256 as its records give it: the manifest's (when the
/// image's writer computed it) and every ledger record of one (the writer's, and an
/// export's that computed one left for later), in ledger order. They must all agree:
/// `Ok(None)` while none has it, the problem in words when two differ.
fn raw_hash_of<'a>(
    manifest: Option<&'a str>,
    recorded: impl Iterator<Item = &'a str>,
) -> Result<Option<String>, String> {
    let mut known: Option<(&str, &str)> = manifest.map(|hash| (hash, "its manifest"));
    for hash in recorded {
        match known {
            None => known = Some((hash, "the ledger's first record")),
            Some((first, source)) if first != hash => {
                return Err(format!(
                    "{source} says raw image SHA-256 {first}, the ledger recorded {hash}"
                ));
            }
            Some(_) => {}
        }
    }
    Ok(known.map(|(hash, _)| hash.to_owned()))
}

/// One checked item of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedItem {
    /// `ledger`, `ledger entry N`, or an artifact's key.
    pub item: String,
    pub verified: bool,
    pub detail: String,
}

/// The result of verifying a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub case_id: CaseId,
    pub verified_at: String,
    pub items: Vec<CheckedItem>,
}

impl Verification {
    pub fn all_verified(&self) -> bool {
        !self.items.is_empty() && self.items.iter().all(|item| item.verified)
    }
}

/// Checks the chain itself: sequences 1..n without gaps, each entry's hash its own, each
/// `prev_sha256` the hash of the entry before.
pub fn check_chain(entries: &[LedgerEntry]) -> Vec<CheckedItem> {
    let mut items = Vec::new();
    let mut prev = GENESIS.to_owned();
    for (index, entry) in entries.iter().enumerate() {
        let expected_seq = index as u64 + 1;
        let item = format!("ledger entry {}", entry.seq);
        let problem = if entry.seq != expected_seq {
            Some(format!(
                "sequence {} where {expected_seq} belongs: an entry is missing or out of order",
                entry.seq
            ))
        } else if entry.digest() != entry.sha256 {
            Some(format!(
                "its content does not hash to its recorded SHA-256 {}: it was edited",
                entry.sha256
            ))
        } else if entry.prev_sha256 != prev {
            Some(format!(
                "it follows {} but the entry before hashes to {prev}: the chain is broken here",
                entry.prev_sha256
            ))
        } else {
            None
        };
        prev = entry.sha256.clone();
        items.push(CheckedItem {
            item,
            verified: problem.is_none(),
            detail: problem.unwrap_or_else(|| format!("{} {}", entry.action, entry.sha256)),
        });
    }
    items
}

/// Verifies a case: the ledger's chain, each entry against its sealed copy, and every
/// artifact re-hashed from the evidence bucket against its manifest and the ledger.
pub async fn verify(plane: &Plane, case_id: &CaseId) -> Result<Verification, LedgerError> {
    let detail = plane.table.detail(case_id).await?;
    verify_detail(plane, &detail).await
}

/// [`verify`] of a case detail already read.
pub async fn verify_detail(
    plane: &Plane,
    detail: &crate::model::case_detail::CaseDetail,
) -> Result<Verification, LedgerError> {
    let case_id = &detail.case.case_id;
    let evidence = plane
        .evidence
        .as_ref()
        .ok_or(LedgerError::NoEvidenceBucket {
            needs: "verification re-reads",
        })?;
    let mut items = Vec::new();
    if detail.ledger.is_empty() {
        items.push(CheckedItem {
            item: "ledger".into(),
            verified: false,
            detail: "the case has no ledger entries".into(),
        });
    }
    items.extend(check_chain(&detail.ledger));
    if let Some(signer) = &plane.ledger_signer {
        items.push(CheckedItem {
            item: "ledger signing key".into(),
            verified: true,
            detail: format!(
                "{} ({}; public key SHA-256 {})",
                signer.key_arn(),
                crate::model::ledger::ALGORITHM,
                signer.public_key_sha256().await?
            ),
        });
        for entry in &detail.ledger {
            if let Err(problem) = signer
                .check(&entry.sha256, entry.signature.as_ref())
                .await?
            {
                items.push(CheckedItem {
                    item: format!("ledger entry {}", entry.seq),
                    verified: false,
                    detail: problem,
                });
            }
        }
    }
    for entry in &detail.ledger {
        let key = sealed_key(case_id, entry.seq);
        let sealed: Option<LedgerEntry> = evidence.get_json(&key).await?;
        let problem = match sealed {
            None => Some(format!("no sealed copy at {key}")),
            Some(sealed) if &sealed != entry => Some(format!(
                "differs from its sealed copy at {key} (sealed SHA-256 {})",
                sealed.sha256
            )),
            // A seal is written once: a second version is a rewrite, whatever it says now.
            Some(_) => match evidence.versions_of(&key).await? {
                1 => None,
                written => Some(format!(
                    "its sealed copy at {key} was written {written} times (a seal is written once)"
                )),
            },
        };
        if let Some(problem) = problem {
            items.push(CheckedItem {
                item: format!("ledger entry {}", entry.seq),
                verified: false,
                detail: problem,
            });
        }
    }
    for artifact in &detail.artifacts {
        let recorded = detail
            .ledger
            .iter()
            .flat_map(|e| &e.artifacts)
            .rfind(|a| a.key == artifact.key);
        let manifest: Option<crate::model::manifest::Manifest> = evidence
            .get_json(&crate::model::manifest::manifest_key(&artifact.key))
            .await?;
        let Some(manifest) = manifest else {
            items.push(CheckedItem {
                item: artifact.key.clone(),
                verified: false,
                detail: "has no manifest".to_owned(),
            });
            continue;
        };
        let manifest_writes = evidence
            .versions_of(&crate::model::manifest::manifest_key(&artifact.key))
            .await?;
        let check = match evidence.check_artifact(&manifest).await {
            Ok(check) => check,
            Err(err) => {
                items.push(CheckedItem {
                    item: artifact.key.clone(),
                    verified: false,
                    detail: format!("cannot be read from the evidence bucket: {err}"),
                });
                continue;
            }
        };
        let raw_hash = raw_hash_of(
            manifest.sha256.as_deref(),
            detail
                .ledger
                .iter()
                .flat_map(|e| &e.artifacts)
                .filter(|a| a.key == artifact.key)
                .filter_map(|a| a.raw_sha256.as_deref()),
        );
        let problem = if manifest_writes > 1 {
            Some(format!(
                "its manifest was written {manifest_writes} times (a manifest is written once)"
            ))
        } else if let Some(problem) = check.problem {
            Some(problem)
        } else {
            match recorded {
                None => Some("the ledger records no hash for it".to_owned()),
                Some(recorded) if recorded.sha256 != check.read.sha256 => Some(format!(
                    "hashes to {} now, the ledger recorded {}",
                    check.read.sha256, recorded.sha256
                )),
                Some(_) => raw_hash.as_ref().err().cloned(),
            }
        };
        let detail = problem.clone().unwrap_or_else(|| match manifest.format {
            irf_forensics::imaging::ImageFormat::Raw => format!(
                "SHA-256 {} matches its manifest and the ledger",
                check.read.sha256
            ),
            irf_forensics::imaging::ImageFormat::Qcow2 => format!(
                "QCOW2 image (SHA-256 {}, {} bytes) and its block list hash {} match its manifest and the ledger; {}",
                check.read.sha256,
                check.read.size,
                manifest.blocks_sha256.as_deref().unwrap_or_default(),
                match raw_hash {
                    Ok(Some(raw)) => format!("raw image SHA-256 {raw}"),
                    _ => crate::model::case_detail::RAW_HASH_LEFT_FOR_LATER.to_owned(),
                }
            ),
        });
        items.push(CheckedItem {
            item: artifact.key.clone(),
            verified: problem.is_none(),
            detail,
        });
    }
    Ok(Verification {
        case_id: case_id.clone(),
        verified_at: now_rfc3339(),
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_of_a_raw_hash_must_agree() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        assert_eq!(raw_hash_of(None, std::iter::empty()), Ok(None));
        assert_eq!(
            raw_hash_of(Some(&a), std::iter::empty()),
            Ok(Some(a.clone()))
        );
        // Left for later, then computed by an export and again by another.
        assert_eq!(
            raw_hash_of(None, [a.as_str(), a.as_str()].into_iter()),
            Ok(Some(a.clone()))
        );
        let err = raw_hash_of(None, [a.as_str(), b.as_str()].into_iter()).expect_err("differ");
        assert!(
            err.contains("the ledger's first record says raw image SHA-256 aaaa")
                && err.contains("the ledger recorded bbbb"),
            "{err}"
        );
        let err = raw_hash_of(Some(&a), [b.as_str()].into_iter()).expect_err("differ");
        assert!(
            err.starts_with("its manifest says raw image SHA-256 aaaa"),
            "{err}"
        );
    }

    fn chain(n: u64) -> Vec<LedgerEntry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let mut entry = LedgerEntry {
                    seq,
                    at: format!("2026-11-28T10:00:{seq:02}Z"),
                    actor: "arn:aws:sts::123456789012:assumed-role/irf-step/x".into(),
                    action: format!("action {seq}"),
                    target: "111122223333/eu-west-1/i-0123456789abcdef0".into(),
                    request_ids: vec![],
                    artifacts: vec![],
                    detail: None,
                    prev_sha256: prev.clone(),
                    sha256: String::new(),
                    signature: None,
                };
                entry.sha256 = entry.digest();
                prev = entry.sha256.clone();
                entry
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let items = check_chain(&chain(4));
        assert_eq!(items.len(), 4);
        assert!(items.iter().all(|i| i.verified), "{items:?}");
    }

    #[test]
    fn an_edit_a_removal_and_a_swap_are_each_named() {
        let mut edited = chain(4);
        edited[1].detail = Some("rewritten".into());
        let items = check_chain(&edited);
        assert!(!items[1].verified && items[1].item == "ledger entry 2");
        assert!(items[1].detail.contains("edited"), "{}", items[1].detail);

        let mut removed = chain(4);
        removed.remove(2);
        let items = check_chain(&removed);
        assert!(!items[2].verified && items[2].item == "ledger entry 4");
        assert!(items[2].detail.contains("missing or out of order"));

        let mut swapped = chain(4);
        swapped.swap(1, 2);
        let items = check_chain(&swapped);
        assert!(!items[1].verified && items[1].item == "ledger entry 3");

        // An edit that also recomputes its own hash breaks the next link instead.
        let mut rehashed = chain(4);
        rehashed[1].detail = Some("rewritten".into());
        rehashed[1].sha256 = rehashed[1].digest();
        let items = check_chain(&rehashed);
        assert!(items[1].verified);
        assert!(!items[2].verified && items[2].detail.contains("chain is broken"));
    }

    #[test]
    fn the_digest_covers_every_field_but_itself() {
        let entry = chain(1).remove(0);
        let mut other = entry.clone();
        other.sha256 = "anything".into();
        assert_eq!(entry.digest(), other.digest());
        for change in [
            |e: &mut LedgerEntry| e.actor.push('x'),
            |e: &mut LedgerEntry| e.target.push('x'),
            |e: &mut LedgerEntry| e.request_ids.push("r".into()),
            |e: &mut LedgerEntry| e.prev_sha256.push('0'),
            |e: &mut LedgerEntry| e.seq += 1,
        ] {
            let mut changed = entry.clone();
            change(&mut changed);
            assert_ne!(changed.digest(), entry.digest());
        }
    }
}
