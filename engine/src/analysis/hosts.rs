//! Analysis hosts: launched from the newest SIFT image into a private subnet of the
//! Analysis VPC (no public address, analyst instance profile, IMDSv2 only, encrypted
//! root, case tags), given the case's evidence with every hash checked on the host, listed
//! by their case tag, and terminated only after a typed confirmation.

use std::time::Duration;

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, HttpTokensState, IamInstanceProfileSpecification,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceNetworkInterfaceSpecification, ResourceType, Tag, TagSpecification, VolumeType,
};
use aws_types::request_id::RequestId;
use serde::{Deserialize, Serialize};

use super::{Analysis, AnalysisError, images};
use crate::acquisition::memory::{ScriptTarget, run_script_on};
use crate::ledger;
use crate::model::case::{ArtifactState, CaseId};
use crate::model::ledger::{ArtifactHash, NewEntry};
use crate::model::manifest::{Manifest, manifest_key};
use crate::plane::Plane;

/// The tag that marks an instance as an irf analysis host.
pub const ROLE_TAG: &str = "irf:role";
pub const ROLE_VALUE: &str = "analysis-host";
/// The case an analysis host serves.
pub const CASE_TAG: &str = "irf:case";
/// What the host holds of the case's evidence, set once it is verified on the host.
pub const EVIDENCE_TAG: &str = "irf:evidence";
/// The instance type used when none is asked for: SIFT's tools want memory.
pub const DEFAULT_INSTANCE_TYPE: &str = "m5.xlarge";
/// How long a new host may take to run and register with Systems Manager.
const READY_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Whether Systems Manager can reach a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reachability {
    Online,
    ConnectionLost,
    /// Not registered with Systems Manager (agent not started, no profile, no endpoint).
    NotManaged,
}

impl Reachability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::ConnectionLost => "connection lost",
            Self::NotManaged => "not managed",
        }
    }
}

/// An analysis host as the views and `irf hosts` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisHost {
    pub instance_id: String,
    pub case_id: String,
    pub state: String,
    pub instance_type: String,
    pub image_id: String,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub instance_profile: Option<String>,
    pub imdsv2_required: bool,
    pub evidence: Option<String>,
    pub ssm: Reachability,
    pub launched_at: Option<String>,
    /// Seconds since launch.
    pub age_secs: Option<u64>,
    /// On-demand list price so far, in US dollars (None for an unknown instance type).
    pub cost_usd: Option<f64>,
}

/// On-demand Linux list prices in us-east-1 (USD per hour) of the types analysis hosts
/// usually run on; an estimate for the view, not a bill.
pub fn hourly_price(instance_type: &str) -> Option<f64> {
    Some(match instance_type {
        "t3.large" => 0.0832,
        "t3.xlarge" => 0.1664,
        "t3.2xlarge" => 0.3328,
        "m5.large" => 0.096,
        "m5.xlarge" => 0.192,
        "m5.2xlarge" => 0.384,
        "m5.4xlarge" => 0.768,
        "m6i.large" => 0.096,
        "m6i.xlarge" => 0.192,
        "m6i.2xlarge" => 0.384,
        "m6i.4xlarge" => 0.768,
        "r5.xlarge" => 0.252,
        "r5.2xlarge" => 0.504,
        "r5.4xlarge" => 1.008,
        "r6i.xlarge" => 0.252,
        "r6i.2xlarge" => 0.504,
        "c5.xlarge" => 0.17,
        "c5.2xlarge" => 0.34,
        _ => return None,
    })
}

/// What running `instance_type` for `secs` seconds has cost at list price.
pub fn cost_so_far(instance_type: &str, secs: u64) -> Option<f64> {
    hourly_price(instance_type).map(|hourly| hourly * secs as f64 / 3600.0)
}

