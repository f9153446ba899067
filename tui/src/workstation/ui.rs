//! Drawing the workstation from its state; never awaits, never calls AWS.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};

use super::app::{App, Load};
use crate::text::clip_untrusted;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, header, app);
    draw_accounts(frame, body, app);
    draw_footer(frame, footer, app);
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let width = area.width.saturating_sub(2) as usize;
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
                format!(
                    "last refresh {}",
                    app.last_refresh.as_deref().unwrap_or("-")
                )
            };
            format!(
                "{} accounts × {} regions ({})  {progress}{}",
                scope.accounts.len(),
                scope.regions.len(),
                scope.regions.join(", "),
                if app.read_only { "  [read-only]" } else { "" }
            )
        }
    };
    let lines = vec![
        Line::from(Span::styled(
            clip_untrusted(&identity, width),
            Style::new().add_modifier(Modifier::BOLD),
        )),
        Line::from(clip_untrusted(&organization, width)),
        Line::from(clip_untrusted(&scope, width)),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::BOTTOM).title(" irf ")),
        area,
    );
}

fn draw_accounts(frame: &mut Frame, area: Rect, app: &App) {
    let regions = app.regions();
    let mut header = vec!["ACCOUNT".to_owned(), "NAME".to_owned()];
    header.extend(regions.iter().map(|r| r.to_uppercase()));
    header.extend(["TOTAL", "RUNNING", "STOPPED", "INCIDENT", "STATUS"].map(str::to_owned));
    let error_style = Style::new().fg(Color::Red);
    let rows: Vec<Row> = app
        .rows
        .iter()
        .map(|row| {
            let mut cells = vec![
                Cell::from(row.id.clone()),
                Cell::from(clip_untrusted(&row.name, 24)),
            ];
            cells.extend(
                regions
                    .iter()
                    .map(|r| Cell::from(row.per_region.get(r).copied().unwrap_or(0).to_string())),
            );
            cells.push(Cell::from(row.total().to_string()));
            cells.push(Cell::from(row.running.to_string()));
            cells.push(Cell::from(row.stopped.to_string()));
            cells.push(if row.under_incident > 0 {
                Cell::from(row.under_incident.to_string())
                    .style(Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD))
            } else {
                Cell::from("0")
            });
            cells.push(match row.errors.first() {
                Some(err) => Cell::from(clip_untrusted(first_line(err), 90)).style(error_style),
                None => Cell::from("ok"),
            });
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(12), Constraint::Length(24)];
    widths.extend(
        regions
            .iter()
            .map(|r| Constraint::Length(r.len().max(5) as u16)),
    );
    widths.extend([
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Min(10),
    ]);
    let title = format!(" accounts ({}) ", app.rows.len());
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(Block::bordered().title(title))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state =
        TableState::default().with_selected((!app.rows.is_empty()).then_some(app.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App) {
    let keys = if app.sweep.running {
        "q quit  j/k move  (sweeping…)"
    } else {
        "q quit  j/k move  r refresh"
    };
    frame.render_widget(
        Paragraph::new(keys).style(Style::new().add_modifier(Modifier::DIM)),
        area,
    );
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
