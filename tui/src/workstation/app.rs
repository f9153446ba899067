//! The workstation's state and its pure update function: actions in, effects out.

use std::collections::BTreeMap;

use irf_engine::inventory::{Instance, SweepEvent};
use irf_engine::organization::{Scope, WhoAmI};

/// Something slow that was asked for, and how it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Load<T> {
    Loading,
    Ready(T),
    Failed(String),
}

/// What the engine reports back to the workstation.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    Identity(Result<WhoAmI, String>),
    Scope(Result<Scope, String>),
    Sweep(SweepEvent),
}

/// What a key, a timer or the engine asks the workstation to do.
#[derive(Debug, Clone)]
pub enum Action {
    Quit,
    SelectNext,
    SelectPrevious,
    Refresh,
    /// The refresh interval passed.
    RefreshDue,
    Engine(Box<EngineEvent>),
}

/// Work the update asks the runtime to start; never awaited in the update itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    LoadIdentity,
    StartSweep,
}

/// One member account's line in the overview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub per_region: BTreeMap<String, usize>,
    pub running: usize,
    pub stopped: usize,
    pub other: usize,
    pub under_incident: usize,
    pub errors: Vec<String>,
}

impl AccountRow {
    fn new(id: &str, name: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            ..Self::default()
        }
    }

    fn count(&mut self, instance: &Instance) {
        *self.per_region.entry(instance.region.clone()).or_default() += 1;
        match instance.state.as_str() {
            "running" => self.running += 1,
            "stopped" => self.stopped += 1,
            _ => self.other += 1,
        }
        if instance.incident_status().is_some() {
            self.under_incident += 1;
        }
    }

    /// Instances in every region together.
    pub fn total(&self) -> usize {
        self.per_region.values().sum()
    }
}

/// Sweep progress for the header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepProgress {
    pub running: bool,
    pub pairs_total: usize,
    pub pairs_done: usize,
    pub sweeps_completed: u64,
}

/// The whole workstation state. Only [`App::update`] changes it.
#[derive(Debug, Clone)]
pub struct App {
    pub identity: Load<WhoAmI>,
    pub scope: Load<Scope>,
    /// Rows shown: the last complete sweep, or the first one while it streams in.
    pub rows: Vec<AccountRow>,
    pending: BTreeMap<String, AccountRow>,
    pub sweep: SweepProgress,
    pub selected: usize,
    pub read_only: bool,
    pub should_quit: bool,
    /// Wall-clock time of the last completed sweep, as the runtime stamps it.
    pub last_refresh: Option<String>,
    pub now: String,
}

impl App {
    pub fn new(read_only: bool) -> Self {
        Self {
            identity: Load::Loading,
            scope: Load::Loading,
            rows: Vec::new(),
            pending: BTreeMap::new(),
            sweep: SweepProgress::default(),
            selected: 0,
            read_only,
            should_quit: false,
            last_refresh: None,
            now: String::new(),
        }
    }

    /// What to do when the workstation opens.
    pub fn start(&mut self) -> Vec<Effect> {
        self.sweep.running = true;
        vec![Effect::LoadIdentity, Effect::StartSweep]
    }

    /// Applies one action; returns the work it asks for.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Quit => {
                self.should_quit = true;
                vec![]
            }
            Action::SelectNext => {
                if !self.rows.is_empty() {
                    self.selected = (self.selected + 1).min(self.rows.len() - 1);
                }
                vec![]
            }
            Action::SelectPrevious => {
                self.selected = self.selected.saturating_sub(1);
                vec![]
            }
            Action::Refresh | Action::RefreshDue if self.sweep.running => vec![],
            Action::Refresh | Action::RefreshDue => {
                self.sweep.running = true;
                vec![Effect::StartSweep]
            }
            Action::Engine(event) => {
                self.on_engine(*event);
                vec![]
            }
        }
    }

    fn on_engine(&mut self, event: EngineEvent) {
        match event {
            EngineEvent::Identity(Ok(who)) => self.identity = Load::Ready(who),
            EngineEvent::Identity(Err(err)) => self.identity = Load::Failed(err),
            EngineEvent::Scope(Ok(scope)) => {
                self.pending = scope
                    .accounts
                    .iter()
                    .map(|a| (a.id.to_string(), AccountRow::new(a.id.as_str(), &a.name)))
                    .collect();
                self.scope = Load::Ready(scope);
                self.sweep.running = true;
                self.show_pending_while_first_sweep();
            }
            EngineEvent::Scope(Err(err)) => {
                self.scope = Load::Failed(err);
                self.sweep.running = false;
            }
            EngineEvent::Sweep(event) => self.on_sweep(event),
        }
    }

    fn on_sweep(&mut self, event: SweepEvent) {
        match event {
            SweepEvent::Started { accounts, regions } => {
                self.sweep.pairs_total = accounts * regions;
                self.sweep.pairs_done = 0;
            }
            SweepEvent::Instances {
                account, instances, ..
            } => {
                if let Some(row) = self.pending.get_mut(&account) {
                    instances.iter().for_each(|i| row.count(i));
                }
            }
            SweepEvent::PairDone { .. } => self.sweep.pairs_done += 1,
            SweepEvent::Failed {
                account,
                region,
                error,
                ..
            } => {
                if let Some(row) = self.pending.get_mut(&account) {
                    let message = match region {
                        Some(region) => format!("{region}: {error}"),
                        None => error.to_string(),
                    };
                    row.errors.push(message);
                }
            }
            SweepEvent::Finished => {
                self.sweep.running = false;
                self.sweep.sweeps_completed += 1;
                self.rows = self.pending.values().cloned().collect();
                self.last_refresh = Some(self.now.clone());
                self.clamp_selection();
                return;
            }
        }
        self.show_pending_while_first_sweep();
    }

    /// The first sweep streams onto the screen; later ones replace it when complete, so a
    /// refresh never empties the table under the operator's eyes.
    fn show_pending_while_first_sweep(&mut self) {
        if self.sweep.sweeps_completed == 0 {
            self.rows = self.pending.values().cloned().collect();
            self.clamp_selection();
        }
    }

    fn clamp_selection(&mut self) {
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    /// Regions in scope, for column headers.
    pub fn regions(&self) -> &[String] {
        match &self.scope {
            Load::Ready(scope) => &scope.regions,
            _ => &[],
        }
    }
}
