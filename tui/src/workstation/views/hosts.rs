//! The hosts view: analysis hosts in the Analysis VPC, their evidence and cost.

use std::cmp::Ordering;

use ratatui::layout::Constraint;

use super::lower_join;
use crate::filter::{Field, Filterable};
use crate::theme::Theme;
use crate::workstation::format::{human_age, state_style};
use crate::workstation::table::{EmptyText, InstanceNames, ListView, RawCell, Sort, TableRow};

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
            host.state.as_str(),
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
            Field::State => vec![self.host.state.to_string()],
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

impl ListView for HostRow {
    const COLUMNS: &'static [&'static str] = &HOST_COLUMNS;
    // First the host, its case and state, then whether a shell can reach it.
    const PRIORITY: &'static [usize] = &[0, 1, 2, 8, 7, 9, 10, 3, 4, 5, 6];
    const SORT: Sort = Sort {
        column: 9,
        descending: false,
    };
    const EMPTY: Option<EmptyText> = Some(EmptyText {
        filtered: "no host matches the filter",
        loading: "reading the analysis hosts…",
        failed: "could not list the analysis hosts",
        nothing: "no analysis hosts: open a case (:cases, enter) and press l to launch one",
        nothing_read_only: "no analysis hosts",
    });

    fn widths() -> Vec<Constraint> {
        vec![
            Constraint::Length(19),
            Constraint::Length(36),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(15),
            Constraint::Length(24),
            Constraint::Length(14),
            Constraint::Length(14),
            Constraint::Length(15),
            Constraint::Length(7),
            Constraint::Length(8),
        ]
    }

    fn cells(&self, _names: &dyn InstanceNames, theme: &Theme) -> Vec<RawCell> {
        let text = theme.style("text");
        let dim = theme.style("text.dim");
        let host = &self.host;
        let evidence = host.evidence.clone().unwrap_or_else(|| "none".into());
        let evidence_role = if evidence.starts_with("verified") {
            "status.info"
        } else {
            "status.error"
        };
        let ssm_role = match host.ssm {
            irf_engine::analysis::hosts::Reachability::Online => "status.info",
            _ => "status.error",
        };
        vec![
            (host.instance_id.clone(), text),
            (host.case_id.clone(), text),
            (host.state.to_string(), state_style(theme, &host.state)),
            (host.instance_type.clone(), text),
            (host.private_ip.clone().unwrap_or_else(|| "-".into()), text),
            (host.subnet_id.clone().unwrap_or_else(|| "-".into()), dim),
            (
                host.instance_profile.clone().unwrap_or_else(|| "-".into()),
                dim,
            ),
            (evidence, theme.style(evidence_role)),
            (host.ssm.as_str().to_owned(), theme.style(ssm_role)),
            (human_age(host.age_secs), text),
            (
                host.cost_usd
                    .map_or_else(|| "?".to_owned(), |c| format!("${c:.2}")),
                text,
            ),
        ]
    }
}
