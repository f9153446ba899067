//! The list views' tables: which columns fit, each view's rows for the lines on screen, the
//! text shown while a view loads or has nothing, and the table drawn with every value escaped.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};

use crate::text::clip_untrusted;
use crate::theme::Theme;
use crate::workstation::app::{App, Load, View};
use crate::workstation::format::{case_status_style, first_line, short_time};
use crate::workstation::rows::{
    ACCOUNT_COLUMNS, APPROVAL_COLUMNS, CASE_COLUMNS, EVIDENCE_COLUMNS, FINDING_COLUMNS,
    HOST_COLUMNS, IMAGE_COLUMNS, INSTANCE_COLUMNS,
};
use irf_engine::findings::Severity;
use irf_engine::inventory::SsmReachability;

/// The columns shown: all of them, or the essential ones when the details panel takes
/// half the width (squeezing every column would cut every value).
pub(super) fn shown_columns(app: &App, all: usize) -> Vec<usize> {
    if !app.detail_shown() {
        return (0..all).collect();
    }
    match app.view {
        View::Instances => vec![0, 1, 4, 9],
        View::Findings => vec![0, 1, 4],
        View::Accounts => vec![0, 1, 6],
        View::Cases
        | View::Case
        | View::Approvals
        | View::Evidence
        | View::Images
        | View::Hosts => (0..all).collect(),
    }
}

/// One cell before it is fitted to its column: raw (untrusted) text and a style.
pub(super) type RawCell = (String, Style);

/// A view's table before layout: column titles and widths, and the rows on screen.
pub(super) struct TableSpec {
    titles: &'static [&'static str],
    widths: Vec<Constraint>,
    rows: Vec<Vec<RawCell>>,
    sort: crate::workstation::table::Sort,
    cursor: usize,
    shown: usize,
    total: usize,
    filter: Option<String>,
}

impl TableSpec {
    fn of<R: crate::workstation::rows::TableRow>(
        model: &crate::workstation::table::TableModel<R>,
        titles: &'static [&'static str],
        widths: Vec<Constraint>,
        rows: Vec<Vec<RawCell>>,
    ) -> Self {
        Self {
            titles,
            widths,
            rows,
            sort: model.sort,
            cursor: model.cursor(),
            shown: model.visible_len(),
            total: model.rows().len(),
            filter: model.filter().map(|f| f.text().to_owned()),
        }
    }
}

pub(super) fn severity_style(theme: &Theme, severity: Severity) -> Style {
    theme.style(&format!("severity.{}", severity.label().to_lowercase()))
}

pub(super) fn state_style(theme: &Theme, state: &str) -> Style {
    theme.style(match state {
        "running" => "state.running",
        "stopped" | "terminated" => "state.stopped",
        _ => "state.other",
    })
}

pub(super) fn instances_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
    let model = &app.instances;
    let text = theme.style("text");
    let rows = model
        .window(start, page)
        .map(|row| {
            let i = &row.instance;
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
        })
        .collect();
    TableSpec::of(
        model,
        &INSTANCE_COLUMNS,
        // The name takes what the fixed columns leave; an instance id is never cut on a
        // terminal of 150 columns or more.
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
        ],
        rows,
    )
}

pub(super) fn findings_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
    let model = &app.findings;
    let text = theme.style("text");
    let rows = model
        .window(start, page)
        .map(|row| {
            let f = &row.finding;
            let instance = f
                .instance_id
                .as_deref()
                .map(
                    |id| match app.instance(id).and_then(|i| i.name.as_deref()) {
                        Some(name) => format!("{id} {name}"),
                        None => id.to_owned(),
                    },
                )
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
        })
        .collect();
    TableSpec::of(
        model,
        &FINDING_COLUMNS,
        vec![
            Constraint::Length(13),
            Constraint::Fill(1),
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Length(34),
            Constraint::Length(9),
            Constraint::Length(16),
        ],
        rows,
    )
}

