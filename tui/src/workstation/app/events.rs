//! What the engine reports back, folded into the state: identity, the sweep's stream, each
//! view's rows as they load, and the outcome of every action.

use std::collections::BTreeMap;

use irf_engine::findings::{Finding, summarize_by_instance};
use irf_engine::inventory::{Instance, SweepEvent};
use irf_engine::store::case_table::Opened;

use crate::workstation::failure::Failure;
use crate::workstation::table::{ListTable, ListView};
use crate::workstation::views::{
    AccountRow, ApprovalRow, CaseRow, EvidenceRow, FindingRow, HostRow, ImageRow, InstanceRow,
};

use super::*;

impl App {
    /// Applies one engine event.
    pub fn on_engine(&mut self, event: EngineEvent) -> Vec<Effect> {
        match event {
            EngineEvent::Identity(Ok(who)) => self.identity = Load::Ready(who),
            EngineEvent::Identity(Err(err)) => {
                self.note_signed_out(&err);
                self.identity = Load::Failed(err.to_string());
            }
            EngineEvent::Scope(Ok(scope)) => {
                if self.sweep.sweeps_completed == 0 {
                    self.accounts.table.set_rows(
                        scope
                            .accounts
                            .iter()
                            .map(|a| AccountRow::new(a.id.as_str(), &a.name))
                            .collect(),
                    );
                }
                // Findings that came first learn their accounts' names.
                let names: HashMap<String, String> = scope
                    .accounts
                    .iter()
                    .map(|a| (a.id.to_string(), a.name.clone()))
                    .collect();
                let rows: Vec<FindingRow> = self
                    .findings
                    .table
                    .rows()
                    .iter()
                    .map(|row| {
                        let name = names.get(&row.finding.account).map(String::as_str);
                        FindingRow::new(row.finding.clone(), name)
                    })
                    .collect();
                self.findings.table.set_rows(rows);
                self.scope = Load::Ready(scope);
                self.sweep.running = true;
                self.pending_instances.clear();
                self.pending_failures.clear();
            }
            EngineEvent::Scope(Err(err)) => {
                self.note_signed_out(&err);
                self.scope = Load::Failed(err.to_string());
                self.sweep.running = false;
            }
            EngineEvent::Sweep(event) => self.on_sweep(event),
            EngineEvent::Findings(Ok(findings)) => {
                self.finding_summaries = summarize_by_instance(&findings);
                let rows = findings
                    .into_iter()
                    .map(|f| {
                        let name = self.account_name(&f.account).map(str::to_owned);
                        FindingRow::new(f, name.as_deref())
                    })
                    .collect();
                self.findings.finish_load(Ok(rows));
                let summaries = &self.finding_summaries;
                self.instances.table.update_rows(|row| {
                    row.instance.findings = summaries
                        .get(row.instance.id.as_str())
                        .copied()
                        .unwrap_or_default();
                });
            }
            EngineEvent::Findings(Err(err)) => self.findings.finish_load(Err(err.to_string())),
            EngineEvent::FindingResolved(Ok(title)) => {
                self.status = Some(Status::Info(format!(
                    "resolved: {}",
                    crate::text::clip_untrusted(&title, 60)
                )));
                return vec![Effect::LoadFindings];
            }
            EngineEvent::FindingResolved(Err(err)) => {
                self.status = Some(Status::Error(err.to_string()));
            }
            EngineEvent::ThemeChanged(Ok((name, description))) => {
                self.status = Some(Status::Info(format!("theme {name}: {description}")));
                self.theme_name = name;
            }
            EngineEvent::ThemeChanged(Err(err)) => {
                self.status = Some(Status::Error(err.to_string()));
            }
            EngineEvent::AcquisitionStarted {
                instance_id,
                result: Ok(opened),
            } => {
                let joined = matches!(*opened, Opened::Joined(_));
                let case = match *opened {
                    Opened::New(case) | Opened::Joined(case) => case,
                };
                self.status = Some(Status::Info(if joined {
                    format!(
                        "joined open case {} for {instance_id}: an acquisition is already under way",
                        case.case_id
                    )
                } else {
                    format!(
                        "opened case {} for {instance_id}: acquiring memory and disk",
                        case.case_id
                    )
                }));
                self.upsert_case_row(&case);
                return self.open_case(case);
            }
            EngineEvent::AcquisitionStarted {
                instance_id,
                result: Err(err),
            } => {
                self.status = Some(Status::Error(format!(
                    "could not acquire {instance_id}: {err}"
                )));
            }
            EngineEvent::Cases(result) => {
                self.list_loaded(View::Cases, |app| &mut app.cases, result, CaseRow::new);
            }
            EngineEvent::Approvals(result) => {
                self.list_loaded(
                    View::Approvals,
                    |app| &mut app.approvals,
                    result,
                    ApprovalRow::new,
                );
            }
            EngineEvent::CaseVerified { case_id, result } => {
                // Said on the status line while the case is open; kept for it either way.
                if self
                    .case
                    .as_ref()
                    .is_some_and(|screen| screen.case.case_id == case_id)
                {
                    self.status = Some(match &result {
                        Ok(v) if v.all_verified() => Status::Info(format!(
                            "case {case_id}: all {} items verified",
                            v.items.len()
                        )),
                        Ok(v) => Status::Error(format!(
                            "case {case_id}: {} of {} items did NOT verify (the verification panel has each in full)",
                            v.items.iter().filter(|i| !i.verified).count(),
                            v.items.len()
                        )),
                        Err(err) => {
                            Status::Error(format!("could not verify case {case_id}: {err}"))
                        }
                    });
                    // What did not verify is what the responder reads next: its panel opens.
                    // A new verification is read from its top.
                    if let Some(screen) = self.case.as_mut() {
                        if !matches!(&result, Ok(v) if v.all_verified()) {
                            screen.panel = CasePanel::Verification;
                        }
                        if screen.panel == CasePanel::Verification {
                            screen.first = 0;
                        }
                    }
                }
                self.verifications
                    .insert(case_id, result.map(|v| *v).map_err(|err| err.to_string()));
            }
            EngineEvent::ReportWritten(result) => {
                self.status = Some(match result {
                    Ok(path) => Status::Info(format!("report written to {path}")),
                    Err(err) => Status::Error(format!("could not write the report: {err}")),
                });
            }
            EngineEvent::Evidence(result) => {
                self.list_loaded(
                    View::Evidence,
                    |app| &mut app.evidence,
                    result,
                    EvidenceRow::new,
                );
            }
            EngineEvent::Images(result) => {
                let result = result.map(|listed| {
                    let listed = *listed;
                    self.pipeline = Some(listed.pipeline);
                    listed.images
                });
                self.list_loaded(View::Images, |app| &mut app.images, result, ImageRow::new);
            }
            EngineEvent::ImageBuildStarted(result) => {
                self.status = Some(match result {
                    Ok(arn) => Status::Info(format!("build started: {arn}")),
                    Err(err) => Status::Error(format!("the build did not start: {err}")),
                });
                return self.load_images();
            }
            EngineEvent::Hosts(result) => {
                self.list_loaded(View::Hosts, |app| &mut app.hosts, result, HostRow::new);
            }
            EngineEvent::FilterSaved(result) => match result {
                Ok(SavedFilter { name, text, file }) => {
                    self.status = Some(Status::Info(format!(
                        "filter {name} saved in {file}: :load {name} applies it"
                    )));
                    self.saved_filters.insert(name, text);
                }
                Err(err) => {
                    self.status = Some(Status::Error(format!("the filter was not saved: {err}")));
                }
            },
            EngineEvent::HostLaunchProgress { case_id, stage } => {
                // Said only while that launch is the one under way (a late word of an ended
                // launch would overwrite its outcome).
                if self.launching.as_ref() == Some(&case_id) {
                    self.status = Some(Status::Info(format!("host for case {case_id}: {stage}…")));
                }
            }
            EngineEvent::HostLaunched(result) => {
                self.launching = None;
                self.status = Some(match result {
                    Ok(outcome) => Status::Info(format!(
                        "{} is up in {} with {} artifacts verified on it: s in :hosts opens a shell",
                        outcome.instance_id,
                        outcome.subnet_id,
                        outcome.evidence.len()
                    )),
                    Err(err) => Status::Error(format!("launch failed: {err}")),
                });
                return self.load_hosts();
            }
            EngineEvent::SessionEnded(result) | EngineEvent::HostTerminated(result) => {
                self.status = Some(match result {
                    Ok(done) => Status::Info(done),
                    Err(err) => Status::Error(err.to_string()),
                });
                return self.load_hosts();
            }
            EngineEvent::LegalHoldSet(result) => {
                self.status = Some(match result {
                    Ok(done) => Status::Info(done),
                    Err(err) => Status::Error(err.to_string()),
                });
                return self.load_evidence();
            }
            EngineEvent::ContainmentPlanned { decision, result } => match result {
                // Only while nothing else took the keys meanwhile.
                Ok(plan) if self.mode == Mode::Normal => {
                    self.status = None;
                    self.prompt_approval(decision, &plan);
                }
                Ok(_) => {}
                Err(err) => {
                    self.status = Some(Status::Error(format!(
                        "could not plan the containment, so it cannot be approved here: {err}"
                    )));
                }
            },
            EngineEvent::ContainmentDone(result) => {
                self.status = Some(match result {
                    Ok(done) => Status::Info(done),
                    Err(err) => Status::Error(err.to_string()),
                });
                let mut effects = self.load_approvals();
                effects.extend(self.load_case());
                return effects;
            }
            EngineEvent::CaseLoaded { case_id, result } => {
                let Some(screen) = self
                    .case
                    .as_mut()
                    .filter(|screen| screen.case.case_id == case_id)
                else {
                    // The answer for a case the operator has left since.
                    return vec![];
                };
                screen.loading = false;
                match result {
                    Ok(detail) => {
                        screen.case = detail.case.clone();
                        let verification = self.verifications.get(&case_id);
                        screen.first = screen.first.min(
                            screen
                                .panel
                                .scroll_steps(&detail, verification)
                                .saturating_sub(1),
                        );
                        screen.detail = Some(*detail);
                        screen.error = None;
                        let case = screen.case.clone();
                        self.upsert_case_row(&case);
                    }
                    Err(err) => screen.error = Some(err.to_string()),
                }
            }
        }
        vec![]
    }

