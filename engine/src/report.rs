//! The case report: the case's timeline, sources, artifacts with their hashes, the custody
//! chain, the approval and containment, and a fresh verification, as JSON (the schema is
//! `engine/report.schema.json`), Markdown or HTML. Every value from AWS is escaped for the
//! format it is written in.

use serde::{Deserialize, Serialize};

use crate::ledger::LedgerError;
use crate::ledger::Verification;
use crate::model::case::{ApprovalDecision, Case, CaseId, StepRecord, now_rfc3339};
use crate::model::containment::ContainmentRecord;
use crate::model::ledger::{Action, LedgerEntry};
use crate::plane::Plane;

/// The report's format version, raised on any incompatible change of its JSON.
pub const REPORT_VERSION: u32 = 2;

/// One artifact as the report states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportArtifact {
    pub key: String,
    pub kind: String,
    /// What it images: a volume id, or the instance id for memory.
    pub source: String,
    pub state: String,
    pub size: u64,
    pub sha256: Option<String>,
}

/// Something done on an analysis host of the case: launched, its evidence verified,
/// a session opened or closed, terminated (from the ledger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisActivity {
    pub at: String,
    pub actor: String,
    pub action: String,
    /// The host, `account/region/instance`.
    pub host: String,
    pub detail: Option<String>,
    /// The ledger entry it comes from.
    pub seq: u64,
}

/// The analysis activity of a ledger, in its order.
pub fn analysis_activity(ledger: &[LedgerEntry]) -> Vec<AnalysisActivity> {
    ledger
        .iter()
        .filter(|e| Action::is_analysis(&e.action))
        .map(|e| AnalysisActivity {
            at: e.at.clone(),
            actor: e.actor.clone(),
            action: e.action.clone(),
            host: e.target.clone(),
            detail: e.detail.clone(),
            seq: e.seq,
        })
        .collect()
}

/// A case's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseReport {
    pub report_version: u32,
    pub generated_at: String,
    /// The STS identity that produced the report.
    pub generated_by: String,
    pub case: Case,
    pub timeline: Vec<StepRecord>,
    pub artifacts: Vec<ReportArtifact>,
    pub approval: Option<ApprovalDecision>,
    pub containment: Option<ContainmentRecord>,
    /// Analysis hosts and sessions (report_version 2).
    pub analysis: Vec<AnalysisActivity>,
    pub ledger: Vec<LedgerEntry>,
    pub verification: Verification,
}

/// Builds the report of `case_id`, verifying the case as it does.
pub async fn build(plane: &Plane, case_id: &CaseId) -> Result<CaseReport, LedgerError> {
    let detail = plane.table.detail(case_id).await?;
    let verification = crate::ledger::verify_detail(plane, &detail).await?;
    let artifacts = detail
        .artifacts
        .iter()
        .map(|a| ReportArtifact {
            key: a.key.clone(),
            kind: a.kind.as_str().to_owned(),
            source: a.source.clone(),
            state: format!("{:?}", a.state).to_lowercase(),
            size: a.bytes_total,
            sha256: match detail.sha256_of(a) {
                crate::model::case_detail::ArtifactSha256::Known(sha256) => Some(sha256.to_owned()),
                _ => None,
            },
        })
        .collect();
    Ok(CaseReport {
        report_version: REPORT_VERSION,
        generated_at: now_rfc3339(),
        generated_by: plane.operator.clone(),
        timeline: detail.steps,
        artifacts,
        approval: detail.approval.and_then(|a| a.decided),
        containment: detail.containment,
        analysis: analysis_activity(&detail.ledger),
        ledger: detail.ledger,
        verification,
        case: detail.case,
    })
}

