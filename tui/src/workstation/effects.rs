//! Running the update's effects against the engine: each on a task of its own, its AWS
//! calls' request ids kept for the ledger, its outcome sent back to the loop as an event.
//! The workflow plane and the analysis side are connected on first use and kept.

use std::future::Future;
use std::sync::Arc;

use irf_engine::acquisition;
use irf_engine::analysis::Analysis;
use irf_engine::analysis::hosts::LaunchOutcome;
use irf_engine::aws::AwsContext;
use irf_engine::findings::FindingRef;
use irf_engine::findings::{FindingQuery, WorkflowStatus};
use irf_engine::inventory;
use irf_engine::model::case::{CaseId, CaseSubject};
use irf_engine::model::containment::{ContainmentPlan, InstanceRef};
use irf_engine::plane::Plane;
use irf_engine::store::case_table::Opened;
use tokio::sync::{OnceCell, mpsc};

use super::app::{Effect, EngineEvent, TypedDecision};
use super::failure::{Failure, WorkstationError};

/// What effects run against: AWS, the acquisition workflow, and the way back to the loop.
#[derive(Debug, Clone)]
pub struct Engine {
    pub context: Arc<AwsContext>,
    /// The workflow, connected on first use and kept; a failed connection is retried by
    /// the next effect that needs it (the operator may fix the configuration meanwhile).
    plane: Arc<OnceCell<Plane>>,
    /// The Forensics account's analysis side, connected on first use like the plane.
    analysis: Arc<OnceCell<Analysis>>,
    events: mpsc::Sender<EngineEvent>,
}

impl Engine {
    pub fn new(context: Arc<AwsContext>, events: mpsc::Sender<EngineEvent>) -> Self {
        Self {
            context,
            plane: Arc::new(OnceCell::new()),
            analysis: Arc::new(OnceCell::new()),
            events,
        }
    }

    /// The workflow plane, connecting it the first time.
    pub async fn plane(&self) -> Result<&Plane, Failure> {
        Ok(self
            .plane
            .get_or_try_init(|| Plane::connect(self.context.clone()))
            .await?)
    }

    /// The analysis side, connecting it the first time.
    pub async fn analysis(&self) -> Result<&Analysis, Failure> {
        Ok(self
            .analysis
            .get_or_try_init(|| Analysis::connect(self.context.clone()))
            .await?)
    }

    /// Runs `work` on a task of its own, recording its request ids, and sends what it comes
    /// to as the event `into_event` makes of it.
    fn run<T, W, F>(
        &self,
        work: W,
        into_event: impl FnOnce(Result<T, Failure>) -> EngineEvent + Send + 'static,
    ) where
        W: FnOnce(Engine) -> F + Send + 'static,
        F: Future<Output = Result<T, Failure>> + Send + 'static,
        T: Send + 'static,
    {
        let engine = self.clone();
        let events = self.events.clone();
        tokio::spawn(irf_engine::request_ids::recording(async move {
            let result = work(engine).await;
            let _ = events.send(into_event(result)).await;
        }));
    }

