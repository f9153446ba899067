//! The evidence view: every artifact of every case, with its Object Lock state.

use std::cmp::Ordering;

use ratatui::layout::Constraint;

use super::lower_join;
use crate::filter::{Field, Filterable};
use crate::theme::Theme;
use crate::workstation::format::short_time;
use crate::workstation::table::{EmptyText, InstanceNames, ListView, RawCell, Sort, TableRow};

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

impl ListView for EvidenceRow {
    const COLUMNS: &'static [&'static str] = &EVIDENCE_COLUMNS;
    // First the case, the kind and the key, then retention and hold.
    const PRIORITY: &'static [usize] = &[0, 1, 7, 5, 6, 3, 4, 2];
    const SORT: Sort = Sort {
        column: 0,
        descending: true,
    };
    const EMPTY: Option<EmptyText> = Some(EmptyText {
        filtered: "no artifact matches the filter",
        loading: "reading the evidence bucket…",
        failed: "could not list the evidence",
        nothing: "no evidence yet: acquired artifacts appear here",
        nothing_read_only: "no evidence yet: acquired artifacts appear here",
    });

    fn widths() -> Vec<Constraint> {
        vec![
            Constraint::Length(36),
            Constraint::Length(6),
            Constraint::Length(12),
            Constraint::Length(64),
            Constraint::Length(9),
            Constraint::Length(28),
            Constraint::Length(4),
            Constraint::Fill(1),
        ]
    }

    fn cells(&self, _names: &dyn InstanceNames, theme: &Theme) -> Vec<RawCell> {
        let text = theme.style("text");
        let item = &self.item;
        let (retention, hold) = match &item.lock {
            None => ("GONE".to_owned(), String::new()),
            Some(lock) => (
                format!(
                    "{} {}",
                    lock.mode.as_deref().unwrap_or("none"),
                    lock.retain_until
                        .as_deref()
                        .map(short_time)
                        .unwrap_or_default()
                ),
                if lock.legal_hold {
                    "HOLD".into()
                } else {
                    "-".into()
                },
            ),
        };
        vec![
            (item.case_id.to_string(), text),
            (item.kind.clone(), text),
            (item.size.to_string(), text),
            (item.sha256.clone().unwrap_or_else(|| "-".into()), text),
            (item.state.clone(), text),
            (
                retention,
                if item.lock.is_none() {
                    theme.style("status.error")
                } else {
                    text
                },
            ),
            (hold, theme.style("danger")),
            (item.key.clone(), theme.style("text.dim")),
        ]
    }
}
