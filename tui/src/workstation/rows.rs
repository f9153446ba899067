//! The rows of the workstation's tables: what each view shows, filters on and sorts by.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use irf_engine::findings::{Finding, Severity};
use irf_engine::inventory::Instance;
use irf_engine::model::case::Case;

use crate::filter::{Field, Filterable};

/// A row of any table: an identity that survives refreshes, and an order per column.
pub trait TableRow: Filterable {
    /// Stable identity: selection follows it across refreshes and re-sorts.
    fn id(&self) -> &str;
    /// Orders two rows by `column`.
    fn compare(&self, other: &Self, column: usize) -> Ordering;
}

fn lower_join(parts: &[&str]) -> String {
    parts.join(" ").to_lowercase()
}

/// An instance with its searchable text.
#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub instance: Instance,
    haystack: String,
}

impl InstanceRow {
    pub fn new(instance: Instance) -> Self {
        let tags: Vec<&str> = instance.tags.iter().flat_map(|(k, v)| [k, v]).collect();
        let mut parts = vec![
            instance.id.as_str(),
            instance.name.as_deref().unwrap_or_default(),
            instance.account.as_str(),
            instance.account_name.as_str(),
            instance.region.as_str(),
            instance.state.as_str(),
            instance.instance_type.as_str(),
            instance.platform.as_str(),
            instance.private_ip.as_deref().unwrap_or_default(),
            instance.public_ip.as_deref().unwrap_or_default(),
            instance.vpc_id.as_deref().unwrap_or_default(),
        ];
        parts.extend(tags);
        let haystack = lower_join(&parts);
        Self { instance, haystack }
    }
}

/// Column titles of the instances view, in order.
pub const INSTANCE_COLUMNS: [&str; 10] = [
    "INSTANCE",
    "NAME",
    "ACCOUNT",
    "REGION",
    "STATE",
    "TYPE",
    "PRIVATE IP",
    "SSM",
    "INCIDENT",
    "FINDINGS",
];

impl Filterable for InstanceRow {
    fn haystack(&self) -> &str {
        &self.haystack
    }
    fn tag(&self, key: &str) -> Option<&str> {
        self.instance.tags.get(key)
    }
    fn field(&self, field: Field) -> Vec<String> {
        match field {
            Field::Account => vec![
                self.instance.account.to_string(),
                self.instance.account_name.to_lowercase().to_string(),
            ],
            Field::Region => vec![self.instance.region.to_string()],
            Field::State => vec![self.instance.state.to_string()],
        }
    }
    fn severity(&self) -> Option<Severity> {
        self.instance.findings.highest
    }
}

impl TableRow for InstanceRow {
    fn id(&self) -> &str {
        &self.instance.id
    }
    fn compare(&self, other: &Self, column: usize) -> Ordering {
        let (a, b) = (&self.instance, &other.instance);
        match column {
            1 => a.name.cmp(&b.name),
            2 => a.account_name.cmp(&b.account_name),
            3 => a.region.cmp(&b.region),
            4 => a.state.cmp(&b.state),
            5 => a.instance_type.cmp(&b.instance_type),
            6 => a.private_ip.cmp(&b.private_ip),
            7 => a.ssm.label().cmp(b.ssm.label()),
            8 => a.incident_status().cmp(&b.incident_status()),
            9 => (a.findings.highest, a.findings.open).cmp(&(b.findings.highest, b.findings.open)),
            _ => Ordering::Equal,
        }
        .then_with(|| a.id.cmp(&b.id))
    }
}

/// A finding with its searchable text.
#[derive(Debug, Clone)]
pub struct FindingRow {
    pub finding: Finding,
    haystack: String,
}

impl FindingRow {
    pub fn new(finding: Finding) -> Self {
        let types = finding.types.join(" ");
        let haystack = lower_join(&[
            finding.severity.label(),
            &finding.title,
            &finding.account,
            &finding.region,
            finding.instance_id.as_deref().unwrap_or_default(),
            &finding.workflow_status,
            &types,
        ]);
        Self { finding, haystack }
    }
}

/// Column titles of the findings view, in order.
pub const FINDING_COLUMNS: [&str; 7] = [
    "SEVERITY", "TITLE", "ACCOUNT", "REGION", "INSTANCE", "STATUS", "UPDATED",
];

