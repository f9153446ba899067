//! Drawing the workstation from its state: never awaits, never calls AWS, and builds rows
//! only for the lines on screen, so a frame costs the same with ten rows or a hundred thousand.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};

use super::app::{App, Load, Mode, Status, View};
use super::format::{case_status_style, first_line, short_time};
use super::rows::{
    ACCOUNT_COLUMNS, APPROVAL_COLUMNS, CASE_COLUMNS, EVIDENCE_COLUMNS, FINDING_COLUMNS,
    HOST_COLUMNS, IMAGE_COLUMNS, INSTANCE_COLUMNS,
};
use crate::text::{clip_untrusted, escape_untrusted};
use crate::theme::Theme;
use irf_engine::findings::Severity;
use irf_engine::inventory::{Instance, SsmReachability};
use irf_engine::model::case::CaseStatus;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App, theme: &Theme) {
    let areas = app.areas();
    draw_header(frame, areas.header, app, theme);
    if app.view == View::Case {
        super::case_view::draw_case(frame, areas.table, app, theme);
    } else {
        draw_table(frame, areas.table, app, theme);
    }
    if let Some(detail) = areas.detail {
        draw_detail(frame, detail, app, theme);
    }
    draw_footer(frame, areas.footer, app, theme);
    match &app.mode {
        Mode::Help { scroll } => draw_help(frame, app, theme, *scroll),
        Mode::Confirm(confirmation) => {
            draw_confirm(frame, &confirmation.title, &confirmation.lines, theme);
        }
        Mode::Typed(prompt) => draw_typed(frame, prompt, theme),
        _ => {}
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let width = area.width as usize;
    let identity = match &app.identity {
        Load::Loading => "identity: loading…".to_owned(),
        Load::Failed(err) => format!("identity: {}", first_line(err)),
        Load::Ready(who) => format!(
            "{}  account {}  region {}{}",
            who.caller.arn,
            who.caller.account,
            who.region,
            who.endpoint_url
                .as_deref()
                .map(|e| format!("  endpoint {e}"))
                .unwrap_or_default()
        ),
    };
    let organization = match &app.identity {
        Load::Ready(who) => match (&who.organization, &who.organization_error) {
            (Some(org), _) => format!(
                "Organization {} (management {})",
                org.id, org.management_account
            ),
            (None, Some(err)) => format!("Organization: {}", first_line(err)),
            (None, None) => "Organization: none".to_owned(),
        },
        _ => String::new(),
    };
    let scope = match &app.scope {
        Load::Loading => "scope: loading…".to_owned(),
        Load::Failed(err) => format!("scope: {}", first_line(err)),
        Load::Ready(scope) => {
            let progress = if app.sweep.running {
                format!(
                    "sweeping {}/{}",
                    app.sweep.pairs_done, app.sweep.pairs_total
                )
            } else {
                format!("refreshed {}", app.last_refresh.as_deref().unwrap_or("-"))
            };
            let failures = if app.sweep.failures > 0 {
                format!("  {} failed", app.sweep.failures)
            } else {
                String::new()
            };
            format!(
                "{} accounts × {} regions ({})  {progress}{failures}",
                scope.accounts.len(),
                scope.regions.len(),
                scope.regions.join(", ")
            )
        }
    };
    let findings = match &app.findings_state {
        Load::Loading => "findings: loading…".to_owned(),
        Load::Failed(err) => format!("findings: {}", first_line(err)),
        Load::Ready(count) => format!("{count} open findings on instances"),
    };
    let mode = format!(
        "{}  theme {}{}",
        findings,
        app.theme_name,
        if app.read_only { "  [read-only]" } else { "" }
    );
    let title = Line::from(vec![
        Span::styled(" irf ", theme.style("header.title")),
        Span::styled(
            clip_untrusted(&identity, width.saturating_sub(6)),
            theme.style("header"),
        ),
    ]);
    let lines = vec![
        title,
        Line::styled(clip_untrusted(&organization, width), theme.style("header")),
        Line::styled(clip_untrusted(&scope, width), theme.style("header")),
        Line::styled(clip_untrusted(&mode, width), theme.style("text.dim")),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::new()
                .borders(Borders::BOTTOM)
                .border_style(theme.style("border")),
        ),
        area,
    );
}

/// The columns shown: all of them, or the essential ones when the details panel takes
/// half the width (squeezing every column would cut every value).
fn shown_columns(app: &App, all: usize) -> Vec<usize> {
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
type RawCell = (String, Style);

/// A view's table before layout: column titles and widths, and the rows on screen.
struct TableSpec {
    titles: &'static [&'static str],
    widths: Vec<Constraint>,
    rows: Vec<Vec<RawCell>>,
    sort: super::table::Sort,
    cursor: usize,
    shown: usize,
    total: usize,
    filter: Option<String>,
}