pub(super) fn accounts_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
    let model = &app.accounts;
    let text = theme.style("text");
    let rows = model
        .window(start, page)
        .map(|row| {
            let regions: Vec<String> = row
                .per_region
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            let incident_style = if row.under_incident > 0 {
                theme.style("state.incident")
            } else {
                text
            };
            let status = match row.errors.first() {
                Some(err) => (first_line(err).to_owned(), theme.style("status.error")),
                None => ("ok".to_owned(), theme.style("status.ok")),
            };
            vec![
                (row.id.clone(), text),
                (row.name.clone(), text),
                (format!("{} ({})", row.total(), regions.join(", ")), text),
                (row.running.to_string(), text),
                (row.stopped.to_string(), text),
                (row.under_incident.to_string(), incident_style),
                status,
            ]
        })
        .collect();
    TableSpec::of(
        model,
        &ACCOUNT_COLUMNS,
        vec![
            Constraint::Length(12),
            Constraint::Length(24),
            Constraint::Length(34),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Fill(1),
        ],
        rows,
    )
}

pub(super) fn cases_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
    let model = &app.cases;
    let text = theme.style("text");
    let rows = model
        .window(start, page)
        .map(|row| {
            let c = &row.case;
            let instance = match app
                .instance(&c.subject.instance_id)
                .and_then(|i| i.name.as_deref())
            {
                Some(name) => format!("{} {name}", c.subject.instance_id),
                None => c.subject.instance_id.clone(),
            };
            vec![
                (c.case_id.to_string(), text),
                (
                    c.status.as_str().to_owned(),
                    case_status_style(theme, c.status),
                ),
                (c.subject.account.to_string(), text),
                (instance, text),
                (c.subject.region.clone(), text),
                (short_time(&c.opened_at), text),
                (c.trigger.clone(), text),
            ]
        })
        .collect();
    TableSpec::of(
        model,
        &CASE_COLUMNS,
        // A case id (timestamp and instance id) is 36 columns; the instance takes the rest.
        vec![
            Constraint::Length(36),
            Constraint::Length(17),
            Constraint::Length(12),
            Constraint::Fill(1),
            Constraint::Length(14),
            Constraint::Length(19),
            Constraint::Length(12),
        ],
        rows,
    )
}

pub(super) fn approvals_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
    let model = &app.approvals;
    let text = theme.style("text");
    let rows = model
        .window(start, page)
        .map(|row| {
            let p = &row.pending;
            let instance = match app
                .instance(&p.instance.instance_id)
                .and_then(|i| i.name.as_deref())
            {
                Some(name) => format!("{} {name}", p.instance.instance_id),
                None => p.instance.instance_id.clone(),
            };
            vec![
                (p.kind.to_owned(), theme.style("danger")),
                (instance, text),
                (p.instance.account.to_string(), text),
                (p.instance.region.clone(), text),
                (short_time(&p.requested_at), text),
                (p.requested_by.clone(), text),
                (p.id.clone(), theme.style("text.dim")),
            ]
        })
        .collect();
    TableSpec::of(
        model,
        &APPROVAL_COLUMNS,
        vec![
            Constraint::Length(8),
            Constraint::Fill(1),
            Constraint::Length(12),
            Constraint::Length(14),
            Constraint::Length(19),
            Constraint::Fill(1),
            Constraint::Length(36),
        ],
        rows,
    )
}

pub(super) fn evidence_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
    let model = &app.evidence;
    let text = theme.style("text");
    let rows = model
        .window(start, page)
        .map(|row| {
            let item = &row.item;
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
        })
        .collect();
    TableSpec::of(
        model,
        &EVIDENCE_COLUMNS,
        vec![
            Constraint::Length(36),
            Constraint::Length(6),
            Constraint::Length(12),
            Constraint::Length(64),
            Constraint::Length(9),
            Constraint::Length(28),
            Constraint::Length(4),
            Constraint::Fill(1),
        ],
        rows,
    )
}

pub(super) fn images_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
    let model = &app.images;
    let text = theme.style("text");
    let rows = model
        .window(start, page)
        .map(|row| {
            let image = &row.image;
            let state_role = match image.state.as_str() {
                "AVAILABLE" => "status.info",
                "FAILED" | "CANCELLED" => "status.error",
                _ => "text",
            };
            vec![
                (image.version.clone(), text),
                (image.state.clone(), theme.style(state_role)),
                (
                    image.created.as_deref().map(short_time).unwrap_or_default(),
                    text,
                ),
                (
                    image.build_type.clone().unwrap_or_else(|| "-".into()),
                    theme.style("text.dim"),
                ),
                (row.amis(), text),
            ]
        })
        .collect();
    TableSpec::of(
        model,
        &IMAGE_COLUMNS,
        vec![
            Constraint::Length(12),
            Constraint::Length(13),
            Constraint::Length(19),
            Constraint::Length(16),
            Constraint::Fill(1),
        ],
        rows,
    )
}

