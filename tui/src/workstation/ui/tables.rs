//! The list views' table drawn: columns solved for the width there is, every value escaped
//! and cut to its column, the title with counts and filter, and the text of an empty view.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use crate::text::clip_untrusted;
use crate::theme::Theme;
use crate::workstation::app::{App, View};
use crate::workstation::format::short_time;
use crate::workstation::table::fit_columns;

/// Columns the escaped value takes on screen.
fn display_width(value: &str) -> usize {
    use unicode_width::UnicodeWidthStr;
    crate::text::escape_untrusted(value).width()
}

/// Lays the table out and draws it: column widths are solved for the space there is, and
/// every value is escaped and cut to its column with an ellipsis.
pub(super) fn draw_table(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let body = app.areas().table_body();
    let page = usize::from(body.height);
    let start = crate::workstation::layout::window_start(app.current_cursor(), page);
    let Some(pane) = app.pane() else {
        return;
    };
    let spec = pane.spec(app, theme, start, page);
    // Each column as wide as its widest value on screen, while the most important fit.
    let content: Vec<usize> = (0..spec.titles.len())
        .map(|c| {
            spec.rows
                .iter()
                .map(|cells| display_width(&cells[c].0))
                .chain([display_width(spec.titles[c]) + 1])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let fitted = fit_columns(
        &spec.widths,
        spec.priority,
        &content,
        usize::from(body.width),
    );
    let columns: Vec<usize> = fitted.iter().map(|(c, _)| *c).collect();
    let solved: Vec<usize> = fitted.iter().map(|(_, w)| *w).collect();
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
        .border_style(theme.style(if app.detail_shown() && app.details.focused {
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
    let signed_out = app.signed_out.as_deref().filter(|_| spec.shown == 0).map(|why| {
        (
            format!(
                "No usable AWS credentials: {why}. Sign in and start irf again with the profile: aws sso login --profile NAME, then irf --profile NAME (or set AWS_PROFILE). Without an AWS account, irf lab opens this workstation on a local lab."
            ),
            "status.error",
        )
    });
    if let Some((message, role)) = signed_out.or_else(|| pane.placeholder(app.read_only)) {
        // Wrapped whole into the rows there are: it says what to do next.
        let lines: Vec<Line> = crate::text::wrap_untrusted_at_most(
            &message,
            usize::from(body.width),
            usize::from(body.height.max(1)),
        )
        .into_iter()
        .map(Line::from)
        .collect();
        frame.render_widget(Paragraph::new(lines).style(theme.style(role)), body);
    }
}
