//! `irf images`, `irf hosts` and `irf session`: the SIFT image pipeline, analysis hosts,
//! and Session Manager sessions with the terminal handed over and given back.

use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use irf_engine::analysis::hosts::{self, AnalysisHost, LaunchRequest};
use irf_engine::analysis::session::{self, DataChannel, SessionEnd, SessionKind};
use irf_engine::analysis::{Analysis, AnalysisError, images};
use irf_engine::aws::AwsContext;
use irf_engine::ledger;
use irf_engine::model::case::CaseId;
use irf_engine::model::ledger::{Action, NewEntry};
use irf_engine::plane::Plane;
use tokio::sync::mpsc;

use crate::text::escape_untrusted;
use crate::workstation::format::human_age as age;

/// `irf images [--json]`.
pub async fn list_images(context: Arc<AwsContext>, json: bool) -> anyhow::Result<ExitCode> {
    let analysis = Analysis::connect(context).await?;
    let listed = images::list(&analysis).await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(ExitCode::SUCCESS);
    }
    let p = &listed.pipeline;
    out!(
        "{} ({}): schedule {}, last run {}, next run {}",
        escape_untrusted(&p.name),
        p.status,
        p.schedule
            .as_deref()
            .map_or_else(|| "none".to_owned(), escape_untrusted),
        p.last_run.as_deref().unwrap_or("never"),
        p.next_run.as_deref().unwrap_or("-")
    );
    for image in &listed.images {
        let amis: Vec<String> = image
            .amis
            .iter()
            .map(|a| format!("{} {}", a.region, a.ami_id))
            .collect();
        out!(
            "  {:<12} {:<13} {:<25} {}",
            escape_untrusted(&image.version),
            image.state,
            image.created.as_deref().unwrap_or("-"),
            if amis.is_empty() {
                "-".to_owned()
            } else {
                amis.join(", ")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `irf images build [--json]`.
pub async fn build_image(context: Arc<AwsContext>, json: bool) -> anyhow::Result<ExitCode> {
    let analysis = Analysis::connect(context).await?;
    let arn = images::start_build(&analysis).await?;
    if json {
        out!("{}", serde_json::json!({ "image_build_version_arn": arn }));
    } else {
        out!(
            "build started: {arn}\n  'irf images' shows its state; it can be launched from when AVAILABLE"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `irf hosts [--json]`.
pub async fn list_hosts(context: Arc<AwsContext>, json: bool) -> anyhow::Result<ExitCode> {
    let analysis = Analysis::connect(context).await?;
    let listed = hosts::list(&analysis).await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(ExitCode::SUCCESS);
    }
    if listed.is_empty() {
        out!("no analysis hosts; 'irf hosts launch --case <case-id>' launches one");
    }
    for host in &listed {
        out!(
            "{}  {:<10} {:<10} {:<15} {:<15} {:<13} {:>7} {:>8}  case {}  evidence {}",
            host.instance_id,
            host.state,
            host.instance_type,
            host.private_ip.as_deref().unwrap_or("-"),
            host.subnet_id.as_deref().unwrap_or("-"),
            host.ssm.as_str(),
            age(host.age_secs),
            host.cost_usd
                .map_or_else(|| "?".to_owned(), |c| format!("${c:.2}")),
            escape_untrusted(&host.case_id),
            escape_untrusted(host.evidence.as_deref().unwrap_or("none")),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `irf hosts launch --case <id> [--type T] [--json]`.
pub async fn launch_host(
    context: Arc<AwsContext>,
    case_id: &str,
    instance_type: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let request = LaunchRequest {
        case_id: CaseId::parse(case_id)?,
        instance_type,
    };
    let plane = Plane::connect(context.clone()).await?;
    let analysis = Analysis::connect(context).await?;
    eprintln!(
        "irf: launching an analysis host for case {} and fetching its evidence onto it",
        request.case_id
    );
    let say = |stage: hosts::LaunchStage| eprintln!("irf: {stage}");
    let outcome = hosts::launch(&analysis, &plane, &request, &say).await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&outcome)?);
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{} launched: {} from SIFT {} ({}) in {}, private IP {}, profile {}",
        outcome.instance_id,
        outcome.instance_type,
        escape_untrusted(&outcome.image_version),
        outcome.ami_id,
        outcome.subnet_id,
        outcome.private_ip.as_deref().unwrap_or("-"),
        outcome.instance_profile
    );
    for artifact in &outcome.evidence {
        out!(
            "  verified {}  {:>14}  {}",
            artifact.sha256,
            artifact.size,
            escape_untrusted(&artifact.path)
        );
    }
    out!("  'irf session {}' opens a shell", outcome.instance_id);
    Ok(ExitCode::SUCCESS)
}

/// `irf hosts terminate <id> --confirm <id>`.
pub async fn terminate_host(
    context: Arc<AwsContext>,
    instance_id: &str,
    confirm: &str,
) -> anyhow::Result<ExitCode> {
    if confirm != instance_id {
        // Checked before anything is read: a typo must not cost a call, let alone a host.
        return Err(AnalysisError::Confirmation {
            expected: escape_untrusted(instance_id),
            given: escape_untrusted(confirm),
        }
        .into());
    }
    let plane = Plane::connect(context.clone()).await?;
    let analysis = Analysis::connect(context).await?;
    let host = hosts::terminate(&analysis, &plane, instance_id, confirm).await?;
    out!(
        "{} terminating (case {}, {} for {})",
        host.instance_id,
        escape_untrusted(&host.case_id),
        host.instance_type,
        age(host.age_secs)
    );
    Ok(ExitCode::SUCCESS)
}

/// Records a session's start or end in the ledger of the host's case.
async fn record_session(
    plane: &Plane,
    analysis: &Analysis,
    host: &AnalysisHost,
    action: Action,
    detail: String,
    request_ids: Vec<String>,
) -> Result<(), AnalysisError> {
    let Ok(case_id) = CaseId::parse(&host.case_id) else {
        return Ok(());
    };
    let mut entry = NewEntry::new(action, analysis.target(&host.instance_id)).detail(detail);
    entry.request_ids.extend(request_ids);
    ledger::append(plane, &case_id, entry)
        .await
        .map(drop)
        .map_err(AnalysisError::from)
}

/// What a session needs: the analysis account, the workflow (for the ledger), the host.
pub struct SessionTarget {
    pub analysis: Analysis,
    pub plane: Plane,
    pub host: AnalysisHost,
}

impl std::fmt::Debug for SessionTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTarget")
            .field("host", &self.host.instance_id)
            .finish_non_exhaustive()
    }
}

/// Finds the host (refusing anything that is not an analysis host) and connects.
pub async fn session_target(
    context: Arc<AwsContext>,
    instance_id: &str,
) -> Result<SessionTarget, anyhow::Error> {
    let plane = Plane::connect(context.clone()).await?;
    let analysis = Analysis::connect(context).await?;
    let host = hosts::host(&analysis, instance_id).await?;
    Ok(SessionTarget {
        analysis,
        plane,
        host,
    })
}

/// Reads the terminal's bytes until told to stop. It polls, so that it stops within a
/// tenth of a second and never swallows a key meant for whoever reads next.
struct TerminalInput {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TerminalInput {
    fn start() -> (Self, mpsc::Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::channel(64);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
            let stdin = std::io::stdin();
            let mut buffer = [0u8; 4096];
            while !stopping.load(Ordering::SeqCst) {
                let mut fds = [PollFd::new(stdin.as_fd_ref(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(100u16)) {
                    Ok(0) => continue,
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                }
                match nix::unistd::read(stdin.as_raw_fd(), &mut buffer) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.blocking_send(buffer[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                    Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                    Err(_) => break,
                }
            }
        });
        (
            Self {
                stop,
                thread: Some(thread),
            },
            rx,
        )
    }
}

impl Drop for TerminalInput {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

trait AsFdRef {
    fn as_fd_ref(&self) -> std::os::fd::BorrowedFd<'_>;
}

impl AsFdRef for std::io::Stdin {
    fn as_fd_ref(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

/// Runs an interactive shell on the host in this terminal. The terminal must be in raw
/// mode (the caller's business: the workstation already is, the CLI sets it); its size
/// follows the window. Recorded in the case's ledger when it opens and when it closes.
pub async fn shell(
    analysis: &Analysis,
    plane: &Plane,
    host: &AnalysisHost,
) -> Result<SessionEnd, AnalysisError> {
    let started = session::start(analysis, &host.instance_id, &SessionKind::Shell).await?;
    record_session(
        plane,
        analysis,
        host,
        Action::SessionOpened,
        format!("shell {}", started.session_id),
        started.request_id.iter().cloned().collect(),
    )
    .await?;
    greet(host);
    let outcome = async {
        let channel = DataChannel::open(&started).await?;
        let (input_reader, input) = TerminalInput::start();
        let (size_tx, sizes) = mpsc::channel(8);
        if let Ok(size) = crossterm::terminal::size() {
            let _ = size_tx.try_send(size);
        }
        let resizes = tokio::spawn(async move {
            let Ok(mut winch) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
            else {
                return;
            };
            while winch.recv().await.is_some() {
                if let Ok(size) = crossterm::terminal::size()
                    && size_tx.send(size).await.is_err()
                {
                    return;
                }
            }
        });
        let ended = channel.shell(input, sizes, tokio::io::stdout()).await;
        resizes.abort();
        drop(input_reader);
        ended
    }
    .await;
    let _ = session::terminate(analysis, &started.session_id).await;
    let detail = match &outcome {
        Ok(end) => format!(
            "shell {}: {} bytes typed, {} bytes shown",
            started.session_id, end.bytes_in, end.bytes_out
        ),
        Err(err) => format!("shell {}: {err}", started.session_id),
    };
    record_session(
        plane,
        analysis,
        host,
        Action::SessionClosed,
        detail,
        Vec::new(),
    )
    .await?;
    outcome
}

/// Says, in the terminal the shell is about to take, which case the host is for and where
/// its evidence is: the first thing an analyst needs, before the host's own prompt.
fn greet(host: &AnalysisHost) {
    use std::io::Write as _;
    let case = escape_untrusted(&host.case_id);
    let evidence = host
        .evidence
        .as_deref()
        .map(|state| format!(" ({})", escape_untrusted(state)))
        .unwrap_or_default();
    let greeting = format!(
        "\r\nirf: {} is the analysis host of case {case}. Its evidence{evidence} is in \
         /srv/irf/evidence/{case}/, each file read-only and its SHA-256 checked on the host. \
         exit ends the session.\r\n",
        host.instance_id
    );
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(greeting.as_bytes())
        .and_then(|()| stdout.flush());
}

/// `irf session <host>`: a shell, in raw mode for its duration.
pub async fn shell_command(
    context: Arc<AwsContext>,
    instance_id: &str,
) -> anyhow::Result<ExitCode> {
    let target = session_target(context, instance_id).await?;
    let was_raw = crossterm::terminal::is_raw_mode_enabled().unwrap_or(false);
    if !was_raw {
        crossterm::terminal::enable_raw_mode()?;
    }
    let ended = shell(&target.analysis, &target.plane, &target.host).await;
    {
        // The terminal is the operator's again, in the modes it had.
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(TERMINAL_MODES_RESET)
            .and_then(|()| stdout.flush());
    }
    if !was_raw {
        let _ = crossterm::terminal::disable_raw_mode();
    }
    let end = ended?;
    eprintln!(
        "\r\nirf: session ended{}",
        end.closing_message
            .as_deref()
            .map(|m| format!(": {}", escape_untrusted(m.trim())))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// `irf session forward <host> <remote-port> [<local-port>]`.
pub async fn forward_command(
    context: Arc<AwsContext>,
    instance_id: &str,
    remote_port: u16,
    local_port: Option<u16>,
) -> anyhow::Result<ExitCode> {
    let target = session_target(context, instance_id).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", local_port.unwrap_or(0)))
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "cannot listen on 127.0.0.1:{}: {err}; choose another local port",
                local_port.unwrap_or(0)
            )
        })?;
    let local = listener.local_addr()?;
    record_session(
        &target.plane,
        &target.analysis,
        &target.host,
        Action::SessionOpened,
        format!("port {remote_port} forwarded to {local}, each connection in a session of its own"),
        Vec::new(),
    )
    .await?;
    eprintln!(
        "irf: forwarding {local} to port {remote_port} on {instance_id}, each connection in a session of its own; Ctrl-C ends it"
    );
    // Scripts read the address from standard output; without a reader the forward still
    // serves.
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{local}").and_then(|()| stdout.flush());
    }
    let analysis = Arc::new(target.analysis.clone());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let open_sessions = OpenSessions::default();
    let mut connections = tokio::task::JoinSet::new();
    let mut summary = ForwardSummary::default();
    let ended = forward_end_signal()?;
    tokio::pin!(ended);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let analysis = analysis.clone();
                    let stop = stop.clone();
                    let instance_id = instance_id.to_owned();
                    let open_sessions = open_sessions.clone();
                    connections.spawn(async move {
                        (peer, carry(&analysis, &instance_id, remote_port, stream, stop, &open_sessions).await)
                    });
                }
                Err(err) => {
                    eprintln!("irf: a local connection could not be accepted: {err}");
                    // Out of file descriptors, say: a pause instead of a spin.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            Some(done) = connections.join_next() => summary.add(done),
            _ = &mut ended => break,
        }
    }
    // Every connection is told to end; one that does not within a few seconds (a local
    // client that stopped reading, a handshake still waiting) is cut off, and its session
    // ended here, so that the forward always ends and its closing entry names them all.
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(FORWARD_STOP_GRACE, async {
        while let Some(done) = connections.join_next().await {
            summary.add(done);
        }
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
        while connections.join_next().await.is_some() {}
        for session_id in open_sessions.take() {
            let _ = session::terminate(&analysis, &session_id).await;
            summary
                .failures
                .push(format!("{session_id} cut off when the forward ended"));
            summary.session_ids.push(session_id);
        }
    }
    record_session(
        &target.plane,
        &target.analysis,
        &target.host,
        Action::SessionClosed,
        format!("port {remote_port}: {}", summary.describe()),
        summary.request_ids.clone(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// How long connections get to end after the forward is stopped.
const FORWARD_STOP_GRACE: Duration = Duration::from_secs(5);

/// Resolves when the forward is to end: Ctrl-C, or the terminal going away (SIGHUP) or a
/// polite kill (SIGTERM), so that the closing ledger entry is written in each case.
fn forward_end_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = hangup.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// The sessions started and not yet ended, for ending those a stopped forward cut off.
#[derive(Debug, Clone, Default)]
struct OpenSessions(Arc<std::sync::Mutex<Vec<String>>>);

impl OpenSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn add(&self, session_id: &str) {
        self.lock().push(session_id.to_owned());
    }
    fn remove(&self, session_id: &str) {
        self.lock().retain(|s| s != session_id);
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lock())
    }
}

/// One forwarded connection: the session that carried it and how it went.
struct Carried {
    session_id: Option<String>,
    request_id: Option<String>,
    ended: Result<SessionEnd, AnalysisError>,
}

/// Carries one local connection in a session of its own, which is ended however the
/// connection ends.
async fn carry(
    analysis: &Analysis,
    instance_id: &str,
    remote_port: u16,
    stream: tokio::net::TcpStream,
    stop: tokio::sync::watch::Receiver<bool>,
    open_sessions: &OpenSessions,
) -> Carried {
    let started =
        match session::start(analysis, instance_id, &SessionKind::Port { remote_port }).await {
            Ok(started) => {
                open_sessions.add(&started.session_id);
                started
            }
            Err(err) => {
                return Carried {
                    session_id: None,
                    request_id: None,
                    ended: Err(err),
                };
            }
        };
    let ended = async {
        DataChannel::open(&started)
            .await?
            .forward_connection(stream, stop)
            .await
    }
    .await;
    if let Err(err) = session::terminate(analysis, &started.session_id).await {
        // The agent has ended it already in the usual case; a refusal (AccessDenied)
        // leaves it open, which the operator must know.
        eprintln!(
            "irf: session {} could not be ended: {}",
            started.session_id,
            escape_untrusted(&err.to_string())
        );
    }
    open_sessions.remove(&started.session_id);
    Carried {
        session_id: Some(started.session_id),
        request_id: started.request_id,
        ended,
    }
}

/// What a port forward carried, for its closing ledger entry.
#[derive(Debug, Default)]
struct ForwardSummary {
    connections: usize,
    session_ids: Vec<String>,
    request_ids: Vec<String>,
    bytes_in: u64,
    bytes_out: u64,
    failures: Vec<String>,
}

impl ForwardSummary {
    fn add(&mut self, done: Result<(std::net::SocketAddr, Carried), tokio::task::JoinError>) {
        self.connections += 1;
        let (peer, carried) = match done {
            Ok(done) => done,
            Err(err) => {
                self.failures
                    .push(format!("a connection's task ended: {err}"));
                return;
            }
        };
        self.session_ids.extend(carried.session_id);
        self.request_ids.extend(carried.request_id);
        match carried.ended {
            Ok(end) => {
                self.bytes_in += end.bytes_in;
                self.bytes_out += end.bytes_out;
                // The agent ending a session the client did not end says why (a port with
                // nothing listening, for one).
                if let (false, Some(message)) = (end.ended_locally, end.closing_message) {
                    let message = message.trim().to_owned();
                    eprintln!(
                        "irf: the host ended the connection from {peer}: {}",
                        escape_untrusted(&message)
                    );
                    self.failures.push(format!("the host ended it: {message}"));
                }
            }
            Err(err) => {
                eprintln!(
                    "irf: the connection from {peer}: {}",
                    escape_untrusted(&err.to_string())
                );
                self.failures.push(err.to_string());
            }
        }
    }

    fn describe(&self) -> String {
        let mut text = format!(
            "{} connections, {} bytes sent, {} received",
            self.connections, self.bytes_in, self.bytes_out
        );
        if !self.session_ids.is_empty() {
            text.push_str(&format!("; sessions {}", self.session_ids.join(", ")));
        }
        if let Some(first) = self.failures.first() {
            text.push_str(&format!(
                "; {} failed, the first: {first}",
                self.failures.len()
            ));
        }
        text
    }
}

/// The modes a host can leave a terminal in, put back: a soft reset (DECSTR), then one by
/// one for terminals without it: origin mode off, attributes off, ASCII character set,
/// the whole screen as scroll region (which homes the cursor, hence the save and restore
/// around it, made once origin mode, attributes and character set are clean, as the save
/// keeps those too), autowrap on, insert mode off, normal cursor keys and keypad,
/// bracketed paste off, mouse reports off, the cursor shown. The cursor stays where it is.
pub const TERMINAL_MODES_RESET: &[u8] = b"\x1b[!p\x1b[?6l\x1b[0m\x1b(B\x1b7\x1b[r\x1b8\x1b[?7h\x1b[4l\x1b[?1l\x1b>\x1b[?2004l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?25h";

/// How long the workstation waits for a stray reader to let go of the terminal.
pub const HANDOVER_SETTLE: Duration = Duration::from_millis(50);
