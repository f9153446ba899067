//! What opens over the screen: help with the keymap, a confirmation, and a prompt that takes
//! a typed answer (an instance id, a reason).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::text::clip_untrusted;
use crate::theme::Theme;
use crate::workstation::app::App;

pub(super) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

pub(super) fn draw_help(frame: &mut Frame, app: &App, theme: &Theme, scroll: u16) {
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
pub(super) fn draw_typed(
    frame: &mut Frame,
    prompt: &crate::workstation::app::TypedPrompt,
    theme: &Theme,
) {
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

pub(super) fn draw_confirm(frame: &mut Frame, title: &str, lines: &[String], theme: &Theme) {
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