pub(super) fn hosts_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
    let model = &app.hosts;
    let text = theme.style("text");
    let dim = theme.style("text.dim");
    let rows = model
        .window(start, page)
        .map(|row| {
            let host = &row.host;
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
                (host.state.clone(), state_style(theme, &host.state)),
                (host.instance_type.clone(), text),
                (host.private_ip.clone().unwrap_or_else(|| "-".into()), text),
                (host.subnet_id.clone().unwrap_or_else(|| "-".into()), dim),
                (
                    host.instance_profile.clone().unwrap_or_else(|| "-".into()),
                    dim,
                ),
                (evidence, theme.style(evidence_role)),
                (host.ssm.as_str().to_owned(), theme.style(ssm_role)),
                (crate::workstation::format::human_age(host.age_secs), text),
                (
                    host.cost_usd
                        .map_or_else(|| "?".to_owned(), |c| format!("${c:.2}")),
                    text,
                ),
            ]
        })
        .collect();
    TableSpec::of(
        model,
        &HOST_COLUMNS,
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
        ],
        rows,
    )
}

/// What an empty images table says instead of rows.
pub(super) fn images_placeholder(app: &App) -> (String, &'static str) {
    match &app.images_state {
        _ if !app.images.rows().is_empty() => ("no image matches the filter".into(), "text.dim"),
        Load::Loading => ("reading the image pipeline…".into(), "text.dim"),
        Load::Failed(err) => (format!("could not list the images: {err}"), "status.error"),
        Load::Ready(_) => (
            "the pipeline has built no image yet: b starts a build".into(),
            "text.dim",
        ),
    }
}

/// What an empty hosts table says instead of rows.
pub(super) fn hosts_placeholder(app: &App) -> (String, &'static str) {
    match &app.hosts_state {
        _ if !app.hosts.rows().is_empty() => ("no host matches the filter".into(), "text.dim"),
        Load::Loading => ("reading the analysis hosts…".into(), "text.dim"),
        Load::Failed(err) => (
            format!("could not list the analysis hosts: {err}"),
            "status.error",
        ),
        Load::Ready(_) => (
            "no analysis hosts: open a case (:cases, enter) and press l to launch one".into(),
            "text.dim",
        ),
    }
}

/// What an empty evidence table says instead of rows.
pub(super) fn evidence_placeholder(app: &App) -> (String, &'static str) {
    match &app.evidence_state {
        _ if !app.evidence.rows().is_empty() => {
            ("no artifact matches the filter".into(), "text.dim")
        }
        Load::Loading => ("reading the evidence bucket…".into(), "text.dim"),
        Load::Failed(err) => (
            format!("could not list the evidence: {err}"),
            "status.error",
        ),
        Load::Ready(_) => (
            "no evidence yet: acquired artifacts appear here".into(),
            "text.dim",
        ),
    }
}

/// What an empty approvals table says instead of rows.
pub(super) fn approvals_placeholder(app: &App) -> (String, &'static str) {
    match &app.approvals_state {
        _ if !app.approvals.rows().is_empty() => {
            ("nothing waiting matches the filter".into(), "text.dim")
        }
        Load::Loading => ("reading what waits for approval…".into(), "text.dim"),
        Load::Failed(err) => (
            format!("could not read what waits for approval: {err}"),
            "status.error",
        ),
        Load::Ready(_) => (
            "nothing waits for an approver: cases ask here when their evidence is verified".into(),
            "text.dim",
        ),
    }
}

/// What an empty cases table says instead of rows.
pub(super) fn cases_placeholder(app: &App) -> (String, &'static str) {
    match &app.cases_state {
        _ if !app.cases.rows().is_empty() => ("no case matches the filter".into(), "text.dim"),
        Load::Loading => ("reading the case table…".into(), "text.dim"),
        Load::Failed(err) => (
            format!("could not read the case table: {err}"),
            "status.error",
        ),
        Load::Ready(_) if app.read_only => ("no cases yet".into(), "text.dim"),
        Load::Ready(_) => (
            "no cases yet: select an instance or a finding and press a to acquire it".into(),
            "text.dim",
        ),
    }
}

