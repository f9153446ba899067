//! The hosts' pure parts: subnet choice, the evidence script (run with `sh -c`, as the SSM
//! agent runs it), its report, the root volume's size, the cost.

use super::evidence::*;
use super::host::*;
use super::placement::*;
use crate::model::case::CaseId;

fn facts(id: &str, vpc: &str, public: bool, out: bool, free: i32) -> SubnetFacts {
    SubnetFacts {
        subnet_id: id.to_owned(),
        vpc_id: vpc.to_owned(),
        maps_public_ips: public,
        routes_out: out,
        free_addresses: free,
    }
}

#[test]
fn only_private_subnets_of_the_vpc_are_chosen() {
    let subnets = [
        facts("subnet-other", "vpc-x", false, false, 500),
        facts("subnet-public", "vpc-a", true, false, 400),
        facts("subnet-nat", "vpc-a", false, true, 300),
        facts("subnet-small", "vpc-a", false, false, 10),
        facts("subnet-big", "vpc-a", false, false, 200),
    ];
    assert_eq!(
        choose_subnet("vpc-a", &subnets),
        Ok("subnet-big".to_owned())
    );
    let why = choose_subnet("vpc-a", &subnets[..3]).expect_err("none fits");
    assert!(why.contains("subnet-other is in vpc-x"), "{why}");
    assert!(
        why.contains("subnet-public gives public addresses"),
        "{why}"
    );
    assert!(why.contains("subnet-nat routes to"), "{why}");
    assert!(
        choose_subnet("vpc-a", &[])
            .expect_err("empty")
            .contains("subnet_ids is empty")
    );
}

const CASE: &str = "20261128T150000Z-i-0abc";

fn fetch(key: &str, sha: &str) -> Fetch {
    Fetch {
        key: format!("cases/{CASE}/{key}"),
        version_id: Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY".to_owned()),
        sha256: sha.to_owned(),
    }
}

const SOURCE: EvidenceSource<'static> = EvidenceSource {
    bucket: "irf-evidence-222222222222",
    region: "eu-west-1",
};

