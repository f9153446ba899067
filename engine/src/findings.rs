//! Security Hub findings from the Security account's aggregator: filtered on the server,
//! filtered again here (a filter the service ignores must not widen the result), linked to
//! instances, and their workflow status updated.

use std::fmt;
use std::str::FromStr;

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, AwsSecurityFindingFilters, AwsSecurityFindingIdentifier, DateFilter,
    NoteUpdate, StringFilter, StringFilterComparison, WorkflowUpdate,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::aws::{AwsContext, AwsError};

/// GetFindings returns at most 100 findings a page.
const PAGE_SIZE: i32 = 100;
/// BatchUpdateFindings takes at most 100 findings a call.
const UPDATE_BATCH: usize = 100;

/// A finding's severity label, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Every label, least severe first.
    pub const ALL: [Self; 5] = [
        Self::Informational,
        Self::Low,
        Self::Medium,
        Self::High,
        Self::Critical,
    ];

    /// The label as Security Hub spells it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Informational => "INFORMATIONAL",
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
            Self::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let upper = value.trim().to_ascii_uppercase();
        Self::ALL
            .into_iter()
            .find(|s| s.label() == upper || (upper == "INFO" && *s == Self::Informational))
            .ok_or_else(|| {
                format!(
                    "'{value}' is not a severity: use INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL"
                )
            })
    }
}

/// A finding's workflow status in Security Hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkflowStatus {
    New,
    Notified,
    Suppressed,
    Resolved,
}

impl WorkflowStatus {
    pub const ALL: [Self; 4] = [Self::New, Self::Notified, Self::Suppressed, Self::Resolved];

    /// Security Hub's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::Notified => "NOTIFIED",
            Self::Suppressed => "SUPPRESSED",
            Self::Resolved => "RESOLVED",
        }
    }
}

impl FromStr for WorkflowStatus {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let upper = value.trim().to_ascii_uppercase();
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == upper)
            .ok_or_else(|| {
                format!(
                    "'{value}' is not a workflow status: use NEW, NOTIFIED, SUPPRESSED or RESOLVED"
                )
            })
    }
}

/// Whether Security Hub still keeps a finding current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordState {
    Active,
    Archived,
}

impl RecordState {
    /// Security Hub's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Archived => "ARCHIVED",
        }
    }
}

/// A time as a query takes it: RFC 3339, named when it is not one.
pub fn parse_time(value: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(value.trim(), &Rfc3339).map_err(|_| {
        format!("'{value}' is not a time: use RFC 3339, for example 2026-11-01T00:00:00Z")
    })
}

/// One finding, as irf shows it. Titles and descriptions come from member accounts and may
/// be hostile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub product_arn: String,
    pub generator_id: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub types: Vec<String>,
    pub account: String,
    pub region: String,
    pub resource_type: String,
    pub resource_id: String,
    /// The EC2 instance the finding is about, when it is about one.
    pub instance_id: Option<String>,
    pub workflow_status: String,
    pub record_state: String,
    pub created_at: String,
    pub updated_at: String,
    pub note: Option<String>,
}

/// Which findings to fetch. Each condition is sent to Security Hub and checked again here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindingQuery {
    /// At least this severity.
    pub min_severity: Option<Severity>,
    /// Any of these workflow statuses; empty: all.
    pub workflow_statuses: Vec<WorkflowStatus>,
    /// Only findings in this state; `None`: both.
    pub record_state: Option<RecordState>,
    /// Only findings about EC2 instances.
    pub ec2_only: bool,
    /// Only these accounts; empty: all.
    pub accounts: Vec<String>,
    /// Only these regions; empty: all.
    pub regions: Vec<String>,
    /// Only findings updated at or after this time.
    pub updated_since: Option<OffsetDateTime>,
    /// Only the findings of these ids; empty: any.
    pub ids: Vec<String>,
}

impl FindingQuery {
    /// What the workstation shows by default: active findings about instances, not resolved.
    pub fn open_on_instances() -> Self {
        Self {
            workflow_statuses: vec![WorkflowStatus::New, WorkflowStatus::Notified],
            record_state: Some(RecordState::Active),
            ec2_only: true,
            ..Self::default()
        }
    }

