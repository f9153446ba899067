//! The case view: one case's header, its step timeline, and a progress bar per artifact.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, LineGauge, Paragraph, Row, Table};

use super::app::{App, CasePanel, CaseScreen};
use super::format::{case_status_style, eta, human_bytes, rate_text, short_time};
use crate::keymap::KeyAction;
use crate::text::{clip_untrusted, wrap_untrusted, wrap_untrusted_at_most};
use crate::theme::Theme;
use unicode_width::UnicodeWidthStr;

use irf_engine::model::case::{
    ArtifactProgress, ArtifactState, ContainmentPolicy, StepStatus, Verdict,
};

use irf_engine::model::case_detail::{ArtifactSha256, CaseDetail};

/// Failed verification items shown under the summary; `irf verify` lists them all.
const VERIFY_LINES: usize = 4;
/// Lines each artifact takes: what and how far, the bar, then its hash (or error, or key).
const ARTIFACT_HEIGHT: u16 = 3;

/// The most lines an error takes in the case header: enough for a sentence saying what
/// went wrong and what to do, and a hostile page of text cannot push the steps off screen.
const ERROR_LINES: usize = 3;

/// The key bound to `command`, as the footer writes it.
fn key_name(app: &App, command: KeyAction) -> String {
    app.keymap
        .key_for(command)
        .map_or_else(|| "(unbound)".to_owned(), |key| key.to_string())
}

