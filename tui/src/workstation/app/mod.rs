//! The workstation's state and its pure update: input and engine events in, effects out.
//! Nothing here awaits or touches AWS; the runtime carries out the effects.

use std::collections::HashMap;

use irf_engine::model::case::{Case, CaseId, ContainmentPolicy};

use irf_engine::model::case_detail::CaseDetail;
use irf_engine::model::ledger::Action;

use irf_engine::config::Config;
use irf_engine::inventory::Instance;
use irf_engine::organization::{Scope, WhoAmI};

use super::table::{InstanceNames, ListTable, Pane};
use super::views::{
    AccountRow, ApprovalRow, CaseRow, EvidenceRow, FindingRow, HostRow, ImageRow, InstanceRow,
};
use crate::filter::Filter;
use crate::keymap::{Key, KeyAction, KeyName, Keymap};
use irf_engine::analysis::images::PipelineSummary;
use irf_engine::model::containment::InstanceRef;

mod analysis;
mod cases;
mod commands;
mod decisions;
mod details;
mod events;
mod evidence;
mod keys;
mod messages;
mod navigation;
mod script;

pub use super::table::Load;
pub use commands::FooterHint;
pub use keys::complete;
pub use messages::{Effect, EngineEvent, Input, SavedFilter};

/// The workstation's views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Instances,
    Findings,
    Accounts,
    Cases,
    /// One case of the cases view, [`App::case`].
    Case,
    /// Cases waiting for containment approval and direct containment requests.
    Approvals,
    /// Every artifact of every case, with its Object Lock state.
    Evidence,
    /// The SIFT image pipeline's builds.
    Images,
    /// Analysis hosts in the Analysis VPC.
    Hosts,
}

impl View {
    /// Command-mode names, canonical first.
    pub const COMMANDS: [(&'static str, View); 16] = [
        ("instances", View::Instances),
        ("ec2", View::Instances),
        ("inst", View::Instances),
        ("findings", View::Findings),
        ("securityhub", View::Findings),
        ("sh", View::Findings),
        ("accounts", View::Accounts),
        ("acc", View::Accounts),
        ("org", View::Accounts),
        ("cases", View::Cases),
        ("case", View::Cases),
        ("approvals", View::Approvals),
        ("evidence", View::Evidence),
        ("images", View::Images),
        ("hosts", View::Hosts),
        ("sift", View::Hosts),
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Instances => "instances",
            Self::Findings => "findings",
            Self::Accounts => "accounts",
            Self::Cases => "cases",
            Self::Case => "case",
            Self::Approvals => "approvals",
            Self::Evidence => "evidence",
            Self::Images => "images",
            Self::Hosts => "hosts",
        }
    }

    /// The view a view key opens.
    pub fn of_command(command: KeyAction) -> Option<Self> {
        Self::LISTS
            .into_iter()
            .find(|(_, key)| *key == command)
            .map(|(view, _)| view)
    }

    /// The key command that opens the view (the case view has none: it opens from a case).
    pub fn command(self) -> Option<KeyAction> {
        Self::LISTS
            .into_iter()
            .find(|(view, _)| *view == self)
            .map(|(_, key)| key)
    }

    /// The list views with the command of each one's key.
    const LISTS: [(Self, KeyAction); 8] = [
        (Self::Instances, KeyAction::ViewInstances),
        (Self::Findings, KeyAction::ViewFindings),
        (Self::Accounts, KeyAction::ViewAccounts),
        (Self::Cases, KeyAction::ViewCases),
        (Self::Approvals, KeyAction::ViewApprovals),
        (Self::Evidence, KeyAction::ViewEvidence),
        (Self::Images, KeyAction::ViewImages),
        (Self::Hosts, KeyAction::ViewHosts),
    ];

    /// Whether the view is a table of rows (the case view is not).
    pub fn is_table(self) -> bool {
        self != Self::Case
    }
}

/// Commands that command mode completes, besides the views.
const OTHER_COMMANDS: [&str; 8] = [
    "help", "quit", "theme", "refresh", "profile", "region", "save", "load",
];

/// A mutating action waiting for the operator's yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub title: String,
    pub lines: Vec<String>,
    pub effect: Effect,
    /// Lines scrolled past, when the dialog is taller than the screen.
    pub scroll: u16,
}

