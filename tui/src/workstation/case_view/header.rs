//! The case view's header (who and what the case is about, its error, approval,
//! containment, last verification) and its step timeline.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table};

use crate::keymap::KeyAction;
use crate::text::{clip_untrusted, wrap_untrusted_at_most};
use crate::theme::Theme;
use crate::workstation::app::{App, CasePanel, CaseScreen};
use crate::workstation::format::{case_status_style, short_time};
use irf_engine::model::case::{ContainmentPolicy, Verdict};

use super::parts::*;

/// The case view's header: who and what the case is about, then whatever of its error, its
/// approval, its instance's containment, its last verification and a failed refresh there is.
pub(super) fn header_lines(
    app: &App,
    screen: &CaseScreen,
    theme: &Theme,
    width: usize,
) -> Vec<Line<'static>> {
    let mut lines = case_grid(app, screen, theme, width);
    lines.extend(error_lines(screen, theme, width));
    lines.extend(approval_lines(app, screen, theme, width));
    lines.extend(containment_lines(screen, theme, width));
    lines.extend(verification_lines(app, screen, theme, width));
    lines.extend(refresh_error_lines(screen, theme, width));
    lines
}

/// The case, its subject and what it does, in three columns, and who asked for it.
fn case_grid(app: &App, screen: &CaseScreen, theme: &Theme, width: usize) -> Vec<Line<'static>> {
    let case = &screen.case;
    let subject = &case.subject;
    let text = theme.style("text");
    // Label and value widths of the three columns; the last takes what is left.
    let fixed = (9 + 1 + 40 + 2) + (7 + 1 + 19 + 2) + (11 + 1);
    let columns = [(9, 40), (7, 19), (11, width.saturating_sub(fixed).max(8))];
    let whole_line = [(9, width.saturating_sub(10))];
    let instance = match app
        .instance(&subject.instance_id)
        .and_then(|i| i.name.as_deref())
    {
        Some(name) => format!("{} ({name})", subject.instance_id),
        None => subject.instance_id.clone(),
    };
    let account = match app.account_name(subject.account.as_str()) {
        Some(name) => format!("{} ({name})", subject.account),
        None => subject.account.to_string(),
    };
    let acquires = match (subject.memory, subject.disk) {
        (true, true) => "memory and disk",
        (true, false) => "memory",
        (false, true) => "disk",
        (false, false) => "nothing",
    };
    // Under the approval policy, what the approver decided once they have.
    let decided = screen
        .detail
        .as_ref()
        .and_then(|d| d.approval.as_ref())
        .and_then(|a| a.decided.as_ref())
        .map(|d| d.decision);
    let containment = match (subject.containment, decided) {
        (ContainmentPolicy::Approval, Some(Verdict::Approved)) => "approved",
        (ContainmentPolicy::Approval, Some(Verdict::Rejected)) => "refused",
        (ContainmentPolicy::Approval, None) => "waits for approval",
        (ContainmentPolicy::Auto, _) => "at once, once verified",
        (ContainmentPolicy::Never, _) => "never",
    };
    vec![
        grid_line(
            &[
                (
                    "status",
                    case.status.as_str().to_owned(),
                    case_status_style(theme, case.status),
                ),
                ("opened", short_time(&case.opened_at), text),
                ("trigger", case.trigger.to_string(), text),
            ],
            &columns,
            theme,
        ),
        grid_line(
            &[
                ("instance", instance, text),
                (
                    "closed",
                    case.closed_at
                        .as_deref()
                        .map_or_else(|| "-".to_owned(), short_time),
                    text,
                ),
                ("acquires", acquires.to_owned(), text),
            ],
            &columns,
            theme,
        ),
        grid_line(
            &[
                ("account", account, text),
                ("region", subject.region.clone(), text),
                ("containment", containment.to_owned(), text),
            ],
            &columns,
            theme,
        ),
        // An ARN with a long session name would be cut in a column: it gets a line.
        grid_line(
            &[("requested", case.requested_by.clone(), text)],
            &whole_line,
            theme,
        ),
    ]
}

/// The case's error, wrapped into a few lines.
fn error_lines(screen: &CaseScreen, theme: &Theme, width: usize) -> Vec<Line<'static>> {
    let case = &screen.case;
    let mut lines = Vec::new();
    if let Some(error) = &case.error {
        let error_style = theme.style("status.error");
        for (n, part) in wrap_untrusted_at_most(error, width.saturating_sub(10), ERROR_LINES)
            .into_iter()
            .enumerate()
        {
            let label = if n == 0 { "error" } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("{label:<9} "), theme.style("text.dim")),
                Span::styled(part, error_style),
            ]));
        }
    }
    lines
}

/// What the approval waits for, or what the approver decided.
fn approval_lines(
    app: &App,
    screen: &CaseScreen,
    theme: &Theme,
    width: usize,
) -> Vec<Line<'static>> {
    let case = &screen.case;
    let text = theme.style("text");
    let whole_line = [(9, width.saturating_sub(10))];
    let mut lines = Vec::new();
    let approval = screen.detail.as_ref().and_then(|d| d.approval.as_ref());
    match approval {
        Some(pending) if pending.decided.is_none() && case.status.is_open() => {
            lines.push(Line::styled(
                clip_untrusted(
                    &format!(
                        "waiting for approval: {} shows the containment plan to approve, {} refuses",
                        key_name(app, KeyAction::ApproveContainment),
                        key_name(app, KeyAction::RejectContainment),
                    ),
                    width,
                ),
                theme.style("state.incident"),
            ));
        }
        Some(pending) => {
            if let Some(decision) = &pending.decided {
                let reason = decision
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                lines.push(grid_line(
                    &[(
                        "approval",
                        format!(
                            "{} by {} at {}{reason}",
                            decision.decision,
                            decision.by,
                            short_time(&decision.at)
                        ),
                        text,
                    )],
                    &whole_line,
                    theme,
                ));
            }
        }
        None => {}
    }
    lines
}

