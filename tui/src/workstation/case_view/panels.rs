//! The case view's lower panel: the artifacts with their progress, the custody ledger,
//! the analysis and the last verification, each scrolled with the movement keys.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{LineGauge, Paragraph};

use crate::keymap::KeyAction;
use crate::text::{clip_untrusted, wrap_untrusted, wrap_untrusted_at_most};
use crate::theme::Theme;
use crate::workstation::app::{App, CasePanel, CaseScreen};
use crate::workstation::format::{eta, human_bytes, rate_text, short_time};
use irf_engine::model::case::{ArtifactProgress, ArtifactState};
use irf_engine::model::case_detail::{ArtifactSha256, CaseDetail};
use unicode_width::UnicodeWidthStr;

use super::parts::*;

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
pub(super) fn draw_panel(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    screen: &CaseScreen,
    theme: &Theme,
) {
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
