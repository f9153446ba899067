//! The details panel beside the instances, findings, accounts, evidence and hosts tables:
//! every field of the selected row, wrapped, scrolled a field at a time when it has the keys.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use unicode_width::UnicodeWidthStr;

use crate::text::{clip_untrusted, escape_untrusted, wrap_untrusted_at_most};
use crate::theme::Theme;
use crate::workstation::app::App;

/// The most lines one value takes: a description or an account's error is read whole, and
/// a hostile page of text still cannot push every other field out of reach.
const VALUE_LINES: usize = 12;

/// The label column beside values, when the panel is wide enough for one.
const LABEL_WIDTH: usize = 16;

/// The panel's lines, each with the index of the field it belongs to: label and value side
/// by side where the value's words fit beside the label, else the value under its label (an
/// AMI id in a third of 80 columns, an ARN, would otherwise break in the middle).
fn field_lines(fields: &[(String, String)], inner: usize) -> Vec<(usize, String, String)> {
    let mut lines = Vec::new();
    for (index, (label, value)) in fields.iter().enumerate() {
        let beside = inner.saturating_sub(LABEL_WIDTH + 1);
        let side_by_side = beside >= 24
            && escape_untrusted(value)
                .split(' ')
                .all(|word| word.width() <= beside);
        let (label_width, value_width) = if side_by_side {
            (LABEL_WIDTH, inner - LABEL_WIDTH - 1)
        } else {
            (inner, inner)
        };
        // Padded by display width: a wide character takes two columns.
        let label = clip_untrusted(label, label_width);
        let label = format!(
            "{label}{}",
            " ".repeat(label_width.saturating_sub(label.width()))
        );
        let values = wrap_untrusted_at_most(value, value_width, VALUE_LINES);
        if side_by_side {
            let blank = " ".repeat(LABEL_WIDTH);
            for (n, value) in values.into_iter().enumerate() {
                let label = if n == 0 { label.clone() } else { blank.clone() };
                lines.push((index, format!("{label} "), value));
            }
        } else {
            lines.push((index, label, String::new()));
            for value in values {
                lines.push((index, String::new(), value));
            }
        }
    }
    lines
}

pub(super) fn draw_detail(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let fields = app.detail_fields();
    let inner = usize::from(area.width.saturating_sub(2)).max(1);
    let rows = usize::from(area.height.saturating_sub(2));
    let lines = field_lines(&fields, inner);
    let first_field = app.details.first.min(fields.len().saturating_sub(1));
    let skip = lines
        .iter()
        .position(|(field, _, _)| *field >= first_field)
        .unwrap_or(0);
    let shown: Vec<Line> = lines
        .iter()
        .skip(skip)
        .take(rows)
        .map(|(_, label, value)| {
            Line::from(vec![
                Span::styled(label.clone(), theme.style("text.dim")),
                Span::styled(value.clone(), theme.style("text")),
            ])
        })
        .collect();
    // Fields not (wholly) on the panel, above and below: short enough for a third of 80
    // columns.
    let below = lines
        .get(skip + rows..)
        .and_then(|rest| rest.first())
        .map_or(0, |(field, _, _)| fields.len() - field);
    let title = if first_field > 0 || below > 0 {
        format!(" details ↑{first_field} ↓{below} · tab scrolls ")
    } else {
        " details ".to_owned()
    };
    let border = if app.details.focused {
        "border.focus"
    } else {
        "border"
    };
    frame.render_widget(
        Paragraph::new(shown).block(
            Block::bordered()
                .title(Span::styled(
                    clip_untrusted(&title, inner),
                    theme.style("header.title"),
                ))
                .border_style(theme.style(border)),
        ),
        area,
    );
}