fn tag_of<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Every analysis host that is not terminated, newest first.
pub async fn list(analysis: &Analysis) -> Result<Vec<AnalysisHost>, AnalysisError> {
    let mut instances = Vec::new();
    let mut pages = analysis
        .ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{ROLE_TAG}"))
                .values(ROLE_VALUE)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .values("stopping")
                .values("stopped")
                .values("shutting-down")
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| analysis.call_error("ec2:DescribeInstances", &err))?;
        for reservation in page.reservations() {
            instances.extend(reservation.instances().iter().cloned());
        }
    }
    let ids: Vec<String> = instances
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    let reach = reachability(analysis, &ids).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut hosts: Vec<AnalysisHost> = instances
        .iter()
        .map(|instance| {
            let id = instance.instance_id().unwrap_or_default().to_owned();
            let tags = instance.tags();
            let launched = instance.launch_time().map(|t| t.secs());
            let age_secs = launched.map(|t| u64::try_from(now - t).unwrap_or(0));
            let instance_type = instance
                .instance_type()
                .map_or_else(String::new, |t| t.as_str().to_owned());
            AnalysisHost {
                case_id: tag_of(tags, CASE_TAG).unwrap_or_default().to_owned(),
                state: instance
                    .state()
                    .and_then(|s| s.name())
                    .map_or_else(String::new, |s| s.as_str().to_owned()),
                image_id: instance.image_id().unwrap_or_default().to_owned(),
                subnet_id: instance.subnet_id().map(str::to_owned),
                vpc_id: instance.vpc_id().map(str::to_owned),
                private_ip: instance.private_ip_address().map(str::to_owned),
                public_ip: instance.public_ip_address().map(str::to_owned),
                instance_profile: instance
                    .iam_instance_profile()
                    .and_then(|p| p.arn())
                    .map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_owned()),
                imdsv2_required: instance
                    .metadata_options()
                    .and_then(|m| m.http_tokens())
                    .is_some_and(|t| *t == HttpTokensState::Required),
                evidence: tag_of(tags, EVIDENCE_TAG).map(str::to_owned),
                ssm: reach.get(&id).copied().unwrap_or(Reachability::NotManaged),
                launched_at: instance
                    .launch_time()
                    .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
                cost_usd: age_secs.and_then(|secs| cost_so_far(&instance_type, secs)),
                age_secs,
                instance_type,
                instance_id: id,
            }
        })
        .collect();
    hosts.sort_by(|a, b| b.launched_at.cmp(&a.launched_at));
    Ok(hosts)
}

/// Systems Manager's view of each instance.
async fn reachability(
    analysis: &Analysis,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Reachability>, AnalysisError> {
    let mut reach = std::collections::HashMap::new();
    // The filter takes at most 50 ids per call.
    for chunk in ids.chunks(50) {
        let out = analysis
            .ssm
            .describe_instance_information()
            .filters(
                aws_sdk_ssm::types::InstanceInformationStringFilter::builder()
                    .key("InstanceIds")
                    .set_values(Some(chunk.to_vec()))
                    .build()
                    .map_err(|err| {
                        AnalysisError::Aws(crate::aws::AwsError::Request {
                            operation: "ssm:DescribeInstanceInformation",
                            message: err.to_string(),
                        })
                    })?,
            )
            .send()
            .await
            .map_err(|err| analysis.call_error("ssm:DescribeInstanceInformation", &err))?;
        for info in out.instance_information_list() {
            if let Some(id) = info.instance_id() {
                let online = info
                    .ping_status()
                    .is_some_and(|p| *p == aws_sdk_ssm::types::PingStatus::Online);
                reach.insert(
                    id.to_owned(),
                    if online {
                        Reachability::Online
                    } else {
                        Reachability::ConnectionLost
                    },
                );
            }
        }
    }
    Ok(reach)
}

/// What `irf hosts launch` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRequest {
    pub case_id: CaseId,
    pub instance_type: Option<String>,
}

/// One artifact as the host holds it, its hash checked there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostArtifact {
    pub key: String,
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// A launched host, ready for analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchOutcome {
    pub instance_id: String,
    pub case_id: String,
    pub account: String,
    pub region: String,
    pub instance_type: String,
    pub image_version: String,
    pub ami_id: String,
    pub subnet_id: String,
    pub private_ip: Option<String>,
    pub instance_profile: String,
    pub evidence: Vec<HostArtifact>,
}

/// A subnet's fitness for analysis hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetFacts {
    pub subnet_id: String,
    pub vpc_id: String,
    pub maps_public_ips: bool,
    /// Whether the subnet's route table sends anything to an internet or NAT gateway.
    pub routes_out: bool,
    pub free_addresses: i32,
}

