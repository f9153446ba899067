//! The terminal workstation: one loop over terminal input, a refresh timer and engine
//! events; state changes only in [`app::App`] and is drawn only when it changed.

pub mod app;
pub mod case_view;
pub mod effects;
pub mod failure;
pub mod format;
pub mod layout;
pub mod table;
pub mod ui;
pub mod views;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event, EventStream, KeyEventKind, MouseButton,
    MouseEventKind,
};
use futures::StreamExt;
use irf_engine::aws::AwsContext;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::keymap::{Key, Keymap};
use crate::theme::Theme;
use app::{AcquisitionSettings, App, Effect, EngineEvent, Input};
use effects::Engine;
use failure::Failure;

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
    /// The configuration and how AWS was reached, so that `:profile` and `:region` can
    /// connect again as another identity; `None` where the identity is fixed (the lab).
    pub reconnect: Option<(
        Arc<irf_engine::config::Config>,
        irf_engine::aws::ConnectOptions,
    )>,
    /// The filter the instances view opens with (`--filter`: a text, or `@NAME`).
    pub start_filter: Option<String>,
    /// Named filters (`:save NAME`, `:load NAME`) and the file that keeps them.
    pub saved_filters: std::collections::BTreeMap<String, String>,
    pub saved_filters_path: Option<std::path::PathBuf>,
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
    let mut reconnect = settings.reconnect;
    let mut app = App::new(settings.keymap, settings.read_only, &theme.name);
    app.acquisition = AcquisitionSettings::from_config(context.config());
    app.identity_switch = reconnect.is_some();
    app.saved_filters = settings.saved_filters;
    let saved_filters_path = settings.saved_filters_path;
    if let Some(filter) = &settings.start_filter {
        app.filter_instances(filter);
    }
    let mut engine = Engine::new(context, engine_tx);
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
                        Err(err) => Err(err.into()),
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
                Effect::SaveFilter { name, text } => {
                    let saved = match &saved_filters_path {
                        Some(path) => crate::saved_filters::save(path, &name, &text)
                            .map(|()| app::SavedFilter {
                                name,
                                text,
                                file: path.display().to_string(),
                            })
                            .map_err(Failure::from),
                        None => Err(Failure::from(app::FiltersUnavailable)),
                    };
                    effects.extend(app.on_engine(EngineEvent::FilterSaved(saved)));
                }
                Effect::SwitchIdentity { profile, region } => {
                    let Some((config, options)) = &mut reconnect else {
                        continue;
                    };
                    options.profile = profile.or(options.profile.take());
                    options.region = region.or(options.region.take());
                    // Boxed: connecting is a large future the loop's own need not carry.
                    let context =
                        Arc::new(Box::pin(AwsContext::connect(config.clone(), options)).await);
                    // What the old identity still had under way answers into a dropped
                    // channel: nothing of it reaches the new state.
                    let (engine_tx, rx) = mpsc::channel::<EngineEvent>(1024);
                    engine_rx = rx;
                    engine = Engine::new(context.clone(), engine_tx);
                    let mut fresh = App::new(app.keymap.clone(), app.read_only, &theme.name);
                    fresh.acquisition = AcquisitionSettings::from_config(context.config());
                    fresh.identity_switch = true;
                    fresh.saved_filters = std::mem::take(&mut app.saved_filters);
                    fresh.handle(Input::Resize {
                        width: app.size.0,
                        height: app.size.1,
                    });
                    fresh.status = Some(app::Status::Info(format!(
                        "acting as profile {}, region {}",
                        options.profile.as_deref().unwrap_or("(default)"),
                        options.region.as_deref().unwrap_or("(default)")
                    )));
                    app = fresh;
                    effects.extend(app.start());
                    dirty = true;
                }
                other => engine.spawn(other, app.read_only),
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
                let status = app.status.clone();
                effects = app.handle(Input::CasesPollDue);
                dirty = !effects.is_empty() || app.status != status;
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
) -> Result<String, Failure> {
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
        let analysis = engine.analysis().await?;
        let plane = engine.plane().await?;
        irf_engine::request_ids::recording(async {
            let host = irf_engine::analysis::hosts::host(analysis, instance_id).await?;
            crate::analysis::shell(analysis, plane, &host).await
        })
        .await
        .map_err(Failure::from)
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

fn clock() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:02}:{:02}:{:02} UTC",
        now.hour(),
        now.minute(),
        now.second()
    )
}
