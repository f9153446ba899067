//! The chain of custody in the lab: a completed case verifies, and each kind of tampering
//! (an edited, removed or reordered ledger entry; an artifact overwritten by a new object
//! version; a byte of a disk image's data or mapping changed; an artifact deleted) makes `irf verify` fail and name the item; what a finding's
//! writer planted reaches the responder's terminal as text.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use irf_e2e::{context, lab, lab_env, run_irf};
use irf_engine::ledger::{self, Verification};
use irf_engine::model::case::{ArtifactKind, CaseId, CaseStatus, CaseSubject, ContainmentPolicy};
use irf_engine::plane::Plane;

fn irf_verify(case_id: &CaseId) -> (bool, Verification) {
    let out = run_irf(&["verify", case_id.as_str(), "--json"], &lab_env(lab()));
    let verification: Verification = serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "irf verify printed no verification ({err}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), verification)
}

/// Runs `irf verify`, which must fail and name an item `named` accepts.
fn verify_fails_naming(case_id: &CaseId, what: &str, named: impl Fn(&str) -> bool) {
    let (ok, verification) = irf_verify(case_id);
    assert!(!ok, "irf verify passed with {what}");
    let failed = failures(&verification);
    assert!(failed.iter().any(|f| named(f)), "{what}: {failed:?}");
}

/// The items that did not verify.
fn failures(verification: &Verification) -> Vec<String> {
    verification
        .items
        .iter()
        .filter(|i| !i.verified)
        .map(|i| format!("{}: {}", i.item, i.detail))
        .collect()
}

struct LedgerItems {
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    pk: String,
}

impl LedgerItems {
    fn sk(seq: u64) -> String {
        format!("LEDGER#{seq:010}")
    }

    async fn doc(&self, seq: u64) -> String {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(self.pk.clone()))
            .key("sk", AttributeValue::S(Self::sk(seq)))
            .send()
            .await
            .expect("get entry");
        out.item()
            .and_then(|item| item.get("doc"))
            .and_then(|doc| doc.as_s().ok())
            .expect("entry doc")
            .clone()
    }

    async fn put(&self, seq: u64, doc: &str) {
        self.dynamodb
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(self.pk.clone()))
            .item("sk", AttributeValue::S(Self::sk(seq)))
            .item("doc", AttributeValue::S(doc.to_owned()))
            .send()
            .await
            .expect("put entry");
    }

    async fn delete(&self, seq: u64) {
        self.dynamodb
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(self.pk.clone()))
            .key("sk", AttributeValue::S(Self::sk(seq)))
            .send()
            .await
            .expect("delete entry");
    }
}

