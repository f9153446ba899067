//! The findings view: Security Hub findings of the Organization, one row each.

use std::cmp::Ordering;

use ratatui::layout::Constraint;

use irf_engine::findings::{Finding, Severity};

use super::{lower_join, named_instance};
use crate::filter::{Field, Filterable};
use crate::theme::Theme;
use crate::workstation::format::severity_style;
use crate::workstation::table::{InstanceNames, ListView, RawCell, Sort, TableRow};

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

impl ListView for FindingRow {
    const COLUMNS: &'static [&'static str] = &FINDING_COLUMNS;
    const SORT: Sort = Sort {
        column: 0,
        descending: true,
    };
    const BESIDE_DETAILS: Option<&'static [usize]> = Some(&[0, 1, 4]);

    fn widths() -> Vec<Constraint> {
        vec![
            Constraint::Length(13),
            Constraint::Fill(1),
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Length(34),
            Constraint::Length(9),
            Constraint::Length(16),
        ]
    }

    fn cells(&self, names: &dyn InstanceNames, theme: &Theme) -> Vec<RawCell> {
        let text = theme.style("text");
        let f = &self.finding;
        let instance = f
            .instance_id
            .as_deref()
            .map(|id| named_instance(names, id))
            .unwrap_or_else(|| "-".to_owned());
        vec![
            (
                f.severity.label().to_owned(),
                severity_style(theme, f.severity),
            ),
            (f.title.clone(), text),
            (f.account.clone(), text),
            (f.region.clone(), text),
            (instance, text),
            (f.workflow_status.clone(), text),
            (
                f.updated_at.get(..16).unwrap_or(&f.updated_at).to_owned(),
                text,
            ),
        ]
    }
}