/// A decision the operator types: the instance id to confirm, or a reason to refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedPrompt {
    pub title: String,
    pub lines: Vec<String>,
    /// `Some(instance id)`: the input must be exactly it. `None`: a reason, not empty.
    pub expected: Option<String>,
    pub input: String,
    pub decision: TypedDecision,
    /// Lines scrolled past, when the dialog is taller than the screen.
    pub scroll: u16,
}

/// What a typed prompt does once answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypedDecision {
    ApproveCase(CaseId),
    RejectCase(CaseId),
    ApplyRequest(InstanceRef),
    RejectRequest(InstanceRef),
    Rollback(InstanceRef),
    /// Terminate an analysis host (its instance id).
    TerminateHost(String),
}

/// The longest text a typed prompt takes: an instance id or a reason.
const TYPED_LIMIT: usize = 200;

/// The details panel beside a list: open or not, whether the movement keys scroll it (tab
/// gives it the keys) rather than move the selection, and the first field it shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetailPanel {
    pub open: bool,
    pub focused: bool,
    pub first: usize,
}

/// The last verification of a case asked for here, or why it could not be made.
pub type CaseVerification = Result<irf_engine::ledger::Verification, String>;

/// What keys go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Filter {
        input: String,
    },
    Command {
        input: String,
    },
    /// The help overlay, scrolled down by `scroll` lines (it can be taller than the screen).
    Help {
        scroll: u16,
    },
    Confirm(Confirmation),
    Typed(TypedPrompt),
    /// `o` with more than one view related to the selected row; the view's key opens it.
    Related(Vec<Related>),
}

/// A view with rows related to the selected one, and the filter term that finds them there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    pub view: View,
    pub term: String,
}

impl Related {
    fn new(view: View, term: &str) -> Self {
        Self {
            view,
            term: term.to_owned(),
        }
    }
}

/// What the acquisition confirmation needs of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquisitionSettings {
    /// The containment policy new cases get, or why the configured one is not valid.
    pub containment: Result<ContainmentPolicy, String>,
    pub evidence_bucket: Option<String>,
}

impl Default for AcquisitionSettings {
    fn default() -> Self {
        Self {
            containment: Ok(ContainmentPolicy::default()),
            evidence_bucket: None,
        }
    }
}

impl AcquisitionSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            containment: match config.workflow.containment.as_deref() {
                Some(text) => ContainmentPolicy::parse(text)
                    .map_err(|err| format!("workflow.containment in the configuration: {err}")),
                None => Ok(ContainmentPolicy::default()),
            },
            evidence_bucket: config.evidence.bucket.clone(),
        }
    }
}

/// The case view's state: the case, its last loaded detail, and where its polling stands.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseScreen {
    /// The case record: from the list or the start at first, then from each detail load.
    pub case: Case,
    /// Steps, artifacts and approval, once loaded.
    pub detail: Option<CaseDetail>,
    /// Why the last load failed; the last good detail stays on screen.
    pub error: Option<String>,
    /// What the lower part shows: artifacts, the custody ledger or the analysis.
    pub panel: CasePanel,
    /// The first item of the panel shown, when there are more than fit.
    pub first: usize,
    /// A load is under way: polls wait for it rather than pile up.
    loading: bool,
}

/// The case view's panels, in the order the panel key goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CasePanel {
    #[default]
    Artifacts,
    /// The chain of custody, entry by entry.
    Custody,
    /// Analysis hosts and sessions, from the ledger.
    Analysis,
    /// The case's last verification here, item by item, each in full.
    Verification,
}

impl CasePanel {
    pub const ALL: [CasePanel; 4] = [
        Self::Artifacts,
        Self::Custody,
        Self::Analysis,
        Self::Verification,
    ];

    pub fn next(self) -> Self {
        match self {
            Self::Artifacts => Self::Custody,
            Self::Custody => Self::Analysis,
            Self::Analysis => Self::Verification,
            Self::Verification => Self::Artifacts,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Artifacts => "artifacts",
            Self::Custody => "custody",
            Self::Analysis => "analysis",
            Self::Verification => "verification",
        }
    }

    /// How far the movement keys scroll the panel: an item at a time, but a verification's
    /// item in two steps (why, then the key), so that neither is out of reach below a tall
    /// other.
    pub fn scroll_steps(
        self,
        detail: &CaseDetail,
        verification: Option<&CaseVerification>,
    ) -> usize {
        match self {
            Self::Verification => self.count(detail, verification) * 2,
            _ => self.count(detail, verification),
        }
    }