impl TableSpec {
    fn of<R: super::rows::TableRow>(
        model: &super::table::TableModel<R>,
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

fn severity_style(theme: &Theme, severity: Severity) -> Style {
    theme.style(&format!("severity.{}", severity.label().to_lowercase()))
}

fn state_style(theme: &Theme, state: &str) -> Style {
    theme.style(match state {
        "running" => "state.running",
        "stopped" | "terminated" => "state.stopped",
        _ => "state.other",
    })
}

fn instances_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
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

fn findings_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
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

fn accounts_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
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

fn cases_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
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

fn approvals_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
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

fn evidence_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
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

fn images_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
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

fn hosts_spec(app: &App, theme: &Theme, start: usize, page: usize) -> TableSpec {
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
                (super::format::human_age(host.age_secs), text),
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
fn images_placeholder(app: &App) -> (String, &'static str) {
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
fn hosts_placeholder(app: &App) -> (String, &'static str) {
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
fn evidence_placeholder(app: &App) -> (String, &'static str) {
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
fn approvals_placeholder(app: &App) -> (String, &'static str) {
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
fn cases_placeholder(app: &App) -> (String, &'static str) {
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
fn draw_table(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let body = app.areas().table_body();
    let page = usize::from(body.height);
    let start = super::layout::window_start(app.current_cursor(), page);
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

/// The selected row's details as label and value pairs.
pub fn detail_lines(app: &App) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    let mut push = |label: &str, value: &str| lines.push((label.to_owned(), value.to_owned()));
    match app.view {
        View::Instances => {
            let Some(row) = app.instances.selected() else {
                return lines;
            };
            instance_details(&row.instance, &mut push);
            let findings = app.findings_of(&row.instance.id);
            push("findings", &findings.len().to_string());
            for finding in findings {
                push(finding.severity.label(), &finding.title);
            }
        }
        View::Findings => {
            let Some(row) = app.findings.selected() else {
                return lines;
            };
            let f = &row.finding;
            push("severity", f.severity.label());
            push("title", &f.title);
            push("description", &f.description);
            push("types", &f.types.join(", "));
            push("account", &f.account);
            push("region", &f.region);
            push("resource", &f.resource_id);
            push("workflow", &f.workflow_status);
            push("record", &f.record_state);
            push("created", &f.created_at);
            push("updated", &f.updated_at);
            push("note", f.note.as_deref().unwrap_or("-"));
            push("id", &f.id);
            match f.instance_id.as_deref().and_then(|id| app.instance(id)) {
                Some(instance) => {
                    push("", "");
                    push("instance", "");
                    instance_details(instance, &mut push);
                }
                None => push("instance", f.instance_id.as_deref().unwrap_or("-")),
            }
        }
        // The cases have their own view instead of a panel.
        View::Cases
        | View::Case
        | View::Approvals
        | View::Evidence
        | View::Images
        | View::Hosts => {}
        View::Accounts => {
            let Some(row) = app.accounts.selected() else {
                return lines;
            };
            push("account", &row.id);
            push("name", &row.name);
            for (region, count) in &row.per_region {
                push(region, &format!("{count} instances"));
            }
            for error in &row.errors {
                push("error", error);
            }
        }
    }
    lines
}

fn instance_details(i: &Instance, push: &mut impl FnMut(&str, &str)) {
    push("id", &i.id);
    push("name", i.name.as_deref().unwrap_or("-"));
    push("account", &format!("{} ({})", i.account, i.account_name));
    push("region", &i.region);
    push("zone", i.availability_zone.as_deref().unwrap_or("-"));
    push("state", &i.state);
    push("type", &i.instance_type);
    push("platform", &i.platform);
    push("image", i.image_id.as_deref().unwrap_or("-"));
    push("vpc", i.vpc_id.as_deref().unwrap_or("-"));
    push("subnet", i.subnet_id.as_deref().unwrap_or("-"));
    push("private ip", i.private_ip.as_deref().unwrap_or("-"));
    push("public ip", i.public_ip.as_deref().unwrap_or("-"));
    let groups: Vec<String> = i
        .security_groups
        .iter()
        .map(|g| format!("{} ({})", g.id, g.name))
        .collect();
    push("groups", &groups.join(", "));
    push("profile", i.instance_profile_arn.as_deref().unwrap_or("-"));
    push("ssm", i.ssm.label());
    push("launched", i.launch_time.as_deref().unwrap_or("-"));
    for (key, value) in i.tags.iter() {
        push(&format!("tag {key}"), value);
    }
}

fn draw_detail(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let label_width = 16;
    // Up to three lines a value: enough to read a description, and a hostile page of text
    // cannot push every other field off the panel.
    let value_max =
        (usize::from(area.width.saturating_sub(2)).saturating_sub(label_width + 1) * 3).max(8);
    let lines: Vec<Line> = detail_lines(app)
        .into_iter()
        .map(|(label, value)| {
            Line::from(vec![
                Span::styled(
                    format!("{:<label_width$} ", clip_untrusted(&label, label_width)),
                    theme.style("text.dim"),
                ),
                Span::styled(clip_untrusted(&value, value_max), theme.style("text")),
            ])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(Span::styled(" details ", theme.style("header.title")))
                .border_style(theme.style("border.focus")),
        ),
        area,
    );
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let width = area.width as usize;
    let line = match &app.mode {
        Mode::Filter { input } => {
            let mut spans = vec![
                Span::styled("/", theme.style("key")),
                Span::styled(escape_untrusted(input), theme.style("filter")),
                Span::styled("█", theme.style("filter")),
            ];
            if let Some(Status::Error(err)) = &app.status {
                spans.push(Span::styled(
                    format!("  {}", clip_untrusted(err, width / 2)),
                    theme.style("status.error"),
                ));
            }
            Line::from(spans)
        }
        Mode::Command { input } => {
            let hint = super::app::complete(input)
                .filter(|c| c.len() > input.len())
                .unwrap_or_default();
            Line::from(vec![
                Span::styled(":", theme.style("key")),
                Span::styled(escape_untrusted(input), theme.style("command")),
                Span::styled(
                    hint.get(input.len()..).unwrap_or_default().to_owned(),
                    theme.style("text.dim"),
                ),
                Span::styled("█", theme.style("command")),
            ])
        }
        _ => match &app.status {
            Some(Status::Error(_)) => {
                let error = app
                    .footer_error()
                    .map(|error| escape_untrusted(first_line(error)))
                    .unwrap_or_default();
                // Already escaped; cut to the lines the footer has.
                let shown = clip_untrusted(&error, width * usize::from(area.height.max(1)));
                frame.render_widget(
                    Paragraph::new(shown)
                        .style(theme.style("status.error"))
                        .wrap(Wrap { trim: false }),
                    area,
                );
                return;
            }
            Some(Status::Info(message)) => {
                Line::styled(clip_untrusted(message, width), theme.style("status.info"))
            }
            None => key_hints(app, theme),
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn key_hints(app: &App, theme: &Theme) -> Line<'static> {
    use crate::keymap::KeyAction;
    let mut hints = vec![
        (KeyAction::Help, "help"),
        (KeyAction::CommandMode, "command"),
    ];
    match app.view {
        View::Case => hints.extend([
            (KeyAction::Back, "cases"),
            (KeyAction::Down, "scroll artifacts"),
            (KeyAction::Refresh, "refresh"),
            (KeyAction::VerifyCase, "verify"),
            (KeyAction::ExportReport, "report"),
            (KeyAction::LaunchHost, "analysis host"),
        ]),
        View::Approvals => hints.extend([
            (KeyAction::FilterMode, "filter"),
            (KeyAction::Refresh, "refresh"),
            (KeyAction::ApproveContainment, "approve"),
            (KeyAction::RejectContainment, "refuse"),
        ]),
        View::Evidence => hints.extend([
            (KeyAction::FilterMode, "filter"),
            (KeyAction::SortNext, "sort"),
            (KeyAction::Refresh, "refresh"),
            (KeyAction::ToggleLegalHold, "legal hold"),
        ]),
        View::Cases => hints.extend([
            (KeyAction::FilterMode, "filter"),
            (KeyAction::ToggleDetail, "open case"),
            (KeyAction::SortNext, "sort"),
            (KeyAction::Refresh, "refresh"),
            (KeyAction::LaunchHost, "analysis host"),
        ]),
        View::Images => hints.extend([
            (KeyAction::FilterMode, "filter"),
            (KeyAction::Refresh, "refresh"),
            (KeyAction::BuildImage, "build"),
        ]),
        View::Hosts => hints.extend([
            (KeyAction::FilterMode, "filter"),
            (KeyAction::SortNext, "sort"),
            (KeyAction::Refresh, "refresh"),
            (KeyAction::OpenSession, "shell"),
            (KeyAction::TerminateHost, "terminate"),
        ]),
        View::Instances | View::Findings | View::Accounts => hints.extend([
            (KeyAction::FilterMode, "filter"),
            (KeyAction::ToggleDetail, "details"),
            (KeyAction::SortNext, "sort"),
            (KeyAction::Refresh, "refresh"),
        ]),
    }
    if app.view == View::Findings {
        hints.push((KeyAction::ResolveFinding, "resolve"));
    }
    if matches!(app.view, View::Instances | View::Findings) {
        hints.push((KeyAction::AcquireInstance, "acquire"));
    }
    if let (View::Case, Some(screen)) = (app.view, &app.case) {
        if screen.case.status == CaseStatus::AwaitingApproval {
            hints.push((KeyAction::ApproveContainment, "approve"));
            hints.push((KeyAction::RejectContainment, "refuse"));
        }
        // Containment is the workflow's last step: only an ended case can have one to undo.
        if !screen.case.status.is_open() {
            hints.push((KeyAction::RollbackContainment, "roll back"));
        }
    }
    hints.push((KeyAction::Quit, "quit"));
    let mut spans = Vec::new();
    for (command, label) in hints {
        if let Some(key) = app.keymap.key_for(command) {
            let style = if command.is_mutating() {
                theme.style("danger")
            } else {
                theme.style("key")
            };
            spans.push(Span::styled(format!("<{key}>"), style));
            spans.push(Span::styled(format!(" {label}  "), theme.style("text.dim")));
        }
    }
    Line::from(spans)
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

fn draw_help(frame: &mut Frame, app: &App, theme: &Theme, scroll: u16) {
    let help = app.keymap.help();
    let mut lines: Vec<Line> = help
        .iter()
        .map(|(command, keys)| {
            let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
            let style = if command.is_mutating() {
                theme.style("danger")
            } else {
                theme.style("key")
            };
            Line::from(vec![
                Span::styled(format!("{:<18}", keys.join(" ")), style),
                Span::styled(command.description().to_owned(), theme.style("text")),
            ])
        })
        .collect();
    lines.push(Line::default());
    lines.push(Line::styled(
        if app.read_only {
            "read-only mode: no action changes anything"
        } else {
            "red keys change things in AWS and ask first"
        },
        theme.style("text.dim"),
    ));
    let area = centered(frame.area(), 100, lines.len() as u16 + 2);
    // Taller than the screen: j/k scroll it, and the title says so.
    let overflow = (lines.len() as u16 + 2).saturating_sub(area.height);
    let title = if overflow > 0 {
        " help (j/k scroll, any other key closes) "
    } else {
        " help (any key closes) "
    };
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll.min(overflow), 0))
            .block(
                Block::bordered()
                    .title(Span::styled(title, theme.style("header.title")))
                    .border_style(theme.style("border.focus")),
            ),
        area,
    );
}

/// A decision typed out: the instance id to confirm, or the reason of a refusal.
fn draw_typed(frame: &mut Frame, prompt: &super::app::TypedPrompt, theme: &Theme) {
    let mut text: Vec<Line> = prompt
        .lines
        .iter()
        .map(|l| Line::styled(clip_untrusted(l, 90), theme.style("text")))
        .collect();
    text.push(Line::default());
    let label = if prompt.expected.is_some() {
        "instance id: "
    } else {
        "reason: "
    };
    text.push(Line::from(vec![
        Span::styled(label, theme.style("danger")),
        Span::styled(clip_untrusted(&prompt.input, 76), theme.style("command")),
        Span::styled("█", theme.style("command")),
    ]));
    let area = centered(frame.area(), 96, text.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text).block(
            Block::bordered()
                .title(Span::styled(
                    format!(" {} ", prompt.title),
                    theme.style("danger"),
                ))
                .border_style(theme.style("danger")),
        ),
        area,
    );
}

fn draw_confirm(frame: &mut Frame, title: &str, lines: &[String], theme: &Theme) {
    let mut text: Vec<Line> = lines
        .iter()
        .map(|l| Line::styled(clip_untrusted(l, 90), theme.style("text")))
        .collect();
    text.push(Line::default());
    text.push(Line::from(vec![
        Span::styled("y", theme.style("danger")),
        Span::styled(" to go ahead, any other key to cancel", theme.style("text")),
    ]));
    let area = centered(frame.area(), 96, text.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text).block(
            Block::bordered()
                .title(Span::styled(format!(" {title} "), theme.style("danger")))
                .border_style(theme.style("danger")),
        ),
        area,
    );
}
