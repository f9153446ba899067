//! The terminal workstation: one loop over terminal input, a refresh timer and engine
//! events; the state changes only in [`app::App::update`] and is drawn only when it changed.

pub mod app;
pub mod ui;

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures::StreamExt;
use irf_engine::aws::AwsContext;
use irf_engine::inventory;
use tokio::sync::mpsc;

use app::{Action, App, Effect, EngineEvent};

/// Runs the workstation until the operator quits; the terminal is restored on every exit
/// path, panics included.
pub async fn run(context: Arc<AwsContext>, read_only: bool) -> anyhow::Result<()> {
    let refresh = Duration::from_secs(context.config().ui.refresh_interval_secs.max(5));
    let mut terminal = ratatui::init();
    let result = event_loop(&mut terminal, context, read_only, refresh).await;
    ratatui::restore();
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    context: Arc<AwsContext>,
    read_only: bool,
    refresh: Duration,
) -> anyhow::Result<()> {
    let (engine_tx, mut engine_rx) = mpsc::channel::<EngineEvent>(1024);
    let mut app = App::new(read_only);
    let mut input = EventStream::new();
    let mut refresh_timer =
        tokio::time::interval_at(tokio::time::Instant::now() + refresh, refresh);
    for effect in app.start() {
        spawn_effect(effect, &context, &engine_tx);
    }
    let mut dirty = true;
    loop {
        if dirty {
            app.now = clock();
            terminal.draw(|frame| ui::draw(frame, &app))?;
            dirty = false;
        }
        let action = tokio::select! {
            event = input.next() => match event {
                Some(Ok(Event::Key(key))) => action_for_key(key),
                Some(Ok(Event::Resize(..))) => { dirty = true; None }
                Some(Ok(_)) => None,
                Some(Err(err)) => return Err(err.into()),
                None => Some(Action::Quit),
            },
            Some(event) = engine_rx.recv() => Some(Action::Engine(Box::new(event))),
            _ = refresh_timer.tick() => Some(Action::RefreshDue),
        };
        let Some(action) = action else { continue };
        app.now = clock();
        for effect in app.update(action) {
            spawn_effect(effect, &context, &engine_tx);
        }
        // Drain what else is waiting before drawing once for all of it.
        while let Ok(event) = engine_rx.try_recv() {
            app.update(Action::Engine(Box::new(event)));
        }
        dirty = true;
        if app.should_quit {
            return Ok(());
        }
    }
}

fn action_for_key(key: KeyEvent) -> Option<Action> {
    if key.kind != KeyEventKind::Press {
        return None;
    }
    match (key.code, key.modifiers) {
        (KeyCode::Char('q') | KeyCode::Esc, _) | (KeyCode::Char('c'), KeyModifiers::CONTROL) => {
            Some(Action::Quit)
        }
        (KeyCode::Char('j') | KeyCode::Down, _) => Some(Action::SelectNext),
        (KeyCode::Char('k') | KeyCode::Up, _) => Some(Action::SelectPrevious),
        (KeyCode::Char('r'), _) => Some(Action::Refresh),
        _ => None,
    }
}

fn spawn_effect(effect: Effect, context: &Arc<AwsContext>, events: &mpsc::Sender<EngineEvent>) {
    let context = context.clone();
    let events = events.clone();
    match effect {
        Effect::LoadIdentity => {
            tokio::spawn(async move {
                let who = context.whoami().await.map_err(|e| e.to_string());
                let _ = events.send(EngineEvent::Identity(who)).await;
            });
        }
        Effect::StartSweep => {
            tokio::spawn(async move {
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
