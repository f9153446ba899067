//! The update for the cases and the case view: loading and polling them, opening one, and
//! starting an acquisition with a key.

use irf_engine::model::case::{Case, CaseSubject, ContainmentPolicy};

use irf_engine::config::AccountId;
use irf_engine::inventory::SsmReachability;

use crate::workstation::views::CaseRow;

use super::*;

impl App {
    pub(super) fn load_cases(&mut self) -> Vec<Effect> {
        if !self.cases.begin_load() {
            return vec![];
        }
        vec![Effect::LoadCases]
    }

    pub(super) fn load_case(&mut self) -> Vec<Effect> {
        match &mut self.case {
            Some(screen) if !screen.loading => {
                screen.loading = true;
                vec![Effect::LoadCase(screen.case.case_id.clone())]
            }
            _ => vec![],
        }
    }

    /// The cases view polls while it is shown and a case is still open: a list of ended
    /// cases does not change by itself.
    pub(super) fn poll_cases(&mut self) -> Vec<Effect> {
        // The approvals view polls on the same beat: new requests appear without a key.
        if self.view == View::Approvals {
            return self.load_approvals();
        }
        // Hosts change state and reachability by themselves; builds move while they run.
        if self.view == View::Hosts {
            return self.load_hosts();
        }
        if self.view == View::Images
            && self
                .images
                .table
                .rows()
                .iter()
                .any(|r| r.image.is_building())
        {
            return self.load_images();
        }
        let any_open = self
            .cases
            .table
            .rows()
            .iter()
            .any(|r| r.case.status.is_open());
        if self.view == View::Cases && matches!(self.cases.state, Load::Ready(_)) && any_open {
            self.load_cases()
        } else {
            vec![]
        }
    }

    /// The case view polls while it is shown and its case is open.
    pub(super) fn poll_case(&mut self) -> Vec<Effect> {
        let open = self
            .case
            .as_ref()
            .is_some_and(|screen| screen.case.status.is_open());
        if self.view == View::Case && open {
            self.load_case()
        } else {
            vec![]
        }
    }

    pub(super) fn open_selected_case(&mut self) -> Vec<Effect> {
        match self.cases.table.selected() {
            Some(row) => {
                let case = row.case.clone();
                self.open_case(case)
            }
            None => vec![],
        }
    }

    /// Shows `case` in the case view and loads its detail.
    pub(super) fn open_case(&mut self, case: Case) -> Vec<Effect> {
        let effect = Effect::LoadCase(case.case_id.clone());
        self.case = Some(CaseScreen::new(case));
        self.view = View::Case;
        vec![effect]
    }

    /// Puts `case` in the cases table, replacing its older record.
    pub(super) fn upsert_case_row(&mut self, case: &Case) {
        let mut rows: Vec<CaseRow> = self
            .cases
            .table
            .rows()
            .iter()
            .filter(|r| r.case.case_id != case.case_id)
            .cloned()
            .collect();
        rows.push(CaseRow::new(case.clone()));
        self.cases.table.set_rows(rows);
    }

    /// The instance `a` acquires in this view: the selected instance, or the instance of
    /// the selected finding, as the subject of a case and a name for people.
    pub(super) fn acquisition_target(&self) -> Result<(CaseSubject, String), String> {
        let containment = self.acquisition.containment.clone()?;
        let subject = |account: &str, region: &str, instance_id: &str| {
            let account = AccountId::parse(account).map_err(|err| err.to_string())?;
            Ok::<_, String>(CaseSubject {
                account,
                region: region.to_owned(),
                instance_id: instance_id.to_owned(),
                memory: true,
                disk: true,
                containment,
            })
        };
        match self.view {
            View::Instances => {
                let row = self
                    .instances
                    .table
                    .selected()
                    .ok_or("no instance is selected")?;
                let i = &row.instance;
                let name = i.name.as_deref().unwrap_or("no name").to_owned();
                Ok((subject(&i.account, &i.region, &i.id)?, name))
            }
            View::Findings => {
                let row = self
                    .findings
                    .table
                    .selected()
                    .ok_or("no finding is selected")?;
                let f = &row.finding;
                let instance_id = f.instance_id.as_deref().ok_or(
                    "the selected finding is not about an EC2 instance: there is nothing to acquire",
                )?;
                let name = self
                    .instance(instance_id)
                    .and_then(|i| i.name.as_deref())
                    .unwrap_or("no name")
                    .to_owned();
                Ok((subject(&f.account, &f.region, instance_id)?, name))
            }
            _ => Err(
                "select an instance (:instances) or a finding about one (:findings) to acquire"
                    .into(),
            ),
        }
    }

    /// Asks before acquiring, saying exactly what will happen.
    pub(super) fn confirm_acquire(&mut self) {
        let (subject, name) = match self.acquisition_target() {
            Ok(target) => target,
            Err(err) => {
                self.status = Some(Status::Error(err));
                return;
            }
        };
        let account_name = self
            .account_name(subject.account.as_str())
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let bucket = self
            .acquisition
            .evidence_bucket
            .as_deref()
            .map(|b| format!(" {b}"))
            .unwrap_or_default();
        let containment = match subject.containment {
            ContainmentPolicy::Approval => {
                "containment waits for approval (A in the case view or in :approvals)"
            }
            ContainmentPolicy::Auto => {
                "containment follows at once when the evidence is verified (policy auto)"
            }
            ContainmentPolicy::Never => {
                "no containment: the instance is left as it is (policy never)"
            }
        };
        let mut lines = vec![
            format!(
                "Acquire memory and disk of {} ({name})",
                subject.instance_id
            ),
            format!(
                "in account {}{account_name}, region {}:",
                subject.account, subject.region
            ),
            "  - its state recorded first, and termination protection turned on".into(),
            "  - snapshots of every attached volume".into(),
            "  - a memory capture through SSM".into(),
        ];
        // Preparing the capture changes the instance when SSM cannot reach it: say so.
        let ssm = self.instance(&subject.instance_id).map(|i| i.ssm);
        if ssm.is_some_and(|ssm| ssm != SsmReachability::Online) {
            lines.push(
                "    (SSM cannot reach it now: the IR instance profile is attached if it has none)"
                    .into(),
            );
        }
        lines.extend([
            format!("  - evidence written to the evidence bucket{bucket}"),
            format!("  - {containment}"),
            "A case is opened in the case table; an open case on this instance is joined instead."
                .into(),
        ]);
        self.mode = Mode::Confirm(Confirmation {
            scroll: 0,
            title: "Acquire memory and disk".into(),
            lines,
            effect: Effect::StartAcquisition { subject },
        });
    }
}
