//! Which commands each screen offers, written once: the footer lists them, and the update
//! refuses a view's command that is not offered, saying where it works.

use irf_engine::model::case::CaseStatus;

use super::*;

impl App {
    /// The commands this screen offers now, with the footer's word for each, in its order.
    pub fn offered(&self) -> Vec<(KeyAction, &'static str)> {
        use KeyAction::*;
        let mut offered = vec![(Help, "help"), (CommandMode, "command")];
        match self.view {
            View::Case => offered.extend([
                (Back, "cases"),
                (NextPanel, "panel"),
                (Down, "scroll"),
                (Refresh, "refresh"),
                (VerifyCase, "verify"),
                (ExportReport, "report"),
                (LaunchHost, "analysis host"),
            ]),
            View::Approvals => offered.extend([
                (FilterMode, "filter"),
                (Related, "related"),
                (Refresh, "refresh"),
                (ApproveContainment, "approve"),
                (RejectContainment, "refuse"),
            ]),
            View::Evidence => offered.extend([
                (FilterMode, "filter"),
                (ToggleDetail, "details"),
                (Related, "related"),
                (SortNext, "sort"),
                (Refresh, "refresh"),
                (ToggleLegalHold, "legal hold"),
            ]),
            View::Cases => offered.extend([
                (FilterMode, "filter"),
                (ToggleDetail, "open case"),
                (Related, "related"),
                (SortNext, "sort"),
                (Refresh, "refresh"),
                (LaunchHost, "analysis host"),
            ]),
            View::Images => offered.extend([
                (FilterMode, "filter"),
                (Refresh, "refresh"),
                (BuildImage, "build"),
            ]),
            View::Hosts => offered.extend([
                (FilterMode, "filter"),
                (ToggleDetail, "details"),
                (Related, "related"),
                (SortNext, "sort"),
                (Refresh, "refresh"),
                (OpenSession, "shell"),
                (TerminateHost, "terminate"),
            ]),
            View::Instances | View::Findings | View::Accounts => offered.extend([
                (FilterMode, "filter"),
                (ToggleDetail, "details"),
                (Related, "related"),
                (SortNext, "sort"),
                (Refresh, "refresh"),
            ]),
        }
        if self.detail_shown() {
            let label = if self.details.focused {
                "back to the list"
            } else {
                "scroll details"
            };
            offered.insert(3, (NextPanel, label));
        }
        if self.view == View::Findings {
            offered.push((ResolveFinding, "resolve"));
        }
        if matches!(self.view, View::Instances | View::Findings) {
            offered.push((AcquireInstance, "acquire"));
        }
        if let (View::Case, Some(screen)) = (self.view, &self.case) {
            if screen.case.status == CaseStatus::AwaitingApproval {
                offered.push((ApproveContainment, "approve"));
                offered.push((RejectContainment, "refuse"));
            }
            // Containment is the workflow's last step: only an ended case can have one to undo.
            if !screen.case.status.is_open() {
                offered.push((RollbackContainment, "roll back"));
            }
        }
        offered.push((Quit, "quit"));
        offered
    }

    /// The footer's keys, packed into lines of the screen's width: each `<key> label` whole
    /// on a line, so that every offered command is shown on a narrow terminal too.
    pub fn footer_hint_lines(&self) -> Vec<Vec<FooterHint>> {
        let hints: Vec<FooterHint> = self
            .offered()
            .into_iter()
            .filter_map(|(command, label)| {
                let key = self.keymap.key_for(command)?;
                Some(FooterHint {
                    key: format!("<{key}>"),
                    label,
                    mutating: command.is_mutating(),
                })
            })
            .collect();
        let widths: Vec<usize> = hints.iter().map(FooterHint::width).collect();
        crate::workstation::layout::pack(&widths, usize::from(self.size.0))
            .into_iter()
            .map(|line| hints[line].to_vec())
            .collect()
    }

    /// Why `command` does nothing on this screen and where it works; `None` when it is
    /// offered here or works everywhere (movement, views, help).
    pub(super) fn not_offered(&self, command: KeyAction) -> Option<String> {
        use KeyAction::*;
        if !acts_on_a_view(command) || self.offered().iter().any(|(c, _)| *c == command) {
            return None;
        }
        let open_case = self
            .case
            .as_ref()
            .filter(|_| self.view == View::Case)
            .map(|screen| &screen.case);
        Some(match command {
            ResolveFinding => "select a finding first (:findings)".into(),
            AcquireInstance => {
                "select an instance (:instances) or a finding about one (:findings) to acquire"
                    .into()
            }
            ApproveContainment | RejectContainment => match open_case {
                Some(case) => format!(
                    "case {} is {}, not waiting for approval (:approvals lists what waits)",
                    case.case_id,
                    case.status.as_str()
                ),
                None => {
                    "open a case waiting for approval, or select one in :approvals (key 5)".into()
                }
            },
            RollbackContainment => match open_case {
                Some(case) => format!(
                    "case {} is still {}: containment is its last step, there is nothing to roll back yet",
                    case.case_id,
                    case.status.as_str()
                ),
                None => "open the case whose containment to roll back (:cases, enter)".into(),
            },
            ToggleLegalHold => "select an artifact in :evidence (key 6) first".into(),
            VerifyCase | ExportReport => "open a case first (:cases, enter)".into(),
            BuildImage => "builds start from :images (key 7)".into(),
            LaunchHost => {
                "open or select a case first (:cases): a host is launched for a case's evidence"
                    .into()
            }
            OpenSession | TerminateHost => "select an analysis host in :hosts (key 8) first".into(),
            Related => "o jumps from a row of a list to its related rows".into(),
            _ => return None,
        })
    }
}

/// One key of the footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FooterHint {
    /// The key as written in the footer, `<a>`.
    pub key: String,
    pub label: &'static str,
    /// It changes something in AWS (the footer shows it in the danger style).
    pub mutating: bool,
}

impl FooterHint {
    /// Columns it takes: the key, a space, the label and two spaces before the next.
    pub fn width(&self) -> usize {
        use unicode_width::UnicodeWidthStr;
        self.key.width() + 1 + self.label.width() + 2
    }
}

/// Whether `command` acts on what a particular view shows (the rest work everywhere).
fn acts_on_a_view(command: KeyAction) -> bool {
    use KeyAction::*;
    matches!(
        command,
        ResolveFinding
            | AcquireInstance
            | ApproveContainment
            | RejectContainment
            | RollbackContainment
            | ToggleLegalHold
            | VerifyCase
            | ExportReport
            | BuildImage
            | LaunchHost
            | OpenSession
            | TerminateHost
            | Related
    )
}