    /// Starts `effect`; in read-only mode a mutating one is refused here too.
    pub fn spawn(&self, effect: Effect, read_only: bool) {
        if read_only && effect.is_mutating() {
            tracing::warn!(?effect, "mutating effect refused in read-only mode");
            return;
        }
        match effect {
            Effect::LoadIdentity => self.run(
                move |e| async move { Ok(e.context.whoami().await?) },
                EngineEvent::Identity,
            ),
            Effect::LoadFindings => self.run(
                move |e| async move {
                    Ok(e.context
                        .findings(&FindingQuery::open_on_instances())
                        .await?)
                },
                EngineEvent::Findings,
            ),
            Effect::ResolveFinding {
                finding,
                title,
                instance_id,
            } => self.run(
                move |e| async move { e.resolve_finding(finding, title, instance_id).await },
                EngineEvent::FindingResolved,
            ),
            Effect::StartSweep => {
                let engine = self.clone();
                tokio::spawn(irf_engine::request_ids::recording(async move {
                    engine.sweep().await;
                }));
            }
            Effect::StartAcquisition { subject } => {
                let instance_id = subject.instance_id.clone();
                self.run(
                    move |e| async move { e.open_case(subject).await },
                    |result| EngineEvent::AcquisitionStarted {
                        instance_id,
                        result,
                    },
                );
            }
            Effect::LoadCases => self.run(
                move |e| async move { Ok(e.plane().await?.table.cases().await?) },
                EngineEvent::Cases,
            ),
            Effect::LoadCase(case_id) => {
                let loaded = case_id.clone();
                self.run(
                    move |e| async move { Ok(Box::new(e.plane().await?.table.detail(&loaded).await?)) },
                    |result| EngineEvent::CaseLoaded { case_id, result },
                );
            }
            Effect::LoadApprovals => self.run(
                move |e| async move {
                    irf_engine::approvals::pending(e.plane().await?)
                        .await
                        .map_err(|err| Failure::boxed(err.into()))
                },
                EngineEvent::Approvals,
            ),
            Effect::VerifyCase(case_id) => {
                let verified = case_id.clone();
                self.run(
                    move |e| async move {
                        Ok(Box::new(
                            irf_engine::ledger::verify(e.plane().await?, &verified).await?,
                        ))
                    },
                    |result| EngineEvent::CaseVerified { case_id, result },
                );
            }
            Effect::ExportReport(case_id) => self.run(
                move |e| async move { e.export_report(&case_id).await },
                EngineEvent::ReportWritten,
            ),
            Effect::LoadEvidence => self.run(
                move |e| async move { Ok(irf_engine::ledger::evidence(e.plane().await?).await?) },
                EngineEvent::Evidence,
            ),
            Effect::SetLegalHold { case_id, key, on } => self.run(
                move |e| async move { e.set_legal_hold(&case_id, &key, on).await },
                EngineEvent::LegalHoldSet,
            ),
            Effect::PlanContainment { decision, instance } => self.run(
                move |e| async move { e.plan_containment(&instance).await },
                |result| EngineEvent::ContainmentPlanned { decision, result },
            ),
            Effect::Decide {
                decision: TypedDecision::TerminateHost(instance_id),
                answer,
            } => self.run(
                move |e| async move { e.terminate_host(&instance_id, &answer).await },
                EngineEvent::HostTerminated,
            ),
            Effect::Decide { decision, answer } => self.run(
                move |e| async move {
                    tracing::info!(?decision, "containment decision from the workstation");
                    carry_out(e.plane().await?, decision, answer).await
                },
                EngineEvent::ContainmentDone,
            ),
            Effect::LoadImages => self.run(
                move |e| async move {
                    Ok(Box::new(
                        irf_engine::analysis::images::list(e.analysis().await?).await?,
                    ))
                },
                EngineEvent::Images,
            ),
            Effect::StartImageBuild => self.run(
                move |e| async move {
                    tracing::info!("image build from the workstation");
                    Ok(irf_engine::analysis::images::start_build(e.analysis().await?).await?)
                },
                EngineEvent::ImageBuildStarted,
            ),
            Effect::LoadHosts => self.run(
                move |e| async move {
                    Ok(irf_engine::analysis::hosts::list(e.analysis().await?).await?)
                },
                EngineEvent::Hosts,
            ),
            Effect::LaunchHost { case_id } => self.run(
                move |e| async move { e.launch_host(case_id).await },
                EngineEvent::HostLaunched,
            ),
            // Themes and sessions are the loop's own: they belong to the terminal, not to AWS.
            Effect::SetTheme(_)
            | Effect::OpenSession { .. }
            | Effect::SwitchIdentity { .. }
            | Effect::SaveFilter { .. } => {}
        }
    }
}

/// The work of the effects that take more than one call.
impl Engine {
    /// Marks a finding RESOLVED in Security Hub and records it in the custody of its
    /// instance's latest case, if it has one.
    async fn resolve_finding(
        &self,
        finding: FindingRef,
        title: String,
        instance_id: Option<String>,
    ) -> Result<String, Failure> {
        tracing::info!(finding = %finding.id, "resolving finding from the workstation");
        self.context
            .set_workflow_status(
                std::slice::from_ref(&finding),
                WorkflowStatus::Resolved,
                "Resolved from the irf workstation",
            )
            .await?;
        if let Some(instance_id) = instance_id
            && let Ok(plane) = self.plane().await
        {
            irf_engine::findings::record_in_case(
                plane,
                &instance_id,
                &finding.id,
                WorkflowStatus::Resolved,
            )
            .await
            .map_err(WorkstationError::FindingNotRecorded)?;
        }
        Ok(title)
    }

    /// Sweeps the Organization's scope, sending the scope, then each account and region's
    /// instances as they come.
    async fn sweep(&self) {
        let scope = match self.context.sweep_scope().await {
            Ok(scope) => scope,
            Err(err) => {
                let _ = self.events.send(EngineEvent::Scope(Err(err.into()))).await;
                return;
            }
        };
        let _ = self
            .events
            .send(EngineEvent::Scope(Ok(scope.clone())))
            .await;
        let mut sweep = inventory::sweep(self.context.clone(), scope);
        while let Some(event) = sweep.recv().await {
            if self.events.send(EngineEvent::Sweep(event)).await.is_err() {
                return;
            }
        }
    }

    /// Opens a case for the instance and starts its acquisition (or joins its open case).
    async fn open_case(&self, subject: CaseSubject) -> Result<Box<Opened>, Failure> {
        tracing::info!(
            instance = %subject.instance_id,
            account = %subject.account,
            region = %subject.region,
            "starting an acquisition from the workstation"
        );
        let plane = self.plane().await?;
        Ok(Box::new(
            irf_engine::desk::client::open_case(plane, subject).await?,
        ))
    }

