//! The terminal workstation: one loop over terminal input, a refresh timer and engine
//! events; state changes only in [`app::App`] and is drawn only when it changed.

pub mod app;
pub mod case_view;
pub mod format;
pub mod layout;
pub mod rows;
pub mod table;
pub mod ui;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event, EventStream, KeyEventKind, MouseButton,
    MouseEventKind,
};
use futures::StreamExt;
use irf_engine::acquisition;
use irf_engine::analysis::Analysis;
use irf_engine::aws::AwsContext;
use irf_engine::findings::FindingQuery;
use irf_engine::inventory;
use irf_engine::plane::Plane;
use tokio::sync::{OnceCell, mpsc};
use tokio::time::MissedTickBehavior;

use crate::keymap::{Key, Keymap};
use crate::theme::Theme;
use app::{AcquisitionSettings, App, Effect, EngineEvent, Input, TypedDecision};

/// How often the cases view polls the case table while a case is open.
const CASES_POLL: Duration = Duration::from_secs(3);
/// How often the case view polls its case while it is open.
const CASE_POLL: Duration = Duration::from_secs(2);

/// What the workstation needs besides AWS access.
#[derive(Debug)]
pub struct Settings {
    pub read_only: bool,
    pub theme: Theme,
    pub keymap: Keymap,
}

/// Refuses, with what to do instead, to open the workstation where there is no terminal
/// (a pipe, a script, a CI job): ratatui would panic there.
pub fn require_terminal() -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let not_terminal = match (
        std::io::stdin().is_terminal(),
        std::io::stdout().is_terminal(),
    ) {
        (true, true) => return Ok(()),
        (false, true) => "standard input is",
        (true, false) => "standard output is",
        (false, false) => "standard input and output are",
    };
    anyhow::bail!(
        "the workstation needs a terminal, and {not_terminal} not one: run irf in a terminal, \
         script with its commands (irf --help), or start the lab without the workstation \
         (irf lab up --detach)"
    )
}

/// Runs the workstation until the operator quits; the terminal is restored on every exit
/// path, panics included (ratatui's hook).
pub async fn run(context: Arc<AwsContext>, settings: Settings) -> anyhow::Result<()> {
    require_terminal()?;
    let refresh = Duration::from_secs(context.config().ui.refresh_interval_secs.max(5));
    let mut terminal = ratatui::try_init()
        .map_err(|err| anyhow::anyhow!("cannot open the workstation on this terminal: {err}"))?;
    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    let result = event_loop(&mut terminal, context, settings, refresh).await;
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    context: Arc<AwsContext>,
    settings: Settings,
    refresh: Duration,
) -> anyhow::Result<()> {
    let (engine_tx, mut engine_rx) = mpsc::channel::<EngineEvent>(1024);
    let mut theme = settings.theme;
    let mut app = App::new(settings.keymap, settings.read_only, &theme.name);
    app.acquisition = AcquisitionSettings::from_config(context.config());
    let engine = Engine {
        context,
        plane: Arc::new(OnceCell::new()),
        analysis: Arc::new(OnceCell::new()),
        events: engine_tx,
    };
    let size = terminal.size()?;
    app.handle(Input::Resize {
        width: size.width,
        height: size.height,
    });
    let mut input = EventStream::new();
    let mut refresh_timer =
        tokio::time::interval_at(tokio::time::Instant::now() + refresh, refresh);
    let mut cases_timer = poll_timer(CASES_POLL);
    let mut case_timer = poll_timer(CASE_POLL);
    let mut effects = app.start();
    let mut dirty = true;
    loop {
        // Effects may answer with more effects (a theme change does): work the queue dry.
        while let Some(effect) = effects.pop() {
            match effect {
                Effect::SetTheme(name) => {
                    let event = match Theme::load(&name, crate::theme_dir().as_deref()) {
                        Ok(loaded) => {
                            let described = (name, loaded.description.clone());
                            theme = loaded;
                            Ok(described)
                        }
                        Err(err) => Err(err.to_string()),
                    };
                    effects.extend(app.on_engine(EngineEvent::ThemeChanged(event)));
                }
                Effect::OpenSession { instance_id } if !app.read_only => {
                    // Boxed: a session's future is large, and the loop's own stays small.
                    let ended =
                        Box::pin(hand_over(terminal, &mut input, &engine, &instance_id)).await;
                    effects.extend(app.on_engine(EngineEvent::SessionEnded(ended)));
                    dirty = true;
                }
                other => spawn_effect(other, &engine, app.read_only),
            }
        }
        if dirty {
            app.now = clock();
            terminal.draw(|frame| ui::draw(frame, &app, &theme))?;
        }
        tokio::select! {
            event = input.next() => match event {
                // Mouse motion and key releases change nothing: no frame for them.
                Some(Ok(event)) => match input_of(&event) {
                    Some(input) => {
                        effects = app.handle(input);
                        dirty = true;
                    }
                    None => dirty = false,
                },
                Some(Err(err)) => return Err(err.into()),
                None => return Ok(()),
            },
            Some(event) = engine_rx.recv() => {
                app.now = clock();
                effects = app.on_engine(event);
                dirty = true;
            }
            _ = refresh_timer.tick() => {
                effects = app.handle(Input::RefreshDue);
                dirty = true;
            }
            // A poll that asks for nothing changed nothing: no frame for it.
            _ = cases_timer.tick() => {
                effects = app.handle(Input::CasesPollDue);
                dirty = !effects.is_empty();
            }
            _ = case_timer.tick() => {
                effects = app.handle(Input::CasePollDue);
                dirty = !effects.is_empty();
            }
        }
        // Drain what else is waiting, then draw once for all of it.
        while let Ok(event) = engine_rx.try_recv() {
            effects.extend(app.on_engine(event));
            dirty = true;
        }
        if app.should_quit {
            return Ok(());
        }
    }
}

