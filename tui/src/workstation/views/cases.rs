//! The cases view: the case table, newest first; enter opens a case.

use std::cmp::Ordering;

use ratatui::layout::Constraint;

use irf_engine::model::case::Case;

use super::{lower_join, named_instance};
use crate::filter::{Field, Filterable};
use crate::theme::Theme;
use crate::workstation::format::{case_status_style, short_time};
use crate::workstation::table::{EmptyText, InstanceNames, ListView, RawCell, Sort, TableRow};

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
            case.trigger.as_str(),
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

impl ListView for CaseRow {
    const COLUMNS: &'static [&'static str] = &CASE_COLUMNS;
    // First the case, its status and instance.
    const PRIORITY: &'static [usize] = &[0, 1, 3, 2, 5, 4, 6];
    const SORT: Sort = Sort {
        column: 5,
        descending: true,
    };
    const EMPTY: Option<EmptyText> = Some(EmptyText {
        filtered: "no case matches the filter",
        loading: "reading the case table…",
        failed: "could not read the case table",
        nothing: "no cases yet: select an instance or a finding and press a to acquire it",
        nothing_read_only: "no cases yet",
    });

    // A case id (timestamp and instance id) is 36 columns; the instance takes the rest.
    fn widths() -> Vec<Constraint> {
        vec![
            Constraint::Length(36),
            Constraint::Length(17),
            Constraint::Length(12),
            Constraint::Fill(1),
            Constraint::Length(14),
            Constraint::Length(19),
            Constraint::Length(12),
        ]
    }

    fn cells(&self, names: &dyn InstanceNames, theme: &Theme) -> Vec<RawCell> {
        let text = theme.style("text");
        let c = &self.case;
        vec![
            (c.case_id.to_string(), text),
            (
                c.status.as_str().to_owned(),
                case_status_style(theme, c.status),
            ),
            (c.subject.account.to_string(), text),
            (named_instance(names, &c.subject.instance_id), text),
            (c.subject.region.clone(), text),
            (short_time(&c.opened_at), text),
            (c.trigger.to_string(), text),
        ]
    }
}