/// The private subnet of the Analysis VPC with the most free addresses, or why none fits.
pub fn choose_subnet(vpc_id: &str, subnets: &[SubnetFacts]) -> Result<String, String> {
    let mut why = Vec::new();
    let mut fit: Vec<&SubnetFacts> = Vec::new();
    for subnet in subnets {
        if subnet.vpc_id != vpc_id {
            why.push(format!("{} is in {}", subnet.subnet_id, subnet.vpc_id));
        } else if subnet.maps_public_ips {
            why.push(format!("{} gives public addresses", subnet.subnet_id));
        } else if subnet.routes_out {
            why.push(format!(
                "{} routes to an internet or NAT gateway",
                subnet.subnet_id
            ));
        } else if subnet.free_addresses < 1 {
            why.push(format!("{} has no free address", subnet.subnet_id));
        } else {
            fit.push(subnet);
        }
    }
    if subnets.is_empty() {
        why.push("analysis.subnet_ids is empty".to_owned());
    }
    fit.into_iter()
        .max_by_key(|s| s.free_addresses)
        .map(|s| s.subnet_id.clone())
        .ok_or_else(|| why.join("; "))
}

async fn subnet_facts(analysis: &Analysis) -> Result<Vec<SubnetFacts>, AnalysisError> {
    let ids = &analysis.settings.subnet_ids;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let out = analysis
        .ec2
        .describe_subnets()
        .set_subnet_ids(Some(ids.clone()))
        .send()
        .await
        .map_err(|err| analysis.call_error("ec2:DescribeSubnets", &err))?;
    let mut facts = Vec::new();
    for subnet in out.subnets() {
        let subnet_id = subnet.subnet_id().unwrap_or_default().to_owned();
        let vpc_id = subnet.vpc_id().unwrap_or_default().to_owned();
        // The subnet's own route table, else the VPC's main one.
        let tables = analysis
            .ec2
            .describe_route_tables()
            .filters(
                Filter::builder()
                    .name("association.subnet-id")
                    .values(&subnet_id)
                    .build(),
            )
            .send()
            .await
            .map_err(|err| analysis.call_error("ec2:DescribeRouteTables", &err))?;
        let mut routes: Vec<_> = tables
            .route_tables()
            .iter()
            .flat_map(|t| t.routes().iter().cloned())
            .collect();
        if tables.route_tables().is_empty() {
            let main = analysis
                .ec2
                .describe_route_tables()
                .filters(Filter::builder().name("vpc-id").values(&vpc_id).build())
                .filters(
                    Filter::builder()
                        .name("association.main")
                        .values("true")
                        .build(),
                )
                .send()
                .await
                .map_err(|err| analysis.call_error("ec2:DescribeRouteTables", &err))?;
            routes = main
                .route_tables()
                .iter()
                .flat_map(|t| t.routes().iter().cloned())
                .collect();
        }
        let routes_out = routes.iter().any(|route| {
            route.nat_gateway_id().is_some()
                || route
                    .gateway_id()
                    .is_some_and(|g| g.starts_with("igw-") || g.starts_with("eigw-"))
        });
        facts.push(SubnetFacts {
            subnet_id,
            vpc_id,
            maps_public_ips: subnet.map_public_ip_on_launch().unwrap_or(false),
            routes_out,
            free_addresses: subnet.available_ip_address_count().unwrap_or(0),
        });
    }
    Ok(facts)
}