    fn to_filters(&self) -> AwsSecurityFindingFilters {
        let equals = |value: &str| {
            StringFilter::builder()
                .value(value)
                .comparison(StringFilterComparison::Equals)
                .build()
        };
        let mut filters = AwsSecurityFindingFilters::builder();
        if let Some(min) = self.min_severity {
            for severity in Severity::ALL.into_iter().filter(|s| *s >= min) {
                filters = filters.severity_label(equals(severity.label()));
            }
        }
        for status in &self.workflow_statuses {
            filters = filters.workflow_status(equals(status.as_str()));
        }
        if let Some(state) = self.record_state {
            filters = filters.record_state(equals(state.as_str()));
        }
        if self.ec2_only {
            filters = filters.resource_type(equals("AwsEc2Instance"));
        }
        for account in &self.accounts {
            filters = filters.aws_account_id(equals(account));
        }
        for region in &self.regions {
            filters = filters.region(equals(region));
        }
        if let Some(since) = self.updated_since {
            let since = since.format(&Rfc3339).unwrap_or_default();
            filters = filters.updated_at(DateFilter::builder().start(since).build());
        }
        for id in &self.ids {
            filters = filters.id(equals(id));
        }
        filters.build()
    }

    /// Whether `finding` satisfies every condition.
    pub fn matches(&self, finding: &Finding) -> bool {
        let since_ok = self.updated_since.is_none_or(|since| {
            // A finding whose time cannot be read is shown rather than hidden.
            OffsetDateTime::parse(&finding.updated_at, &Rfc3339)
                .ok()
                .is_none_or(|updated| updated >= since)
        });
        self.min_severity.is_none_or(|min| finding.severity >= min)
            && (self.workflow_statuses.is_empty()
                || self
                    .workflow_statuses
                    .iter()
                    .any(|s| s.as_str() == finding.workflow_status))
            && self
                .record_state
                .is_none_or(|s| s.as_str() == finding.record_state)
            && (!self.ec2_only || finding.resource_type == "AwsEc2Instance")
            && (self.accounts.is_empty() || self.accounts.contains(&finding.account))
            && (self.regions.is_empty() || self.regions.contains(&finding.region))
            && (self.ids.is_empty() || self.ids.contains(&finding.id))
            && since_ok
    }
}

/// The instance id in an EC2 resource id (an instance ARN or a bare id).
pub fn instance_id_of(resource_id: &str) -> Option<String> {
    let id = resource_id.rsplit('/').next().unwrap_or(resource_id);
    is_instance_id(id).then(|| id.to_owned())
}

/// Whether `id` has the shape EC2 gives instance ids (`i-` and 8 or 17 hexadecimal
/// digits): a finding's resource is written by whoever imports it, so anything else is
/// not taken for an instance.
pub fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|hex| {
        (8..=17).contains(&hex.len())
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

fn finding_from_sdk(finding: &AwsSecurityFinding) -> Finding {
    let resource = finding.resources().first();
    let resource_type = resource
        .and_then(|r| r.r#type())
        .unwrap_or_default()
        .to_owned();
    let resource_id = resource.and_then(|r| r.id()).unwrap_or_default().to_owned();
    let severity = finding
        .severity()
        .and_then(|s| s.label())
        .and_then(|l| l.as_str().parse().ok())
        .unwrap_or(Severity::Informational);
    Finding {
        id: finding.id().unwrap_or_default().to_owned(),
        product_arn: finding.product_arn().unwrap_or_default().to_owned(),
        generator_id: finding.generator_id().unwrap_or_default().to_owned(),
        title: finding.title().unwrap_or_default().to_owned(),
        description: finding.description().unwrap_or_default().to_owned(),
        severity,
        types: finding.types().to_vec(),
        account: finding.aws_account_id().unwrap_or_default().to_owned(),
        region: finding
            .region()
            .or_else(|| resource.and_then(|r| r.region()))
            .unwrap_or_default()
            .to_owned(),
        instance_id: (resource_type == "AwsEc2Instance")
            .then(|| instance_id_of(&resource_id))
            .flatten(),
        resource_type,
        resource_id,
        workflow_status: finding
            .workflow()
            .and_then(|w| w.status())
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "NEW".to_owned()),
        record_state: finding
            .record_state()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "ACTIVE".to_owned()),
        created_at: finding.created_at().unwrap_or_default().to_owned(),
        updated_at: finding.updated_at().unwrap_or_default().to_owned(),
        note: finding.note().and_then(|n| n.text()).map(str::to_owned),
    }
}

/// The open findings of one instance: how many, and the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FindingSummary {
    pub open: usize,
    pub highest: Option<Severity>,
}

/// Open (not resolved or suppressed, active) findings per instance id.
pub fn summarize_by_instance(
    findings: &[Finding],
) -> std::collections::HashMap<String, FindingSummary> {
    let mut summaries = std::collections::HashMap::<String, FindingSummary>::new();
    for finding in findings {
        let open = finding.record_state == "ACTIVE"
            && (finding.workflow_status == "NEW" || finding.workflow_status == "NOTIFIED");
        if let (true, Some(instance)) = (open, &finding.instance_id) {
            let summary = summaries.entry(instance.clone()).or_default();
            summary.open += 1;
            summary.highest = summary.highest.max(Some(finding.severity));
        }
    }
    summaries
}