/// Text made inert in Markdown: what could start a link, an image, raw HTML, an
/// autolink, emphasis, code or a table cell is backslash-escaped (CommonMark lets any
/// ASCII punctuation be), a URL's `://` and a `www.` lose their power to autolink, and
/// control characters are escaped. A host's error text or a finding's title can then
/// never load a beacon or hide a link in a report; times keep their plain colons.
fn md(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (at, &c) in chars.iter().enumerate() {
        let next = |n: usize| chars.get(at + n).copied();
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '<' | '>' | '!' | '#' | '|' | '~'
            | '&' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            ':' if next(1) == Some('/') && next(2) == Some('/') => out.push_str("\\:"),
            '.' if at >= 3
                && chars[at - 3..at]
                    .iter()
                    .all(|w| w.eq_ignore_ascii_case(&'w')) =>
            {
                out.push_str("\\.");
            }
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// Text made safe for HTML: the five special characters as entities, control characters
/// escaped.
fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// One table of the report: a title, column names, and rows of cells (raw text).
struct Section {
    title: String,
    columns: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

/// A section as written below: title, columns, rows.
type Table = (String, Vec<&'static str>, Vec<Vec<String>>);

impl From<Table> for Section {
    fn from((title, columns, rows): Table) -> Self {
        Self {
            title,
            columns,
            rows,
        }
    }
}

/// The report's tables.
fn sections(report: &CaseReport) -> Vec<Section> {
    let verified = |ok: bool| if ok { "verified" } else { "NOT VERIFIED" }.to_owned();
    let tables: [Table; 5] = [
        (
            "Timeline".into(),
            vec!["step", "status", "started", "ended", "attempts", "detail"],
            report
                .timeline
                .iter()
                .map(|s| {
                    vec![
                        s.step.clone(),
                        format!("{:?}", s.status).to_lowercase(),
                        s.started_at.clone(),
                        s.ended_at.clone().unwrap_or_default(),
                        s.attempts.to_string(),
                        s.detail.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        ),
        (
            "Artifacts".into(),
            vec!["kind", "source", "size (bytes)", "SHA-256", "state", "key"],
            report
                .artifacts
                .iter()
                .map(|a| {
                    vec![
                        a.kind.clone(),
                        a.source.clone(),
                        a.size.to_string(),
                        a.sha256.clone().unwrap_or_default(),
                        a.state.clone(),
                        a.key.clone(),
                    ]
                })
                .collect(),
        ),
        (
            "Analysis hosts and sessions".into(),
            vec!["seq", "time", "actor", "action", "host", "detail"],
            report
                .analysis
                .iter()
                .map(|a| {
                    vec![
                        a.seq.to_string(),
                        a.at.clone(),
                        a.actor.clone(),
                        a.action.clone(),
                        a.host.clone(),
                        a.detail.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        ),
        (
            "Custody chain".into(),
            vec![
                "seq", "time", "actor", "action", "target", "detail", "SHA-256", "previous",
            ],
            report
                .ledger
                .iter()
                .map(|e| {
                    vec![
                        e.seq.to_string(),
                        e.at.clone(),
                        e.actor.clone(),
                        e.action.clone(),
                        e.target.clone(),
                        e.detail.clone().unwrap_or_default(),
                        e.sha256.clone(),
                        e.prev_sha256.clone(),
                    ]
                })
                .collect(),
        ),
        (
            format!(
                "Verification ({})",
                if report.verification.all_verified() {
                    "every item verified"
                } else {
                    "NOT every item verified"
                }
            ),
            vec!["item", "result", "detail"],
            report
                .verification
                .items
                .iter()
                .map(|i| vec![i.item.clone(), verified(i.verified), i.detail.clone()])
                .collect(),
        ),
    ];
    tables.into_iter().map(Section::from).collect()
}

/// The header lines: case, subject, approval, containment.
fn summary(report: &CaseReport) -> Vec<(String, String)> {
    let case = &report.case;
    let mut lines = vec![
        ("case".to_owned(), case.case_id.to_string()),
        ("status".into(), case.status.as_str().to_owned()),
        (
            "instance".into(),
            format!(
                "{} (account {}, region {})",
                case.subject.instance_id, case.subject.account, case.subject.region
            ),
        ),
        (
            "opened".into(),
            format!(
                "{} by {} ({})",
                case.opened_at, case.requested_by, case.trigger
            ),
        ),
        (
            "closed".into(),
            case.closed_at.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "generated".into(),
            format!("{} by {}", report.generated_at, report.generated_by),
        ),
    ];
    if let Some(approval) = &report.approval {
        lines.push((
            "approval".into(),
            format!(
                "{} by {} at {}{}",
                approval.decision,
                approval.by,
                approval.at,
                approval
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        ));
    }
    if let Some(containment) = &report.containment {
        lines.push(("containment".into(), containment.summary()));
    }
    lines
}

impl CaseReport {
    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("# Case {}\n\n", md(self.case.case_id.as_str()));
        for (label, value) in summary(self) {
            out.push_str(&format!("- **{label}**: {}\n", md(&value)));
        }
        for Section {
            title,
            columns,
            rows,
        } in sections(self)
        {
            out.push_str(&format!("\n## {title}\n\n| {} |\n", columns.join(" | ")));
            out.push_str(&format!("|{}\n", "---|".repeat(columns.len())));
            for row in rows {
                let cells: Vec<String> = row.iter().map(|c| md(c)).collect();
                out.push_str(&format!("| {} |\n", cells.join(" | ")));
            }
        }
        out
    }

    /// The report as a standalone HTML page.
    pub fn to_html(&self) -> String {
        let mut out = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Case {id}</title>\
             <style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:2px 6px;font-size:90%}}</style>\
             </head><body>\n<h1>Case {id}</h1>\n<ul>\n",
            id = html(self.case.case_id.as_str())
        );
        for (label, value) in summary(self) {
            out.push_str(&format!(
                "<li><b>{}</b>: {}</li>\n",
                html(&label),
                html(&value)
            ));
        }
        out.push_str("</ul>\n");
        for Section {
            title,
            columns,
            rows,
        } in sections(self)
        {
            out.push_str(&format!("<h2>{}</h2>\n<table>\n<tr>", html(&title)));
            for column in columns {
                out.push_str(&format!("<th>{}</th>", html(column)));
            }
            out.push_str("</tr>\n");
            for row in rows {
                out.push_str("<tr>");
                for cell in row {
                    out.push_str(&format!("<td>{}</td>", html(&cell)));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</table>\n");
        }
        out.push_str("</body></html>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, action: &str) -> LedgerEntry {
        LedgerEntry {
            seq,
            at: "2026-11-28T15:00:00Z".into(),
            actor: "arn:aws:sts::1:assumed-role/r/alice".into(),
            action: action.into(),
            target: "210987654321/us-east-1/i-0host".into(),
            request_ids: vec![],
            artifacts: vec![],
            detail: None,
            prev_sha256: String::new(),
            signature: None,
            sha256: String::new(),
        }
    }

    #[test]
    fn analysis_activity_is_the_hosts_and_sessions_of_the_ledger() {
        let ledger = [
            entry(1, "case opened"),
            entry(2, "analysis host launched"),
            entry(3, "analysis host evidence verified"),
            entry(4, "session opened"),
            entry(5, "step verify succeeded"),
            entry(6, "session closed"),
            entry(7, "analysis host terminated"),
        ];
        let seqs: Vec<u64> = analysis_activity(&ledger).iter().map(|a| a.seq).collect();
        assert_eq!(seqs, [2, 3, 4, 6, 7]);
    }

    #[test]
    fn hostile_text_is_inert_in_every_format() {
        assert_eq!(md("a|b\u{1b}[2J"), "a\\|b\\u{1b}\\[2J");
        let beacon = md(
            "![x](https://attacker.example/b) <img src=x onerror=alert(1)> [a](b) www.example.com",
        );
        for live in ["![", "](", " <img", "https://", "[a]", "www."] {
            assert!(!beacon.contains(live), "{live} in {beacon}");
        }
        assert_eq!(md("2026-11-28T09:30:15Z"), "2026-11-28T09:30:15Z");
        assert_eq!(
            html("<script>alert('x')</script>&\u{7}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;\\u{7}"
        );
    }
}
