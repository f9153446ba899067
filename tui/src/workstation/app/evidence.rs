//! The update for the evidence view and the findings' one decision: legal holds on artifacts,
//! and a finding resolved.

use irf_engine::findings::FindingRef;

use super::*;

impl App {
    pub(super) fn load_evidence(&mut self) -> Vec<Effect> {
        if !self.evidence.begin_load() {
            return vec![];
        }
        vec![Effect::LoadEvidence]
    }

    /// Asks before placing or removing the selected artifact's legal hold.
    pub(super) fn confirm_legal_hold(&mut self) {
        let Some(row) = self.evidence.table.selected() else {
            self.status = Some(Status::Error("no artifact is selected".into()));
            return;
        };
        let on = !row.held();
        let item = &row.item;
        self.mode = Mode::Confirm(Confirmation {
            scroll: 0,
            title: if on {
                "Place legal hold".into()
            } else {
                "Remove legal hold".into()
            },
            lines: vec![
                format!("{} of case {}", item.kind, item.case_id),
                item.key.clone(),
                format!("SHA-256 {}", item.sha256.as_deref().unwrap_or("-")),
                if on {
                    "A legal hold keeps this version from deletion until it is removed, whatever its retention."
                        .into()
                } else {
                    "Without the hold, the version can be deleted once its retention ends.".into()
                },
                "Recorded in the case's ledger with your identity.".into(),
            ],
            effect: Effect::SetLegalHold {
                case_id: item.case_id.clone(),
                key: item.key.clone(),
                on,
            },
        });
    }

    pub(super) fn confirm_resolve(&mut self) {
        let Some(row) = self.findings.table.selected() else {
            self.status = Some(Status::Error("no finding is selected".into()));
            return;
        };
        let finding = &row.finding;
        self.mode = Mode::Confirm(Confirmation {
            scroll: 0,
            title: "Resolve finding".into(),
            lines: vec![
                format!("{} {}", finding.severity, finding.title),
                format!("account {} region {}", finding.account, finding.region),
                format!(
                    "workflow status {} -> RESOLVED (recorded with your identity)",
                    finding.workflow_status
                ),
            ],
            effect: Effect::ResolveFinding {
                finding: FindingRef::from(finding),
                title: finding.title.clone(),
                instance_id: finding.instance_id.clone(),
            },
        });
    }
}
