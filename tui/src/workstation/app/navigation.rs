//! Moving around the workstation: the command line, refreshes, the cursor, sorting and
//! filtering of whichever table is shown.

use crate::filter::Filter;

use super::*;

impl App {
    pub(super) fn run_command_line(&mut self, line: &str) -> Vec<Effect> {
        let mut words = line.split_whitespace();
        let Some(word) = words.next() else {
            return vec![];
        };
        if let Some((_, view)) = View::COMMANDS.iter().find(|(name, _)| *name == word) {
            return self.show(*view);
        }
        match word {
            "q" | "quit" => self.should_quit = true,
            "help" | "h" => self.mode = Mode::Help { scroll: 0 },
            "refresh" => return self.refresh(true),
            "save" => match words.next() {
                Some(name) => {
                    let text = self.current_filter_text();
                    if text.is_empty() {
                        self.status = Some(Status::Error(
                            "no filter to save: filter the view first (/), then :save NAME".into(),
                        ));
                    } else {
                        return vec![Effect::SaveFilter {
                            name: name.to_owned(),
                            text,
                        }];
                    }
                }
                None => {
                    self.status = Some(Status::Error("name it: :save NAME".into()));
                }
            },
            "load" => {
                let name = words.next().unwrap_or_default();
                match self.saved_filters.get(name).cloned() {
                    Some(text) => self.apply_filter(&text),
                    None => {
                        let names: Vec<&str> =
                            self.saved_filters.keys().map(String::as_str).collect();
                        self.status = Some(Status::Error(if names.is_empty() {
                            "no saved filter yet: filter a view (/), then :save NAME".to_owned()
                        } else {
                            format!(
                                "no saved filter '{}': saved are {}",
                                crate::text::clip_untrusted(name, 40),
                                names.join(", ")
                            )
                        }));
                    }
                }
            }
            "profile" | "region" if !self.identity_switch => {
                self.status = Some(Status::Error(
                    "the lab's workstation acts as the lab's operator: :profile and :region switch a workstation on AWS (irf without lab)".into(),
                ));
            }
            "profile" => match words.next() {
                Some(name) => {
                    self.status = Some(Status::Info(format!("signing in as profile {name}…")));
                    return vec![Effect::SwitchIdentity {
                        profile: Some(name.to_owned()),
                        region: None,
                    }];
                }
                None => {
                    self.status = Some(Status::Error(
                        "name a profile of ~/.aws/config: :profile NAME (aws sso login --profile NAME first, for an SSO profile)".into(),
                    ));
                }
            },
            "region" => match words.next().map(irf_engine::config::region_name) {
                Some(Ok(name)) => {
                    self.status = Some(Status::Info(format!("switching to region {name}…")));
                    return vec![Effect::SwitchIdentity {
                        profile: None,
                        region: Some(name),
                    }];
                }
                Some(Err(err)) => {
                    self.status = Some(Status::Error(crate::text::clip_untrusted(
                        &err.to_string(),
                        200,
                    )));
                }
                None => {
                    self.status = Some(Status::Error("name a region: :region NAME".into()));
                }
            },
            "theme" => match words.next() {
                Some(name) => return vec![Effect::SetTheme(name.to_owned())],
                None => {
                    self.status = Some(Status::Error(format!(
                        "name a theme: {}",
                        crate::theme::SHIPPED
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            },
            other => {
                self.status = Some(Status::Error(format!(
                    "'{}' is not a command: try instances, findings, accounts, cases, approvals, evidence, images, hosts, theme NAME, profile NAME, region NAME, help, quit",
                    crate::text::clip_untrusted(other, 40)
                )));
            }
        }
        vec![]
    }

    pub(super) fn refresh(&mut self, asked: bool) -> Vec<Effect> {
        if asked {
            // The case views refresh what they show; the sweep has its own timer.
            match self.view {
                View::Cases => return self.load_cases(),
                View::Case => return self.load_case(),
                View::Approvals => return self.load_approvals(),
                View::Evidence => return self.load_evidence(),
                View::Images => return self.load_images(),
                View::Hosts => return self.load_hosts(),
                _ => {}
            }
        }
        if self.sweep.running {
            if asked {
                self.status = Some(Status::Info("a refresh is already under way".into()));
            }
            return vec![];
        }
        self.sweep.running = true;
        vec![Effect::StartSweep, Effect::LoadFindings]
    }

    /// Changes the list on screen (moves, sorts, filters): the details then show a row that
    /// may be another, from their first field.
    pub(super) fn with_pane(&mut self, change: impl FnOnce(&mut dyn Pane)) {
        // The case view is not a table: it has nothing to sort or select.
        if let Some(pane) = self.pane_mut() {
            change(pane);
        }
        self.details.first = 0;
    }

    pub(super) fn move_by(&mut self, delta: isize) {
        if self.view == View::Case {
            let first = self
                .case
                .as_ref()
                .map_or(0, |screen| screen.first.saturating_add_signed(delta));
            self.scroll_case_to(first);
        } else if self.detail_shown() && self.details.focused {
            self.scroll_details_to(self.details.first.saturating_add_signed(delta));
        } else {
            self.with_pane(|t| t.move_cursor(delta));
        }
    }

    pub(super) fn select_position(&mut self, position: usize) {
        if self.view == View::Case {
            self.scroll_case_to(position);
        } else if self.detail_shown() && self.details.focused {
            self.scroll_details_to(position);
        } else {
            self.with_pane(|t| t.select(position));
        }
    }

    /// With the details focused the movement keys scroll them, a field at a time: an
    /// instance's tags and findings, a finding's description, an account's whole error.
    fn scroll_details_to(&mut self, first: usize) {
        let fields = self.detail_fields().len();
        self.details.first = first.min(fields.saturating_sub(1));
    }

    /// In the case view the movement keys scroll its panel: artifacts of an instance with
    /// more volumes than fit, a long custody ledger, the analysis.
    pub(super) fn scroll_case_to(&mut self, first: usize) {
        if let Some(screen) = &mut self.case {
            let verification = self.verifications.get(&screen.case.case_id);
            let count = screen
                .detail
                .as_ref()
                .map_or(0, |d| screen.panel.scroll_steps(d, verification));
            screen.first = first.min(count.saturating_sub(1));
        }
    }

    /// The selection's position in the current view.
    pub fn current_cursor(&self) -> usize {
        self.pane().map_or(0, |pane| pane.cursor())
    }

    pub(super) fn current_filter_text(&self) -> String {
        self.pane()
            .and_then(|pane| pane.filter())
            .map(|f| f.text().to_owned())
            .unwrap_or_default()
    }

    pub(super) fn apply_filter(&mut self, text: &str) {
        match Filter::parse(text) {
            Ok(filter) => {
                self.set_filter(Some(filter));
                self.status = None;
            }
            Err(err) => self.status = Some(Status::Error(err)),
        }
    }

    /// Opens the instances view with `filter`: a filter text, or `@NAME` for a saved one
    /// (`--filter`). What does not parse, or names no saved filter, is said on the status
    /// line and nothing is filtered.
    pub fn filter_instances(&mut self, filter: &str) {
        self.view = View::Instances;
        let text = match filter.strip_prefix('@') {
            Some(name) => match self.saved_filters.get(name) {
                Some(text) => text.clone(),
                None => {
                    self.status = Some(Status::Error(format!(
                        "--filter @{}: no saved filter of that name (:save NAME keeps one)",
                        crate::text::clip_untrusted(name, 40)
                    )));
                    return;
                }
            },
            None => filter.to_owned(),
        };
        self.apply_filter(&text);
        if let Some(Status::Error(err)) = &self.status {
            self.status = Some(Status::Error(format!("--filter: {err}")));
        }
    }

    pub(super) fn set_filter(&mut self, filter: Option<Filter>) {
        self.with_pane(|pane| pane.set_filter(filter));
    }

    /// `o`: the views that list rows related to the selected one. With one, it opens at
    /// once; with more, a picker names them and the view's own key opens it.
    pub(super) fn jump_to_related(&mut self) -> Vec<Effect> {
        let targets = self.related_targets();
        match targets.as_slice() {
            [] => {
                self.status = Some(Status::Error("select a row first".into()));
                vec![]
            }
            [only] => {
                let only = only.clone();
                self.open_related(&only)
            }
            _ => {
                self.mode = Mode::Related(targets);
                vec![]
            }
        }
    }

    /// Each view with rows related to the selected row, and the filter term that finds them:
    /// an instance's findings, cases, evidence and analysis hosts (a case id names its
    /// instance, so the instance id finds them all), a case's hosts and evidence, an
    /// account's instances and findings.
    pub fn related_targets(&self) -> Vec<Related> {
        use View::*;
        let around_instance = |instance: String| -> Vec<Related> {
            [Instances, Findings, Cases, Evidence, Hosts]
                .into_iter()
                .map(|view| Related::new(view, &instance))
                .collect()
        };
        let around_case = |case_id: String| -> Vec<Related> {
            let mut targets = vec![
                Related::new(Cases, &case_id),
                Related::new(Evidence, &case_id),
                Related::new(Hosts, &case_id),
            ];
            if let Some(instance) = self.case_instance(&case_id) {
                targets.push(Related::new(Instances, &instance));
                targets.push(Related::new(Findings, &instance));
            }
            targets
        };
        let mut targets = match self.view {
            Instances => self
                .instances
                .table
                .selected()
                .map(|row| around_instance(row.instance.id.to_string()))
                .unwrap_or_default(),
            Findings => self
                .findings
                .table
                .selected()
                .and_then(|row| row.finding.instance_id.clone())
                .map(around_instance)
                .unwrap_or_default(),
            Accounts => self
                .accounts
                .table
                .selected()
                .map(|row| {
                    let term = format!("account:{}", row.id);
                    vec![
                        Related::new(Instances, &term),
                        Related::new(Findings, &term),
                    ]
                })
                .unwrap_or_default(),
            Cases => self
                .cases
                .table
                .selected()
                .map(|row| around_case(row.case.case_id.to_string()))
                .unwrap_or_default(),
            Hosts => self
                .hosts
                .table
                .selected()
                .map(|row| around_case(row.host.case_id.clone()))
                .unwrap_or_default(),
            Evidence => self
                .evidence
                .table
                .selected()
                .map(|row| around_case(row.item.case_id.to_string()))
                .unwrap_or_default(),
            Approvals => self
                .approvals
                .table
                .selected()
                .map(|row| around_instance(row.pending.instance.instance_id.clone()))
                .unwrap_or_default(),
            Case | Images => Vec::new(),
        };
        // Not the list the row is on: `/` narrows it.
        targets.retain(|related| related.view != self.view);
        targets
    }

    /// The instance of case `case_id`: as the cases list holds it, else as its id names it
    /// (the cases list loads only once shown).
    fn case_instance(&self, case_id: &str) -> Option<String> {
        self.cases
            .table
            .rows()
            .iter()
            .find(|row| row.case.case_id.as_str() == case_id)
            .map(|row| row.case.subject.instance_id.clone())
            .or_else(|| {
                CaseId::parse(case_id)
                    .ok()?
                    .named_instance()
                    .map(str::to_owned)
            })
    }

    /// Shows the related view filtered to the rows its term finds.
    pub(super) fn open_related(&mut self, related: &Related) -> Vec<Effect> {
        let Related { view, term } = related;
        let view = *view;
        // A value from AWS goes into the filter as one quoted term.
        let term = if term.contains(' ') || term.contains('"') {
            format!("\"{}\"", term.replace('"', ""))
        } else {
            term.clone()
        };
        let effects = self.show(view);
        self.apply_filter(&term);
        if self.status.is_none() {
            self.status = Some(Status::Info(format!(
                "{} related to the selected row (/{term}; esc clears)",
                view.title()
            )));
        }
        effects
    }
}