#[test]
fn the_host_fetches_with_its_own_credentials_and_nothing_breaks_out_of_quotes() {
    let case = CaseId::parse(CASE).expect("case id");
    let sha = "a".repeat(64);
    let script = evidence_script(
        &case,
        &SOURCE,
        &[fetch("111111111111/i-1/memory/memory.lime", &sha)],
    )
    .expect("script");
    assert!(script.contains(&format!(
        "fetch 'cases/{CASE}/111111111111/i-1/memory/memory.lime' '3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY' '111111111111/i-1/memory/memory.lime' '{sha}'"
    )), "{script}");
    assert!(script.starts_with(&format!(
        "region='eu-west-1'\nbucket='irf-evidence-222222222222'\ncase_id='{CASE}'\n"
    )));
    assert!(script.contains(r#"aws s3api get-object --region "$region" --bucket "$bucket""#));
    // No signed URL, key or token of the operator's is in the command.
    assert!(
        !script.contains("X-Amz-")
            && !script.contains("AWS_ACCESS_KEY")
            && !script.contains("AWS_SESSION_TOKEN"),
        "{script}"
    );

    let mut quoted = fetch("disk.raw", &sha);
    quoted.key.push('\'');
    assert!(evidence_script(&case, &SOURCE, &[quoted]).is_err());
    let mut escape = fetch("disk.raw", &sha);
    escape.version_id = Some("v\u{1b}]0;x".to_owned());
    assert!(evidence_script(&case, &SOURCE, &[escape]).is_err());
    assert!(evidence_script(&case, &SOURCE, &[fetch("k", "not-a-hash")]).is_err());
    let bad_bucket = EvidenceSource {
        bucket: "b' ; rm -rf /",
        region: "eu-west-1",
    };
    assert!(evidence_script(&case, &bad_bucket, &[]).is_err());
    // A hostile key cannot become a path outside the evidence directory.
    assert_eq!(
        host_path_of(&case, &format!("cases/{CASE}/../../etc/passwd")),
        "__/__/etc/passwd"
    );
    assert_eq!(
        host_path_of(&case, "cases/other/a b;rm -rf"),
        "cases/other/a_b_rm_-rf"
    );
}

/// The script run as the host runs it, with a stand-in `aws` that serves one object
/// from a file: a QCOW2 image lands checked and read-only, with a sparse raw image
/// beside it that is the volume.
#[test]
fn a_qcow2_image_lands_with_its_raw_image_beside_it() {
    use sha2::{Digest, Sha256};
    let case = CaseId::parse(CASE).expect("case id");
    let cluster = 64usize << 10;
    let data = vec![2u64, 3, 90];
    let mut volume = vec![0u8; 128 * cluster];
    for &index in &data {
        let start = index as usize * cluster;
        volume[start..start + cluster].fill(index as u8 | 1);
    }
    let image = irf_forensics::qcow2::image_of(&volume, cluster as u64, data).expect("image");
    let dir = tempfile::tempdir().expect("tempdir");
    let object = dir.path().join("object");
    std::fs::write(&object, &image).expect("object");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    let aws = bin.join("aws");
    std::fs::write(
        &aws,
        "#!/bin/sh\nif [ \"$2\" = head-object ]; then echo v1; exit 0; fi\nfor last; do :; done\ncp \"$IRF_TEST_OBJECT\" \"$last\"\n",
    )
    .expect("aws");
    std::fs::set_permissions(&aws, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("executable");
    let mut wanted = fetch(
        "111111111111/i-1/disk/vol-1.qcow2",
        &crate::hex(&Sha256::digest(&image)),
    );
    wanted.version_id = Some("v1".to_owned());
    let script = evidence_script(&case, &SOURCE, std::slice::from_ref(&wanted)).expect("script");
    let evidence = dir.path().join("evidence");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("IRF_EVIDENCE_DIR", &evidence)
        .env("IRF_TEST_OBJECT", &object)
        .output()
        .expect("sh runs, as the SSM agent runs a script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let held = parse_evidence_report(&case, &[wanted], &stdout).expect("reported");
    assert_eq!(std::fs::read(&held[0].path).expect("the image"), image);
    let raw = evidence.join(CASE).join("111111111111/i-1/disk/vol-1.raw");
    assert!(
        stdout.contains(&format!("irf-evidence-raw {}", raw.display())),
        "{stdout}"
    );
    assert_eq!(std::fs::read(&raw).expect("the raw image"), volume);
    let meta = std::fs::metadata(&raw).expect("raw metadata");
    assert!(meta.permissions().readonly());
    // Sparse: the disk space of its three clusters of data, not of its 128.
    let allocated = std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
    assert!(
        allocated < 16 * cluster as u64,
        "{allocated} bytes allocated"
    );
}

#[test]
fn evidence_report_must_match_every_hash() {
    let case = CaseId::parse(CASE).expect("case id");
    let sha = "b".repeat(64);
    let fetches = [
        fetch("111111111111/i-1/memory/memory.lime", &sha),
        fetch("111111111111/i-1/disk/disk-xvda.raw", &sha),
    ];
    let stdout = format!(
        "irf-evidence {sha} 100 /srv/irf/evidence/{CASE}/111111111111/i-1/memory/memory.lime\nirf-evidence {sha} 200 /srv/irf/evidence/{CASE}/111111111111/i-1/disk/disk-xvda.raw\n"
    );
    let held = parse_evidence_report(&case, &fetches, &stdout).expect("both");
    assert_eq!(held[1].size, 200);
    assert_eq!(
        held[1].path,
        format!("/srv/irf/evidence/{CASE}/111111111111/i-1/disk/disk-xvda.raw")
    );
    let wrong = stdout.replacen(&sha, &"c".repeat(64), 1);
    let err = parse_evidence_report(&case, &fetches, &wrong).expect_err("mismatch");
    assert!(err.contains("memory.lime has SHA-256 ccc"), "{err}");
    let missing = stdout.lines().next().unwrap_or_default().to_owned();
    assert!(
        parse_evidence_report(&case, &fetches, &missing)
            .expect_err("missing")
            .contains("disk-xvda.raw")
    );
}

#[test]
fn the_root_volume_holds_the_evidence_twice_within_gp3s_limit() {
    assert_eq!(root_volume_gib(0), Ok(64));
    assert_eq!(root_volume_gib(1), Ok(66));
    assert_eq!(root_volume_gib(100 << 30), Ok(264));
    // 10 TiB of evidence: twice would pass 16 TiB, so the volume is 16 TiB.
    assert_eq!(root_volume_gib(10 << 40), Ok(16_384));
    let too_big = root_volume_gib(16 << 40).expect_err("cannot fit");
    assert!(
        too_big.contains("16384 GiB") && too_big.contains("snapshot"),
        "{too_big}"
    );
}

#[test]
fn cost_is_list_price_times_hours() {
    assert_eq!(cost_so_far("m5.xlarge", 7200), Some(0.384));
    assert_eq!(cost_so_far("x99.mega", 7200), None);
}
