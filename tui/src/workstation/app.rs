//! The workstation's state and its pure update: input and engine events in, effects out.
//! Nothing here awaits or touches AWS; the runtime carries out the effects.

use std::collections::{BTreeMap, HashMap};

use irf_engine::findings::{Finding, FindingRef, summarize_by_instance};
use irf_engine::inventory::{Instance, SweepEvent};
use irf_engine::organization::{Scope, WhoAmI};

use super::rows::{
    ACCOUNT_COLUMNS, AccountRow, FINDING_COLUMNS, FindingRow, INSTANCE_COLUMNS, InstanceRow,
};
use super::table::{Sort, TableModel};
use crate::filter::Filter;
use crate::keymap::{Key, KeyAction, KeyName, Keymap};

/// Something slow that was asked for, and how it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Load<T> {
    Loading,
    Ready(T),
    Failed(String),
}

/// The workstation's views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Instances,
    Findings,
    Accounts,
}

impl View {
    /// Command-mode names, canonical first.
    pub const COMMANDS: [(&'static str, View); 9] = [
        ("instances", View::Instances),
        ("ec2", View::Instances),
        ("inst", View::Instances),
        ("findings", View::Findings),
        ("securityhub", View::Findings),
        ("sh", View::Findings),
        ("accounts", View::Accounts),
        ("acc", View::Accounts),
        ("org", View::Accounts),
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Instances => "instances",
            Self::Findings => "findings",
            Self::Accounts => "accounts",
        }
    }
}

/// Commands that command mode completes, besides the views.
const OTHER_COMMANDS: [&str; 4] = ["help", "quit", "theme", "refresh"];

/// A mutating action waiting for the operator's yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub title: String,
    pub lines: Vec<String>,
    pub effect: Effect,
}

/// What keys go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Filter { input: String },
    Command { input: String },
    Help,
    Confirm(Confirmation),
}

/// Input the runtime turns terminal events into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Key(Key),
    ScrollUp,
    ScrollDown,
    /// A left click at a terminal cell.
    Click {
        column: u16,
        row: u16,
    },
    Resize {
        width: u16,
        height: u16,
    },
    /// The refresh interval passed.
    RefreshDue,
}

/// What the engine reports back.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    Identity(Result<WhoAmI, String>),
    Scope(Result<Scope, String>),
    Sweep(SweepEvent),
    Findings(Result<Vec<Finding>, String>),
    FindingResolved(Result<String, String>),
    /// The theme's name and description, or why it could not be loaded.
    ThemeChanged(Result<(String, String), String>),
}

/// Work the update asks the runtime to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    LoadIdentity,
    StartSweep,
    LoadFindings,
    ResolveFinding { finding: FindingRef, title: String },
    SetTheme(String),
}

impl Effect {
    /// Whether the effect changes anything in AWS.
    pub fn is_mutating(&self) -> bool {
        matches!(self, Self::ResolveFinding { .. })
    }
}

/// A one-line message for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Info(String),
    Error(String),
}

/// Sweep progress for the header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepProgress {
    pub running: bool,
    pub pairs_total: usize,
    pub pairs_done: usize,
    pub sweeps_completed: u64,
    pub failures: usize,
}

/// The whole workstation state; only [`App::handle`] and [`App::on_engine`] change it.
#[derive(Debug, Clone)]
pub struct App {
    pub identity: Load<WhoAmI>,
    pub scope: Load<Scope>,
    pub instances: TableModel<InstanceRow>,
    pub findings: TableModel<FindingRow>,
    pub accounts: TableModel<AccountRow>,
    pub findings_state: Load<usize>,
    /// The next sweep's instances, shown once it completes (after the first sweep).
    pending_instances: Vec<Instance>,
    pending_failures: Vec<(String, String)>,
    /// Open findings per instance, for the instances view.
    finding_summaries: HashMap<String, irf_engine::findings::FindingSummary>,
    /// Position of each instance in `instances.rows()`, so the findings view can name a
    /// finding's instance while drawing without scanning every row.
    instance_positions: HashMap<compact_str::CompactString, usize>,
    pub sweep: SweepProgress,
    pub view: View,
    pub mode: Mode,
    pub detail_open: bool,
    pub status: Option<Status>,
    pub read_only: bool,
    pub should_quit: bool,
    pub theme_name: String,
    pub last_refresh: Option<String>,
    /// Wall-clock time, stamped by the runtime before each update.
    pub now: String,
    pub size: (u16, u16),
    pub keymap: Keymap,
}