    /// Writes the case's report (Markdown) into the working directory; returns its path.
    async fn export_report(&self, case_id: &CaseId) -> Result<String, Failure> {
        let report = irf_engine::report::build(self.plane().await?, case_id).await?;
        let path = format!("irf-report-{case_id}.md");
        std::fs::write(&path, report.to_markdown()).map_err(|source| {
            WorkstationError::ReportNotWritten {
                path: path.clone(),
                source,
            }
        })?;
        Ok(path)
    }

    async fn set_legal_hold(
        &self,
        case_id: &CaseId,
        key: &str,
        on: bool,
    ) -> Result<String, Failure> {
        tracing::info!(case = %case_id, key, on, "legal hold from the workstation");
        let plane = self.plane().await?;
        let entry = irf_engine::ledger::set_legal_hold(plane, case_id, key, on).await?;
        Ok(format!(
            "{} (ledger entry {}): {key}",
            entry.action, entry.seq
        ))
    }

    /// The containment an approval would carry out, with the configuration's options.
    async fn plan_containment(
        &self,
        instance: &InstanceRef,
    ) -> Result<Box<ContainmentPlan>, Failure> {
        let plane = self.plane().await?;
        let options = irf_engine::containment::ContainmentOptions::from_config(plane.ctx.config());
        Ok(Box::new(
            irf_engine::containment::plan(plane, instance, &options).await?,
        ))
    }

    async fn terminate_host(&self, instance_id: &str, answer: &str) -> Result<String, Failure> {
        tracing::info!(instance = %instance_id, "analysis host terminated from the workstation");
        let plane = self.plane().await?;
        let analysis = self.analysis().await?;
        let host =
            irf_engine::analysis::hosts::terminate(analysis, plane, instance_id, answer).await?;
        Ok(format!(
            "{} is terminating; case {} keeps its evidence",
            host.instance_id, host.case_id
        ))
    }

    /// Launches an analysis host for the case, each stage sent to the screen as it starts
    /// (one lost to a full queue is said by the next).
    async fn launch_host(&self, case_id: CaseId) -> Result<Box<LaunchOutcome>, Failure> {
        tracing::info!(case = %case_id, "analysis host launch from the workstation");
        let plane = self.plane().await?;
        let analysis = self.analysis().await?;
        let events = self.events.clone();
        let for_case = case_id.clone();
        let say = move |stage| {
            let _ = events.try_send(EngineEvent::HostLaunchProgress {
                case_id: for_case.clone(),
                stage,
            });
        };
        let request = irf_engine::analysis::hosts::LaunchRequest {
            case_id,
            instance_type: None,
        };
        Ok(Box::new(
            irf_engine::analysis::hosts::launch(analysis, plane, &request, &say).await?,
        ))
    }
}

/// Carries out an answered decision through the same engine calls as the CLI; the
/// engine's own checks (four-eyes, a case no longer waiting) apply.
async fn carry_out(
    plane: &Plane,
    decision: TypedDecision,
    answer: String,
) -> Result<String, Failure> {
    use irf_engine::desk::client::{self, Containing};
    let changes = |n: usize| match n {
        0 => "nothing needed changing".to_owned(),
        1 => "1 change".to_owned(),
        n => format!("{n} changes"),
    };
    match decision {
        TypedDecision::ApproveCase(case) => {
            let decided = client::decide_case(plane, &case, acquisition::Decision::Approve).await?;
            Ok(if decided == acquisition::Decided::AwaitsSecondApproval {
                format!(
                    "first approval for case {case} recorded: a Security Hub action opened it, so a second person approves"
                )
            } else {
                format!("approved containment for case {case}: the workflow contains the instance")
            })
        }
        TypedDecision::RejectCase(case) => {
            client::decide_case(
                plane,
                &case,
                acquisition::Decision::Reject { reason: answer },
            )
            .await?;
            Ok(format!(
                "refused containment for case {case}: it closes without it"
            ))
        }
        TypedDecision::ApplyRequest(instance) => {
            match client::contain(plane, &instance, None).await? {
                Containing::Contained(outcome) => Ok(format!(
                    "contained {instance}: {}",
                    changes(outcome.changed.len())
                )),
                Containing::Requested(record) => Err(WorkstationError::StillRequested {
                    requested_by: record.requested_by,
                    instance: instance.to_string(),
                }
                .into()),
            }
        }
        TypedDecision::RejectRequest(instance) => {
            client::reject_containment(plane, &instance, &answer).await?;
            Ok(format!("refused the containment request for {instance}"))
        }
        // Carried out by its own effect arm (it needs the analysis side, not the plane).
        TypedDecision::TerminateHost(instance_id) => {
            Err(WorkstationError::NotAContainmentDecision { instance_id }.into())
        }
        TypedDecision::Rollback(instance) => {
            let outcome = client::roll_back(plane, &instance).await?;
            Ok(format!(
                "rolled back the containment of {instance}: {}",
                changes(outcome.changed.len())
            ))
        }
    }
}