/// The containment of the case's instance, whichever case or request made it.
fn containment_lines(screen: &CaseScreen, theme: &Theme, width: usize) -> Vec<Line<'static>> {
    let text = theme.style("text");
    let whole_line = [(9, width.saturating_sub(10))];
    let mut lines = Vec::new();
    if let Some(record) = screen.detail.as_ref().and_then(|d| d.containment.as_ref()) {
        let style = if record.state.holds_originals() {
            theme.style("state.incident")
        } else {
            text
        };
        lines.push(grid_line(
            &[("contained", record.summary(), style)],
            &whole_line,
            theme,
        ));
    }
    lines
}

/// The case's last verification here, with what did not verify.
fn verification_lines(
    app: &App,
    screen: &CaseScreen,
    theme: &Theme,
    width: usize,
) -> Vec<Line<'static>> {
    let case = &screen.case;
    let whole_line = [(9, width.saturating_sub(10))];
    let in_panel = screen.panel == CasePanel::Verification;
    let mut lines = Vec::new();
    match app.verifications.get(&case.case_id) {
        Some(Ok(verification)) => {
            let failed: Vec<&irf_engine::ledger::CheckedItem> =
                verification.items.iter().filter(|i| !i.verified).collect();
            let (summary, style) = if failed.is_empty() {
                (
                    format!(
                        "all {} items verified at {}",
                        verification.items.len(),
                        short_time(&verification.verified_at)
                    ),
                    theme.style("state.running"),
                )
            } else {
                (
                    format!(
                        "{} of {} items NOT verified at {}{}",
                        failed.len(),
                        verification.items.len(),
                        short_time(&verification.verified_at),
                        if in_panel {
                            String::new()
                        } else {
                            format!(" ({}: each in full)", key_name(app, KeyAction::NextPanel))
                        }
                    ),
                    theme.style("status.error"),
                )
            };
            lines.push(grid_line(
                &[("verified", summary, style)],
                &whole_line,
                theme,
            ));
            // Shown in full below when the verification panel is open.
            let shown = if in_panel { 0 } else { VERIFY_LINES };
            for item in failed.iter().take(shown) {
                lines.push(grid_line(
                    &[(
                        "",
                        format!("{}: {}", item.item, item.detail),
                        theme.style("status.error"),
                    )],
                    &whole_line,
                    theme,
                ));
            }
        }
        Some(Err(err)) => lines.push(grid_line(
            &[(
                "verified",
                format!("could not verify: {err}"),
                theme.style("status.error"),
            )],
            &whole_line,
            theme,
        )),
        None => {}
    }
    lines
}

/// Why the last refresh failed (the case on screen is the last one read).
fn refresh_error_lines(screen: &CaseScreen, theme: &Theme, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if let Some(error) = &screen.error {
        let message = format!("could not refresh the case (shown as last read): {error}");
        for part in wrap_untrusted_at_most(&message, width, ERROR_LINES) {
            lines.push(Line::styled(part, theme.style("status.error")));
        }
    }
    lines
}

pub(super) fn draw_steps(frame: &mut Frame, area: Rect, screen: &CaseScreen, theme: &Theme) {
    let Some(detail) = &screen.detail else {
        let message = if screen.error.is_some() {
            "the steps could not be read"
        } else {
            "reading the case…"
        };
        frame.render_widget(Line::styled(message, theme.style("text.dim")), area);
        return;
    };
    if detail.steps.is_empty() {
        frame.render_widget(
            Line::styled(
                "no step has run yet: the workflow is starting",
                theme.style("text.dim"),
            ),
            area,
        );
        return;
    }
    let widths = [10, 10, 19, 19, 8];
    let fixed: u16 = widths.iter().sum::<u16>() + widths.len() as u16;
    let detail_width = usize::from(area.width.saturating_sub(fixed)).max(8);
    let text = theme.style("text");
    let rows: Vec<Row> = detail
        .steps
        .iter()
        .map(|step| {
            let (status, role) = step_status(step.status);
            Row::new(vec![
                Cell::from(clip_untrusted(&step.step, 10)),
                Cell::from(status).style(theme.style(role)),
                Cell::from(clip_untrusted(&short_time(&step.started_at), 19)),
                Cell::from(clip_untrusted(
                    &step
                        .ended_at
                        .as_deref()
                        .map_or_else(|| "-".to_owned(), short_time),
                    19,
                )),
                Cell::from(step.attempts.to_string()),
                Cell::from(clip_untrusted(
                    step.detail.as_deref().unwrap_or("-"),
                    detail_width,
                )),
            ])
            .style(text)
        })
        .collect();
    let header = Row::new(["STEP", "STATUS", "STARTED", "ENDED", "ATTEMPTS", "DETAIL"])
        .style(theme.style("table.header"));
    let constraints = widths
        .iter()
        .map(|&w| Constraint::Length(w))
        .chain([Constraint::Fill(1)]);
    frame.render_widget(
        Table::new(rows, constraints)
            .header(header)
            .column_spacing(1),
        area,
    );
}