#[tokio::test]
async fn a_completed_case_verifies_and_every_tampering_is_named() {
    let state = lab();
    let ctx = context().await;
    let plane = Plane::connect(ctx.clone()).await.expect("plane");
    let suspect = irf_e2e::suspect(state);
    // Opened as the CLI and the workstation open cases, through the decision desk, whose entry
    // carries the request ids of its calls.
    let opened = irf_engine::request_ids::recording(irf_engine::desk::client::open_case(
        &plane,
        CaseSubject {
            account: suspect.account.clone(),
            region: suspect.region.clone(),
            instance_id: suspect.id.clone(),
            memory: true,
            disk: true,
            containment: ContainmentPolicy::Never,
        },
    ))
    .await
    .expect("open the case");
    let case_id = opened.case().case_id.clone();
    let deadline = Instant::now() + Duration::from_secs(180);
    let detail = loop {
        let detail = plane.table.detail(&case_id).await.expect("detail");
        if !detail.case.status.is_open() {
            break detail;
        }
        assert!(
            Instant::now() < deadline,
            "the case did not end: {detail:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(detail.case.status, CaseStatus::Succeeded, "{detail:#?}");

    // The ledger holds the case's story, chained and sealed.
    let actions: Vec<&str> = detail.ledger.iter().map(|e| e.action.as_str()).collect();
    let snapshot = detail
        .ledger
        .iter()
        .find(|e| e.action == "snapshot created")
        .expect("the snapshot is in the ledger");
    assert!(
        !snapshot.request_ids.is_empty(),
        "with EC2's request id: {snapshot:?}"
    );
    for expected in [
        "case opened",
        "step prepare succeeded",
        "disk artifact written",
        "memory artifact written",
        "step verify succeeded",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    // Every entry names the AWS requests behind it (the emulator's request ids, as AWS's).
    for entry in &detail.ledger {
        assert!(
            !entry.request_ids.is_empty() && entry.request_ids.iter().all(|id| !id.is_empty()),
            "entry {} ({}) has no request id",
            entry.seq,
            entry.action
        );
    }
    for artifact in &detail.artifacts {
        let recorded = detail
            .ledger
            .iter()
            .flat_map(|e| &e.artifacts)
            .find(|a| a.key == artifact.key)
            .expect("the ledger records every artifact");
        // The ledger names the stored object; a QCOW2 disk image's raw hash beside it.
        let raw = match artifact.kind {
            ArtifactKind::Disk => recorded.raw_sha256.as_ref(),
            _ => Some(&recorded.sha256),
        };
        assert_eq!(raw, artifact.sha256.as_ref(), "{recorded:?}");
    }

    // The disk's block ranges are recorded part by part, covering the volume once, in order.
    let disk = detail
        .artifacts
        .iter()
        .find(|a| a.kind == ArtifactKind::Disk)
        .expect("the disk image");
    let mut covered = 0u64;
    for entry in detail
        .ledger
        .iter()
        .filter(|e| e.action == "disk block range imaged")
    {
        assert!(entry.target.ends_with(&disk.source), "{entry:?}");
        // Each part's upload is named by its own request id (they run outside the step's
        // task, so only the part can carry it).
        let parts = entry.detail.as_deref().unwrap_or_default().lines().count() - 1;
        let distinct: std::collections::BTreeSet<_> = entry.request_ids.iter().collect();
        assert!(
            distinct.len() == parts && entry.request_ids.len() == parts,
            "{parts} parts, one upload request id each: {:?}",
            entry.request_ids
        );
        for line in entry.detail.as_deref().unwrap_or_default().lines().skip(1) {
            let (_, range) = line.split_once(": ").expect("part: range crc");
            let (bytes, crc) = range.split_once(' ').expect("range and CRC-32");
            let (first, last) = bytes.split_once('-').expect("first-last");
            assert_eq!(first.parse::<u64>().expect("first byte"), covered, "{line}");
            covered = last.parse::<u64>().expect("last byte") + 1;
            assert_eq!(crc.len(), 8, "a base64 CRC-32: {line}");
        }
    }
    assert_eq!(
        covered, disk.bytes_total,
        "every byte of the volume in some range"
    );

    let (ok, verification) = irf_verify(&case_id);
    assert!(ok, "{:?}", failures(&verification));
    assert!(verification.all_verified());
    let entries = detail.ledger.len() as u64;
    assert!(entries >= 5);

    report_holds_every_hash_and_round_trips(&case_id, &detail);
    disk_image_exports_as_qemu_reads_it(&case_id, &detail);
    legal_holds_are_confirmed_recorded_and_listed(&case_id, &detail);

    // The tampering below is done by an administrator of the accounts, not by irf's roles
    // (the lab refuses those what they may not do).
    let admin = irf_e2e::admin_context().await;
    let items = LedgerItems {
        dynamodb: aws_sdk_dynamodb::Client::new(&admin.base_config(irf_lab::LAB_REGION)),
        table: plane.table.name().to_owned(),
        pk: format!("CASE#{case_id}"),
    };

    // An edited entry.
    let original = items.doc(2).await;
    let mut edited: serde_json::Value = serde_json::from_str(&original).expect("entry JSON");
    edited["detail"] = serde_json::json!("nothing happened here");
    items.put(2, &edited.to_string()).await;
    verify_fails_naming(&case_id, "an edited entry", |f| {
        f.starts_with("ledger entry 2:")
    });
    items.put(2, &original).await;

    // A removed entry.
    items.delete(3).await;
    verify_fails_naming(&case_id, "a removed entry", |f| {
        f.starts_with("ledger entry 4:") && f.contains("missing or out of order")
    });
    items.put(3, &items_doc_of(&detail, 3)).await;

    // Two entries swapped.
    let (second, third) = (items.doc(2).await, items.doc(3).await);
    items.put(2, &third).await;
    items.put(3, &second).await;
    verify_fails_naming(&case_id, "two entries swapped", |f| {
        f.starts_with("ledger entry 3:")
    });
    items.put(2, &second).await;
    items.put(3, &third).await;
    let (ok, verification) = irf_verify(&case_id);
    assert!(ok, "restored: {:?}", failures(&verification));
    let key_item = verification
        .items
        .iter()
        .find(|i| i.item == "ledger signing key")
        .expect("verify names the key the entries are signed with");
    assert!(key_item.detail.contains("ECDSA_SHA_256"), "{key_item:?}");
    for entry in &detail.ledger {
        assert!(entry.signature.is_some(), "entry {} is unsigned", entry.seq);
    }

    // An entry written into the table by someone who may write it but not use the ledger
    // key (here the account's administrator): chained onto the last entry, its hash its own,
    // with the signature of the entry before it. The next honest append does not seal it, and
    // verify names it.
    let last = plane
        .table
        .last_ledger_entry(&case_id)
        .await
        .expect("the ledger's tail")
        .expect("an entry");
    let mut forged = last.clone();
    forged.seq = last.seq + 1;
    forged.action = "memory artifact written".into();
    forged.detail = Some("an artifact that was never acquired".into());
    forged.prev_sha256 = last.sha256.clone();
    forged.sha256 = forged.digest();
    items
        .put(
            forged.seq,
            &serde_json::to_string(&forged).expect("entry JSON"),
        )
        .await;
    let honest = ledger::append(
        &plane,
        &case_id,
        irf_engine::model::ledger::NewEntry::new(
            irf_engine::model::ledger::Action::FindingUpdated,
            "the next honest entry",
        ),
    )
    .await
    .expect_err("the next append does not seal a forged entry")
    .to_string();
    assert!(
        honest.contains(&format!("ledger entry {} ", forged.seq)),
        "{honest}"
    );
    let evidence = plane.evidence().expect("evidence bucket");
    assert!(
        !evidence
            .exists(&irf_engine::model::ledger::sealed_key(&case_id, forged.seq))
            .await
            .expect("head the seal"),
        "the forged entry was sealed"
    );
    verify_fails_naming(&case_id, "an entry forged into the table", |f| {
        f.starts_with(&format!("ledger entry {}:", forged.seq)) && f.contains("signature")
    });
    items.delete(forged.seq + 1).await;
    items.delete(forged.seq).await;
    let (ok, verification) = irf_verify(&case_id);
    assert!(ok, "forgery removed: {:?}", failures(&verification));

    // One byte of the memory image changed, written as a new object version over its key.
    let forensics_admin = aws_sdk_s3::Client::new(&irf_e2e::forensics_admin().await);
    let memory = detail
        .artifacts
        .iter()
        .find(|a| a.kind == ArtifactKind::Memory)
        .expect("memory artifact");
    let body = evidence
        .client()
        .get_object()
        .bucket(&evidence.bucket)
        .key(&memory.key)
        .send()
        .await
        .expect("read memory")
        .body
        .collect()
        .await
        .expect("memory body")
        .into_bytes();
    let mut changed = body.to_vec();
    changed[4096] ^= 0x01;
    // Written by the automation's role: the evidence key lets no administrator encrypt.
    let worker_s3 = aws_sdk_s3::Client::new(
        &irf_e2e::automation_context()
            .await
            .base_config(irf_lab::LAB_REGION),
    );
    worker_s3
        .put_object()
        .bucket(&evidence.bucket)
        .key(&memory.key)
        .body(changed.into())
        .send()
        .await
        .expect("overwrite memory");
    verify_fails_naming(&case_id, "a changed memory image", |f| {
        f.starts_with(&format!("{}:", memory.key)) && f.contains("manifest says")
    });

    // The disk image is QCOW2: verify reads what it stores, never the zeros it stands for.
    let disk = detail
        .artifacts
        .iter()
        .find(|a| a.kind == ArtifactKind::Disk)
        .expect("disk artifact");
    let stored = evidence
        .client()
        .get_object()
        .bucket(&evidence.bucket)
        .key(&disk.key)
        .send()
        .await
        .expect("read the disk image")
        .body
        .collect()
        .await
        .expect("disk body")
        .into_bytes()
        .to_vec();
    let manifest: irf_engine::model::manifest::Manifest = evidence
        .get_json(&irf_engine::model::manifest::manifest_key(&disk.key))
        .await
        .expect("read the manifest")
        .expect("a manifest");
    assert_eq!(manifest.stored_size, Some(stored.len() as u64));
    assert!(
        (stored.len() as u64) < manifest.size / 4,
        "{} bytes stored for a {}-byte volume",
        stored.len(),
        manifest.size
    );
    let overwrite = async |bytes: Vec<u8>| {
        worker_s3
            .put_object()
            .bucket(&evidence.bucket)
            .key(&disk.key)
            .body(bytes.into())
            .send()
            .await
            .expect("overwrite the disk image");
    };
    // A flipped byte in the last data cluster: the stored hash and the block list hash
    // name it.
    let mut changed = stored.clone();
    let last = changed.len() - 100;
    changed[last] ^= 0x01;
    overwrite(changed).await;
    verify_fails_naming(&case_id, "a changed byte of disk data", |f| {
        f.starts_with(&format!("{}:", disk.key))
            && f.contains("for the stored QCOW2 image")
            && f.contains("its data makes block list hash")
    });
    // A cluster of zeros made to read as data: a free entry of the first L2 table pointed
    // at the header. qemu would open it; the mapping is not the one irf wrote.
    let mut changed = stored.clone();
    let word = |at: usize| u64::from_be_bytes(changed[at..at + 8].try_into().expect("8 bytes"));
    let cluster = 1usize << u32::from_be_bytes(changed[20..24].try_into().expect("4 bytes"));
    let l1_at = usize::try_from(word(40)).expect("offset");
    let l2_at = usize::try_from(word(l1_at) & 0x00ff_ffff_ffff_fe00).expect("offset");
    let free = (0..cluster / 8)
        .map(|slot| l2_at + slot * 8)
        .find(|&at| word(at) == 0)
        .expect("a zero cluster in the first table");
    changed[free..free + 8].copy_from_slice(&(1u64 << 63).to_be_bytes());
    overwrite(changed).await;
    verify_fails_naming(&case_id, "a zero region made to read as data", |f| {
        f.starts_with(&format!("{}:", disk.key)) && f.contains("not the QCOW2 image irf wrote")
    });
    // The original bytes, written back, verify again (the memory image stays changed).
    overwrite(stored.clone()).await;
    let (ok, verification) = irf_verify(&case_id);
    let disk_item = verification
        .items
        .iter()
        .find(|i| i.item == disk.key)
        .expect("the disk is verified");
    assert!(
        !ok && disk_item.verified && disk_item.detail.contains("block list hash"),
        "the original bytes restored verify again: {disk_item:?}"
    );

    // The disk image deleted.
    forensics_admin
        .delete_object()
        .bucket(&evidence.bucket)
        .key(&disk.key)
        .send()
        .await
        .expect("delete disk");
    verify_fails_naming(&case_id, "a deleted disk image", |f| {
        f.starts_with(&format!("{}:", disk.key)) && f.contains("cannot be read")
    });
    // The human output names them too, and the exit status says it.
    let out = run_irf(&["verify", case_id.as_str()], &lab_env(state));
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("NOT VERIFIED  {}", disk.key)),
        "{text}"
    );
    assert!(
        text.contains(&format!("NOT VERIFIED  {}", memory.key)),
        "{text}"
    );

    // The records of custody are written once. irf's own writer cannot write a seal
    // again, unconditionally (the bucket policy refuses it) or conditionally (S3 refuses
    // it: the key exists)...
    let seal = irf_engine::model::ledger::sealed_key(&case_id, 1);
    let worker = aws_sdk_s3::Client::new(
        &irf_e2e::automation_context()
            .await
            .base_config(irf_lab::LAB_REGION),
    );
    let plain = worker
        .put_object()
        .bucket(&evidence.bucket)
        .key(&seal)
        .body(b"{}".to_vec().into())
        .send()
        .await;
    let refusal = format!(
        "{:?}",
        plain.expect_err("an unconditional write over a seal is refused")
    );
    assert!(
        refusal.contains("AccessDenied") && refusal.contains("s3:PutObject"),
        "{refusal}"
    );
    let conditional = worker
        .put_object()
        .bucket(&evidence.bucket)
        .key(&seal)
        .if_none_match("*")
        .body(b"{}".to_vec().into())
        .send()
        .await
        .expect_err("a conditional write over a seal fails");
    assert_eq!(
        conditional.raw_response().map(|r| r.status().as_u16()),
        Some(412),
        "{conditional:?}"
    );
    // ...and whoever changes the bucket policy first (the Forensics account's
    // administrator may) lets a writer leave a second version, which verify names even
    // when it holds the same bytes.
    let policy = forensics_admin
        .get_bucket_policy()
        .bucket(&evidence.bucket)
        .send()
        .await
        .expect("the bucket policy")
        .policy()
        .expect("a policy")
        .to_owned();
    let mut loosened: serde_json::Value = serde_json::from_str(&policy).expect("policy JSON");
    loosened["Statement"]
        .as_array_mut()
        .expect("statements")
        .retain(|s| s["Sid"] != "RecordsAreWrittenOnce");
    forensics_admin
        .put_bucket_policy()
        .bucket(&evidence.bucket)
        .policy(loosened.to_string())
        .send()
        .await
        .expect("loosen the policy");
    let original = worker
        .get_object()
        .bucket(&evidence.bucket)
        .key(&seal)
        .send()
        .await
        .expect("read the seal")
        .body
        .collect()
        .await
        .expect("seal body")
        .into_bytes();
    let rewritten = worker
        .put_object()
        .bucket(&evidence.bucket)
        .key(&seal)
        .body(original.to_vec().into())
        .send()
        .await;
    forensics_admin
        .put_bucket_policy()
        .bucket(&evidence.bucket)
        .policy(&policy)
        .send()
        .await
        .expect("restore the policy");
    rewritten.expect("a second version of the seal");
    verify_fails_naming(&case_id, "a seal written again", |f| {
        f.starts_with("ledger entry 1:") && f.contains("written 2 times")
    });
}

/// The disk image copied out as stored (QCOW2, which qemu-img checks) and as its raw image
/// (sparse, hashing to the manifest's raw SHA-256), each copy in the ledger; an existing
/// file is never replaced.
fn disk_image_exports_as_qemu_reads_it(
    case_id: &CaseId,
    detail: &irf_engine::model::case_detail::CaseDetail,
) {
    use sha2::{Digest, Sha256};
    let disk = detail
        .artifacts
        .iter()
        .find(|a| a.kind == ArtifactKind::Disk)
        .expect("disk artifact");
    let dir = tempfile::tempdir().expect("tempdir");
    let stored = dir.path().join("disk.qcow2");
    let raw = dir.path().join("disk.raw");
    let env = lab_env(lab());
    for (path, extra) in [(&stored, None), (&raw, Some("--raw"))] {
        let path = path.to_str().expect("utf-8 path");
        let mut args = vec!["evidence", "export", disk.key.as_str(), "-o", path];
        args.extend(extra);
        let out = run_irf(&args, &env);
        assert!(
            out.status.success(),
            "irf {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let qemu_img = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new("qemu-img")
            .args(args)
            .output()
            .expect("qemu-img runs (.ci/run installs qemu-utils)");
        assert!(out.status.success(), "qemu-img {args:?}: {out:?}");
    };
    qemu_img(&[
        "check".as_ref(),
        "-f".as_ref(),
        "qcow2".as_ref(),
        stored.as_os_str(),
    ]);
    qemu_img(&[
        "compare".as_ref(),
        "-f".as_ref(),
        "qcow2".as_ref(),
        "-F".as_ref(),
        "raw".as_ref(),
        stored.as_os_str(),
        raw.as_os_str(),
    ]);
    let raw_bytes = std::fs::read(&raw).expect("the raw image");
    assert_eq!(
        Some(irf_engine::hex(&Sha256::digest(&raw_bytes))),
        disk.sha256,
        "the raw image hashes to the manifest's raw SHA-256"
    );
    let on_disk =
        std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&raw).expect("meta")) * 512;
    let stored_len = std::fs::metadata(&stored).expect("meta").len();
    assert!(
        on_disk <= stored_len + (1 << 20),
        "the raw image is sparse: {on_disk} bytes on disk for {stored_len} stored"
    );
    let again = run_irf(
        &[
            "evidence",
            "export",
            disk.key.as_str(),
            "-o",
            raw.to_str().expect("utf-8"),
        ],
        &env,
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists; irf never replaces a file"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let exported = run_irf(&["case", case_id.as_str(), "--json"], &env);
    let text = String::from_utf8_lossy(&exported.stdout);
    assert_eq!(
        text.matches("artifact exported").count(),
        2,
        "both copies are in the ledger: {text}"
    );
}

/// The report of the intact case: its JSON matches the published schema and reads back
/// into the same report; every format carries every artifact hash and every ledger entry.
fn report_holds_every_hash_and_round_trips(
    case_id: &CaseId,
    detail: &irf_engine::model::case_detail::CaseDetail,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = lab_env(lab());
    let mut texts = Vec::new();
    for format in ["json", "md", "html"] {
        let path = dir.path().join(format!("report.{format}"));
        let out = run_irf(
            &[
                "report",
                case_id.as_str(),
                "--format",
                format,
                "-o",
                path.to_str().expect("utf-8"),
            ],
            &env,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        texts.push((format, path));
    }
    let json_path = &texts[0].1;
    let json = std::fs::read_to_string(json_path).expect("json report");
    let report: irf_engine::report::CaseReport =
        serde_json::from_str(&json).expect("the report reads back");
    assert_eq!(
        serde_json::to_value(&report).expect("value"),
        serde_json::from_str::<serde_json::Value>(&json).expect("value"),
        "the JSON round-trips"
    );
    assert!(report.verification.all_verified());
    assert_eq!(report.ledger, detail.ledger);
    let install = irf_lab::install::installed()
        .expect("install state")
        .expect("the lab's tools are installed");
    let schema =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/report.schema.json");
    let checked = std::process::Command::new(install.python())
        .args([
            "-c",
            "import json, sys, jsonschema\njsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))",
        ])
        .arg(json_path)
        .arg(&schema)
        .output()
        .expect("run the schema check");
    assert!(
        checked.status.success(),
        "the report does not match its schema: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for (format, path) in &texts {
        let text = std::fs::read_to_string(path).expect("report");
        for artifact in &detail.artifacts {
            let sha = artifact.sha256.as_deref().expect("hashed artifact");
            assert!(text.contains(sha), "{format} lacks {sha}");
        }
        for entry in &detail.ledger {
            assert!(
                text.contains(&entry.sha256),
                "{format} lacks ledger entry {}",
                entry.seq
            );
        }
    }
}

fn evidence_of(case_id: &CaseId) -> Vec<ledger::EvidenceItem> {
    let out = run_irf(&["evidence", "--json"], &lab_env(lab()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Vec<ledger::EvidenceItem> =
        serde_json::from_slice(&out.stdout).expect("evidence JSON");
    all.into_iter().filter(|i| &i.case_id == case_id).collect()
}

/// The evidence list shows each artifact's retention and hold; a hold needs the case id
/// typed again, and placing and removing it are ledger entries that keep the chain whole.
fn legal_holds_are_confirmed_recorded_and_listed(
    case_id: &CaseId,
    detail: &irf_engine::model::case_detail::CaseDetail,
) {
    let env = lab_env(lab());
    let listed = evidence_of(case_id);
    assert_eq!(listed.len(), detail.artifacts.len());
    for item in &listed {
        let lock = item.lock.as_ref().expect("in the bucket");
        assert_eq!(lock.mode.as_deref(), Some("GOVERNANCE"), "{item:?}");
        assert!(lock.retain_until.is_some(), "{item:?}");
        assert!(!lock.legal_hold);
        assert!(item.sha256.is_some());
    }
    let key = listed[0].key.clone();
    let wrong = run_irf(
        &[
            "legal-hold",
            case_id.as_str(),
            &key,
            "--confirm",
            "20261128T000000Z-i-0",
        ],
        &env,
    );
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("is not the case id"));
    assert!(
        !evidence_of(case_id)[0]
            .lock
            .as_ref()
            .expect("lock")
            .legal_hold
    );

    let placed = run_irf(
        &[
            "legal-hold",
            case_id.as_str(),
            &key,
            "--confirm",
            case_id.as_str(),
        ],
        &env,
    );
    assert!(
        placed.status.success(),
        "{}",
        String::from_utf8_lossy(&placed.stderr)
    );
    let held = evidence_of(case_id);
    assert!(
        held.iter()
            .find(|i| i.key == key)
            .and_then(|i| i.lock.as_ref())
            .is_some_and(|l| l.legal_hold),
        "{held:?}"
    );
    let removed = run_irf(
        &[
            "legal-hold",
            case_id.as_str(),
            &key,
            "--off",
            "--confirm",
            case_id.as_str(),
        ],
        &env,
    );
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    assert!(
        !evidence_of(case_id)
            .iter()
            .any(|i| i.lock.as_ref().is_some_and(|l| l.legal_hold))
    );
    let (ok, verification) = irf_verify(case_id);
    assert!(ok, "{:?}", failures(&verification));
    let actions: Vec<String> = verification
        .items
        .iter()
        .map(|i| i.detail.clone())
        .collect();
    assert!(
        actions.iter().any(|d| d.starts_with("legal hold placed")),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|d| d.starts_with("legal hold removed")),
        "{actions:?}"
    );
}

/// The stored form of entry `seq` as the case detail read it.
fn items_doc_of(detail: &irf_engine::model::case_detail::CaseDetail, seq: u64) -> String {
    let entry = detail.ledger.iter().find(|e| e.seq == seq).expect("entry");
    serde_json::to_string(entry).expect("entry JSON")
}

#[test]
fn the_sealed_key_is_per_case_and_sequence() {
    let case = CaseId::parse("20261128T093015Z-i-ad331045abe82ba53").expect("case id");
    assert_eq!(
        irf_engine::model::ledger::sealed_key(&case, 7),
        "cases/20261128T093015Z-i-ad331045abe82ba53/ledger/0000000007.json"
    );
}

#[tokio::test]
async fn a_hostile_finding_reaches_the_terminal_inert() {
    // Any account that can import a finding writes its resource id and title: an OSC 52
    // clipboard write and a screen clear there must reach the responder's terminal as text.
    // (Here, not with the lab's own tests: those count the seeded findings.)
    let state = lab();
    let member = irf_e2e::managed_member(state);
    let hostile_id = "i-\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{1b}[2J";
    irf_e2e::plant_finding(
        member.id.as_str(),
        &format!(
            "arn:aws:guardduty:us-east-1:{}:detector/irflab/finding/hostile",
            member.id
        ),
        "hostile-title \u{1b}[31mRED\u{1b}]0;owned\u{7}",
        aws_sdk_securityhub::types::SeverityLabel::Critical,
        (
            "AwsEc2Instance",
            &format!("arn:aws:ec2:us-east-1:{}:instance/{hostile_id}", member.id),
        ),
    )
    .await;
    let out = run_irf(&["findings"], &lab_env(state));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}");
    assert!(
        printed.contains("hostile-title"),
        "the finding is listed: {printed}"
    );
    assert!(
        !out.stdout.iter().any(|b| *b == 0x1b || *b == 0x07),
        "no escape or bell byte reaches the terminal: {printed}"
    );
    assert!(
        printed.contains(r"hostile-title \e[31mRED\e]0;owned\x07"),
        "{printed}"
    );
}
