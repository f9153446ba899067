//! What flows through the update: the inputs it takes, the engine events it folds in, and the
//! effects it asks the runtime to carry out.

use irf_engine::model::case::{Case, CaseId, CaseSubject};

use irf_engine::model::case_detail::CaseDetail;

use irf_engine::findings::{Finding, FindingRef};
use irf_engine::inventory::SweepEvent;
use irf_engine::organization::{Scope, WhoAmI};
use irf_engine::store::case_table::Opened;

use crate::keymap::Key;
use crate::workstation::failure::Failure;
use irf_engine::analysis::hosts::{AnalysisHost, LaunchOutcome};
use irf_engine::analysis::images::PipelineImages;
use irf_engine::approvals::PendingDecision;
use irf_engine::model::containment::{ContainmentPlan, InstanceRef};

use super::TypedDecision;

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
    /// A filter was saved, or why not.
    FilterSaved(Result<SavedFilter, Failure>),
    /// A launch under way started its next stage.
    HostLaunchProgress {
        case_id: CaseId,
        stage: irf_engine::analysis::hosts::LaunchStage,
    },
    /// A session ended (how), or why it could not open.
    SessionEnded(Result<String, Failure>),
    /// A host terminated (what was done), or why not.
    HostTerminated(Result<String, Failure>),
}

/// A filter kept under a name, and the file that keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFilter {
    pub name: String,
    pub text: String,
    pub file: String,
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
    /// Keeps the current view's filter `text` under `name` (`:save NAME`).
    SaveFilter {
        name: String,
        text: String,
    },
    /// Acts from now on as another profile of the shared config files, or in another home
    /// region (what is `None` stays): the workstation starts again on the new identity.
    SwitchIdentity {
        profile: Option<String>,
        region: Option<String>,
    },
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
