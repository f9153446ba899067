//! The workstation's state and its pure update: input and engine events in, effects out.
//! Nothing here awaits or touches AWS; the runtime carries out the effects.

use std::collections::{BTreeMap, HashMap};

use irf_engine::model::case::{Case, CaseId, CaseSubject, ContainmentPolicy};

use irf_engine::model::case_detail::CaseDetail;

use irf_engine::config::{AccountId, Config};
use irf_engine::findings::{Finding, FindingRef, summarize_by_instance};
use irf_engine::inventory::{Instance, SsmReachability, SweepEvent};
use irf_engine::organization::{Scope, WhoAmI};
use irf_engine::store::case_table::Opened;

use super::failure::Failure;
use super::rows::{
    ACCOUNT_COLUMNS, APPROVAL_COLUMNS, AccountRow, ApprovalRow, CASE_COLUMNS, CaseRow,
    EVIDENCE_COLUMNS, EvidenceRow, FINDING_COLUMNS, FindingRow, HOST_COLUMNS, HostRow,
    IMAGE_COLUMNS, INSTANCE_COLUMNS, ImageRow, InstanceRow,
};
use super::table::{Sort, TableModel};
use crate::contain::PendingDecision;
use crate::filter::Filter;
use crate::keymap::{Key, KeyAction, KeyName, Keymap};
use irf_engine::analysis::hosts::{AnalysisHost, LaunchOutcome};
use irf_engine::analysis::images::{PipelineImages, PipelineSummary};
use irf_engine::model::case::CaseStatus;
use irf_engine::model::containment::{ContainmentPlan, InstanceRef};

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

    /// Whether the view is a table of rows (the case view is not).
    pub fn is_table(self) -> bool {
        self != Self::Case
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

/// A decision the operator types: the instance id to confirm, or a reason to refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedPrompt {
    pub title: String,
    pub lines: Vec<String>,
    /// `Some(instance id)`: the input must be exactly it. `None`: a reason, not empty.
    pub expected: Option<String>,
    pub input: String,
    pub decision: TypedDecision,
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
    /// Time to poll the case table for the cases view (every few seconds).
    CasesPollDue,
    /// Time to poll the open case for the case view (every few seconds).
    CasePollDue,
}

/// What the engine reports back.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    Identity(Result<WhoAmI, Failure>),
    Scope(Result<Scope, Failure>),
    Sweep(SweepEvent),
    Findings(Result<Vec<Finding>, Failure>),
    FindingResolved(Result<String, Failure>),
    /// The theme's name and description, or why it could not be loaded.
    ThemeChanged(Result<(String, String), Failure>),
    /// A case opened (or joined) for an instance, or why it could not be.
    AcquisitionStarted {
        instance_id: String,
        result: Result<Box<Opened>, Failure>,
    },
    /// The case table's cases, newest first.
    Cases(Result<Vec<Case>, Failure>),
    /// One case with its steps, artifacts and approval.
    CaseLoaded {
        case_id: CaseId,
        result: Result<Box<CaseDetail>, Failure>,
    },
    /// What waits for an approver.
    Approvals(Result<Vec<PendingDecision>, Failure>),
    /// A case verified, or why it could not be.
    CaseVerified {
        case_id: CaseId,
        result: Result<Box<irf_engine::ledger::Verification>, Failure>,
    },
    /// A report written (its path), or why not.
    ReportWritten(Result<String, Failure>),
    /// Every artifact of every case.
    Evidence(Result<Vec<irf_engine::ledger::EvidenceItem>, Failure>),
    /// A legal hold placed or removed (what was done), or why not.
    LegalHoldSet(Result<String, Failure>),
    /// A containment decision, apply or rollback carried out (what was done), or why not.
    ContainmentDone(Result<String, Failure>),
    /// The plan an approval would carry out, or why it could not be made.
    ContainmentPlanned {
        decision: TypedDecision,
        result: Result<Box<ContainmentPlan>, Failure>,
    },
    /// The image pipeline and its builds.
    Images(Result<Box<PipelineImages>, Failure>),
    /// A build started (the image's ARN), or why not.
    ImageBuildStarted(Result<String, Failure>),
    /// The analysis hosts.
    Hosts(Result<Vec<AnalysisHost>, Failure>),
    /// A host launched with its evidence, or why not.
    HostLaunched(Result<Box<LaunchOutcome>, Failure>),
    /// A session ended (how), or why it could not open.
    SessionEnded(Result<String, Failure>),
    /// A host terminated (what was done), or why not.
    HostTerminated(Result<String, Failure>),
}