impl Filterable for FindingRow {
    fn haystack(&self) -> &str {
        &self.haystack
    }
    fn field(&self, field: Field) -> Vec<String> {
        match field {
            Field::Account => vec![self.finding.account.clone()],
            Field::Region => vec![self.finding.region.clone()],
            Field::State => vec![self.finding.workflow_status.to_lowercase()],
        }
    }
    fn severity(&self) -> Option<Severity> {
        Some(self.finding.severity)
    }
}

impl TableRow for FindingRow {
    fn id(&self) -> &str {
        &self.finding.id
    }
    fn compare(&self, other: &Self, column: usize) -> Ordering {
        let (a, b) = (&self.finding, &other.finding);
        match column {
            0 => a.severity.cmp(&b.severity),
            1 => a.title.cmp(&b.title),
            2 => a.account.cmp(&b.account),
            3 => a.region.cmp(&b.region),
            4 => a.instance_id.cmp(&b.instance_id),
            5 => a.workflow_status.cmp(&b.workflow_status),
            6 => a.updated_at.cmp(&b.updated_at),
            _ => Ordering::Equal,
        }
        .then_with(|| a.id.cmp(&b.id))
    }
}

/// One member account in the accounts view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub per_region: BTreeMap<String, usize>,
    pub running: usize,
    pub stopped: usize,
    pub under_incident: usize,
    pub errors: Vec<String>,
    haystack: String,
}

impl AccountRow {
    pub fn new(id: &str, name: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            haystack: lower_join(&[id, name]),
            ..Self::default()
        }
    }

    /// Counts one instance of the account.
    pub fn count(&mut self, instance: &Instance) {
        *self
            .per_region
            .entry(instance.region.to_string())
            .or_default() += 1;
        match instance.state.as_str() {
            "running" => self.running += 1,
            "stopped" => self.stopped += 1,
            _ => {}
        }
        if instance.incident_status().is_some() {
            self.under_incident += 1;
        }
    }

    /// Instances in every region together.
    pub fn total(&self) -> usize {
        self.per_region.values().sum()
    }
}

impl Filterable for AccountRow {
    fn haystack(&self) -> &str {
        &self.haystack
    }
    fn field(&self, field: Field) -> Vec<String> {
        match field {
            Field::Account => vec![self.id.clone(), self.name.to_lowercase()],
            Field::Region => self.per_region.keys().cloned().collect(),
            Field::State => vec![if self.errors.is_empty() {
                "ok".into()
            } else {
                "error".into()
            }],
        }
    }
}

impl TableRow for AccountRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn compare(&self, other: &Self, column: usize) -> Ordering {
        match column {
            1 => self.name.cmp(&other.name),
            2 => self.total().cmp(&other.total()),
            3 => self.running.cmp(&other.running),
            4 => self.stopped.cmp(&other.stopped),
            5 => self.under_incident.cmp(&other.under_incident),
            6 => self.errors.len().cmp(&other.errors.len()),
            _ => Ordering::Equal,
        }
        .then_with(|| self.id.cmp(&other.id))
    }
}

/// Column titles of the accounts view (regions are listed inside TOTAL's detail).
pub const ACCOUNT_COLUMNS: [&str; 7] = [
    "ACCOUNT",
    "NAME",
    "INSTANCES",
    "RUNNING",
    "STOPPED",
    "INCIDENT",
    "STATUS",
];

/// A case from the case table with its searchable text.
#[derive(Debug, Clone)]
pub struct CaseRow {
    pub case: Case,
    haystack: String,
}

impl CaseRow {
    pub fn new(case: Case) -> Self {
        let haystack = lower_join(&[
            case.case_id.as_str(),
            case.status.as_str(),
            case.subject.account.as_str(),
            &case.subject.instance_id,
            &case.subject.region,
            &case.trigger,
            &case.requested_by,
        ]);
        Self { case, haystack }
    }
}

/// Column titles of the cases view, in order.
pub const CASE_COLUMNS: [&str; 7] = [
    "CASE", "STATUS", "ACCOUNT", "INSTANCE", "REGION", "OPENED", "TRIGGER",
];

impl Filterable for CaseRow {
    fn haystack(&self) -> &str {
        &self.haystack
    }
    fn field(&self, field: Field) -> Vec<String> {
        match field {
            Field::Account => vec![self.case.subject.account.to_string()],
            Field::Region => vec![self.case.subject.region.to_lowercase()],
            Field::State => vec![self.case.status.as_str().to_owned()],
        }
    }
}