/// Hands the terminal to a shell on an analysis host and takes it back as it was: the
/// workstation stops reading keys, leaves the alternate screen and shows the cursor; when
/// the shell exits, the screen, mouse capture and cursor are restored and redrawn in full.
async fn hand_over(
    terminal: &mut ratatui::DefaultTerminal,
    input: &mut EventStream,
    engine: &Engine,
    instance_id: &str,
) -> Result<String, String> {
    use crossterm::{cursor, terminal as term};
    // A fresh stream is not read until polled; dropping the old one stops its reader.
    drop(std::mem::replace(input, EventStream::new()));
    tokio::time::sleep(crate::analysis::HANDOVER_SETTLE).await;
    // Dropping a stream wakes crossterm's shared reader; a wake nobody took is still pending,
    // and the first poll after the session would see it beside the first key typed, report
    // only the wake, and lose the key's (edge-triggered) readiness: the first key after a
    // session would vanish. Take the wake now, while no key is meant for anyone.
    let _ = crossterm::event::poll(Duration::ZERO);
    let mut stdout = std::io::stdout();
    let _ = crossterm::execute!(
        stdout,
        DisableMouseCapture,
        term::LeaveAlternateScreen,
        cursor::Show
    );
    {
        use std::io::Write as _;
        let _ = write!(
            stdout,
            "\r\nirf: session to {instance_id}; exit the shell to come back to the workstation\r\n"
        );
        let _ = stdout.flush();
    }
    let outcome = async {
        // The effects' connections, kept for the workstation's life, serve sessions too.
        let analysis = analysis(&engine.context, &engine.analysis).await?;
        let plane = plane(&engine.context, &engine.plane).await?;
        irf_engine::request_ids::recording(async {
            let host = irf_engine::analysis::hosts::host(analysis, instance_id).await?;
            crate::analysis::shell(analysis, plane, &host).await
        })
        .await
        .map_err(|err| err.to_string())
    }
    .await;
    {
        // The host may have left the terminal in any mode (a scroll region with origin
        // mode, which misplaces every row drawn, application keys, another character set,
        // colours, insert mode, bracketed paste): a soft reset (DECSTR), and each of those
        // put back one by one for terminals without DECSTR.
        use std::io::Write as _;
        let _ = stdout.write_all(crate::analysis::TERMINAL_MODES_RESET);
    }
    let _ = crossterm::execute!(
        stdout,
        term::EnterAlternateScreen,
        term::Clear(term::ClearType::All),
        EnableMouseCapture,
        cursor::Hide
    );
    // The screen is blank now; an empty frame makes ratatui's idea of it blank too, so the
    // next frame is drawn in full. (`Terminal::clear` would ask the terminal for the cursor
    // position first, and an answer lost in the handover leaves the screen half drawn.)
    let _ = terminal.draw(|frame| frame.render_widget(ratatui::widgets::Clear, frame.area()));
    outcome.map(|end| {
        format!(
            "session to {instance_id} ended ({} bytes typed, {} shown); recorded in the case's ledger",
            end.bytes_in, end.bytes_out
        )
    })
}

