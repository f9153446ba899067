//! The approvals view: cases at their approval step and direct containment requests.

use std::cmp::Ordering;

use ratatui::layout::Constraint;

use super::{lower_join, named_instance};
use crate::filter::{Field, Filterable};
use crate::theme::Theme;
use crate::workstation::format::short_time;
use crate::workstation::table::{EmptyText, InstanceNames, ListView, RawCell, Sort, TableRow};

/// Something waiting for an approver: a case at its approval step or a direct request.
#[derive(Debug, Clone)]
pub struct ApprovalRow {
    pub pending: irf_engine::approvals::PendingDecision,
    haystack: String,
}

impl ApprovalRow {
    pub fn new(pending: irf_engine::approvals::PendingDecision) -> Self {
        let haystack = lower_join(&[
            pending.kind(),
            pending.id(),
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
            Field::State => vec![self.pending.kind().to_owned()],
        }
    }
}

impl TableRow for ApprovalRow {
    fn id(&self) -> &str {
        self.pending.id()
    }
    fn compare(&self, other: &Self, column: usize) -> Ordering {
        let (a, b) = (&self.pending, &other.pending);
        match column {
            0 => a.kind().cmp(b.kind()),
            1 => a.instance.instance_id.cmp(&b.instance.instance_id),
            2 => a.instance.account.cmp(&b.instance.account),
            3 => a.instance.region.cmp(&b.instance.region),
            4 => a.requested_at.cmp(&b.requested_at),
            5 => a.requested_by.cmp(&b.requested_by),
            _ => Ordering::Equal,
        }
        .then_with(|| a.id().cmp(b.id()))
    }
}

impl ListView for ApprovalRow {
    const COLUMNS: &'static [&'static str] = &APPROVAL_COLUMNS;
    // First the instance and what waits (case or request).
    const PRIORITY: &'static [usize] = &[1, 0, 6, 2, 4, 5, 3];
    const SORT: Sort = Sort {
        column: 4,
        descending: false,
    };
    const EMPTY: Option<EmptyText> = Some(EmptyText {
        filtered: "nothing waiting matches the filter",
        loading: "reading what waits for approval…",
        failed: "could not read what waits for approval",
        nothing: "nothing waits for an approver: cases ask here when their evidence is verified",
        nothing_read_only: "nothing waits for an approver: cases ask here when their evidence is verified",
    });

    fn widths() -> Vec<Constraint> {
        vec![
            Constraint::Length(8),
            Constraint::Fill(1),
            Constraint::Length(12),
            Constraint::Length(14),
            Constraint::Length(19),
            Constraint::Fill(1),
            Constraint::Length(36),
        ]
    }

    fn cells(&self, names: &dyn InstanceNames, theme: &Theme) -> Vec<RawCell> {
        let text = theme.style("text");
        let p = &self.pending;
        vec![
            (p.kind().to_owned(), theme.style("danger")),
            (named_instance(names, &p.instance.instance_id), text),
            (p.instance.account.to_string(), text),
            (p.instance.region.clone(), text),
            (short_time(&p.requested_at), text),
            (p.requested_by.clone(), text),
            (p.id().to_owned(), theme.style("text.dim")),
        ]
    }
}