impl TableRow for CaseRow {
    fn id(&self) -> &str {
        self.case.case_id.as_str()
    }
    fn compare(&self, other: &Self, column: usize) -> Ordering {
        let (a, b) = (&self.case, &other.case);
        match column {
            1 => a.status.as_str().cmp(b.status.as_str()),
            2 => a.subject.account.cmp(&b.subject.account),
            3 => a.subject.instance_id.cmp(&b.subject.instance_id),
            4 => a.subject.region.cmp(&b.subject.region),
            5 => a.opened_at.cmp(&b.opened_at),
            6 => a.trigger.cmp(&b.trigger),
            _ => Ordering::Equal,
        }
        .then_with(|| a.case_id.cmp(&b.case_id))
    }
}

/// Something waiting for an approver: a case at its approval step or a direct request.
#[derive(Debug, Clone)]
pub struct ApprovalRow {
    pub pending: crate::contain::PendingDecision,
    haystack: String,
}

impl ApprovalRow {
    pub fn new(pending: crate::contain::PendingDecision) -> Self {
        let haystack = lower_join(&[
            pending.kind,
            &pending.id,
            &pending.instance.instance_id,
            pending.instance.account.as_str(),
            &pending.instance.region,
            &pending.requested_by,
        ]);
        Self { pending, haystack }
    }
}

/// Column titles of the approvals view, in order.
pub const APPROVAL_COLUMNS: [&str; 7] = [
    "KIND",
    "INSTANCE",
    "ACCOUNT",
    "REGION",
    "REQUESTED",
    "REQUESTED BY",
    "CASE OR REQUEST",
];

impl Filterable for ApprovalRow {
    fn haystack(&self) -> &str {
        &self.haystack
    }
    fn field(&self, field: Field) -> Vec<String> {
        match field {
            Field::Account => vec![self.pending.instance.account.to_string()],
            Field::Region => vec![self.pending.instance.region.to_lowercase()],
            Field::State => vec![self.pending.kind.to_owned()],
        }
    }
}

impl TableRow for ApprovalRow {
    fn id(&self) -> &str {
        &self.pending.id
    }
    fn compare(&self, other: &Self, column: usize) -> Ordering {
        let (a, b) = (&self.pending, &other.pending);
        match column {
            0 => a.kind.cmp(b.kind),
            1 => a.instance.instance_id.cmp(&b.instance.instance_id),
            2 => a.instance.account.cmp(&b.instance.account),
            3 => a.instance.region.cmp(&b.instance.region),
            4 => a.requested_at.cmp(&b.requested_at),
            5 => a.requested_by.cmp(&b.requested_by),
            _ => Ordering::Equal,
        }
        .then_with(|| a.id.cmp(&b.id))
    }
}

/// An artifact of a case, as the evidence view lists it.
#[derive(Debug, Clone)]
pub struct EvidenceRow {
    pub item: irf_engine::ledger::EvidenceItem,
    haystack: String,
}

impl EvidenceRow {
    pub fn new(item: irf_engine::ledger::EvidenceItem) -> Self {
        let haystack = lower_join(&[
            item.case_id.as_str(),
            &item.kind,
            &item.key,
            item.sha256.as_deref().unwrap_or_default(),
            &item.state,
        ]);
        Self { item, haystack }
    }

    /// Whether a legal hold is on the artifact.
    pub fn held(&self) -> bool {
        self.item.lock.as_ref().is_some_and(|l| l.legal_hold)
    }
}

/// Column titles of the evidence view, in order.
pub const EVIDENCE_COLUMNS: [&str; 8] = [
    "CASE",
    "KIND",
    "SIZE",
    "SHA-256",
    "STATE",
    "RETENTION",
    "HOLD",
    "KEY",
];

impl Filterable for EvidenceRow {
    fn haystack(&self) -> &str {
        &self.haystack
    }
    fn field(&self, field: Field) -> Vec<String> {
        match field {
            Field::Account | Field::Region => vec![],
            Field::State => vec![self.item.state.clone()],
        }
    }
}

impl TableRow for EvidenceRow {
    fn id(&self) -> &str {
        &self.item.key
    }
    fn compare(&self, other: &Self, column: usize) -> Ordering {
        let (a, b) = (&self.item, &other.item);
        match column {
            0 => a.case_id.cmp(&b.case_id),
            1 => a.kind.cmp(&b.kind),
            2 => a.size.cmp(&b.size),
            3 => a.sha256.cmp(&b.sha256),
            4 => a.state.cmp(&b.state),
            6 => self.held().cmp(&other.held()),
            _ => Ordering::Equal,
        }
        .then_with(|| a.key.cmp(&b.key))
    }
}