/// Turns a terminal event into the workstation's input.
pub fn input_of(event: &Event) -> Option<Input> {
    match event {
        Event::Key(key) if key.kind == KeyEventKind::Press => Key::from_event(key).map(Input::Key),
        Event::Mouse(mouse) => match mouse.kind {
            MouseEventKind::ScrollUp => Some(Input::ScrollUp),
            MouseEventKind::ScrollDown => Some(Input::ScrollDown),
            MouseEventKind::Down(MouseButton::Left) => Some(Input::Click {
                column: mouse.column,
                row: mouse.row,
            }),
            _ => None,
        },
        Event::Resize(width, height) => Some(Input::Resize {
            width: *width,
            height: *height,
        }),
        _ => None,
    }
}

/// A timer for polls: a busy loop skips the ticks it missed rather than firing them all.
fn poll_timer(period: Duration) -> tokio::time::Interval {
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    timer.set_missed_tick_behavior(MissedTickBehavior::Skip);
    timer
}

/// What effects run against: AWS, the acquisition workflow, and the way back to the loop.
struct Engine {
    context: Arc<AwsContext>,
    /// The workflow, connected on first use and kept; a failed connection is retried by
    /// the next effect that needs it (the operator may fix the configuration meanwhile).
    plane: Arc<OnceCell<Plane>>,
    /// The Forensics account's analysis side, connected on first use like the plane.
    analysis: Arc<OnceCell<Analysis>>,
    events: mpsc::Sender<EngineEvent>,
}

/// The analysis side, connecting it the first time.
async fn analysis<'a>(
    context: &Arc<AwsContext>,
    cell: &'a OnceCell<Analysis>,
) -> Result<&'a Analysis, String> {
    cell.get_or_try_init(|| Analysis::connect(context.clone()))
        .await
        .map_err(|err| err.to_string())
}

/// The workflow plane, connecting it the first time.
async fn plane<'a>(
    context: &Arc<AwsContext>,
    cell: &'a OnceCell<Plane>,
) -> Result<&'a Plane, String> {
    cell.get_or_try_init(|| Plane::connect(context.clone()))
        .await
        .map_err(|err| err.to_string())
}

/// Runs an effect on its own task, keeping the request ids of its AWS calls for the ledger.
fn spawn_recorded(work: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(irf_engine::request_ids::recording(work));
}

