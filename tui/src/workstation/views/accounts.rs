//! The accounts view: the member accounts in scope, their instances and sweep errors.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use ratatui::layout::Constraint;

use irf_engine::inventory::Instance;
use irf_engine::model::instance::InstanceState;

use super::lower_join;
use crate::filter::{Field, Filterable};
use crate::theme::Theme;
use crate::workstation::format::first_line;
use crate::workstation::table::{InstanceNames, ListView, RawCell, Sort, TableRow};

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
        match instance.state {
            InstanceState::Running => self.running += 1,
            InstanceState::Stopped => self.stopped += 1,
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

impl ListView for AccountRow {
    const COLUMNS: &'static [&'static str] = &ACCOUNT_COLUMNS;
    // First the account and its name, then whether its sweep failed.
    const PRIORITY: &'static [usize] = &[0, 1, 6, 2, 5, 3, 4];
    const SORT: Sort = Sort {
        column: 1,
        descending: false,
    };

    fn widths() -> Vec<Constraint> {
        vec![
            Constraint::Length(12),
            Constraint::Length(24),
            Constraint::Length(34),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Fill(1),
        ]
    }

    fn cells(&self, _names: &dyn InstanceNames, theme: &Theme) -> Vec<RawCell> {
        let text = theme.style("text");
        let regions: Vec<String> = self
            .per_region
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let incident_style = if self.under_incident > 0 {
            theme.style("state.incident")
        } else {
            text
        };
        let status = match self.errors.first() {
            Some(err) => (first_line(err).to_owned(), theme.style("status.error")),
            None => ("ok".to_owned(), theme.style("status.ok")),
        };
        vec![
            (self.id.clone(), text),
            (self.name.clone(), text),
            (format!("{} ({})", self.total(), regions.join(", ")), text),
            (self.running.to_string(), text),
            (self.stopped.to_string(), text),
            (self.under_incident.to_string(), incident_style),
            status,
        ]
    }
}