/// A finding's identity, as BatchUpdateFindings wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingRef {
    pub id: String,
    pub product_arn: String,
}

impl From<&Finding> for FindingRef {
    fn from(finding: &Finding) -> Self {
        Self {
            id: finding.id.clone(),
            product_arn: finding.product_arn.clone(),
        }
    }
}

impl AwsContext {
    fn security_hub(&self) -> (aws_sdk_securityhub::Client, String) {
        let region = self.home_region();
        (
            aws_sdk_securityhub::Client::new(&self.base_config(&region)),
            region,
        )
    }

    /// Findings matching `query` from the aggregator in the home region, newest first.
    pub async fn findings(&self, query: &FindingQuery) -> Result<Vec<Finding>, AwsError> {
        let (client, region) = self.security_hub();
        let account = self.caller_identity().await?.account;
        let mut pages = client
            .get_findings()
            .filters(query.to_filters())
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut findings = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| {
                AwsError::from_sdk("securityhub:GetFindings", &account, &region, &err)
            })?;
            findings.extend(
                page.findings()
                    .iter()
                    .map(finding_from_sdk)
                    .filter(|f| query.matches(f)),
            );
        }
        findings.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(findings)
    }

    /// Sets the workflow status of `findings`, with a note (for example the case id).
    /// Returns how many were updated; findings Security Hub refused are an error naming them.
    pub async fn set_workflow_status(
        &self,
        findings: &[FindingRef],
        status: WorkflowStatus,
        note: &str,
    ) -> Result<usize, AwsError> {
        let status = aws_sdk_securityhub::types::WorkflowStatus::from(status.as_str());
        let (client, region) = self.security_hub();
        let caller = self.caller_identity().await?;
        let mut processed = 0;
        for batch in findings.chunks(UPDATE_BATCH) {
            let identifiers: Vec<AwsSecurityFindingIdentifier> = batch
                .iter()
                .map(|f| {
                    AwsSecurityFindingIdentifier::builder()
                        .id(&f.id)
                        .product_arn(&f.product_arn)
                        .build()
                })
                .collect();
            let out = client
                .batch_update_findings()
                .set_finding_identifiers(Some(identifiers))
                .workflow(WorkflowUpdate::builder().status(status.clone()).build())
                .note(
                    NoteUpdate::builder()
                        .text(note)
                        .updated_by(&caller.arn)
                        .build(),
                )
                .send()
                .await
                .map_err(|err| {
                    AwsError::from_sdk(
                        "securityhub:BatchUpdateFindings",
                        &caller.account,
                        &region,
                        &err,
                    )
                })?;
            processed += out.processed_findings().len();
            if !out.unprocessed_findings().is_empty() {
                let refused: Vec<String> = out
                    .unprocessed_findings()
                    .iter()
                    .map(|u| {
                        format!(
                            "'{}' ({})",
                            u.finding_identifier()
                                .and_then(|f| f.id())
                                .unwrap_or_default(),
                            u.error_message().unwrap_or_default()
                        )
                    })
                    .collect();
                return Err(AwsError::Unprocessed {
                    operation: "securityhub:BatchUpdateFindings",
                    count: refused.len(),
                    refused: refused.join(", "),
                });
            }
        }
        Ok(processed)
    }
}