    pub(super) fn on_sweep(&mut self, event: SweepEvent) {
        let streaming = self.sweep.sweeps_completed == 0;
        match event {
            SweepEvent::Started { accounts, regions } => {
                self.sweep.pairs_total = accounts * regions;
                self.sweep.pairs_done = 0;
                self.sweep.failures = 0;
            }
            SweepEvent::Instances { instances, .. } => {
                if streaming {
                    let rows = self.rows_with_findings(instances);
                    let start = self.instances.table.rows().len();
                    self.instances.table.extend(rows);
                    self.index_instances_from(start);
                    let added = &self.instances.table.rows()[start..];
                    self.accounts.table.update_rows(|row| {
                        for instance in added.iter().map(|r| &r.instance) {
                            if instance.account == row.id {
                                row.count(instance);
                            }
                        }
                    });
                } else {
                    self.pending_instances.extend(instances);
                }
            }
            SweepEvent::PairDone { .. } => self.sweep.pairs_done += 1,
            SweepEvent::Failed {
                account,
                region,
                error,
                ..
            } => {
                self.sweep.failures += 1;
                let message = match region {
                    Some(region) => format!("{region}: {error}"),
                    None => error.to_string(),
                };
                if streaming {
                    self.accounts.table.update_rows(|row| {
                        if row.id == account {
                            row.errors.push(message.clone());
                        }
                    });
                } else {
                    self.pending_failures.push((account, message));
                }
            }
            SweepEvent::Finished => {
                self.sweep.running = false;
                self.sweep.sweeps_completed += 1;
                self.last_refresh = Some(self.now.clone());
                if !streaming {
                    self.swap_in_pending();
                }
            }
        }
    }