/// Where an artifact lands under the case's evidence directory on the host: its key below
/// `cases/<case>/` (account, instance, kind, name, so two instances' artifacts of one
/// name stay apart), each part reduced to characters safe in a path.
fn host_path_of(case_id: &CaseId, key: &str) -> String {
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

/// The largest gp3 volume, in GiB.
const GP3_MAX_GIB: u64 = 16 * 1024;
/// What the image's tools and the analysis itself need besides the evidence, in GiB.
const ROOT_BASE_GIB: u64 = 64;

/// The root volume for `evidence_bytes` of evidence: the tools, the evidence, and as much
/// again for what analysis writes next to it, within gp3's 16 TiB. Evidence that cannot
/// fit at all is refused before anything is launched.
pub fn root_volume_gib(evidence_bytes: u64) -> Result<i32, String> {
    let evidence_gib = evidence_bytes.div_ceil(1 << 30);
    if ROOT_BASE_GIB + evidence_gib > GP3_MAX_GIB {
        return Err(format!(
            "the case's evidence ({evidence_gib} GiB) does not fit on an analysis host's root volume (gp3, at most {GP3_MAX_GIB} GiB); restore a volume from the disk's snapshot and attach it to a host instead"
        ));
    }
    let wanted = (ROOT_BASE_GIB + 2 * evidence_gib).min(GP3_MAX_GIB);
    i32::try_from(wanted).map_err(|_| format!("{wanted} GiB is not a volume size"))
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

/// The status the evidence script ends with when the host has no AWS CLI.
const NO_CLI_STATUS: i32 = 4;

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
        r#"set -eu
# Readable by the analyst's session user (not root), writable by no one once in place.
umask 022
export AWS_PAGER=""
if ! command -v aws >/dev/null 2>&1; then
  echo "irf-evidence-no-cli: this image has no AWS CLI; add Image Builder's aws-cli-version-2-linux component to the SIFT recipe" >&2
  exit {NO_CLI_STATUS}
fi
dir="${{IRF_EVIDENCE_DIR:-/srv/irf/evidence}}/{case_id}"
mkdir -p "$dir"
fetch() {{
  mkdir -p "$(dirname "$dir/$3")"
  current=""
  if [ -n "$2" ]; then
    # Any failure here (the key deleted since, a delete marker) leaves the version fetch.
    current="$(aws s3api head-object --region '{region}' --bucket '{bucket}' --key "$1" --query VersionId --output text 2>/dev/null || true)"
  fi
  if [ "$current" = "$2" ]; then
    # The manifest's version is the key's current one: copied in parallel ranges.
    aws s3 cp --only-show-errors --region '{region}' "s3://{bucket}/$1" "$dir/$3.part"
    if [ -n "$2" ] && ! echo "$4  $dir/$3.part" | sha256sum -c --quiet - >/dev/null 2>&1; then
      # Written again between the look and the copy: the version itself, then.
      aws s3api get-object --region '{region}' --bucket '{bucket}' --key "$1" --version-id "$2" "$dir/$3.part" >/dev/null
    fi
  else
    # The key was written again since: the manifest's version itself, in one stream.
    aws s3api get-object --region '{region}' --bucket '{bucket}' --key "$1" --version-id "$2" "$dir/$3.part" >/dev/null
  fi
  if ! echo "$4  $dir/$3.part" | sha256sum -c --quiet - >/dev/null 2>&1; then
    echo "irf-evidence-mismatch $3 $(sha256sum "$dir/$3.part" | cut -d' ' -f1)" >&2
    rm -f "$dir/$3.part"
    exit 3
  fi
  mv -f "$dir/$3.part" "$dir/$3"
  chmod 0444 "$dir/$3"
  echo "irf-evidence $4 $(stat -c %s "$dir/$3") $dir/$3"
  case "$3" in
    *.qcow2)
      # A raw image beside it for the tools that read only raw, sparse: it takes the disk
      # space of the data. Its SHA-256 is the manifest's raw one.
      if command -v qemu-img >/dev/null 2>&1; then
        qemu-img convert -q -f qcow2 -O raw -S 4k "$dir/$3" "$dir/${{3%.qcow2}}.raw.part"
        mv -f "$dir/${{3%.qcow2}}.raw.part" "$dir/${{3%.qcow2}}.raw"
        chmod 0444 "$dir/${{3%.qcow2}}.raw"
        echo "irf-evidence-raw $dir/${{3%.qcow2}}.raw"
      else
        echo "irf-evidence-no-qemu-img: $3 stays QCOW2 only; install qemu-utils for a raw image beside it" >&2
      fi
      ;;
  esac
}}
"#,
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

/// Launches a host for the case and gives it the case's evidence. Every step is recorded
/// in the case's ledger; a host whose evidence does not verify is left running (for a look
/// at why) but tagged as such, and the error says so.
pub async fn launch(
    analysis: &Analysis,
    plane: &Plane,
    request: &LaunchRequest,
) -> Result<LaunchOutcome, AnalysisError> {
    let case_id = &request.case_id;
    let detail = plane.table.detail(case_id).await?;
    let written: Vec<_> = detail
        .artifacts
        .iter()
        .filter(|a| matches!(a.state, ArtifactState::Written | ArtifactState::Verified))
        .collect();
    if written.is_empty() {
        return Err(AnalysisError::NoEvidence {
            case: case_id.to_string(),
        });
    }
    let vpc_id = analysis
        .settings
        .vpc_id
        .clone()
        .ok_or(AnalysisError::NotConfigured {
            setting: "analysis.vpc_id",
            template: "1-forensic-analysis-vpc-and-buckets.yaml",
        })?;
    let profile =
        analysis
            .settings
            .instance_profile
            .clone()
            .ok_or(AnalysisError::NotConfigured {
                setting: "analysis.instance_profile",
                template: "1-forensic-analysis-vpc-and-buckets.yaml",
            })?;
    let subnet_id = choose_subnet(&vpc_id, &subnet_facts(analysis).await?).map_err(|why| {
        AnalysisError::NoSubnet {
            vpc: vpc_id.clone(),
            why,
        }
    })?;
    let listed = images::list(analysis).await?;
    let (image, ami_id) =
        listed
            .newest_available(&analysis.region)
            .ok_or_else(|| AnalysisError::NoImage {
                pipeline: listed.pipeline.arn.clone(),
                region: analysis.region.clone(),
            })?;
    let (image_version, ami_id) = (image.version.clone(), ami_id.to_owned());

    // The evidence's manifests first: a host is launched only for evidence that exists.
    let bucket = plane.evidence().map_err(|err| AnalysisError::Evidence {
        case: case_id.to_string(),
        instance: "-".to_owned(),
        why: err.to_string(),
    })?;
    let mut fetches = Vec::new();
    let mut total_bytes = 0u64;
    for artifact in &written {
        let manifest: Manifest = bucket
            .get_json(&manifest_key(&artifact.key))
            .await?
            .ok_or_else(|| AnalysisError::Evidence {
                case: case_id.to_string(),
                instance: "-".to_owned(),
                why: format!("{} has no manifest in {}", artifact.key, bucket.bucket),
            })?;
        // Archived evidence is restored before the host asks for it.
        bucket
            .make_readable(&artifact.key, manifest.version_id.as_deref(), |status| {
                tracing::info!(status, "the launch waits");
            })
            .await?;
        // What S3 holds is what lands; a QCOW2 image's raw twin is sparse, about as large
        // again, which the root volume's margin for analysis covers.
        total_bytes += manifest.stored_size();
        fetches.push(Fetch {
            key: artifact.key.clone(),
            version_id: manifest.version_id.clone(),
            sha256: manifest.stored_sha256().to_owned(),
        });
    }
    let source = EvidenceSource {
        bucket: &bucket.bucket,
        region: &analysis.region,
    };
    let script =
        evidence_script(case_id, &source, &fetches).map_err(|why| AnalysisError::Evidence {
            case: case_id.to_string(),
            instance: "-".to_owned(),
            why,
        })?;

    let instance_type = request
        .instance_type
        .clone()
        .or_else(|| analysis.settings.instance_type.clone())
        .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_owned());
    let root_device = analysis
        .ec2
        .describe_images()
        .image_ids(&ami_id)
        .send()
        .await
        .map_err(|err| analysis.call_error("ec2:DescribeImages", &err))?
        .images()
        .first()
        .and_then(|i| i.root_device_name().map(str::to_owned))
        .unwrap_or_else(|| "/dev/sda1".to_owned());
    let root_gib = root_volume_gib(total_bytes).map_err(|why| AnalysisError::Evidence {
        case: case_id.to_string(),
        instance: "-".to_owned(),
        why,
    })?;
    let operator = plane.operator.clone();
    let tags = |resource: ResourceType| {
        TagSpecification::builder()
            .resource_type(resource)
            .tags(
                Tag::builder()
                    .key("Name")
                    .value(format!("irf-analysis-{case_id}"))
                    .build(),
            )
            .tags(Tag::builder().key(ROLE_TAG).value(ROLE_VALUE).build())
            .tags(Tag::builder().key(CASE_TAG).value(case_id.as_str()).build())
            .tags(
                Tag::builder()
                    .key("irf:subject")
                    .value(detail.case.subject.ledger_target())
                    .build(),
            )
            .tags(
                Tag::builder()
                    .key("irf:launched-by")
                    .value(&operator)
                    .build(),
            )
            .build()
    };
    let launched = analysis
        .ec2
        .run_instances()
        .image_id(&ami_id)
        .instance_type(instance_type.as_str().into())
        .min_count(1)
        .max_count(1)
        .client_token(
            format!("irf-{}-{:08x}", case_id, rand::random::<u32>())
                .chars()
                .take(64)
                .collect::<String>(),
        )
        .network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .subnet_id(&subnet_id)
                .set_groups(analysis.settings.security_group_id.clone().map(|g| vec![g]))
                .associate_public_ip_address(false)
                .delete_on_termination(true)
                .build(),
        )
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .name(&profile)
                .build(),
        )
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(HttpTokensState::Required)
                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                .http_put_response_hop_limit(1)
                .build(),
        )
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(&root_device)
                .ebs(
                    EbsBlockDevice::builder()
                        .encrypted(true)
                        .set_kms_key_id(analysis.settings.kms_key_id.clone())
                        .volume_type(VolumeType::Gp3)
                        .volume_size(root_gib)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .tag_specifications(tags(ResourceType::Instance))
        .tag_specifications(tags(ResourceType::Volume))
        .send()
        .await
        .map_err(|err| analysis.call_error("ec2:RunInstances", &err))?;
    let request_id = launched.request_id().map(str::to_owned);
    let instance = launched
        .instances()
        .first()
        .ok_or_else(|| AnalysisError::NotReady {
            instance: "-".to_owned(),
            why: "RunInstances returned no instance".to_owned(),
        })?;
    let instance_id = instance.instance_id().unwrap_or_default().to_owned();
    let mut entry = NewEntry::new("analysis host launched", analysis.target(&instance_id)).detail(
        format!(
            "{instance_type} from {image_version} ({ami_id}) in {subnet_id}, profile {profile}, no public address, IMDSv2 required, encrypted root"
        ),
    );
    entry.request_ids.extend(request_id);
    ledger::append(plane, case_id, entry).await?;

    wait_until_managed(analysis, &instance_id).await?;
    let target = ScriptTarget {
        account: analysis.account.as_str(),
        region: &analysis.region,
        instance_id: &instance_id,
    };
    let ran = run_script_on(
        &analysis.ssm,
        &target,
        &format!("irf: evidence of case {case_id}"),
        &script,
        Duration::from_secs(6 * 3600),
        None,
    )
    .await
    .map_err(|err| AnalysisError::Evidence {
        case: case_id.to_string(),
        instance: instance_id.clone(),
        why: err.message,
    })?;
    let held = if ran.status == "Success" {
        parse_evidence_report(case_id, &fetches, &ran.stdout)
    } else {
        Err(format!(
            "the fetch ended {} ({}): {}",
            ran.status,
            ran.code,
            ran.stderr.trim()
        ))
    };
    let held = match held {
        Ok(held) => held,
        Err(why) => {
            tag_instance(analysis, &instance_id, EVIDENCE_TAG, "NOT VERIFIED").await?;
            ledger::append(
                plane,
                case_id,
                NewEntry::new(
                    "analysis host evidence failed",
                    analysis.target(&instance_id),
                )
                .detail(why.clone()),
            )
            .await?;
            return Err(AnalysisError::Evidence {
                case: case_id.to_string(),
                instance: instance_id,
                why: format!(
                    "{why}; the host is left running for a look, terminate it with 'irf hosts terminate'"
                ),
            });
        }
    };
    tag_instance(
        analysis,
        &instance_id,
        EVIDENCE_TAG,
        &format!("verified {}/{}", held.len(), fetches.len()),
    )
    .await?;
    let mut entry = NewEntry::new(
        "analysis host evidence verified",
        analysis.target(&instance_id),
    )
    .detail(format!(
        "{} artifacts fetched from {} with the host's instance profile and hashed on the host",
        held.len(),
        bucket.bucket
    ));
    for artifact in &held {
        entry = entry.artifact(ArtifactHash {
            key: artifact.key.clone(),
            sha256: artifact.sha256.clone(),
            size: artifact.size,
            raw_sha256: None,
        });
    }
    ledger::append(plane, case_id, entry).await?;

    let private_ip = describe(analysis, &instance_id)
        .await?
        .and_then(|i| i.private_ip_address().map(str::to_owned));
    Ok(LaunchOutcome {
        instance_id,
        case_id: case_id.to_string(),
        account: analysis.account.to_string(),
        region: analysis.region.clone(),
        instance_type,
        image_version,
        ami_id,
        subnet_id,
        private_ip,
        instance_profile: profile,
        evidence: held,
    })
}