/// Why a finding's change is not in its case's custody.
#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    #[error("the case table could not be read to find the finding's case: {0}")]
    Cases(#[source] crate::store::case_table::CaseError),
    #[error("the case's ledger could not record it: {0}")]
    Ledger(#[source] crate::ledger::LedgerError),
}

/// Records a finding's new workflow status in the ledger of its instance's latest case, so
/// the custody of the case says who closed what led to it. `None`: the instance has no case.
pub async fn record_in_case(
    plane: &crate::plane::Plane,
    instance_id: &str,
    finding_id: &str,
    status: WorkflowStatus,
) -> Result<Option<crate::model::case::CaseId>, CustodyError> {
    let cases = plane.table.cases().await.map_err(CustodyError::Cases)?;
    // Newest first: the latest case of the instance is the one the finding belongs with.
    let Some(case) = cases
        .into_iter()
        .find(|c| c.subject.instance_id == instance_id)
    else {
        return Ok(None);
    };
    crate::ledger::append(
        plane,
        &case.case_id,
        crate::model::ledger::NewEntry::new(
            crate::model::ledger::Action::FindingUpdated,
            case.subject.ledger_target(),
        )
        .detail(format!("{finding_id}: workflow status {}", status.as_str())),
    )
    .await
    .map_err(CustodyError::Ledger)?;
    Ok(Some(case.case_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity, status: &str, account: &str, updated: &str) -> Finding {
        Finding {
            id: "f".into(),
            product_arn: "p".into(),
            generator_id: "g".into(),
            title: "t".into(),
            description: "d".into(),
            severity,
            types: vec![],
            account: account.into(),
            region: "us-east-1".into(),
            resource_type: "AwsEc2Instance".into(),
            resource_id: "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc".into(),
            instance_id: Some("i-0abc".into()),
            workflow_status: status.into(),
            record_state: "ACTIVE".into(),
            created_at: updated.into(),
            updated_at: updated.into(),
            note: None,
        }
    }

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Informational);
        assert_eq!("high".parse::<Severity>(), Ok(Severity::High));
        assert_eq!("INFO".parse::<Severity>(), Ok(Severity::Informational));
        assert!(
            "urgent"
                .parse::<Severity>()
                .expect_err("bad")
                .contains("'urgent'")
        );
    }

    #[test]
    fn query_matches_each_condition() {
        let query = FindingQuery {
            min_severity: Some(Severity::High),
            workflow_statuses: vec![WorkflowStatus::New],
            accounts: vec!["111122223333".into()],
            updated_since: Some(parse_time("2026-11-01T00:00:00Z").expect("time")),
            ..FindingQuery::open_on_instances()
        };
        assert!(query.matches(&finding(
            Severity::Critical,
            "NEW",
            "111122223333",
            "2026-11-02T00:00:00Z"
        )));
        assert!(!query.matches(&finding(
            Severity::Medium,
            "NEW",
            "111122223333",
            "2026-11-02T00:00:00Z"
        )));
        assert!(!query.matches(&finding(
            Severity::High,
            "RESOLVED",
            "111122223333",
            "2026-11-02T00:00:00Z"
        )));
        assert!(!query.matches(&finding(
            Severity::High,
            "NEW",
            "999999999999",
            "2026-11-02T00:00:00Z"
        )));
        assert!(!query.matches(&finding(
            Severity::High,
            "NEW",
            "111122223333",
            "2026-10-30T00:00:00Z"
        )));
    }

    #[test]
    fn query_filters_go_to_the_server_too() {
        let query = FindingQuery {
            min_severity: Some(Severity::High),
            ..FindingQuery::open_on_instances()
        };
        let filters = query.to_filters();
        let labels: Vec<&str> = filters
            .severity_label()
            .iter()
            .filter_map(|f| f.value())
            .collect();
        assert_eq!(labels, vec!["HIGH", "CRITICAL"]);
        assert_eq!(filters.resource_type().len(), 1);
        assert_eq!(filters.workflow_status().len(), 2);
    }

    #[test]
    fn bad_query_values_are_named() {
        let status = "OPEN".parse::<WorkflowStatus>().expect_err("bad");
        assert!(
            status.contains("'OPEN'") && status.contains("RESOLVED"),
            "{status}"
        );
        assert_eq!(
            "resolved".parse::<WorkflowStatus>(),
            Ok(WorkflowStatus::Resolved)
        );
        assert!(
            parse_time("yesterday")
                .expect_err("bad")
                .contains("'yesterday'")
        );
    }

    #[test]
    fn summaries_count_open_findings_and_keep_the_worst() {
        let mut resolved = finding(Severity::Critical, "RESOLVED", "1", "2026-11-02T00:00:00Z");
        resolved.instance_id = Some("i-0abc".into());
        let findings = vec![
            finding(Severity::Low, "NEW", "1", "2026-11-02T00:00:00Z"),
            finding(Severity::High, "NOTIFIED", "1", "2026-11-02T00:00:00Z"),
            resolved,
        ];
        let summaries = summarize_by_instance(&findings);
        assert_eq!(
            summaries["i-0abc"],
            FindingSummary {
                open: 2,
                highest: Some(Severity::High)
            }
        );
    }

    #[test]
    fn instance_ids_from_resources() {
        assert_eq!(
            instance_id_of("arn:aws:ec2:us-east-1:1:instance/i-0123456789abcdef0").as_deref(),
            Some("i-0123456789abcdef0")
        );
        assert_eq!(instance_id_of("i-0abc1234").as_deref(), Some("i-0abc1234"));
        assert_eq!(instance_id_of("arn:aws:s3:::bucket"), None);
        // Whoever imports a finding writes its resource: only EC2's shape is an instance.
        for hostile in [
            "arn:aws:ec2:us-east-1:1:instance/i-\u{1b}]52;c;cm0gLXJmIH4=\u{7}",
            "i-0abc",
            "i-0123456789ABCDEF0",
            "i-0123456789abcdef01",
        ] {
            assert_eq!(instance_id_of(hostile), None, "{hostile:?}");
        }
    }
}