impl App {
    pub fn new(keymap: Keymap, read_only: bool, theme_name: &str) -> Self {
        Self {
            identity: Load::Loading,
            scope: Load::Loading,
            instances: TableModel::new(
                INSTANCE_COLUMNS.len(),
                Sort {
                    column: 2,
                    descending: false,
                },
            ),
            findings: TableModel::new(
                FINDING_COLUMNS.len(),
                Sort {
                    column: 0,
                    descending: true,
                },
            ),
            accounts: TableModel::new(
                ACCOUNT_COLUMNS.len(),
                Sort {
                    column: 1,
                    descending: false,
                },
            ),
            findings_state: Load::Loading,
            pending_instances: Vec::new(),
            pending_failures: Vec::new(),
            finding_summaries: HashMap::new(),
            instance_positions: HashMap::new(),
            sweep: SweepProgress::default(),
            view: View::Instances,
            mode: Mode::Normal,
            detail_open: false,
            status: None,
            read_only,
            should_quit: false,
            theme_name: theme_name.to_owned(),
            last_refresh: None,
            now: String::new(),
            size: (80, 24),
            keymap,
        }
    }

    /// What to do when the workstation opens.
    pub fn start(&mut self) -> Vec<Effect> {
        self.sweep.running = true;
        vec![
            Effect::LoadIdentity,
            Effect::StartSweep,
            Effect::LoadFindings,
        ]
    }

    /// Rows of the table area that show data (for paging and clicks).
    pub fn page_rows(&self) -> usize {
        usize::from(super::ui::table_body(self).height).max(1)
    }

    /// Applies one input.
    pub fn handle(&mut self, input: Input) -> Vec<Effect> {
        match input {
            Input::Resize { width, height } => {
                self.size = (width, height);
                vec![]
            }
            Input::RefreshDue => self.refresh(false),
            Input::ScrollUp => self.command(KeyAction::Up),
            Input::ScrollDown => self.command(KeyAction::Down),
            Input::Click { column, row } => {
                let body = super::ui::table_body(self);
                if matches!(self.mode, Mode::Normal)
                    && column >= body.x
                    && column < body.x + body.width
                    && row >= body.y
                    && row < body.y + body.height
                {
                    let offset = super::ui::window_start(self.current_cursor(), self.page_rows());
                    self.select_position(offset + usize::from(row - body.y));
                }
                vec![]
            }
            Input::Key(key) => self.key(key),
        }
    }

