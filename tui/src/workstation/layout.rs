//! Where each part of the workstation's screen goes, from the terminal's size and what the
//! mode shows (a detail panel, an error at the foot): the draw lays out with it and the update
//! hit-tests clicks with it, so both agree without either asking the other.

use ratatui::layout::{Constraint, Layout, Rect};

use super::format::first_line;
use crate::text::escape_untrusted;

const HEADER_HEIGHT: u16 = 5;

/// The narrowest details panel beside a list, where the screen allows: a case id (36
/// columns) on one line.
const DETAIL_MIN_WIDTH: u16 = 40;
/// The most lines an error takes at the foot of the screen: enough to read why an
/// acquisition could not start, never so many that the table disappears.
const MAX_ERROR_LINES: usize = 3;

/// The screen's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub header: Rect,
    pub table: Rect,
    pub detail: Option<Rect>,
    pub footer: Rect,
}

impl Areas {
    /// The parts of a `size` screen, with a detail panel beside the table when one is shown
    /// and a footer tall enough for `footer_error` (up to [`MAX_ERROR_LINES`]), else for
    /// `hint_lines` lines of keys.
    pub fn of(
        size: (u16, u16),
        detail_shown: bool,
        footer_error: Option<&str>,
        hint_lines: usize,
    ) -> Self {
        let screen = Rect::new(0, 0, size.0, size.1);
        let [header, body, footer] = Layout::vertical([
            Constraint::Length(HEADER_HEIGHT),
            Constraint::Min(3),
            Constraint::Length(footer_height(size.0, footer_error, hint_lines)),
        ])
        .areas(screen);
        if detail_shown {
            // Two fifths of a wide screen; on a narrow one at least what a case id or an
            // ARN's piece needs (38 columns inside the border), up to half the screen.
            let two_fifths = u16::try_from(u32::from(body.width) * 42 / 100).unwrap_or(u16::MAX);
            let detail_width = two_fifths.max(DETAIL_MIN_WIDTH.min(body.width / 2));
            let [table, detail] =
                Layout::horizontal([Constraint::Min(0), Constraint::Length(detail_width)])
                    .areas(body);
            Self {
                header,
                table,
                detail: Some(detail),
                footer,
            }
        } else {
            Self {
                header,
                table: body,
                detail: None,
                footer,
            }
        }
    }

    /// Where the table's data rows are on screen (inside the border, below the column titles).
    pub fn table_body(&self) -> Rect {
        let table = self.table;
        Rect::new(
            table.x + 1,
            table.y + 2,
            table.width.saturating_sub(2),
            table.height.saturating_sub(3),
        )
    }
}

/// The footer is one line, or a few for an error too long for one (an error is read in
/// full: it says what to do next) or for keys that do not fit on one.
fn footer_height(width: u16, footer_error: Option<&str>, hint_lines: usize) -> u16 {
    let width = usize::from(width.max(1));
    let lines = footer_error.map_or(hint_lines, |error| {
        let shown = escape_untrusted(first_line(error));
        unicode_width::UnicodeWidthStr::width(shown.as_str()).div_ceil(width)
    });
    lines.clamp(1, MAX_ERROR_LINES) as u16
}

/// Packs items of the given widths into lines of at most `width` columns, in order, each
/// item whole on one line (an item wider than a line has one to itself): what goes on each
/// line, as ranges of the items.
pub fn pack(items: &[usize], width: usize) -> Vec<std::ops::Range<usize>> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, &item) in items.iter().enumerate() {
        if i > start && used + item > width {
            lines.push(start..i);
            start = i;
            used = 0;
        }
        used += item;
    }
    if start < items.len() {
        lines.push(start..items.len());
    }
    lines
}

/// The first shown row of the page that holds `cursor`: the table scrolls a page at a time,
/// so a click maps to a row without remembering where the view was.
pub fn window_start(cursor: usize, page: usize) -> usize {
    (cursor / page.max(1)) * page.max(1)
}