/// Work the update asks the runtime to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    LoadIdentity,
    StartSweep,
    LoadFindings,
    ResolveFinding {
        finding: FindingRef,
        title: String,
        /// The finding's instance: the change goes into the ledger of its latest case.
        instance_id: Option<String>,
    },
    SetTheme(String),
    /// Opens a case for the instance and starts its acquisition (or joins its open case).
    StartAcquisition {
        subject: CaseSubject,
    },
    LoadCases,
    LoadCase(CaseId),
    LoadApprovals,
    LoadEvidence,
    /// Verifies a case: re-reads its evidence and checks its ledger (reads only).
    VerifyCase(CaseId),
    /// Writes a case's report (Markdown) into the working directory.
    ExportReport(CaseId),
    /// Places (`on`) or removes a legal hold on a case's artifact.
    SetLegalHold {
        case_id: CaseId,
        key: String,
        on: bool,
    },
    /// Plans the containment an approval would carry out, to show it before the decision.
    PlanContainment {
        decision: TypedDecision,
        instance: InstanceRef,
    },
    /// Carries out an answered typed prompt; `answer` is what was typed (the instance id,
    /// or the reason of a refusal).
    Decide {
        decision: TypedDecision,
        answer: String,
    },
    LoadImages,
    StartImageBuild,
    LoadHosts,
    /// Launches an analysis host for the case and gives it the case's evidence.
    LaunchHost {
        case_id: CaseId,
    },
    /// Hands the terminal to a shell on the host until it exits (the runtime loop's own
    /// effect: it owns the terminal).
    OpenSession {
        instance_id: String,
    },
}