    /// A later sweep replaces the tables only once it is complete, so a refresh never
    /// empties the screen under the operator's eyes; selection and scroll stay.
    pub(super) fn swap_in_pending(&mut self) {
        let instances = std::mem::take(&mut self.pending_instances);
        let failures = std::mem::take(&mut self.pending_failures);
        let mut accounts: BTreeMap<String, AccountRow> = match &self.scope {
            Load::Ready(scope) => scope
                .accounts
                .iter()
                .map(|a| (a.id.to_string(), AccountRow::new(a.id.as_str(), &a.name)))
                .collect(),
            _ => BTreeMap::new(),
        };
        for instance in &instances {
            if let Some(row) = accounts.get_mut(instance.account.as_str()) {
                row.count(instance);
            }
        }
        for (account, message) in failures {
            if let Some(row) = accounts.get_mut(&account) {
                row.errors.push(message);
            }
        }
        let rows = self.rows_with_findings(instances);
        self.instances.table.set_rows(rows);
        self.instance_positions.clear();
        self.index_instances_from(0);
        self.accounts
            .table
            .set_rows(accounts.into_values().collect());
    }

    /// Table rows for swept instances, each with its open findings.
    pub(super) fn rows_with_findings(&self, instances: Vec<Instance>) -> Vec<InstanceRow> {
        instances
            .into_iter()
            .map(|mut instance| {
                instance.findings = self
                    .finding_summaries
                    .get(instance.id.as_str())
                    .copied()
                    .unwrap_or_default();
                InstanceRow::new(instance)
            })
            .collect()
    }