/// One build of the SIFT pipeline, as the images view lists it.
#[derive(Debug, Clone)]
pub struct ImageRow {
    pub image: irf_engine::analysis::images::ImageBuild,
    haystack: String,
}

impl ImageRow {
    pub fn new(image: irf_engine::analysis::images::ImageBuild) -> Self {
        let amis: Vec<&str> = image.amis.iter().map(|a| a.ami_id.as_str()).collect();
        let haystack = lower_join(&[&image.version, &image.state, &amis.join(" "), &image.arn]);
        Self { image, haystack }
    }

    /// The AMIs per region, as one cell.
    pub fn amis(&self) -> String {
        let amis: Vec<String> = self
            .image
            .amis
            .iter()
            .map(|a| format!("{} {}", a.region, a.ami_id))
            .collect();
        if amis.is_empty() {
            "-".to_owned()
        } else {
            amis.join(", ")
        }
    }
}

/// Column titles of the images view, in order.
pub const IMAGE_COLUMNS: [&str; 5] = ["VERSION", "STATE", "BUILT", "TYPE", "AMI"];

impl Filterable for ImageRow {
    fn haystack(&self) -> &str {
        &self.haystack
    }
    fn field(&self, field: Field) -> Vec<String> {
        match field {
            Field::Account | Field::Region => vec![],
            Field::State => vec![self.image.state.to_ascii_lowercase()],
        }
    }
}

impl TableRow for ImageRow {
    fn id(&self) -> &str {
        &self.image.arn
    }
    fn compare(&self, other: &Self, column: usize) -> Ordering {
        let (a, b) = (&self.image, &other.image);
        match column {
            0 => a.version_key().cmp(&b.version_key()),
            1 => a.state.cmp(&b.state),
            2 => a.created.cmp(&b.created),
            3 => a.build_type.cmp(&b.build_type),
            _ => Ordering::Equal,
        }
        .then_with(|| a.arn.cmp(&b.arn))
    }
}

/// An analysis host, as the hosts view lists it.
#[derive(Debug, Clone)]
pub struct HostRow {
    pub host: irf_engine::analysis::hosts::AnalysisHost,
    haystack: String,
}

impl HostRow {
    pub fn new(host: irf_engine::analysis::hosts::AnalysisHost) -> Self {
        let haystack = lower_join(&[
            &host.instance_id,
            &host.case_id,
            &host.state,
            &host.instance_type,
            host.private_ip.as_deref().unwrap_or_default(),
            host.subnet_id.as_deref().unwrap_or_default(),
            host.evidence.as_deref().unwrap_or_default(),
        ]);
        Self { host, haystack }
    }
}

/// Column titles of the hosts view, in order.
pub const HOST_COLUMNS: [&str; 11] = [
    "INSTANCE",
    "CASE",
    "STATE",
    "TYPE",
    "PRIVATE IP",
    "SUBNET",
    "PROFILE",
    "EVIDENCE",
    "SSM",
    "AGE",
    "COST",
];

impl Filterable for HostRow {
    fn haystack(&self) -> &str {
        &self.haystack
    }
    fn field(&self, field: Field) -> Vec<String> {
        match field {
            Field::Account | Field::Region => vec![],
            Field::State => vec![self.host.state.clone()],
        }
    }
}

impl TableRow for HostRow {
    fn id(&self) -> &str {
        &self.host.instance_id
    }
    fn compare(&self, other: &Self, column: usize) -> Ordering {
        let (a, b) = (&self.host, &other.host);
        match column {
            0 => a.instance_id.cmp(&b.instance_id),
            1 => a.case_id.cmp(&b.case_id),
            2 => a.state.cmp(&b.state),
            3 => a.instance_type.cmp(&b.instance_type),
            4 => a.private_ip.cmp(&b.private_ip),
            5 => a.subnet_id.cmp(&b.subnet_id),
            6 => a.instance_profile.cmp(&b.instance_profile),
            7 => a.evidence.cmp(&b.evidence),
            8 => a.ssm.as_str().cmp(b.ssm.as_str()),
            9 => a.age_secs.cmp(&b.age_secs),
            10 => a
                .cost_usd
                .partial_cmp(&b.cost_usd)
                .unwrap_or(Ordering::Equal),
            _ => Ordering::Equal,
        }
        .then_with(|| a.instance_id.cmp(&b.instance_id))
    }
}