fn spawn_effect(effect: Effect, engine: &Engine, read_only: bool) {
    if read_only && effect.is_mutating() {
        tracing::warn!(?effect, "mutating effect refused in read-only mode");
        return;
    }
    let context = engine.context.clone();
    let cell = engine.plane.clone();
    let analysis_cell = engine.analysis.clone();
    let events = engine.events.clone();
    match effect {
        Effect::LoadImages => {
            spawn_recorded(async move {
                let result = match analysis(&context, &analysis_cell).await {
                    Ok(analysis) => irf_engine::analysis::images::list(analysis)
                        .await
                        .map(Box::new)
                        .map_err(|err| err.to_string()),
                    Err(err) => Err(err),
                };
                let _ = events.send(EngineEvent::Images(result)).await;
            });
        }
        Effect::StartImageBuild => {
            spawn_recorded(async move {
                tracing::info!("image build from the workstation");
                let result = match analysis(&context, &analysis_cell).await {
                    Ok(analysis) => irf_engine::analysis::images::start_build(analysis)
                        .await
                        .map_err(|err| err.to_string()),
                    Err(err) => Err(err),
                };
                let _ = events.send(EngineEvent::ImageBuildStarted(result)).await;
            });
        }
        Effect::LoadHosts => {
            spawn_recorded(async move {
                let result = match analysis(&context, &analysis_cell).await {
                    Ok(analysis) => irf_engine::analysis::hosts::list(analysis)
                        .await
                        .map_err(|err| err.to_string()),
                    Err(err) => Err(err),
                };
                let _ = events.send(EngineEvent::Hosts(result)).await;
            });
        }
        Effect::LaunchHost { case_id } => {
            spawn_recorded(async move {
                tracing::info!(case = %case_id, "analysis host launch from the workstation");
                let result = async {
                    let plane = plane(&context, &cell).await?;
                    let analysis = analysis(&context, &analysis_cell).await?;
                    let request = irf_engine::analysis::hosts::LaunchRequest {
                        case_id,
                        instance_type: None,
                    };
                    irf_engine::analysis::hosts::launch(analysis, plane, &request)
                        .await
                        .map(Box::new)
                        .map_err(|err| err.to_string())
                }
                .await;
                let _ = events.send(EngineEvent::HostLaunched(result)).await;
            });
        }
        Effect::Decide {
            decision: TypedDecision::TerminateHost(instance_id),
            answer,
        } => {
            spawn_recorded(async move {
                tracing::info!(instance = %instance_id, "analysis host terminated from the workstation");
                let result = async {
                    let plane = plane(&context, &cell).await?;
                    let analysis = analysis(&context, &analysis_cell).await?;
                    irf_engine::analysis::hosts::terminate(analysis, plane, &instance_id, &answer)
                        .await
                        .map(|host| {
                            format!(
                                "{} is terminating; case {} keeps its evidence",
                                host.instance_id, host.case_id
                            )
                        })
                        .map_err(|err| err.to_string())
                }
                .await;
                let _ = events.send(EngineEvent::HostTerminated(result)).await;
            });
        }
        Effect::LoadIdentity => {
            spawn_recorded(async move {
                let who = context.whoami().await.map_err(|e| e.to_string());
                let _ = events.send(EngineEvent::Identity(who)).await;
            });
        }
        Effect::LoadFindings => {
            spawn_recorded(async move {
                let findings = context
                    .findings(&FindingQuery::open_on_instances())
                    .await
                    .map_err(|e| e.to_string());
                let _ = events.send(EngineEvent::Findings(findings)).await;
            });
        }
        Effect::ResolveFinding {
            finding,
            title,
            instance_id,
        } => {
            spawn_recorded(async move {
                tracing::info!(finding = %finding.id, "resolving finding from the workstation");
                let mut result = context
                    .set_workflow_status(
                        std::slice::from_ref(&finding),
                        "RESOLVED",
                        "Resolved from the irf workstation",
                    )
                    .await
                    .map(|_| title)
                    .map_err(|e| e.to_string());
                // The change belongs to the custody of the instance's latest case, if any.
                if let (Ok(_), Some(instance_id)) = (&result, instance_id)
                    && let Ok(plane) = plane(&context, &cell).await
                {
                    let recorded = record_finding_update(plane, &instance_id, &finding.id).await;
                    if let Err(err) = recorded {
                        result = Err(format!(
                            "the finding was resolved, but its case's ledger could not record it: {err}"
                        ));
                    }
                }
                let _ = events.send(EngineEvent::FindingResolved(result)).await;
            });
        }
        Effect::StartSweep => {
            spawn_recorded(async move {
                let scope = match context.sweep_scope().await {
                    Ok(scope) => scope,
                    Err(err) => {
                        let _ = events.send(EngineEvent::Scope(Err(err.to_string()))).await;
                        return;
                    }
                };
                let _ = events.send(EngineEvent::Scope(Ok(scope.clone()))).await;
                let mut sweep = inventory::sweep(context, scope);
                while let Some(event) = sweep.recv().await {
                    if events.send(EngineEvent::Sweep(event)).await.is_err() {
                        return;
                    }
                }
            });
        }
        Effect::StartAcquisition { subject } => {
            spawn_recorded(async move {
                let instance_id = subject.instance_id.clone();
                tracing::info!(
                    instance = %instance_id,
                    account = %subject.account,
                    region = %subject.region,
                    "starting an acquisition from the workstation"
                );
                let result = match plane(&context, &cell).await {
                    Ok(plane) => irf_engine::desk::client::open_case(plane, subject)
                        .await
                        .map(Box::new)
                        .map_err(|err| err.to_string()),
                    Err(err) => Err(err),
                };
                let _ = events
                    .send(EngineEvent::AcquisitionStarted {
                        instance_id,
                        result,
                    })
                    .await;
            });
        }
        Effect::LoadCases => {
            spawn_recorded(async move {
                let result = match plane(&context, &cell).await {
                    Ok(plane) => plane.table.cases().await.map_err(|err| err.to_string()),
                    Err(err) => Err(err),
                };
                let _ = events.send(EngineEvent::Cases(result)).await;
            });
        }
        Effect::LoadCase(case_id) => {
            spawn_recorded(async move {
                let result = match plane(&context, &cell).await {
                    Ok(plane) => plane
                        .table
                        .detail(&case_id)
                        .await
                        .map(Box::new)
                        .map_err(|err| err.to_string()),
                    Err(err) => Err(err),
                };
                let _ = events
                    .send(EngineEvent::CaseLoaded { case_id, result })
                    .await;
            });
        }
        Effect::LoadApprovals => {
            spawn_recorded(async move {
                let result = match plane(&context, &cell).await {
                    Ok(plane) => crate::contain::pending(plane)
                        .await
                        .map_err(|err| err.to_string()),
                    Err(err) => Err(err),
                };
                let _ = events.send(EngineEvent::Approvals(result)).await;
            });
        }
        Effect::VerifyCase(case_id) => {
            spawn_recorded(async move {
                let result = match plane(&context, &cell).await {
                    Ok(plane) => irf_engine::ledger::verify(plane, &case_id)
                        .await
                        .map(Box::new)
                        .map_err(|err| err.to_string()),
                    Err(err) => Err(err),
                };
                let _ = events
                    .send(EngineEvent::CaseVerified { case_id, result })
                    .await;
            });
        }
        Effect::ExportReport(case_id) => {
            spawn_recorded(async move {
                let result = match plane(&context, &cell).await {
                    Ok(plane) => match irf_engine::report::build(plane, &case_id).await {
                        Ok(report) => {
                            let path = format!("irf-report-{case_id}.md");
                            std::fs::write(&path, report.to_markdown())
                                .map(|()| path.clone())
                                .map_err(|err| format!("{path}: {err}"))
                        }
                        Err(err) => Err(err.to_string()),
                    },
                    Err(err) => Err(err),
                };
                let _ = events.send(EngineEvent::ReportWritten(result)).await;
            });
        }
        Effect::LoadEvidence => {
            spawn_recorded(async move {
                let result = match plane(&context, &cell).await {
                    Ok(plane) => irf_engine::ledger::evidence(plane)
                        .await
                        .map_err(|err| err.to_string()),
                    Err(err) => Err(err),
                };
                let _ = events.send(EngineEvent::Evidence(result)).await;
            });
        }
        Effect::SetLegalHold { case_id, key, on } => {
            spawn_recorded(async move {
                tracing::info!(case = %case_id, key, on, "legal hold from the workstation");
                let result = match plane(&context, &cell).await {
                    Ok(plane) => irf_engine::ledger::set_legal_hold(plane, &case_id, &key, on)
                        .await
                        .map(|entry| {
                            format!("{} (ledger entry {}): {key}", entry.action, entry.seq)
                        })
                        .map_err(|err| err.to_string()),
                    Err(err) => Err(err),
                };
                let _ = events.send(EngineEvent::LegalHoldSet(result)).await;
            });
        }
        Effect::PlanContainment { decision, instance } => {
            spawn_recorded(async move {
                let result = match plane(&context, &cell).await {
                    Ok(plane) => {
                        let options = irf_engine::containment::ContainmentOptions::from_config(
                            plane.ctx.config(),
                        );
                        irf_engine::containment::plan(plane, &instance, &options)
                            .await
                            .map(Box::new)
                            .map_err(|err| err.to_string())
                    }
                    Err(err) => Err(err),
                };
                let _ = events
                    .send(EngineEvent::ContainmentPlanned { decision, result })
                    .await;
            });
        }
        Effect::Decide { decision, answer } => {
            spawn_recorded(async move {
                tracing::info!(?decision, "containment decision from the workstation");
                let result = match plane(&context, &cell).await {
                    Ok(plane) => carry_out(plane, decision, answer).await,
                    Err(err) => Err(err),
                };
                let _ = events.send(EngineEvent::ContainmentDone(result)).await;
            });
        }
        // Themes and sessions are the loop's own: they belong to the terminal, not to AWS.
        Effect::SetTheme(_) | Effect::OpenSession { .. } => {}
    }
}