/// Lays the table out and draws it: column widths are solved for the space there is, and
/// every value is escaped and cut to its column with an ellipsis.
pub(super) fn draw_table(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let body = app.areas().table_body();
    let page = usize::from(body.height);
    let start = crate::workstation::layout::window_start(app.current_cursor(), page);
    let spec = match app.view {
        View::Instances => instances_spec(app, theme, start, page),
        View::Findings => findings_spec(app, theme, start, page),
        View::Accounts => accounts_spec(app, theme, start, page),
        View::Cases | View::Case => cases_spec(app, theme, start, page),
        View::Approvals => approvals_spec(app, theme, start, page),
        View::Evidence => evidence_spec(app, theme, start, page),
        View::Images => images_spec(app, theme, start, page),
        View::Hosts => hosts_spec(app, theme, start, page),
    };
    let columns = shown_columns(app, spec.titles.len());
    let constraints: Vec<Constraint> = columns.iter().map(|&c| spec.widths[c]).collect();
    let solved: Vec<usize> = Layout::horizontal(constraints.clone())
        .spacing(1)
        .split(Rect::new(0, 0, body.width, 1))
        .iter()
        .map(|r| usize::from(r.width))
        .collect();
    let header = Row::new(columns.iter().zip(&solved).map(|(&c, &width)| {
        let arrow = if c == spec.sort.column {
            if spec.sort.descending { "↓" } else { "↑" }
        } else {
            ""
        };
        Cell::from(clip_untrusted(&format!("{}{arrow}", spec.titles[c]), width))
    }))
    .style(theme.style("table.header"));
    let rows: Vec<Row> = spec
        .rows
        .iter()
        .map(|cells| {
            Row::new(columns.iter().zip(&solved).map(|(&c, &width)| {
                let (value, style) = &cells[c];
                Cell::from(clip_untrusted(value, width)).style(*style)
            }))
        })
        .collect();
    let mut title = format!(" {} ({}/{}) ", app.view.title(), spec.shown, spec.total);
    if let Some(filter) = &spec.filter {
        title.push_str(&format!("/{} ", clip_untrusted(filter, 40)));
    }
    if let (View::Images, Some(pipeline)) = (app.view, &app.pipeline) {
        title.push_str(&format!(
            "─ {} {} · schedule {} · last run {} · next run {} ",
            clip_untrusted(&pipeline.name, 40),
            pipeline.status,
            clip_untrusted(pipeline.schedule.as_deref().unwrap_or("none"), 40),
            pipeline
                .last_run
                .as_deref()
                .map_or_else(|| "never".to_owned(), short_time),
            pipeline
                .next_run
                .as_deref()
                .map_or_else(|| "-".to_owned(), short_time),
        ));
    }
    let block = Block::bordered()
        .title(Span::styled(title, theme.style("header.title")))
        .border_style(theme.style(if app.detail_shown() {
            "border"
        } else {
            "border.focus"
        }));
    let table = Table::new(rows, solved.iter().map(|&w| Constraint::Length(w as u16)))
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(theme.style("table.selected"))
        .style(theme.style("text"));
    let mut state =
        TableState::default().with_selected((spec.shown > 0).then(|| spec.cursor - start));
    frame.render_stateful_widget(table, area, &mut state);
    let placeholder = match app.view {
        View::Cases => Some(cases_placeholder(app)),
        View::Approvals => Some(approvals_placeholder(app)),
        View::Evidence => Some(evidence_placeholder(app)),
        View::Images => Some(images_placeholder(app)),
        View::Hosts => Some(hosts_placeholder(app)),
        _ => None,
    };
    if let Some((message, role)) = placeholder.filter(|_| spec.shown == 0) {
        let limit = usize::from(body.width) * usize::from(body.height.min(4));
        frame.render_widget(
            Paragraph::new(clip_untrusted(&message, limit))
                .style(theme.style(role))
                .wrap(Wrap { trim: false }),
            body,
        );
    }
}
