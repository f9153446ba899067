//! How the workstation writes values for people: ages, sizes, rates, times left, case-table
//! times, an error's first line, and the styles of a severity, an instance state and a case
//! status. Pure functions every view shares.

use ratatui::style::Style;

use crate::theme::Theme;
use irf_engine::findings::Severity;
use irf_engine::model::case::CaseStatus;
use irf_engine::model::instance::InstanceState;

/// How long something has run, in its two largest units (`42m`, `3h07m`, `2d04h`).
pub fn human_age(secs: Option<u64>) -> String {
    match secs {
        None => "-".to_owned(),
        Some(s) if s < 3600 => format!("{}m", s / 60),
        Some(s) if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        Some(s) => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Bytes in binary units, as disk and memory sizes are read.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// A transfer rate in MiB/s; a rate the table cannot vouch for (none yet, or not a
/// number) shows as a dash.
pub fn rate_text(bytes_per_second: f64) -> String {
    if bytes_per_second.is_finite() && bytes_per_second > 0.0 {
        format!("{:.1} MiB/s", bytes_per_second / (1024.0 * 1024.0))
    } else {
        "- MiB/s".to_owned()
    }
}

/// Time left at the current rate, or nothing when there is no rate to go by.
pub fn eta(bytes_done: u64, bytes_total: u64, bytes_per_second: f64) -> Option<String> {
    if !(bytes_per_second.is_finite() && bytes_per_second > 0.0) || bytes_total == 0 {
        return None;
    }
    let remaining = bytes_total.saturating_sub(bytes_done) as f64;
    // Float to integer casts saturate: a rate of one byte a year cannot overflow.
    let seconds = (remaining / bytes_per_second).ceil() as u64;
    Some(match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        3600..86_400 => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d {:02}h", seconds / 86_400, seconds % 86_400 / 3600),
    })
}

/// The style of a finding's severity.
pub fn severity_style(theme: &Theme, severity: Severity) -> Style {
    theme.style(&format!("severity.{}", severity.label().to_lowercase()))
}

/// The style of an EC2 instance state.
pub fn state_style(theme: &Theme, state: &InstanceState) -> Style {
    theme.style(match state {
        InstanceState::Running => "state.running",
        InstanceState::Stopped | InstanceState::Terminated => "state.stopped",
        _ => "state.other",
    })
}

/// The style of a case's status: open cases stand out, and one waiting for a person most.
pub fn case_status_style(theme: &Theme, status: CaseStatus) -> Style {
    theme.style(match status {
        CaseStatus::Opening | CaseStatus::Running => "state.other",
        CaseStatus::AwaitingApproval => "state.incident",
        CaseStatus::Succeeded => "status.ok",
        CaseStatus::Failed => "status.error",
    })
}

/// An RFC 3339 time from the case table as people read it: date and time to the second.
pub fn short_time(rfc3339: &str) -> String {
    rfc3339
        .get(..19)
        .map_or_else(|| rfc3339.to_owned(), |t| t.replacen('T', " ", 1))
}

/// The first line of a text (an error's headline).
pub fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
