//! What the case view's header and panels share: their limits, the key names, the words
//! and styles of a state, and the label-and-value line.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::keymap::KeyAction;
use crate::text::clip_untrusted;
use crate::theme::Theme;
use crate::workstation::app::App;
use irf_engine::model::case::{ArtifactProgress, ArtifactState, StepStatus};
use unicode_width::UnicodeWidthStr;

/// Failed verification items shown under the summary; `irf verify` lists them all.
pub(super) const VERIFY_LINES: usize = 4;
/// Lines each artifact takes: what and how far, the bar, then its hash (or error, or key).
pub(super) const ARTIFACT_HEIGHT: u16 = 3;

/// The most lines an error takes in the case header: enough for a sentence saying what
/// went wrong and what to do, and a hostile page of text cannot push the steps off screen.
pub(super) const ERROR_LINES: usize = 3;

/// The key bound to `command`, as the footer writes it.
pub(super) fn key_name(app: &App, command: KeyAction) -> String {
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

pub(super) fn artifact_state(state: ArtifactState) -> (&'static str, &'static str) {
    match state {
        ArtifactState::Acquiring => ("acquiring", "state.other"),
        ArtifactState::Written => ("written", "status.info"),
        ArtifactState::Verified => ("verified", "status.ok"),
        ArtifactState::Failed => ("failed", "status.error"),
    }
}

pub(super) fn step_status(status: StepStatus) -> (&'static str, &'static str) {
    match status {
        StepStatus::Running => ("running", "state.other"),
        StepStatus::Succeeded => ("succeeded", "status.ok"),
        StepStatus::Failed => ("failed", "status.error"),
        StepStatus::Waiting => ("waiting", "state.incident"),
    }
}

/// One line of label and value columns, each value escaped and cut to its column.
pub(super) fn grid_line(
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
