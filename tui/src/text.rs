//! Untrusted text from AWS made safe to show: control characters and escape sequences
//! escaped, long values cut to a display width with an ellipsis, or wrapped whole where
//! nothing may be cut.

use unicode_width::UnicodeWidthChar;

/// Escapes every character that could steer a terminal (C0 and C1 controls, DEL, and the
/// invisible bidirectional overrides), so the string renders as inert text.
pub fn escape_untrusted(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if ('\u{80}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            // Bidirectional overrides and isolates reorder what follows them on screen;
            // zero-width characters make two different ids look the same.
            '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2060}'
            | '\u{feff}'
            | '\u{061c}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes like [`escape_untrusted`] but keeps line breaks: for a message printed to the
/// terminal whole (an error whose parts came from a host or from AWS).
pub fn escape_keeping_lines(value: &str) -> String {
    value
        .split('\n')
        .map(escape_untrusted)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Escapes `value` and cuts it to at most `max_width` terminal columns, ending with `…`
/// when it was cut.
pub fn clip_untrusted(value: &str, max_width: usize) -> String {
    let escaped = escape_untrusted(value);
    let total: usize = escaped.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= max_width {
        return escaped;
    }
    let mut out = String::new();
    let mut width = 0;
    for c in escaped.chars() {
        let w = c.width().unwrap_or(0);
        if width + w + 1 > max_width {
            break;
        }
        width += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Columns `text` takes, counted as the wrapping counts them: character by character.
fn columns(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// Where a word too long for a line may break, in order of preference: after a path's or
/// an ARN's separators, else after a hyphen or a dot.
const WORD_BREAKS: [&[char]; 2] = [&['/', ':', ','], &['-', '.']];

/// Escapes `value` and wraps it into lines of at most `width` terminal columns: at spaces
/// where it can, inside a word longer than a line where it must. Nothing is cut; a line's
/// indentation is kept, and its continuation lines take the same.
pub fn wrap_untrusted(value: &str, width: usize) -> Vec<String> {
    let escaped = escape_untrusted(value);
    let text = escaped.trim_start_matches(' ');
    let indent = " ".repeat(escaped.len() - text.len());
    // An indentation as wide as the line is not kept: the text needs the room.
    let indent = if indent.len() < width / 2 {
        indent
    } else {
        String::new()
    };
    let width = width.saturating_sub(indent.len()).max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_width = 0;
    for word in text.split(' ') {
        let word_width: usize = word.chars().map(|c| c.width().unwrap_or(0)).sum();
        let gap = usize::from(!line.is_empty());
        if line_width + gap + word_width <= width {
            if gap == 1 {
                line.push(' ');
            }
            line.push_str(word);
            line_width += gap + word_width;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
            line_width = 0;
        }
        for c in word.chars() {
            let w = c.width().unwrap_or(0);
            if line_width + w > width {
                // A word longer than a line (an ARN, an S3 key) breaks after its last
                // separator in the line's second half, a path's or an ARN's first (so that
                // an instance id stays whole), so that its parts stay readable.
                let cut = WORD_BREAKS.iter().find_map(|breaks| {
                    line.char_indices()
                        .filter(|(_, c)| breaks.contains(c))
                        .map(|(at, c)| at + c.len_utf8())
                        .rfind(|&at| columns(&line[..at]) * 2 > width)
                });
                let rest = match cut {
                    Some(at) if at < line.len() => line.split_off(at),
                    _ => String::new(),
                };
                lines.push(std::mem::replace(&mut line, rest));
                line_width = columns(&line);
            }
            line.push(c);
            line_width += w;
        }
    }
    lines.push(line);
    lines.into_iter().map(|l| format!("{indent}{l}")).collect()
}

/// Like [`wrap_untrusted`], at most `max_lines` lines, the last ending with `…` when there
/// was more: for text that must not push the rest of a screen away (a hostile error).
pub fn wrap_untrusted_at_most(value: &str, width: usize, max_lines: usize) -> Vec<String> {
    let mut lines = wrap_untrusted(value, width);
    if lines.len() > max_lines {
        lines.truncate(max_lines.max(1));
        if let Some(last) = lines.last_mut() {
            // Already escaped, and escaping escaped text changes nothing.
            *last = clip_untrusted(&format!("{last}…"), width.max(1));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_character_and_no_line_is_wider_than_asked() {
        let text = "replace security groups sg-0123456789abcdef0,sg-0fedcba9876543210 -> irf-isolation-i-0abc (no rules) \x1b[2J";
        for width in [1, 7, 20, 40, 200] {
            let lines = wrap_untrusted(text, width);
            assert!(
                lines.iter().all(|l| l.chars().count() <= width),
                "{width}: {lines:?}"
            );
            let joined: String = lines.concat().chars().filter(|c| *c != ' ').collect();
            let expected: String = escape_untrusted(text)
                .chars()
                .filter(|c| *c != ' ')
                .collect();
            assert_eq!(joined, expected, "{width}");
        }
        assert_eq!(
            wrap_untrusted("contain i-0abc in account 1", 14),
            ["contain i-0abc", "in account 1"]
        );
        assert_eq!(wrap_untrusted("", 10), [""]);
        // A word longer than the line breaks after a separator in the line's second half,
        // else where the line ends.
        assert_eq!(
            wrap_untrusted(
                "arn:aws:ec2:eu-west-1:468723430980:instance/i-4580ae414a19fb2a7",
                38
            ),
            [
                "arn:aws:ec2:eu-west-1:468723430980:",
                "instance/i-4580ae414a19fb2a7"
            ]
        );
        assert_eq!(
            wrap_untrusted("TTPs/Execution/Execution:Runtime-ReverseShell", 38),
            ["TTPs/Execution/Execution:", "Runtime-ReverseShell"]
        );
        assert_eq!(wrap_untrusted("aaaaaaaaaa", 4), ["aaaa", "aaaa", "aa"]);
        assert_eq!(
            wrap_untrusted("  - snapshots of every volume", 16),
            ["  - snapshots of", "  every volume"]
        );
    }

    #[test]
    fn escape_sequences_are_inert() {
        let hostile = "web\x1b]0;pwned\x07\x1b[2J\x1b[31mred";
        let shown = escape_untrusted(hostile);
        assert_eq!(shown, "web\\e]0;pwned\\x07\\e[2J\\e[31mred");
        assert_eq!(
            escape_keeping_lines("first\nhost said \x1b[2Jbye\r"),
            "first\nhost said \\e[2Jbye\\r"
        );
        assert!(!shown.chars().any(char::is_control));
    }

    #[test]
    fn zero_width_characters_cannot_disguise_an_id() {
        let lookalike = "i-0abc\u{200b}1234\u{feff}\u{2060}\u{061c}";
        let shown = escape_untrusted(lookalike);
        assert_eq!(shown, "i-0abc\\u{200b}1234\\u{feff}\\u{2060}\\u{61c}");
    }

    #[test]
    fn c1_controls_and_bidi_are_escaped() {
        let shown = escape_untrusted("a\u{9b}31mb\u{202e}cba");
        assert_eq!(shown, "a\\u{9b}31mb\\u{202e}cba");
    }

    #[test]
    fn newlines_and_tabs_are_visible() {
        assert_eq!(escape_untrusted("a\nb\tc\r"), "a\\nb\\tc\\r");
    }

    #[test]
    fn plain_and_wide_text_is_kept() {
        assert_eq!(escape_untrusted("prod-web-01 数据库"), "prod-web-01 数据库");
    }

    #[test]
    fn long_values_are_clipped_by_width() {
        assert_eq!(clip_untrusted("abcdefghij", 5), "abcd…");
        assert_eq!(clip_untrusted("abc", 5), "abc");
        // Each CJK character is two columns wide.
        let clipped = clip_untrusted("数据库服务器", 7);
        assert_eq!(clipped, "数据库…");
    }
}
