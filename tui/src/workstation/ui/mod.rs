//! Drawing the workstation from its state: never awaits, never calls AWS, and builds rows
//! only for the lines on screen, so a frame costs the same with ten rows or a hundred thousand.

pub mod detail;
mod dialogs;
mod tables;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::text::{clip_untrusted, escape_untrusted};
use crate::theme::Theme;
use crate::workstation::app::{App, Load, Mode, Status, View};
use crate::workstation::format::{first_line, short_time};
use detail::draw_detail;
use dialogs::{draw_confirm, draw_help, draw_typed};
use tables::draw_table;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App, theme: &Theme) {
    let areas = app.areas();
    draw_header(frame, areas.header, app, theme);
    if app.view == View::Case {
        crate::workstation::case_view::draw_case(frame, areas.table, app, theme);
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
            draw_confirm(frame, confirmation, theme);
        }
        Mode::Typed(prompt) => draw_typed(frame, prompt, theme),
        Mode::Related(targets) => dialogs::draw_related(frame, app, targets, theme),
        _ => {}
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let width = area.width as usize;
    let identity = match &app.identity {
        Load::Loading => "identity: loading…".to_owned(),
        Load::Failed(err) => format!("identity: {}", first_line(err)),
        Load::Ready(who) => format!(
            "{}  account {}  region {}{}{}",
            who.caller.arn,
            who.caller.account,
            who.region,
            who.credentials_expire
                .as_deref()
                .map(|at| format!("  credentials until {} UTC", short_time(at)))
                .unwrap_or_default(),
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
    let findings = match &app.findings.state {
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
            let hint = crate::workstation::app::complete(input)
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
            None => {
                frame.render_widget(Paragraph::new(key_hints(app, theme)), area);
                return;
            }
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn key_hints(app: &App, theme: &Theme) -> Vec<Line<'static>> {
    app.footer_hint_lines()
        .into_iter()
        .map(|hints| {
            let spans: Vec<Span> = hints
                .into_iter()
                .flat_map(|hint| {
                    let style = if hint.mutating {
                        theme.style("danger")
                    } else {
                        theme.style("key")
                    };
                    [
                        Span::styled(hint.key, style),
                        Span::styled(format!(" {}  ", hint.label), theme.style("text.dim")),
                    ]
                })
                .collect();
            Line::from(spans)
        })
        .collect()
}