async fn tag_instance(
    analysis: &Analysis,
    instance_id: &str,
    key: &str,
    value: &str,
) -> Result<(), AnalysisError> {
    analysis
        .ec2
        .create_tags()
        .resources(instance_id)
        .tags(Tag::builder().key(key).value(value).build())
        .send()
        .await
        .map(drop)
        .map_err(|err| analysis.call_error("ec2:CreateTags", &err))
}

async fn describe(
    analysis: &Analysis,
    instance_id: &str,
) -> Result<Option<aws_sdk_ec2::types::Instance>, AnalysisError> {
    let out = analysis
        .ec2
        .describe_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|err| analysis.call_error("ec2:DescribeInstances", &err))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .cloned())
}

/// Waits until the host runs and its agent is online.
async fn wait_until_managed(analysis: &Analysis, instance_id: &str) -> Result<(), AnalysisError> {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let ids = [instance_id.to_owned()];
        if reachability(analysis, &ids).await?.get(instance_id) == Some(&Reachability::Online) {
            return Ok(());
        }
        if started.elapsed() > READY_TIMEOUT {
            let state = describe(analysis, instance_id)
                .await?
                .and_then(|i| {
                    i.state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_owned())
                })
                .unwrap_or_else(|| "gone".to_owned());
            return Err(AnalysisError::NotReady {
                instance: instance_id.to_owned(),
                why: format!(
                    "not online in Systems Manager after {} min (instance state {state}); check the SSM endpoints of the Analysis VPC and the analyst profile",
                    READY_TIMEOUT.as_secs() / 60
                ),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// The analysis host `instance_id`, refusing any instance irf did not launch as one.
pub async fn host(analysis: &Analysis, instance_id: &str) -> Result<AnalysisHost, AnalysisError> {
    list(analysis)
        .await?
        .into_iter()
        .find(|h| h.instance_id == instance_id)
        .ok_or_else(|| AnalysisError::NotAnalysisHost {
            instance: instance_id.to_owned(),
            account: analysis.account.to_string(),
            region: analysis.region.clone(),
        })
}

/// Terminates an analysis host once `confirm` repeats its id; recorded in its case's ledger.
pub async fn terminate(
    analysis: &Analysis,
    plane: &Plane,
    instance_id: &str,
    confirm: &str,
) -> Result<AnalysisHost, AnalysisError> {
    if confirm != instance_id {
        return Err(AnalysisError::Confirmation {
            expected: instance_id.to_owned(),
            given: confirm.to_owned(),
        });
    }
    let host = host(analysis, instance_id).await?;
    let out = analysis
        .ec2
        .terminate_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|err| analysis.call_error("ec2:TerminateInstances", &err))?;
    if let Ok(case_id) = CaseId::parse(&host.case_id) {
        let mut entry = NewEntry::new("analysis host terminated", analysis.target(instance_id))
            .detail(format!(
                "{} after {} min",
                host.instance_type,
                host.age_secs.unwrap_or(0) / 60
            ));
        entry
            .request_ids
            .extend(out.request_id().map(str::to_owned));
        ledger::append(plane, &case_id, entry).await?;
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(script.contains(
            "aws s3api get-object --region 'eu-west-1' --bucket 'irf-evidence-222222222222'"
        ));
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
        let script =
            evidence_script(&case, &SOURCE, std::slice::from_ref(&wanted)).expect("script");
        let evidence = dir.path().join("evidence");
        let out = std::process::Command::new("bash")
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
            .expect("bash runs");
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
}
