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
    /// The account's name, when the Organization named it (a finding carries only the id).
    pub account_name: Option<String>,
    haystack: String,
}

impl FindingRow {
    pub fn new(finding: Finding, account_name: Option<&str>) -> Self {
        let types = finding.types.join(" ");
        let haystack = lower_join(&[
            finding.severity.label(),
            &finding.title,
            &finding.account,
            account_name.unwrap_or_default(),
            &finding.region,
            finding.instance_id.as_deref().unwrap_or_default(),
            &finding.workflow_status,
            &types,
        ]);
        Self {
            finding,
            account_name: account_name.map(str::to_owned),
            haystack,
        }
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
            Field::Account => [
                Some(self.finding.account.clone()),
                self.account_name.as_deref().map(str::to_lowercase),
            ]
            .into_iter()
            .flatten()
            .collect(),
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
            2 => (self.account_name.as_deref(), &a.account)
                .cmp(&(other.account_name.as_deref(), &b.account)),
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
    // First severity and title, then the instance it is about.
    const PRIORITY: &'static [usize] = &[0, 1, 4, 2, 5, 6, 3];
    const SORT: Sort = Sort {
        column: 0,
        descending: true,
    };

    fn widths() -> Vec<Constraint> {
        vec![
            Constraint::Length(13),
            Constraint::Fill(1),
            Constraint::Length(16),
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
            // Named as the instances view names it; the id where the Organization gave no name.
            (
                self.account_name
                    .clone()
                    .unwrap_or_else(|| f.account.clone()),
                text,
            ),
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