    /// How many items the panel lists for `detail` and its last `verification` here.
    pub fn count(self, detail: &CaseDetail, verification: Option<&CaseVerification>) -> usize {
        match self {
            Self::Verification => verification
                .and_then(|v| v.as_ref().ok())
                .map_or(0, |v| v.items.len()),
            Self::Artifacts => detail.artifacts.len(),
            Self::Custody => detail.ledger.len(),
            // Counted, not gathered: the panel line asks every frame.
            Self::Analysis => detail
                .ledger
                .iter()
                .filter(|entry| Action::is_analysis(&entry.action))
                .count(),
        }
    }
}

impl CaseScreen {
    fn new(case: Case) -> Self {
        Self {
            case,
            detail: None,
            error: None,
            panel: CasePanel::default(),
            first: 0,
            loading: true,
        }
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
    pub instances: ListTable<InstanceRow>,
    pub findings: ListTable<FindingRow>,
    pub accounts: ListTable<AccountRow>,
    pub cases: ListTable<CaseRow>,
    /// Cases and requests waiting for a decision.
    pub approvals: ListTable<ApprovalRow>,
    pub evidence: ListTable<EvidenceRow>,
    pub images: ListTable<ImageRow>,
    /// The pipeline's schedule and runs, once read.
    pub pipeline: Option<PipelineSummary>,
    pub hosts: ListTable<HostRow>,
    /// A host launch is under way (it takes minutes in AWS): one at a time from here.
    pub launching: Option<CaseId>,
    /// The case view, once a case was opened.
    pub case: Option<CaseScreen>,
    pub acquisition: AcquisitionSettings,
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
    /// The details panel beside a list.
    pub details: DetailPanel,
    pub status: Option<Status>,
    pub read_only: bool,
    pub should_quit: bool,
    pub theme_name: String,
    pub last_refresh: Option<String>,
    /// Wall-clock time, stamped by the runtime before each update.
    pub now: String,
    pub size: (u16, u16),
    pub keymap: Keymap,
    /// No credentials could be had (why, as the credential chain said): the views say how
    /// to sign in rather than stand empty.
    pub signed_out: Option<String>,
    /// The last verification of each case asked for here (`V`), or why it failed: kept when
    /// the case is left and opened again.
    pub verifications: HashMap<CaseId, CaseVerification>,
    /// Whether `:profile` and `:region` can start the workstation again on another identity
    /// (not on the lab, whose operator is the lab's own).
    pub identity_switch: bool,
    /// Named filters: `:save NAME` keeps the current one, `:load NAME` applies one.
    pub saved_filters: std::collections::BTreeMap<String, String>,
    /// The information line as the last tick saw it, and for how many ticks since: it
    /// clears itself after [`INFO_TICKS`] (errors stay until the next action).
    info_seen: Option<(Status, u8)>,
}

/// Ticks of the cases poll (3 s each) an information line stays.
const INFO_TICKS: u8 = 4;

/// No configuration directory to keep saved filters in.
#[derive(Debug, thiserror::Error)]
#[error("no configuration directory to keep filters in: set IRF_CONFIG to a file path")]
pub struct FiltersUnavailable;

impl App {
    pub fn new(keymap: Keymap, read_only: bool, theme_name: &str) -> Self {
        Self {
            identity: Load::Loading,
            scope: Load::Loading,
            instances: ListTable::default(),
            findings: ListTable::default(),
            accounts: ListTable::default(),
            cases: ListTable::default(),
            approvals: ListTable::default(),
            evidence: ListTable::default(),
            images: ListTable::default(),
            pipeline: None,
            hosts: ListTable::default(),
            launching: None,
            case: None,
            acquisition: AcquisitionSettings::default(),
            pending_instances: Vec::new(),
            pending_failures: Vec::new(),
            finding_summaries: HashMap::new(),
            instance_positions: HashMap::new(),
            sweep: SweepProgress::default(),
            view: View::Instances,
            mode: Mode::Normal,
            details: DetailPanel::default(),
            status: None,
            read_only,
            should_quit: false,
            theme_name: theme_name.to_owned(),
            last_refresh: None,
            now: String::new(),
            size: (80, 24),
            keymap,
            signed_out: None,
            verifications: HashMap::new(),
            identity_switch: false,
            saved_filters: std::collections::BTreeMap::new(),
            info_seen: None,
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
        usize::from(self.areas().table_body().height).max(1)
    }

    /// Applies one input.
    pub fn handle(&mut self, input: Input) -> Vec<Effect> {
        match input {
            Input::Resize { width, height } => {
                self.size = (width, height);
                vec![]
            }
            Input::RefreshDue => self.refresh(false),
            Input::CasesPollDue => {
                self.age_info();
                self.poll_cases()
            }
            Input::CasePollDue => self.poll_case(),
            Input::ScrollUp => self.command(KeyAction::Up),
            Input::ScrollDown => self.command(KeyAction::Down),
            Input::Click { column, row } => {
                let body = self.areas().table_body();
                if matches!(self.mode, Mode::Normal)
                    && self.view.is_table()
                    && column >= body.x
                    && column < body.x + body.width
                    && row >= body.y
                    && row < body.y + body.height
                {
                    let offset =
                        super::layout::window_start(self.current_cursor(), self.page_rows());
                    self.select_position(offset + usize::from(row - body.y));
                }
                vec![]
            }
            Input::Key(key) => self.key(key),
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
        if let Some(reason) = self.not_offered(command) {
            self.status = Some(Status::Error(reason));
            return vec![];
        }
        if let Some(view) = View::of_command(command) {
            return self.show(view);
        }
        let page = self.page_rows() as isize;
        match command {
            KeyAction::Quit => self.should_quit = true,
            KeyAction::Help => self.mode = Mode::Help { scroll: 0 },
            KeyAction::CommandMode => {
                self.mode = Mode::Command {
                    input: String::new(),
                }
            }
            KeyAction::FilterMode => {
                if self.view.is_table() {
                    let input = self.current_filter_text();
                    self.mode = Mode::Filter { input };
                }
            }
            KeyAction::Back => {
                self.status = None;
                if self.view == View::Case {
                    return self.show(View::Cases);
                }
                if self.detail_shown() {
                    self.details = DetailPanel::default();
                } else if !self.current_filter_text().is_empty() {
                    self.apply_filter("");
                }
            }
            KeyAction::Up => self.move_by(-1),
            KeyAction::Down => self.move_by(1),
            KeyAction::PageUp => self.move_by(-page),
            KeyAction::PageDown => self.move_by(page),
            KeyAction::Top => self.select_position(0),
            KeyAction::Bottom => self.select_position(usize::MAX),
            KeyAction::Related => return self.jump_to_related(),
            KeyAction::NextPanel => {
                if let Some(screen) = self.case.as_mut().filter(|_| self.view == View::Case) {
                    screen.panel = screen.panel.next();
                    screen.first = 0;
                } else if self.detail_shown() {
                    self.details.focused = !self.details.focused;
                }
            }
            KeyAction::ToggleDetail => match self.view {
                View::Cases => return self.open_selected_case(),
                View::Case => {}
                _ => {
                    self.details = DetailPanel {
                        open: !self.details.open,
                        ..DetailPanel::default()
                    }
                }
            },
            KeyAction::Refresh => return self.refresh(true),
            KeyAction::SortNext => self.with_pane(|t| t.cycle_sort(1)),
            KeyAction::SortPrevious => self.with_pane(|t| t.cycle_sort(-1)),
            KeyAction::SortReverse => self.with_pane(|t| t.reverse_sort()),
            // Opened above, by the table of views and their keys.
            KeyAction::ViewInstances
            | KeyAction::ViewFindings
            | KeyAction::ViewAccounts
            | KeyAction::ViewCases
            | KeyAction::ViewApprovals
            | KeyAction::ViewEvidence
            | KeyAction::ViewImages
            | KeyAction::ViewHosts => {}
            KeyAction::BuildImage => self.confirm_build(),
            KeyAction::LaunchHost => self.confirm_launch(),
            KeyAction::OpenSession => return self.open_session(),
            KeyAction::TerminateHost => self.prompt_terminate(),
            KeyAction::ToggleLegalHold => self.confirm_legal_hold(),
            KeyAction::VerifyCase | KeyAction::ExportReport => {
                let Some(screen) = &self.case else {
                    return vec![];
                };
                let case_id = screen.case.case_id.clone();
                return if command == KeyAction::VerifyCase {
                    self.status = Some(Status::Info(format!(
                        "verifying case {case_id}: re-reading its evidence…"
                    )));
                    vec![Effect::VerifyCase(case_id)]
                } else {
                    self.status = Some(Status::Info(format!(
                        "writing the report of case {case_id}…"
                    )));
                    vec![Effect::ExportReport(case_id)]
                };
            }
            KeyAction::ResolveFinding => self.confirm_resolve(),
            KeyAction::AcquireInstance => self.confirm_acquire(),
            KeyAction::ApproveContainment => return self.prompt_decision(true),
            KeyAction::RejectContainment => return self.prompt_decision(false),
            KeyAction::RollbackContainment => self.prompt_rollback(),
        }
        vec![]
    }

    /// Counts a tick of the information line on screen and clears it once it has stood for
    /// [`INFO_TICKS`]; a new line starts its count again. A launch under way keeps its
    /// stage on screen however long a stage takes.
    fn age_info(&mut self) {
        let shown = match &self.status {
            Some(status @ Status::Info(_)) if self.launching.is_none() => status.clone(),
            _ => {
                self.info_seen = None;
                return;
            }
        };
        let ticks = match &self.info_seen {
            Some((seen, ticks)) if *seen == shown => ticks + 1,
            _ => 0,
        };
        if ticks >= INFO_TICKS {
            self.status = None;
            self.info_seen = None;
        } else {
            self.info_seen = Some((shown, ticks));
        }
    }

    /// Where the screen's parts are, as this state shows them.
    pub fn areas(&self) -> super::layout::Areas {
        let hint_lines = match (&self.mode, &self.status) {
            (Mode::Normal, None) => self.footer_hint_lines().len(),
            _ => 1,
        };
        super::layout::Areas::of(
            self.size,
            self.detail_shown(),
            self.footer_error(),
            hint_lines,
        )
    }

    /// The error the footer shows: the status's, while no dialog of its own is up.
    pub fn footer_error(&self) -> Option<&str> {
        match (&self.mode, &self.status) {
            (
                Mode::Normal | Mode::Help { .. } | Mode::Confirm(_) | Mode::Typed(_),
                Some(Status::Error(message)),
            ) => Some(message),
            _ => None,
        }
    }

    /// Whether the details panel is on screen: only the lists whose rows have more than
    /// their columns show have one (Enter opens a case instead).
    pub fn detail_shown(&self) -> bool {
        self.details.open
            && matches!(
                self.view,
                View::Instances | View::Findings | View::Accounts | View::Evidence | View::Hosts
            )
    }

    /// Switches to `view`, loading what it shows.
    fn show(&mut self, view: View) -> Vec<Effect> {
        if view != self.view {
            // The details open on another view's row start at its first field, with the
            // movement keys on the list.
            self.details.first = 0;
            self.details.focused = false;
        }
        self.view = view;
        match view {
            View::Cases => self.load_cases(),
            View::Case => self.load_case(),
            View::Approvals => self.load_approvals(),
            View::Evidence => self.load_evidence(),
            View::Images => self.load_images(),
            View::Hosts => self.load_hosts(),
            _ => vec![],
        }
    }

    /// The list on screen; `None` in the case view, which is not a table.
    pub fn pane(&self) -> Option<&dyn Pane> {
        Some(match self.view {
            View::Instances => &self.instances,
            View::Findings => &self.findings,
            View::Accounts => &self.accounts,
            View::Cases => &self.cases,
            View::Approvals => &self.approvals,
            View::Evidence => &self.evidence,
            View::Images => &self.images,
            View::Hosts => &self.hosts,
            View::Case => return None,
        })
    }

    pub(super) fn pane_mut(&mut self) -> Option<&mut dyn Pane> {
        Some(match self.view {
            View::Instances => &mut self.instances,
            View::Findings => &mut self.findings,
            View::Accounts => &mut self.accounts,
            View::Cases => &mut self.cases,
            View::Approvals => &mut self.approvals,
            View::Evidence => &mut self.evidence,
            View::Images => &mut self.images,
            View::Hosts => &mut self.hosts,
            View::Case => return None,
        })
    }

    /// The name of a member account, when the scope named it.
    pub fn account_name(&self, account: &str) -> Option<&str> {
        self.accounts
            .table
            .rows()
            .iter()
            .find(|a| a.id == account)
            .map(|a| a.name.as_str())
    }
}

impl InstanceNames for App {
    fn instance_name(&self, instance_id: &str) -> Option<&str> {
        self.instance(instance_id).and_then(|i| i.name.as_deref())
    }
}
