//! The update for the analysis views: the image pipeline and its builds, hosts launched for a
//! case, sessions into them, and their termination.

use irf_engine::model::case::Case;
use irf_engine::model::instance::InstanceState;

use super::*;

impl App {
    pub(super) fn load_images(&mut self) -> Vec<Effect> {
        if !self.images.begin_load() {
            return vec![];
        }
        vec![Effect::LoadImages]
    }

    pub(super) fn load_hosts(&mut self) -> Vec<Effect> {
        if !self.hosts.begin_load() {
            return vec![];
        }
        vec![Effect::LoadHosts]
    }

    /// Asks before starting an image build.
    pub(super) fn confirm_build(&mut self) {
        let pipeline = self
            .pipeline
            .as_ref()
            .map_or_else(|| "the SIFT pipeline".to_owned(), |p| p.name.clone());
        self.mode = Mode::Confirm(Confirmation {
            scroll: 0,
            title: "Start an image build".into(),
            lines: vec![
                format!("pipeline {pipeline}"),
                "Image Builder builds and tests a new SIFT image from the recipe.".into(),
                "It shows here as it goes; hosts launch from the newest AVAILABLE image.".into(),
            ],
            effect: Effect::StartImageBuild,
        });
    }

    /// The case a launch is for: the open case in the case view, else the selected case.
    pub(super) fn launch_case(&self) -> Option<&Case> {
        match self.view {
            View::Case => self.case.as_ref().map(|screen| &screen.case),
            View::Cases => self.cases.table.selected().map(|row| &row.case),
            _ => None,
        }
    }

    /// Asks before launching an analysis host for a case.
    pub(super) fn confirm_launch(&mut self) {
        if let Some(case_id) = &self.launching {
            self.status = Some(Status::Error(format!(
                "a host for case {case_id} is still being launched; its outcome shows here"
            )));
            return;
        }
        let Some(case) = self.launch_case() else {
            self.status = Some(Status::Error(
                "open or select a case first (:cases): a host is launched for a case's evidence"
                    .into(),
            ));
            return;
        };
        let evidence = self
            .case
            .as_ref()
            .filter(|screen| screen.case.case_id == case.case_id)
            .and_then(|screen| screen.detail.as_ref())
            .map(|detail| detail.artifacts.len());
        self.mode = Mode::Confirm(Confirmation {
            scroll: 0,
            title: "Launch an analysis host".into(),
            lines: vec![
                format!("for case {} ({})", case.case_id, case.subject.instance_id),
                "From the newest AVAILABLE SIFT image into a private Analysis VPC subnet:".into(),
                "no public address, analyst profile, IMDSv2 only, encrypted root, case tags.".into(),
                match evidence {
                    Some(n) => format!("The case's {n} artifacts are fetched onto it and each SHA-256 checked there."),
                    None => "The case's artifacts are fetched onto it and each SHA-256 checked there.".into(),
                },
                "Recorded in the case's ledger. It runs (and costs) until terminated (T in :hosts).".into(),
            ],
            effect: Effect::LaunchHost {
                case_id: case.case_id.clone(),
            },
        });
    }

    /// Hands the terminal to a shell on the selected host.
    pub(super) fn open_session(&mut self) -> Vec<Effect> {
        let Some(row) = self.hosts.table.selected() else {
            self.status = Some(Status::Error("no analysis host is selected".into()));
            return vec![];
        };
        let host = &row.host;
        if host.state != InstanceState::Running {
            self.status = Some(Status::Error(format!(
                "{} is {}: a session needs a running host",
                host.instance_id, host.state
            )));
            return vec![];
        }
        self.status = Some(Status::Info(format!(
            "opening a session to {}…",
            host.instance_id
        )));
        vec![Effect::OpenSession {
            instance_id: host.instance_id.clone(),
        }]
    }

    /// Asks for the host's instance id before terminating it.
    pub(super) fn prompt_terminate(&mut self) {
        let Some(row) = self.hosts.table.selected() else {
            self.status = Some(Status::Error("no analysis host is selected".into()));
            return;
        };
        let host = &row.host;
        self.mode = Mode::Typed(TypedPrompt {
            scroll: 0,
            title: "Terminate analysis host".into(),
            lines: vec![
                format!(
                    "{} ({}) of case {}",
                    host.instance_id, host.instance_type, host.case_id
                ),
                "The host, its root volume and everything on it are deleted;".into(),
                "the case's evidence stays in the evidence bucket.".into(),
                "Recorded in the case's ledger.".into(),
                "Type the instance id to terminate, enter to go ahead, esc to cancel.".into(),
            ],
            expected: Some(host.instance_id.clone()),
            input: String::new(),
            decision: TypedDecision::TerminateHost(host.instance_id.clone()),
        });
    }
}