/// How far an artifact is, from 0 to 1. Always in range: the gauge panics outside it, and
/// the numbers come from a table that a broken worker could have written anything into.
pub fn progress_ratio(artifact: &ArtifactProgress) -> f64 {
    if matches!(
        artifact.state,
        ArtifactState::Written | ArtifactState::Verified
    ) {
        return 1.0;
    }
    if artifact.bytes_total == 0 {
        return 0.0;
    }
    let ratio = artifact.bytes_done.min(artifact.bytes_total) as f64 / artifact.bytes_total as f64;
    if ratio.is_finite() {
        ratio.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn artifact_state(state: ArtifactState) -> (&'static str, &'static str) {
    match state {
        ArtifactState::Acquiring => ("acquiring", "state.other"),
        ArtifactState::Written => ("written", "status.info"),
        ArtifactState::Verified => ("verified", "status.ok"),
        ArtifactState::Failed => ("failed", "status.error"),
    }
}

fn step_status(status: StepStatus) -> (&'static str, &'static str) {
    match status {
        StepStatus::Running => ("running", "state.other"),
        StepStatus::Succeeded => ("succeeded", "status.ok"),
        StepStatus::Failed => ("failed", "status.error"),
        StepStatus::Waiting => ("waiting", "state.incident"),
    }
}

/// One line of label and value columns, each value escaped and cut to its column.
fn grid_line(
    cells: &[(&str, String, Style)],
    columns: &[(usize, usize)],
    theme: &Theme,
) -> Line<'static> {
    let mut spans = Vec::new();
    for ((label, value, style), &(label_width, value_width)) in cells.iter().zip(columns) {
        spans.push(Span::styled(
            format!("{label:<label_width$} "),
            theme.style("text.dim"),
        ));
        let value = clip_untrusted(value, value_width);
        let pad = value_width.saturating_sub(value.as_str().width());
        spans.push(Span::styled(value, *style));
        spans.push(Span::raw(" ".repeat(pad + 2)));
    }
    Line::from(spans)
}

/// The case view's header: who and what the case is about, then whatever of its error, its
/// approval, its instance's containment, its last verification and a failed refresh there is.
fn header_lines(app: &App, screen: &CaseScreen, theme: &Theme, width: usize) -> Vec<Line<'static>> {
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

fn draw_steps(frame: &mut Frame, area: Rect, screen: &CaseScreen, theme: &Theme) {
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

fn draw_artifact(
    frame: &mut Frame,
    area: Rect,
    artifact: &ArtifactProgress,
    sha256: ArtifactSha256<'_>,
    theme: &Theme,
) {
    let [what, bar, proof] = Layout::vertical([Constraint::Length(1); 3]).areas(area);
    let width = usize::from(area.width);
    let (state, role) = artifact_state(artifact.state);
    let ratio = progress_ratio(artifact);
    let mut progress = format!(
        "{} of {}",
        human_bytes(artifact.bytes_done),
        human_bytes(artifact.bytes_total)
    );
    if artifact.state == ArtifactState::Acquiring {
        progress.push_str(&format!("  {}", rate_text(artifact.rate)));
        if let Some(left) = eta(artifact.bytes_done, artifact.bytes_total, artifact.rate) {
            progress.push_str(&format!("  ETA {left}"));
        }
    }
    frame.render_widget(
        Line::from(vec![
            Span::styled(format!("{:<7}", artifact.kind.as_str()), theme.style("key")),
            Span::styled(
                format!("{:<22} ", clip_untrusted(&artifact.source, 22)),
                theme.style("text"),
            ),
            Span::styled(format!("{state:<10}"), theme.style(role)),
            Span::styled(
                clip_untrusted(&progress, width.saturating_sub(40)),
                theme.style("text"),
            ),
        ]),
        what,
    );
    frame.render_widget(
        LineGauge::default()
            .ratio(ratio)
            .label(format!("{:>6.1}%", ratio * 100.0))
            .filled_symbol(symbols::line::THICK_HORIZONTAL)
            .unfilled_symbol(symbols::line::HORIZONTAL)
            .filled_style(theme.style(role))
            .unfilled_style(theme.style("text.dim")),
        bar,
    );
    let (label, value, value_role) = match (&artifact.state, sha256, &artifact.error) {
        (ArtifactState::Failed, _, Some(error)) => ("error", error.as_str(), "status.error"),
        (_, ArtifactSha256::Known(sha256), _) => ("sha256", sha256, "text"),
        (_, ArtifactSha256::LeftForLater, _) => (
            "sha256",
            irf_engine::model::case_detail::RAW_HASH_LEFT_FOR_LATER,
            "status.info",
        ),
        _ => ("key", artifact.key.as_str(), "text.dim"),
    };
    frame.render_widget(
        Line::from(vec![
            Span::styled(format!("       {label:<7}"), theme.style("text.dim")),
            Span::styled(
                clip_untrusted(value, width.saturating_sub(14)),
                theme.style(value_role),
            ),
        ]),
        proof,
    );
}

/// The panel line: which panel shows, the others with their counts, and the key that
/// switches.
fn panel_tabs(app: &App, screen: &CaseScreen, detail: &CaseDetail, theme: &Theme) -> Line<'static> {
    let mut spans = Vec::new();
    let verification = app.verifications.get(&screen.case.case_id);
    for panel in CasePanel::ALL {
        let text = format!(
            " {} ({}) ",
            panel.title(),
            panel.count(detail, verification)
        );
        spans.push(if panel == screen.panel {
            Span::styled(text, theme.style("table.selected"))
        } else {
            Span::styled(text, theme.style("text.dim"))
        });
    }
    spans.push(Span::styled(
        format!("  {} switches", key_name(app, KeyAction::NextPanel)),
        theme.style("text.dim"),
    ));
    Line::from(spans)
}

/// The lower part of the case view: the panel chosen, scrolled to `screen.first`.
fn draw_panel(frame: &mut Frame, area: Rect, app: &App, screen: &CaseScreen, theme: &Theme) {
    let Some(detail) = &screen.detail else {
        return;
    };
    let [tabs, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    frame.render_widget(panel_tabs(app, screen, detail, theme), tabs);
    match screen.panel {
        CasePanel::Artifacts => draw_artifacts(frame, rest, screen, detail, theme),
        CasePanel::Custody => {
            let width = usize::from(rest.width);
            let lines: Vec<Line> = detail
                .ledger
                .iter()
                .skip(screen.first)
                .flat_map(|entry| custody_lines(entry, width, theme))
                .collect();
            let empty = "no entry yet: the case's first step records one";
            draw_list(frame, rest, lines, empty, theme);
        }
        CasePanel::Analysis => {
            let width = usize::from(rest.width);
            let lines: Vec<Line> = irf_engine::report::analysis_activity(&detail.ledger)
                .iter()
                .skip(screen.first)
                .flat_map(|activity| {
                    let mut more = vec![format!("by {}", activity.actor)];
                    more.extend(activity.detail.clone().filter(|d| !d.is_empty()));
                    entry_lines(
                        vec![
                            Span::styled(short_time(&activity.at), theme.style("text.dim")),
                            Span::styled(
                                format!("  {}  ", clip_untrusted(&activity.action, 40)),
                                theme.style("table.header"),
                            ),
                        ],
                        &activity.host,
                        "    ",
                        &more,
                        width,
                        theme,
                    )
                })
                .collect();
            let empty = "no analysis yet: l launches a host with the case's evidence";
            draw_list(frame, rest, lines, empty, theme);
        }
        CasePanel::Verification => {
            let width = usize::from(rest.width);
            let lines = verification_panel_lines(
                app.verifications.get(&screen.case.case_id),
                screen.first,
                width,
                theme,
            );
            let empty =
                "not verified here yet: V re-reads the case's evidence and checks its ledger";
            draw_list(frame, rest, lines, empty, theme);
        }
    }
}

/// The verification panel: what did not verify first, each item whole, in two parts the
/// movement keys step through (its mark and why, then its key, wrapped), then what did;
/// from the `first` part on.
fn verification_panel_lines(
    verification: Option<&crate::workstation::app::CaseVerification>,
    first: usize,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let verification = match verification {
        None => return Vec::new(),
        Some(Err(err)) => {
            return wrap_untrusted_at_most(&format!("could not verify: {err}"), width, ERROR_LINES)
                .into_iter()
                .map(|l| Line::styled(l, theme.style("status.error")))
                .collect();
        }
        Some(Ok(verification)) => verification,
    };
    let mut items: Vec<&irf_engine::ledger::CheckedItem> = verification.items.iter().collect();
    items.sort_by_key(|item| item.verified);
    // Whole, however long: an S3 key runs to 1,024 characters, and what did not verify is
    // what the responder has to read.
    let parts: Vec<Vec<Line<'static>>> = items
        .into_iter()
        .flat_map(|item| {
            let (mark, style) = if item.verified {
                ("verified      ", theme.style("state.running"))
            } else {
                ("NOT VERIFIED  ", theme.style("status.error"))
            };
            let why = heading_lines(
                vec![Span::styled(mark, style)],
                &item.detail,
                "    ",
                width,
                usize::MAX,
                theme,
            );
            let key: Vec<Line<'static>> = wrap_untrusted(&format!("    {}", item.item), width)
                .into_iter()
                .map(|l| Line::styled(l, theme.style("text")))
                .collect();
            [why, key]
        })
        .collect();
    let first = first.min(parts.len().saturating_sub(1));
    parts.into_iter().skip(first).flatten().collect()
}

/// One custody entry: its sequence, time, action and target; who acted; its detail and the
/// hashes it records, wrapped.
fn custody_lines(
    entry: &irf_engine::model::ledger::LedgerEntry,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let mut more = vec![format!("by {}", entry.actor)];
    more.extend(entry.detail.clone());
    more.extend(
        entry
            .artifacts
            .iter()
            .map(|a| format!("sha256 {} {}", a.sha256, a.key)),
    );
    entry_lines(
        vec![
            Span::styled(format!("#{:<4}", entry.seq), theme.style("key")),
            Span::styled(short_time(&entry.at), theme.style("text.dim")),
            Span::styled(
                format!("  {}  ", clip_untrusted(&entry.action, 48)),
                theme.style("table.header"),
            ),
        ],
        &entry.target,
        "      ",
        &more,
        width,
        theme,
    )
}

/// A ledger entry as the custody and analysis panels show it: its `heading` and `target`,
/// then each of `more` (who acted, its detail, its hashes) `indent`ed, dim, wrapped.
fn entry_lines(
    heading: Vec<Span<'static>>,
    target: &str,
    indent: &str,
    more: &[String],
    width: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let mut lines = heading_lines(heading, target, indent, width, ERROR_LINES, theme);
    for text in more {
        lines.extend(
            wrap_untrusted_at_most(&format!("{indent}{text}"), width, ERROR_LINES)
                .into_iter()
                .map(|l| Line::styled(l, theme.style("text.dim"))),
        );
    }
    lines
}

/// An entry's first line, `heading` then its `target`; a target that does not fit beside
/// the heading (a host's account/region/instance at 80 columns) goes on the lines below,
/// `indent`ed and wrapped (up to `max_lines`), rather than be cut at the panel's edge.
fn heading_lines(
    mut heading: Vec<Span<'static>>,
    target: &str,
    indent: &str,
    width: usize,
    max_lines: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let used: usize = heading.iter().map(|span| span.content.width()).sum();
    let target_escaped = crate::text::escape_untrusted(target);
    if used + target_escaped.width() <= width {
        heading.push(Span::styled(target_escaped, theme.style("text")));
        return vec![Line::from(heading)];
    }
    let mut lines = vec![Line::from(heading)];
    lines.extend(
        wrap_untrusted_at_most(&format!("{indent}{target}"), width, max_lines)
            .into_iter()
            .map(|l| Line::styled(l, theme.style("text"))),
    );
    lines
}

/// Lines of a panel from its first shown item, or what it says with none.
fn draw_list(frame: &mut Frame, area: Rect, lines: Vec<Line<'static>>, empty: &str, theme: &Theme) {
    if lines.is_empty() {
        frame.render_widget(
            Line::styled(empty.to_owned(), theme.style("text.dim")),
            area,
        );
    } else {
        frame.render_widget(Paragraph::new(lines), area);
    }
}

fn draw_artifacts(
    frame: &mut Frame,
    area: Rect,
    screen: &CaseScreen,
    detail: &CaseDetail,
    theme: &Theme,
) {
    let total = detail.artifacts.len();
    // The panel line above counts them: a heading says which are shown when not all fit
    // (and there is room for it), or that there are none yet.
    let all_fit = usize::from(area.height / ARTIFACT_HEIGHT) >= total && screen.first == 0;
    let heading_height = u16::from(total == 0 || (!all_fit && area.height > ARTIFACT_HEIGHT));
    let [heading, list] =
        Layout::vertical([Constraint::Length(heading_height), Constraint::Min(0)]).areas(area);
    let fits = usize::from(list.height / ARTIFACT_HEIGHT).max(1);
    let first = screen.first.min(total.saturating_sub(1));
    let shown = detail.artifacts.iter().skip(first).take(fits);
    let title = if total == 0 {
        "artifacts: none yet (imaging starts once the case is prepared)".to_owned()
    } else if total <= fits && first == 0 {
        format!("artifacts ({total})")
    } else {
        format!(
            "artifacts {}-{} of {total} (j/k scroll)",
            first + 1,
            (first + fits).min(total)
        )
    };
    frame.render_widget(Line::styled(title, theme.style("table.header")), heading);
    let rows = Layout::vertical(vec![Constraint::Length(ARTIFACT_HEIGHT); fits]).split(list);
    for (artifact, row) in shown.zip(rows.iter()) {
        draw_artifact(frame, *row, artifact, detail.sha256_of(artifact), theme);
    }
}

/// Draws the case view in `area`.
pub fn draw_case(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let block = Block::bordered().border_style(theme.style("border.focus"));
    let Some(screen) = &app.case else {
        frame.render_widget(
            Paragraph::new("no case is open: :cases lists them")
                .style(theme.style("text.dim"))
                .block(block.title(Span::styled(" case ", theme.style("header.title")))),
            area,
        );
        return;
    };
    let title = format!(" case {} ", screen.case.case_id);
    let block = block.title(Span::styled(title, theme.style("header.title")));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    let header = header_lines(app, screen, theme, width);
    // On a short terminal the custody and analysis panels take the steps' place: they are
    // read entry by entry, and the steps are one key (tab) away.
    let short = area.height < 40;
    let steps_height = screen.detail.as_ref().map_or(1, |d| {
        if short && screen.panel != CasePanel::Artifacts {
            0
        } else if d.steps.is_empty() {
            1
        } else {
            d.steps.len() + 1
        }
    });
    let header_height = Constraint::Length(header.len() as u16);
    let panel_area = if steps_height == 0 {
        // No steps: no blank line where they would be.
        let [header_area, panel_area] = Layout::vertical([header_height, Constraint::Min(0)])
            .spacing(1)
            .areas(inner);
        frame.render_widget(Paragraph::new(header), header_area);
        panel_area
    } else {
        let [header_area, steps_area, panel_area] = Layout::vertical([
            header_height,
            Constraint::Length(steps_height as u16),
            Constraint::Min(0),
        ])
        .spacing(1)
        .areas(inner);
        frame.render_widget(Paragraph::new(header), header_area);
        draw_steps(frame, steps_area, screen, theme);
        panel_area
    };
    draw_panel(frame, panel_area, app, screen, theme);
}