impl Effect {
    /// Whether the effect changes anything in AWS.
    pub fn is_mutating(&self) -> bool {
        matches!(
            self,
            Self::ResolveFinding { .. }
                | Self::StartAcquisition { .. }
                | Self::Decide { .. }
                | Self::SetLegalHold { .. }
                | Self::StartImageBuild
                | Self::LaunchHost { .. }
                | Self::OpenSession { .. }
        )
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
    /// The first artifact shown, when there are more than fit.
    pub first_artifact: usize,
    /// A load is under way: polls wait for it rather than pile up.
    loading: bool,
    /// The last verification asked for in this view (`V`), or why it failed.
    pub verification: Option<Result<irf_engine::ledger::Verification, String>>,
}

impl CaseScreen {
    fn new(case: Case) -> Self {
        Self {
            case,
            detail: None,
            error: None,
            first_artifact: 0,
            loading: true,
            verification: None,
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
    pub instances: TableModel<InstanceRow>,
    pub findings: TableModel<FindingRow>,
    pub accounts: TableModel<AccountRow>,
    pub cases: TableModel<CaseRow>,
    pub approvals: TableModel<ApprovalRow>,
    /// How many decisions wait, or why they could not be read.
    pub approvals_state: Load<usize>,
    approvals_loading: bool,
    pub evidence: TableModel<EvidenceRow>,
    /// How many artifacts the last load found, or why it failed.
    pub evidence_state: Load<usize>,
    evidence_loading: bool,
    pub images: TableModel<ImageRow>,
    /// The pipeline's schedule and runs, once read.
    pub pipeline: Option<PipelineSummary>,
    pub images_state: Load<usize>,
    images_loading: bool,
    pub hosts: TableModel<HostRow>,
    pub hosts_state: Load<usize>,
    hosts_loading: bool,
    /// A host launch is under way (it takes minutes in AWS): one at a time from here.
    pub launching: Option<CaseId>,
    pub findings_state: Load<usize>,
    /// How many cases the last load found, or why it failed.
    pub cases_state: Load<usize>,
    /// A cases load is under way: polls wait for it rather than pile up.
    cases_loading: bool,
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
            cases: TableModel::new(
                CASE_COLUMNS.len(),
                Sort {
                    column: 5,
                    descending: true,
                },
            ),
            approvals: TableModel::new(
                APPROVAL_COLUMNS.len(),
                Sort {
                    column: 4,
                    descending: false,
                },
            ),
            approvals_state: Load::Loading,
            approvals_loading: false,
            evidence: TableModel::new(
                EVIDENCE_COLUMNS.len(),
                Sort {
                    column: 0,
                    descending: true,
                },
            ),
            evidence_state: Load::Loading,
            evidence_loading: false,
            images: TableModel::new(
                IMAGE_COLUMNS.len(),
                Sort {
                    column: 0,
                    descending: true,
                },
            ),
            pipeline: None,
            images_state: Load::Loading,
            images_loading: false,
            hosts: TableModel::new(
                HOST_COLUMNS.len(),
                Sort {
                    column: 9,
                    descending: false,
                },
            ),
            hosts_state: Load::Loading,
            hosts_loading: false,
            launching: None,
            findings_state: Load::Loading,
            cases_state: Load::Loading,
            cases_loading: false,
            case: None,
            acquisition: AcquisitionSettings::default(),
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
            Input::CasesPollDue => self.poll_cases(),
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

    fn key(&mut self, key: Key) -> Vec<Effect> {
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => match self.keymap.command(&key) {
                Some(command) => self.command(command),
                None => {
                    if let Some(refused) = self.keymap.refused(&key) {
                        self.status = Some(Status::Error(format!(
                            "read-only mode: '{key}' is off ({}); nothing can be changed until irf is started without --read-only",
                            refused.description()
                        )));
                    }
                    vec![]
                }
            },
            // Movement keys scroll the help; any other key closes it.
            Mode::Help { scroll } => {
                match self.keymap.command(&key) {
                    Some(KeyAction::Down | KeyAction::PageDown) => {
                        self.mode = Mode::Help {
                            scroll: scroll.saturating_add(1),
                        };
                    }
                    Some(KeyAction::Up | KeyAction::PageUp) => {
                        self.mode = Mode::Help {
                            scroll: scroll.saturating_sub(1),
                        };
                    }
                    _ => {}
                }
                vec![]
            }
            Mode::Confirm(confirmation) => {
                if self.read_only && confirmation.effect.is_mutating() {
                    // No dialog should offer a change in read-only mode; this guards other paths.
                    self.status = Some(Status::Error(
                        "read-only mode: nothing can be changed".into(),
                    ));
                    vec![]
                } else if key == Key::char('y') {
                    if let Effect::LaunchHost { case_id } = &confirmation.effect {
                        self.launching = Some(case_id.clone());
                    }
                    self.status = Some(Status::Info(format!("{}…", confirmation.title)));
                    vec![confirmation.effect]
                } else {
                    self.status = Some(Status::Info("cancelled: nothing was changed".into()));
                    vec![]
                }
            }
            Mode::Typed(prompt) => self.typed_key(prompt, key),
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
                    self.detail_open = false;
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
            KeyAction::ToggleDetail => match self.view {
                View::Cases => return self.open_selected_case(),
                View::Case => {}
                _ => self.detail_open = !self.detail_open,
            },
            KeyAction::Refresh => return self.refresh(true),
            KeyAction::SortNext => self.with_table(|t| t.cycle_sort(1)),
            KeyAction::SortPrevious => self.with_table(|t| t.cycle_sort(-1)),
            KeyAction::SortReverse => self.with_table(|t| t.reverse_sort()),
            KeyAction::ViewInstances => return self.show(View::Instances),
            KeyAction::ViewFindings => return self.show(View::Findings),
            KeyAction::ViewAccounts => return self.show(View::Accounts),
            KeyAction::ViewCases => return self.show(View::Cases),
            KeyAction::ViewApprovals => return self.show(View::Approvals),
            KeyAction::ViewEvidence => return self.show(View::Evidence),
            KeyAction::ViewImages => return self.show(View::Images),
            KeyAction::ViewHosts => return self.show(View::Hosts),
            KeyAction::BuildImage => self.confirm_build(),
            KeyAction::LaunchHost => self.confirm_launch(),
            KeyAction::OpenSession => return self.open_session(),
            KeyAction::TerminateHost => self.prompt_terminate(),
            KeyAction::ToggleLegalHold => self.confirm_legal_hold(),
            KeyAction::VerifyCase | KeyAction::ExportReport => {
                let Some(screen) = self.case.as_ref().filter(|_| self.view == View::Case) else {
                    self.status = Some(Status::Error("open a case first (:cases, enter)".into()));
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

    /// A key in a typed prompt: text edits it, enter answers it, esc cancels it.
    fn typed_key(&mut self, mut prompt: TypedPrompt, key: Key) -> Vec<Effect> {
        match key.code {
            KeyName::Esc => {
                self.status = Some(Status::Info("cancelled: nothing was changed".into()));
                return vec![];
            }
            KeyName::Enter => {
                let answer = prompt.input.trim();
                match &prompt.expected {
                    Some(expected) if answer != expected => {
                        self.status = Some(Status::Error(format!(
                            "'{}' is not {expected}: type the instance id exactly; nothing was changed",
                            crate::text::clip_untrusted(answer, 40)
                        )));
                    }
                    None if answer.is_empty() => {
                        self.status = Some(Status::Error(
                            "say why: the reason is recorded with the decision".into(),
                        ));
                    }
                    _ => {
                        self.status = Some(Status::Info(format!("{}…", prompt.title)));
                        return vec![Effect::Decide {
                            decision: prompt.decision,
                            answer: answer.to_owned(),
                        }];
                    }
                }
            }
            KeyName::Backspace => {
                prompt.input.pop();
                self.status = None;
            }
            KeyName::Char(c) if !key.ctrl && !key.alt && !c.is_control() => {
                if prompt.input.chars().count() < TYPED_LIMIT {
                    prompt.input.push(c);
                }
                self.status = None;
            }
            _ => {}
        }
        self.mode = Mode::Typed(prompt);
        vec![]
    }

    /// Whether the details panel is on screen: only table views beside the cases have one
    /// (Enter opens a case instead).
    /// Where the screen's parts are, as this state shows them.
    pub fn areas(&self) -> super::layout::Areas {
        super::layout::Areas::of(self.size, self.detail_shown(), self.footer_error())
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

    pub fn detail_shown(&self) -> bool {
        self.detail_open && matches!(self.view, View::Instances | View::Findings | View::Accounts)
    }

    /// Switches to `view`, loading what it shows.
    fn show(&mut self, view: View) -> Vec<Effect> {
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

    fn load_images(&mut self) -> Vec<Effect> {
        if self.images_loading {
            return vec![];
        }
        self.images_loading = true;
        vec![Effect::LoadImages]
    }

    fn load_hosts(&mut self) -> Vec<Effect> {
        if self.hosts_loading {
            return vec![];
        }
        self.hosts_loading = true;
        vec![Effect::LoadHosts]
    }

    /// Asks before starting an image build.
    fn confirm_build(&mut self) {
        if self.view != View::Images {
            self.status = Some(Status::Error("builds start from :images (key 7)".into()));
            return;
        }
        let pipeline = self
            .pipeline
            .as_ref()
            .map_or_else(|| "the SIFT pipeline".to_owned(), |p| p.name.clone());
        self.mode = Mode::Confirm(Confirmation {
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
    fn launch_case(&self) -> Option<&Case> {
        match self.view {
            View::Case => self.case.as_ref().map(|screen| &screen.case),
            View::Cases => self.cases.selected().map(|row| &row.case),
            _ => None,
        }
    }

    /// Asks before launching an analysis host for a case.
    fn confirm_launch(&mut self) {
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
    fn open_session(&mut self) -> Vec<Effect> {
        let Some(row) = self.hosts.selected().filter(|_| self.view == View::Hosts) else {
            self.status = Some(Status::Error(
                "select an analysis host in :hosts (key 8) first".into(),
            ));
            return vec![];
        };
        let host = &row.host;
        if host.state != "running" {
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
    fn prompt_terminate(&mut self) {
        let Some(row) = self.hosts.selected().filter(|_| self.view == View::Hosts) else {
            self.status = Some(Status::Error(
                "select an analysis host in :hosts (key 8) first".into(),
            ));
            return;
        };
        let host = &row.host;
        self.mode = Mode::Typed(TypedPrompt {
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

    fn load_cases(&mut self) -> Vec<Effect> {
        if self.cases_loading {
            return vec![];
        }
        self.cases_loading = true;
        vec![Effect::LoadCases]
    }

    fn load_case(&mut self) -> Vec<Effect> {
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
    fn poll_cases(&mut self) -> Vec<Effect> {
        // The approvals view polls on the same beat: new requests appear without a key.
        if self.view == View::Approvals {
            return self.load_approvals();
        }
        // Hosts change state and reachability by themselves; builds move while they run.
        if self.view == View::Hosts {
            return self.load_hosts();
        }
        if self.view == View::Images && self.images.rows().iter().any(|r| r.image.is_building()) {
            return self.load_images();
        }
        let any_open = self.cases.rows().iter().any(|r| r.case.status.is_open());
        if self.view == View::Cases && matches!(self.cases_state, Load::Ready(_)) && any_open {
            self.load_cases()
        } else {
            vec![]
        }
    }

    /// The case view polls while it is shown and its case is open.
    fn poll_case(&mut self) -> Vec<Effect> {
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

    fn open_selected_case(&mut self) -> Vec<Effect> {
        match self.cases.selected() {
            Some(row) => {
                let case = row.case.clone();
                self.open_case(case)
            }
            None => vec![],
        }
    }

    /// Shows `case` in the case view and loads its detail.
    fn open_case(&mut self, case: Case) -> Vec<Effect> {
        let effect = Effect::LoadCase(case.case_id.clone());
        self.case = Some(CaseScreen::new(case));
        self.view = View::Case;
        vec![effect]
    }

    /// Puts `case` in the cases table, replacing its older record.
    fn upsert_case_row(&mut self, case: &Case) {
        let mut rows: Vec<CaseRow> = self
            .cases
            .rows()
            .iter()
            .filter(|r| r.case.case_id != case.case_id)
            .cloned()
            .collect();
        rows.push(CaseRow::new(case.clone()));
        self.cases.set_rows(rows);
    }

    /// The instance `a` acquires in this view: the selected instance, or the instance of
    /// the selected finding, as the subject of a case and a name for people.
    fn acquisition_target(&self) -> Result<(CaseSubject, String), String> {
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
                let row = self.instances.selected().ok_or("no instance is selected")?;
                let i = &row.instance;
                let name = i.name.as_deref().unwrap_or("no name").to_owned();
                Ok((subject(&i.account, &i.region, &i.id)?, name))
            }
            View::Findings => {
                let row = self.findings.selected().ok_or("no finding is selected")?;
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
    fn confirm_acquire(&mut self) {
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
                "containment waits for approval (irf approve <case> --confirm <instance>)"
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
            title: "Acquire memory and disk".into(),
            lines,
            effect: Effect::StartAcquisition { subject },
        });
    }

    /// The name of a member account, when the scope named it.
    pub fn account_name(&self, account: &str) -> Option<&str> {
        self.accounts
            .rows()
            .iter()
            .find(|a| a.id == account)
            .map(|a| a.name.as_str())
    }

    /// What `A` approves or `X` refuses here: the selected row of the approvals view, or
    /// the case of the case view when it waits for approval.
    fn decision_target(&self) -> Result<(bool, String, InstanceRef), String> {
        match self.view {
            View::Approvals => {
                let row = self
                    .approvals
                    .selected()
                    .ok_or("nothing waits for an approver")?;
                let p = &row.pending;
                Ok((p.kind == "case", p.id.clone(), p.instance.clone()))
            }
            View::Case => {
                let screen = self.case.as_ref().ok_or("no case is open")?;
                if screen.case.status != CaseStatus::AwaitingApproval {
                    return Err(format!(
                        "case {} is {}, not waiting for approval (:approvals lists what waits)",
                        screen.case.case_id,
                        screen.case.status.as_str()
                    ));
                }
                Ok((
                    true,
                    screen.case.case_id.to_string(),
                    InstanceRef::from(&screen.case.subject),
                ))
            }
            _ => {
                Err("open a case waiting for approval, or select one in :approvals (key 5)".into())
            }
        }
    }

    /// Approving first plans the containment (the dialog shows the plan); refusing asks for
    /// a reason at once.
    fn prompt_decision(&mut self, approve: bool) -> Vec<Effect> {
        let (is_case, id, instance) = match self.decision_target() {
            Ok(target) => target,
            Err(err) => {
                self.status = Some(Status::Error(err));
                return vec![];
            }
        };
        let case_id = if is_case {
            match CaseId::parse(&id) {
                Ok(case_id) => Some(case_id),
                Err(err) => {
                    self.status = Some(Status::Error(err.to_string()));
                    return vec![];
                }
            }
        } else {
            None
        };
        if approve {
            self.status = Some(Status::Info(format!(
                "planning the containment of {}…",
                instance.instance_id
            )));
            let decision = match case_id {
                Some(case) => TypedDecision::ApproveCase(case),
                None => TypedDecision::ApplyRequest(instance.clone()),
            };
            return vec![Effect::PlanContainment { decision, instance }];
        }
        let what = match &case_id {
            Some(case) => format!("case {case}"),
            None => "a direct containment request".to_owned(),
        };
        self.mode = Mode::Typed(TypedPrompt {
            title: "Refuse containment".to_owned(),
            lines: vec![
                format!(
                    "Refuse containment of {} in account {}, region {} ({what}).",
                    instance.instance_id, instance.account, instance.region
                ),
                "Type the reason (recorded with the decision), enter to refuse, esc to cancel."
                    .into(),
            ],
            expected: None,
            input: String::new(),
            decision: match case_id {
                Some(case) => TypedDecision::RejectCase(case),
                None => TypedDecision::RejectRequest(instance),
            },
        });
        vec![]
    }

    /// Shows the plan and asks for the instance id to approve it.
    fn prompt_approval(&mut self, decision: TypedDecision, plan: &ContainmentPlan) {
        let instance = &plan.instance;
        let what = match &decision {
            TypedDecision::ApproveCase(case) => format!("case {case}"),
            _ => "a direct containment request".to_owned(),
        };
        let mut lines = vec![format!(
            "Contain {} in account {}, region {} ({what}), VPC {}:",
            instance.instance_id, instance.account, instance.region, plan.vpc_id
        )];
        for change in &plan.changes {
            lines.push(format!(
                "  {} {} {}: {} -> {}",
                if change.done { "[done]" } else { "[ ]   " },
                change.action,
                change.resource,
                change.before,
                change.after
            ));
        }
        for warning in &plan.warnings {
            lines.push(format!("  ! {warning}"));
        }
        lines.push(
            "What it replaces is recorded first; rollback (U in the case view) restores it.".into(),
        );
        lines.push("Type the instance id to approve, enter to go ahead, esc to cancel.".into());
        self.mode = Mode::Typed(TypedPrompt {
            title: "Approve containment".to_owned(),
            lines,
            expected: Some(instance.instance_id.clone()),
            input: String::new(),
            decision,
        });
    }

    /// Asks for the instance id before rolling back the open case's containment.
    fn prompt_rollback(&mut self) {
        let Some(screen) = self.case.as_ref().filter(|_| self.view == View::Case) else {
            self.status = Some(Status::Error(
                "open the case whose containment to roll back (:cases, enter)".into(),
            ));
            return;
        };
        let instance = InstanceRef::from(&screen.case.subject);
        self.mode = Mode::Typed(TypedPrompt {
            title: "Roll back containment".into(),
            lines: vec![
                format!(
                    "Restore {} in account {}, region {} exactly as containment found it:",
                    instance.instance_id, instance.account, instance.region
                ),
                "  its security groups, instance profile, tag, load-balancer registrations,".into(),
                "  Auto Scaling group and termination protection, as recorded before containment."
                    .into(),
                "Type the instance id to roll back, enter to go ahead, esc to cancel.".into(),
            ],
            expected: Some(instance.instance_id.clone()),
            input: String::new(),
            decision: TypedDecision::Rollback(instance),
        });
    }

    fn load_evidence(&mut self) -> Vec<Effect> {
        if self.evidence_loading {
            return vec![];
        }
        self.evidence_loading = true;
        vec![Effect::LoadEvidence]
    }

    /// Asks before placing or removing the selected artifact's legal hold.
    fn confirm_legal_hold(&mut self) {
        let Some(row) = self
            .evidence
            .selected()
            .filter(|_| self.view == View::Evidence)
        else {
            self.status = Some(Status::Error(
                "select an artifact in :evidence (key 6) first".into(),
            ));
            return;
        };
        let on = !row.held();
        let item = &row.item;
        self.mode = Mode::Confirm(Confirmation {
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

    fn load_approvals(&mut self) -> Vec<Effect> {
        if self.approvals_loading {
            return vec![];
        }
        self.approvals_loading = true;
        vec![Effect::LoadApprovals]
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
                instance_id: finding.instance_id.clone(),
            },
        });
    }

    fn run_command_line(&mut self, line: &str) -> Vec<Effect> {
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
                    "'{}' is not a command: try instances, findings, accounts, cases, approvals, evidence, images, hosts, theme NAME, help, quit",
                    crate::text::clip_untrusted(other, 40)
                )));
            }
        }
        vec![]
    }

    fn refresh(&mut self, asked: bool) -> Vec<Effect> {
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

    fn with_table(&mut self, change: impl FnOnce(&mut dyn SortableTable)) {
        match self.view {
            View::Instances => change(&mut self.instances),
            View::Findings => change(&mut self.findings),
            View::Accounts => change(&mut self.accounts),
            View::Cases => change(&mut self.cases),
            View::Approvals => change(&mut self.approvals),
            View::Evidence => change(&mut self.evidence),
            View::Images => change(&mut self.images),
            View::Hosts => change(&mut self.hosts),
            // The case view is not a table: it has nothing to sort.
            View::Case => {}
        }
    }

    fn move_by(&mut self, delta: isize) {
        if self.view == View::Case {
            let first = self.case.as_ref().map_or(0, |screen| {
                screen.first_artifact.saturating_add_signed(delta)
            });
            self.scroll_artifacts_to(first);
        } else {
            self.with_table(|t| t.move_cursor(delta));
        }
    }

    fn select_position(&mut self, position: usize) {
        if self.view == View::Case {
            self.scroll_artifacts_to(position);
        } else {
            self.with_table(|t| t.select(position));
        }
    }

    /// In the case view the movement keys scroll the artifacts, for instances with more
    /// volumes than fit on screen.
    fn scroll_artifacts_to(&mut self, first: usize) {
        if let Some(screen) = &mut self.case {
            let count = screen.detail.as_ref().map_or(0, |d| d.artifacts.len());
            screen.first_artifact = first.min(count.saturating_sub(1));
        }
    }

    /// The selection's position in the current view.
    pub fn current_cursor(&self) -> usize {
        match self.view {
            View::Instances => self.instances.cursor(),
            View::Findings => self.findings.cursor(),
            View::Accounts => self.accounts.cursor(),
            View::Cases => self.cases.cursor(),
            View::Approvals => self.approvals.cursor(),
            View::Evidence => self.evidence.cursor(),
            View::Images => self.images.cursor(),
            View::Hosts => self.hosts.cursor(),
            View::Case => 0,
        }
    }

    fn current_filter_text(&self) -> String {
        let filter = match self.view {
            View::Instances => self.instances.filter(),
            View::Findings => self.findings.filter(),
            View::Accounts => self.accounts.filter(),
            View::Cases => self.cases.filter(),
            View::Approvals => self.approvals.filter(),
            View::Evidence => self.evidence.filter(),
            View::Images => self.images.filter(),
            View::Hosts => self.hosts.filter(),
            View::Case => None,
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
            View::Cases => self.cases.set_filter(filter),
            View::Approvals => self.approvals.set_filter(filter),
            View::Evidence => self.evidence.set_filter(filter),
            View::Images => self.images.set_filter(filter),
            View::Hosts => self.hosts.set_filter(filter),
            View::Case => {}
        }
    }

    /// Applies one engine event.
    pub fn on_engine(&mut self, event: EngineEvent) -> Vec<Effect> {
        match event {
            EngineEvent::Identity(Ok(who)) => self.identity = Load::Ready(who),
            EngineEvent::Identity(Err(err)) => self.identity = Load::Failed(err.to_string()),
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
                self.scope = Load::Failed(err.to_string());
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
            EngineEvent::Findings(Err(err)) => self.findings_state = Load::Failed(err.to_string()),
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
                self.cases_loading = false;
                match result {
                    Ok(cases) => {
                        self.cases_state = Load::Ready(cases.len());
                        self.cases
                            .set_rows(cases.into_iter().map(CaseRow::new).collect());
                    }
                    Err(err) => {
                        if self.view == View::Cases {
                            self.status = Some(Status::Error(format!(
                                "could not read the case table: {err}"
                            )));
                        }
                        self.cases_state = Load::Failed(err.to_string());
                    }
                }
            }
            EngineEvent::Approvals(result) => {
                self.approvals_loading = false;
                match result {
                    Ok(pending) => {
                        self.approvals_state = Load::Ready(pending.len());
                        self.approvals
                            .set_rows(pending.into_iter().map(ApprovalRow::new).collect());
                    }
                    Err(err) => {
                        if self.view == View::Approvals {
                            self.status = Some(Status::Error(format!(
                                "could not read what waits for approval: {err}"
                            )));
                        }
                        self.approvals_state = Load::Failed(err.to_string());
                    }
                }
            }
            EngineEvent::CaseVerified { case_id, result } => {
                if let Some(screen) = self
                    .case
                    .as_mut()
                    .filter(|screen| screen.case.case_id == case_id)
                {
                    self.status = Some(match &result {
                        Ok(v) if v.all_verified() => Status::Info(format!(
                            "case {case_id}: all {} items verified",
                            v.items.len()
                        )),
                        Ok(v) => Status::Error(format!(
                            "case {case_id}: {} of {} items did NOT verify",
                            v.items.iter().filter(|i| !i.verified).count(),
                            v.items.len()
                        )),
                        Err(err) => {
                            Status::Error(format!("could not verify case {case_id}: {err}"))
                        }
                    });
                    screen.verification = Some(result.map(|v| *v).map_err(|err| err.to_string()));
                }
            }
            EngineEvent::ReportWritten(result) => {
                self.status = Some(match result {
                    Ok(path) => Status::Info(format!("report written to {path}")),
                    Err(err) => Status::Error(format!("could not write the report: {err}")),
                });
            }
            EngineEvent::Evidence(result) => {
                self.evidence_loading = false;
                match result {
                    Ok(items) => {
                        self.evidence_state = Load::Ready(items.len());
                        self.evidence
                            .set_rows(items.into_iter().map(EvidenceRow::new).collect());
                    }
                    Err(err) => {
                        if self.view == View::Evidence {
                            self.status =
                                Some(Status::Error(format!("could not list the evidence: {err}")));
                        }
                        self.evidence_state = Load::Failed(err.to_string());
                    }
                }
            }
            EngineEvent::Images(result) => {
                self.images_loading = false;
                match result {
                    Ok(listed) => {
                        let listed = *listed;
                        self.images_state = Load::Ready(listed.images.len());
                        self.pipeline = Some(listed.pipeline);
                        self.images
                            .set_rows(listed.images.into_iter().map(ImageRow::new).collect());
                    }
                    Err(err) => {
                        if self.view == View::Images {
                            self.status =
                                Some(Status::Error(format!("could not list the images: {err}")));
                        }
                        self.images_state = Load::Failed(err.to_string());
                    }
                }
            }
            EngineEvent::ImageBuildStarted(result) => {
                self.status = Some(match result {
                    Ok(arn) => Status::Info(format!("build started: {arn}")),
                    Err(err) => Status::Error(format!("the build did not start: {err}")),
                });
                return self.load_images();
            }
            EngineEvent::Hosts(result) => {
                self.hosts_loading = false;
                match result {
                    Ok(hosts) => {
                        self.hosts_state = Load::Ready(hosts.len());
                        self.hosts
                            .set_rows(hosts.into_iter().map(HostRow::new).collect());
                    }
                    Err(err) => {
                        if self.view == View::Hosts {
                            self.status = Some(Status::Error(format!(
                                "could not list the analysis hosts: {err}"
                            )));
                        }
                        self.hosts_state = Load::Failed(err.to_string());
                    }
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
                        screen.first_artifact = screen
                            .first_artifact
                            .min(detail.artifacts.len().saturating_sub(1));
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