    fn key(&mut self, key: Key) -> Vec<Effect> {
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => match self.keymap.command(&key) {
                Some(command) => self.command(command),
                None => vec![],
            },
            Mode::Help => vec![],
            Mode::Confirm(confirmation) => {
                if key == Key::char('y') {
                    self.status = Some(Status::Info(format!("{}…", confirmation.title)));
                    vec![confirmation.effect]
                } else {
                    self.status = Some(Status::Info("cancelled: nothing was changed".into()));
                    vec![]
                }
            }
            Mode::Filter { mut input } => {
                if matches!(key.code, KeyName::Backspace | KeyName::Char(_)) {
                    self.status = None;
                }
                match key.code {
                    KeyName::Esc => {
                        self.apply_filter("");
                        return vec![];
                    }
                    KeyName::Enter => {
                        self.apply_filter(&input);
                        if matches!(self.status, Some(Status::Error(_))) {
                            // Stay in the filter line so the operator can fix the term.
                            self.mode = Mode::Filter { input };
                        }
                        return vec![];
                    }
                    KeyName::Backspace => {
                        input.pop();
                    }
                    KeyName::Char(c) if !key.ctrl && !key.alt => input.push(c),
                    _ => {}
                }
                // Filter as the operator types; a half-typed term that does not parse yet
                // leaves the previous result on screen.
                if let Ok(filter) = Filter::parse(&input) {
                    self.set_filter(Some(filter));
                }
                self.mode = Mode::Filter { input };
                vec![]
            }
            Mode::Command { mut input } => match key.code {
                KeyName::Esc => vec![],
                KeyName::Enter => self.run_command_line(&input),
                KeyName::Tab => {
                    if let Some(completed) = complete(&input) {
                        input = completed;
                    }
                    self.mode = Mode::Command { input };
                    vec![]
                }
                KeyName::Backspace => {
                    input.pop();
                    self.mode = Mode::Command { input };
                    vec![]
                }
                KeyName::Char(c) if !key.ctrl && !key.alt => {
                    input.push(c);
                    self.mode = Mode::Command { input };
                    vec![]
                }
                _ => {
                    self.mode = Mode::Command { input };
                    vec![]
                }
            },
        }
    }

    /// Carries out a bound command.
    pub fn command(&mut self, command: KeyAction) -> Vec<Effect> {
        if command.is_mutating() && self.read_only {
            // The keymap has no such binding in read-only mode; this guards other paths.
            self.status = Some(Status::Error(
                "read-only mode: nothing can be changed".into(),
            ));
            return vec![];
        }
        let page = self.page_rows() as isize;
        match command {
            KeyAction::Quit => self.should_quit = true,
            KeyAction::Help => self.mode = Mode::Help,
            KeyAction::CommandMode => {
                self.mode = Mode::Command {
                    input: String::new(),
                }
            }
            KeyAction::FilterMode => {
                let input = self.current_filter_text();
                self.mode = Mode::Filter { input };
            }
            KeyAction::Back => {
                if self.detail_open {
                    self.detail_open = false;
                } else if !self.current_filter_text().is_empty() {
                    self.apply_filter("");
                }
                self.status = None;
            }
            KeyAction::Up => self.move_by(-1),
            KeyAction::Down => self.move_by(1),
            KeyAction::PageUp => self.move_by(-page),
            KeyAction::PageDown => self.move_by(page),
            KeyAction::Top => self.select_position(0),
            KeyAction::Bottom => self.select_position(usize::MAX),
            KeyAction::ToggleDetail => self.detail_open = !self.detail_open,
            KeyAction::Refresh => return self.refresh(true),
            KeyAction::SortNext => self.with_table(|t| t.cycle_sort(1)),
            KeyAction::SortPrevious => self.with_table(|t| t.cycle_sort(-1)),
            KeyAction::SortReverse => self.with_table(|t| t.reverse_sort()),
            KeyAction::ViewInstances => self.view = View::Instances,
            KeyAction::ViewFindings => self.view = View::Findings,
            KeyAction::ViewAccounts => self.view = View::Accounts,
            KeyAction::ResolveFinding => self.confirm_resolve(),
        }
        vec![]
    }

    fn confirm_resolve(&mut self) {
        if self.view != View::Findings {
            self.status = Some(Status::Error("select a finding first (:findings)".into()));
            return;
        }
        let Some(row) = self.findings.selected() else {
            return;
        };
        let finding = &row.finding;
        self.mode = Mode::Confirm(Confirmation {
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
            },
        });
    }

    fn run_command_line(&mut self, line: &str) -> Vec<Effect> {
        let mut words = line.split_whitespace();
        let Some(word) = words.next() else {
            return vec![];
        };
        if let Some((_, view)) = View::COMMANDS.iter().find(|(name, _)| *name == word) {
            self.view = *view;
            return vec![];
        }
        match word {
            "q" | "quit" => self.should_quit = true,
            "help" | "h" => self.mode = Mode::Help,
            "refresh" => return self.refresh(true),
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
                    "'{}' is not a command: try instances, findings, accounts, theme NAME, help, quit",
                    crate::text::clip_untrusted(other, 40)
                )));
            }
        }
        vec![]
    }

    fn refresh(&mut self, asked: bool) -> Vec<Effect> {
        if self.sweep.running {
            if asked {
                self.status = Some(Status::Info("a refresh is already under way".into()));
            }
            return vec![];
        }
        self.sweep.running = true;
        vec![Effect::StartSweep, Effect::LoadFindings]
    }

    fn with_table(&mut self, change: impl FnOnce(&mut dyn SortableTable)) {
        match self.view {
            View::Instances => change(&mut self.instances),
            View::Findings => change(&mut self.findings),
            View::Accounts => change(&mut self.accounts),
        }
    }

    fn move_by(&mut self, delta: isize) {
        self.with_table(|t| t.move_cursor(delta));
    }

    fn select_position(&mut self, position: usize) {
        self.with_table(|t| t.select(position));
    }

    /// The selection's position in the current view.
    pub fn current_cursor(&self) -> usize {
        match self.view {
            View::Instances => self.instances.cursor(),
            View::Findings => self.findings.cursor(),
            View::Accounts => self.accounts.cursor(),
        }
    }

    fn current_filter_text(&self) -> String {
        let filter = match self.view {
            View::Instances => self.instances.filter(),
            View::Findings => self.findings.filter(),
            View::Accounts => self.accounts.filter(),
        };
        filter.map(|f| f.text().to_owned()).unwrap_or_default()
    }

    fn apply_filter(&mut self, text: &str) {
        match Filter::parse(text) {
            Ok(filter) => {
                self.set_filter(Some(filter));
                self.status = None;
            }
            Err(err) => self.status = Some(Status::Error(err)),
        }
    }

    fn set_filter(&mut self, filter: Option<Filter>) {
        match self.view {
            View::Instances => self.instances.set_filter(filter),
            View::Findings => self.findings.set_filter(filter),
            View::Accounts => self.accounts.set_filter(filter),
        }
    }

    /// Applies one engine event.
    pub fn on_engine(&mut self, event: EngineEvent) -> Vec<Effect> {
        match event {
            EngineEvent::Identity(Ok(who)) => self.identity = Load::Ready(who),
            EngineEvent::Identity(Err(err)) => self.identity = Load::Failed(err),
            EngineEvent::Scope(Ok(scope)) => {
                if self.sweep.sweeps_completed == 0 {
                    self.accounts.set_rows(
                        scope
                            .accounts
                            .iter()
                            .map(|a| AccountRow::new(a.id.as_str(), &a.name))
                            .collect(),
                    );
                }
                self.scope = Load::Ready(scope);
                self.sweep.running = true;
                self.pending_instances.clear();
                self.pending_failures.clear();
            }
            EngineEvent::Scope(Err(err)) => {
                self.scope = Load::Failed(err);
                self.sweep.running = false;
            }
            EngineEvent::Sweep(event) => self.on_sweep(event),
            EngineEvent::Findings(Ok(findings)) => {
                self.finding_summaries = summarize_by_instance(&findings);
                self.findings_state = Load::Ready(findings.len());
                self.findings
                    .set_rows(findings.into_iter().map(FindingRow::new).collect());
                let summaries = &self.finding_summaries;
                self.instances.update_rows(|row| {
                    row.instance.findings = summaries
                        .get(row.instance.id.as_str())
                        .copied()
                        .unwrap_or_default();
                });
            }
            EngineEvent::Findings(Err(err)) => self.findings_state = Load::Failed(err),
            EngineEvent::FindingResolved(Ok(title)) => {
                self.status = Some(Status::Info(format!(
                    "resolved: {}",
                    crate::text::clip_untrusted(&title, 60)
                )));
                return vec![Effect::LoadFindings];
            }
            EngineEvent::FindingResolved(Err(err)) => self.status = Some(Status::Error(err)),
            EngineEvent::ThemeChanged(Ok((name, description))) => {
                self.status = Some(Status::Info(format!("theme {name}: {description}")));
                self.theme_name = name;
            }
            EngineEvent::ThemeChanged(Err(err)) => self.status = Some(Status::Error(err)),
        }
        vec![]
    }

    fn on_sweep(&mut self, event: SweepEvent) {
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
                    let start = self.instances.rows().len();
                    self.instances.extend(rows);
                    self.index_instances_from(start);
                    let added = &self.instances.rows()[start..];
                    self.accounts.update_rows(|row| {
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
                    self.accounts.update_rows(|row| {
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
    fn swap_in_pending(&mut self) {
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
        self.instances.set_rows(rows);
        self.instance_positions.clear();
        self.index_instances_from(0);
        self.accounts.set_rows(accounts.into_values().collect());
    }

    /// Table rows for swept instances, each with its open findings.
    fn rows_with_findings(&self, instances: Vec<Instance>) -> Vec<InstanceRow> {
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
    fn index_instances_from(&mut self, start: usize) {
        for (position, row) in self.instances.rows().iter().enumerate().skip(start) {
            self.instance_positions
                .insert(row.instance.id.clone(), position);
        }
    }

    /// Instances by id, for the findings view and details.
    pub fn instance(&self, id: &str) -> Option<&Instance> {
        let position = *self.instance_positions.get(id)?;
        self.instances.rows().get(position).map(|r| &r.instance)
    }

    /// Findings about an instance, for its details.
    pub fn findings_of(&self, instance_id: &str) -> Vec<&Finding> {
        self.findings
            .rows()
            .iter()
            .map(|r| &r.finding)
            .filter(|f| f.instance_id.as_deref() == Some(instance_id))
            .collect()
    }
}

/// What the keys need of any table, whatever its rows.
trait SortableTable {
    fn move_cursor(&mut self, delta: isize);
    fn select(&mut self, position: usize);
    fn cycle_sort(&mut self, step: isize);
    fn reverse_sort(&mut self);
}

impl<R: super::rows::TableRow> SortableTable for TableModel<R> {
    fn move_cursor(&mut self, delta: isize) {
        self.move_by(delta);
    }
    fn select(&mut self, position: usize) {
        self.select_position(position);
    }
    fn cycle_sort(&mut self, step: isize) {
        TableModel::cycle_sort(self, step);
    }
    fn reverse_sort(&mut self) {
        TableModel::reverse_sort(self);
    }
}

/// Completes a command line: the longest common prefix of the commands that start with it.
pub fn complete(input: &str) -> Option<String> {
    if input.contains(' ') {
        let (command, partial) = input.split_once(' ')?;
        if command != "theme" {
            return None;
        }
        let names: Vec<&str> = crate::theme::SHIPPED
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| n.starts_with(partial))
            .collect();
        return common_prefix(&names).map(|p| format!("theme {p}"));
    }
    let names: Vec<&str> = View::COMMANDS
        .iter()
        .map(|(n, _)| *n)
        .chain(OTHER_COMMANDS)
        .filter(|n| n.starts_with(input))
        .collect();
    common_prefix(&names).map(str::to_owned)
}

fn common_prefix<'a>(names: &[&'a str]) -> Option<&'a str> {
    let first = *names.first()?;
    let length = names.iter().fold(first.len(), |len, name| {
        first
            .bytes()
            .zip(name.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count()
    });
    Some(&first[..length])
}
