//! Where a host goes and how big its disk is: a private subnet of the Analysis VPC with room,
//! and a root volume that holds the case's evidence twice within gp3's limit.

use aws_sdk_ec2::types::Filter;

use crate::analysis::{Analysis, AnalysisError};

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

pub(super) async fn subnet_facts(analysis: &Analysis) -> Result<Vec<SubnetFacts>, AnalysisError> {
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

/// The largest gp3 volume, in GiB.
pub(super) const GP3_MAX_GIB: u64 = 16 * 1024;
/// What the image's tools and the analysis itself need besides the evidence, in GiB.
pub(super) const ROOT_BASE_GIB: u64 = 64;

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
