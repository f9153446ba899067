//! The instances view: every EC2 instance of the Organization, one row each.

use std::cmp::Ordering;

use ratatui::layout::Constraint;

use irf_engine::findings::Severity;
use irf_engine::inventory::{Instance, SsmReachability};

use super::lower_join;
use crate::filter::{Field, Filterable};
use crate::theme::Theme;
use crate::workstation::format::{severity_style, state_style};
use crate::workstation::table::{InstanceNames, ListView, RawCell, Sort, TableRow};

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

impl ListView for InstanceRow {
    const COLUMNS: &'static [&'static str] = &INSTANCE_COLUMNS;
    // First the instance and its name, then what a responder acts on.
    const PRIORITY: &'static [usize] = &[0, 1, 4, 9, 2, 8, 3, 7, 5, 6];
    const SORT: Sort = Sort {
        column: 2,
        descending: false,
    };

    // The name takes what the fixed columns leave; an instance id is never cut on a
    // terminal of 150 columns or more.
    fn widths() -> Vec<Constraint> {
        vec![
            Constraint::Length(19),
            Constraint::Fill(1),
            Constraint::Length(16),
            Constraint::Length(14),
            Constraint::Length(13),
            Constraint::Length(11),
            Constraint::Length(15),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(15),
        ]
    }

    fn cells(&self, _names: &dyn InstanceNames, theme: &Theme) -> Vec<RawCell> {
        let text = theme.style("text");
        let i = &self.instance;
        let ssm = theme.style(if i.ssm == SsmReachability::Online {
            "ssm.online"
        } else {
            "ssm.offline"
        });
        let findings = match i.findings.highest {
            Some(severity) => (
                format!("{} {severity}", i.findings.open),
                severity_style(theme, severity),
            ),
            None => ("-".to_owned(), text),
        };
        let incident = match i.incident_status() {
            Some(status) => (status.to_owned(), theme.style("state.incident")),
            None => ("-".to_owned(), text),
        };
        vec![
            (i.id.to_string(), text),
            (i.name.as_deref().unwrap_or("-").to_owned(), text),
            (i.account_name.to_string(), text),
            (i.region.to_string(), text),
            (i.state.to_string(), state_style(theme, &i.state)),
            (i.instance_type.to_string(), text),
            (i.private_ip.as_deref().unwrap_or("-").to_owned(), text),
            (i.ssm.label().to_owned(), ssm),
            incident,
            findings,
        ]
    }
}