/// Appends "finding updated" to the ledger of the instance's latest case.
async fn record_finding_update(
    plane: &Plane,
    instance_id: &str,
    finding_id: &str,
) -> Result<(), String> {
    let cases = plane.table.cases().await.map_err(|err| err.to_string())?;
    // Newest first: the latest case of the instance is the one the finding belongs with.
    let Some(case) = cases
        .into_iter()
        .find(|c| c.subject.instance_id == instance_id)
    else {
        return Ok(());
    };
    irf_engine::ledger::append(
        plane,
        &case.case_id,
        irf_engine::model::ledger::NewEntry::new("finding updated", case.subject.ledger_target())
            .detail(format!("{finding_id}: workflow status RESOLVED")),
    )
    .await
    .map(drop)
    .map_err(|err| err.to_string())
}

/// Carries out an answered decision through the same engine calls as the CLI; the
/// engine's own checks (four-eyes, a case no longer waiting) apply.
async fn carry_out(
    plane: &Plane,
    decision: TypedDecision,
    answer: String,
) -> Result<String, String> {
    use irf_engine::desk::client::{self, Containing};
    let changes = |n: usize| match n {
        0 => "nothing needed changing".to_owned(),
        1 => "1 change".to_owned(),
        n => format!("{n} changes"),
    };
    match decision {
        TypedDecision::ApproveCase(case) => {
            let decided = client::decide_case(plane, &case, acquisition::Decision::Approve)
                .await
                .map_err(|err| err.to_string())?;
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
            .await
            .map_err(|err| err.to_string())?;
            Ok(format!(
                "refused containment for case {case}: it closes without it"
            ))
        }
        TypedDecision::ApplyRequest(instance) => {
            match client::contain(plane, &instance, None)
                .await
                .map_err(|err| err.to_string())?
            {
                Containing::Contained(outcome) => Ok(format!(
                    "contained {instance}: {}",
                    changes(outcome.changed.len())
                )),
                Containing::Requested(record) => Err(format!(
                    "four-eyes: {} asked for the containment of {instance}; another person approves it",
                    record.requested_by
                )),
            }
        }
        TypedDecision::RejectRequest(instance) => {
            client::reject_containment(plane, &instance, &answer)
                .await
                .map_err(|err| err.to_string())?;
            Ok(format!("refused the containment request for {instance}"))
        }
        // Carried out by its own effect arm (it needs the analysis side, not the plane).
        TypedDecision::TerminateHost(instance_id) => Err(format!(
            "{instance_id}: terminate is carried out by the analysis side"
        )),
        TypedDecision::Rollback(instance) => {
            let outcome = client::roll_back(plane, &instance)
                .await
                .map_err(|err| err.to_string())?;
            Ok(format!(
                "rolled back the containment of {instance}: {}",
                changes(outcome.changed.len())
            ))
        }
    }
}

fn clock() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:02}:{:02}:{:02} UTC",
        now.hour(),
        now.minute(),
        now.second()
    )
}