    /// Records the positions of the rows from `start` on. Rows are only appended or replaced
    /// whole (sorting reorders the view, not the rows), so positions change nowhere else.
    pub(super) fn index_instances_from(&mut self, start: usize) {
        for (position, row) in self.instances.table.rows().iter().enumerate().skip(start) {
            self.instance_positions
                .insert(row.instance.id.clone(), position);
        }
    }

    /// Instances by id, for the findings view and details.
    /// Remembers that no credentials could be had, so that every view says what to do
    /// instead of standing empty.
    fn note_signed_out(&mut self, err: &Failure) {
        if let Some(irf_engine::aws::AwsError::Credentials { message }) =
            err.downcast_ref::<irf_engine::aws::AwsError>()
        {
            self.signed_out = Some(message.clone());
        }
    }

    /// A list view's load came back: its rows, or the failure, also said on the status
    /// line when the view is on screen (its last rows stay).
    fn list_loaded<T, R: ListView>(
        &mut self,
        view: View,
        list: fn(&mut App) -> &mut ListTable<R>,
        outcome: Result<Vec<T>, Failure>,
        row: fn(T) -> R,
    ) {
        let outcome = outcome
            .map(|items| items.into_iter().map(row).collect())
            .map_err(|err| err.to_string());
        if let Err(err) = &outcome
            && self.view == view
        {
            let failed = R::EMPTY.map_or("could not load the view", |empty| empty.failed);
            self.status = Some(Status::Error(format!("{failed}: {err}")));
        }
        list(self).finish_load(outcome);
    }

    pub fn instance(&self, id: &str) -> Option<&Instance> {
        let position = *self.instance_positions.get(id)?;
        self.instances
            .table
            .rows()
            .get(position)
            .map(|r| &r.instance)
    }

    /// Findings about an instance, for its details.
    pub fn findings_of(&self, instance_id: &str) -> Vec<&Finding> {
        self.findings
            .table
            .rows()
            .iter()
            .map(|r| &r.finding)
            .filter(|f| f.instance_id.as_deref() == Some(instance_id))
            .collect()
    }
}
