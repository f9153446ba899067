//! What opens over the screen: help with the keymap, a confirmation, and a prompt that takes
//! a typed answer (an instance id, a reason).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::text::wrap_untrusted;
use crate::theme::Theme;
use crate::workstation::app::{App, Related};

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
    let label = if prompt.expected.is_some() {
        "instance id: "
    } else {
        "reason: "
    };
    // The end of what was typed stays in sight as it grows (the cursor takes a column).
    let room = usize::from(DIALOG_WIDTH.min(frame.area().width).saturating_sub(2))
        .saturating_sub(label.len() + 1);
    let answer = Line::from(vec![
        Span::styled(label, theme.style("danger")),
        Span::styled(tail(&prompt.input, room), theme.style("command")),
        Span::styled("█", theme.style("command")),
    ]);
    let script = prompt.decision.as_command(prompt.expected.as_deref());
    draw_dialog(
        frame,
        &prompt.title,
        &with_script(&prompt.lines, Some(script)),
        answer,
        prompt.scroll,
        theme,
    );
}

pub(super) fn draw_confirm(
    frame: &mut Frame,
    confirmation: &crate::workstation::app::Confirmation,
    theme: &Theme,
) {
    let answer = Line::from(vec![
        Span::styled("y", theme.style("danger")),
        Span::styled(" to go ahead, any other key to cancel", theme.style("text")),
    ]);
    draw_dialog(
        frame,
        &confirmation.title,
        &with_script(&confirmation.lines, confirmation.effect.as_command()),
        answer,
        confirmation.scroll,
        theme,
    );
}

/// `o`'s picker: each view with rows related to the selected one, by its key.
pub(super) fn draw_related(frame: &mut Frame, app: &App, targets: &[Related], theme: &Theme) {
    let lines: Vec<String> = targets
        .iter()
        .map(|Related { view, term }| {
            let key = view
                .command()
                .and_then(|command| app.keymap.key_for(command))
                .map(|key| key.to_string())
                .unwrap_or_else(|| "-".into());
            format!("{key:>3}  {:<10} /{term}", view.title())
        })
        .collect();
    let answer = Line::styled(
        "a view's key opens it, filtered; any other key closes this",
        theme.style("text"),
    );
    draw_dialog(frame, "Related rows", &lines, answer, 0, theme);
}

/// A dialog's lines and, last, the command that does the same from a script.
fn with_script(lines: &[String], command: Option<String>) -> Vec<String> {
    let mut lines = lines.to_vec();
    if let Some(command) = command {
        lines.push(format!("From a script: {command}"));
    }
    lines
}

/// The widest a dialog grows, so that its lines stay easy to read on a wide terminal.
const DIALOG_WIDTH: u16 = 110;

/// A dialog that asks before a change: every line of what it says, wrapped, never cut; the
/// answer line always in sight below it. Taller than the screen, the text scrolls with the
/// arrows and the title says how much is above and below.
fn draw_dialog(
    frame: &mut Frame,
    title: &str,
    lines: &[String],
    answer: Line<'_>,
    scroll: u16,
    theme: &Theme,
) {
    let screen = frame.area();
    let width = DIALOG_WIDTH.min(screen.width);
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let body: Vec<String> = lines
        .iter()
        .flat_map(|line| wrap_untrusted(line, inner))
        .collect();
    // Borders, a blank line and the answer around the body.
    let chrome: u16 = 4;
    let height = (body.len() as u16)
        .saturating_add(chrome)
        .min(screen.height);
    let visible = usize::from(height.saturating_sub(chrome));
    let hidden = body.len().saturating_sub(visible);
    let first = usize::from(scroll).min(hidden);
    let mut text: Vec<Line> = body
        .iter()
        .skip(first)
        .take(visible)
        .map(|l| Line::styled(l.clone(), theme.style("text")))
        .collect();
    text.push(Line::default());
    text.push(answer);
    let title = if hidden > 0 {
        format!(
            " {title} ─ {first} lines above, {} below: ↑/↓ PgUp/PgDn scroll ",
            hidden - first
        )
    } else {
        format!(" {title} ")
    };
    let area = centered(screen, width, height);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text).block(
            Block::bordered()
                .title(Span::styled(title, theme.style("danger")))
                .border_style(theme.style("danger")),
        ),
        area,
    );
}

/// The last `width` columns of what the operator typed, escaped.
fn tail(input: &str, width: usize) -> String {
    let escaped = crate::text::escape_untrusted(input);
    let count = escaped.chars().count();
    escaped.chars().skip(count.saturating_sub(width)).collect()
}
