//! The case view: one case's header, its step timeline, and its lower panel (artifacts,
//! custody, analysis, verification).

mod header;
mod panels;
mod parts;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Paragraph};

pub use parts::progress_ratio;

use header::{draw_steps, header_lines};
use panels::draw_panel;

use crate::theme::Theme;
use crate::workstation::app::{App, CasePanel};

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
