//! The agent side of Session Manager sessions to lab instances, behaving as the real
//! agent (`aws/amazon-ssm-agent`) does wherever irf's client depends on it. It listens on
//! loopback, registers its stream URL with the emulator (whose StartSession hands it out),
//! redeems each session's token, and plays both the service's part of the channel (its
//! publication frame, `channel_closed`) and the agent's: no handshake for a shell
//! without KMS, its output from sequence 0; a handshake for a port session, which dials
//! the port and redials on the client's next data once the port's service hung up. Input
//! that comes before the terminal or the dial is ready is not acknowledged, so the client
//! must resend it. A shell starts in the host's home with a clean environment (no
//! credentials), and, where the kernel allows namespaces, as on an analysis host: without
//! a network (the isolated VPC has none to the internet), the evidence read-only at
//! `/srv/irf/evidence`, and as a session user who is not root where the lab can make one.

pub mod stream;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use super::control::Control;
use stream::{AgentStream, FromClient, Readiness, payload};

/// The agent version the lab's agent reports.
const AGENT_VERSION: &str = "3.3.1142.0";
/// The port plugin's text when the port cannot be reached (port.go).
const PORT_REFUSED: &str = "Unable to connect to specified port";
/// The real agent's terminal takes a moment to start (it may create `ssm-user` first);
/// the lab's waits this long, so that early input (a terminal size, keystrokes) takes
/// the withheld-acknowledgement path every time.
const TERMINAL_STARTS_AFTER: Duration = Duration::from_millis(500);
/// The port session dials after its handshake; the lab's dial settles after this long,
/// so that a connection's first bytes arrive before it, as they can in AWS.
const DIAL_SETTLES_AFTER: Duration = Duration::from_millis(300);
/// How often unacknowledged output is looked at.
const RESEND_CHECK: Duration = Duration::from_millis(100);

/// A session the emulator started, as the agent redeems it.
#[derive(Debug, Clone, Deserialize)]
struct Claimed {
    target: String,
    document: String,
    #[serde(default)]
    parameters: std::collections::BTreeMap<String, Vec<String>>,
}

/// Serves sessions until `stop` fires.
pub async fn serve(control: Control, hosts: PathBuf, mut stop: watch::Receiver<bool>) {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::warn!(error = %err, "the lab session agent cannot listen");
            return;
        }
    };
    let Ok(address) = listener.local_addr() else {
        return;
    };
    let url = format!("ws://{address}");
    if let Err(err) = control
        .post_json(
            "/irf-lab/ssm/agent",
            &serde_json::json!({ "stream_url": url }),
        )
        .await
    {
        tracing::warn!(error = %err, "cannot register the lab session agent");
        return;
    }
    let sandbox = session_namespaces_work();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let control = control.clone();
                    let hosts = hosts.clone();
                    tokio::spawn(async move {
                        if let Err(why) = session(stream, control, &hosts, sandbox).await {
                            tracing::info!(why, "lab session ended with an error");
                        }
                    });
                }
            }
        }
    }
}

/// Whether a session's namespaces can be made here: `unshare --net --mount` (with
/// `--map-root-user` unless the lab runs as root) and a tmpfs mounted in them.
fn session_namespaces_work() -> bool {
    let mut args = vec!["--net", "--mount"];
    if session_user().is_none() {
        args.push("--map-root-user");
    }
    args.extend(["sh", "-c", "mount -t tmpfs irf-probe /srv"]);
    std::process::Command::new("unshare")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

// The handshake callback's error type is tungstenite's own (a whole HTTP response).
#[allow(clippy::result_large_err)]
async fn session(
    stream: TcpStream,
    control: Control,
    hosts: &Path,
    sandbox: bool,
) -> Result<(), String> {
    let mut path = String::new();
    let mut socket =
        tokio_tungstenite::accept_hdr_async(stream, |request: &Request, response: Response| {
            path = request.uri().path().to_owned();
            Ok(response)
        })
        .await
        .map_err(|err| err.to_string())?;
    let session_id = path
        .strip_prefix("/v1/data-channel/")
        .ok_or_else(|| format!("unexpected path {path}"))?
        .to_owned();
    // The first frame is the text that opens the channel, with the session's token.
    let open = loop {
        match futures::StreamExt::next(&mut socket).await {
            Some(Ok(Message::Text(text))) => break text,
            Some(Ok(_)) => continue,
            _ => return Err("closed before opening".to_owned()),
        }
    };
    let open: serde_json::Value = serde_json::from_str(&open).map_err(|err| err.to_string())?;
    let token = open["TokenValue"].as_str().unwrap_or_default();
    let claimed = control
        .post_for_json(
            "/irf-lab/ssm/session/claim",
            &serde_json::json!({ "session_id": session_id, "token": token }),
        )
        .await;
    let claimed: Claimed = match claimed {
        Ok(value) => serde_json::from_value(value).map_err(|err| err.to_string())?,
        Err(err) => {
            let _ = futures::SinkExt::close(&mut socket).await;
            return Err(format!("token refused: {err}"));
        }
    };
    let mut channel = AgentStream::new(socket);
    channel.service_starts_publication().await?;
    // sessionplugin.go: "Connected" as soon as the channel is open, before any handshake.
    channel.send_session_state(&session_id, "Connected").await?;
    let port = (claimed.document == "AWS-StartPortForwardingSession")
        .then(|| {
            claimed
                .parameters
                .get("portNumber")
                .and_then(|p| p.first())
                .and_then(|p| p.parse::<u16>().ok())
        })
        .flatten();
    let result = match port {
        Some(port) => match port_handshake(&mut channel, port).await {
            Ok(()) => forward_port(&mut channel, port).await,
            Err(why) => Err(why),
        },
        None => shell(&mut channel, hosts, &claimed.target, sandbox, &session_id).await,
    };
    let closing = match &result {
        Ok(_) => format!("\r\n\r\nExiting session with sessionId: {session_id}.\r\n\r\n"),
        Err(why) => format!("{why}\r\n"),
    };
    channel.flush(Duration::from_secs(2)).await;
    let _ = channel.service_closes(&session_id, &closing).await;
    let _ = control
        .post_json(
            "/irf-lab/ssm/session/end",
            &serde_json::json!({
                "session_id": session_id,
                "held_back": channel.held_back,
                "largest_input": channel.largest_input,
            }),
        )
        .await;
    result
}

/// A port session's handshake (port.go: a port session always asks for one); the
/// client's answer must accept the session type.
async fn port_handshake(channel: &mut AgentStream, port: u16) -> Result<(), String> {
    let started = std::time::Instant::now();
    let request = serde_json::json!({
        "AgentVersion": AGENT_VERSION,
        "RequestedClientActions": [{
            "ActionType": "SessionType",
            "ActionParameters": {
                "SessionType": "Port",
                "Properties": { "portNumber": port.to_string(), "type": "LocalPortForwarding" },
            },
        }],
    });
    channel
        .send_data(payload::HANDSHAKE_REQUEST, request.to_string().as_bytes())
        .await?;
    let mut resend = tokio::time::interval(RESEND_CHECK);
    loop {
        tokio::select! {
            frame = channel.next_frame() => {
                for taken in channel.take(frame, Readiness::Ready).await? {
                    match taken {
                        FromClient::Data { payload_type: payload::HANDSHAKE_RESPONSE, payload } => {
                            let response: serde_json::Value =
                                serde_json::from_slice(&payload).map_err(|err| err.to_string())?;
                            let accepted = response["ProcessedClientActions"]
                                .as_array()
                                .is_some_and(|actions| actions.iter().all(|a| a["ActionStatus"] == 1));
                            if !accepted {
                                return Err("The client refused the session type.".to_owned());
                            }
                            let complete = serde_json::json!({
                                "HandshakeTimeToComplete": u64::try_from(started.elapsed().as_nanos()).unwrap_or(0),
                                "CustomerMessage": "",
                            });
                            return channel
                                .send_data(payload::HANDSHAKE_COMPLETE, complete.to_string().as_bytes())
                                .await;
                        }
                        // Data during the handshake is acknowledged and dropped (datachannel.go).
                        FromClient::Data { .. } => {}
                        FromClient::Gone => return Err("closed during the handshake".to_owned()),
                    }
                }
            }
            _ = resend.tick() => channel.resend_due().await?,
        }
    }
}

/// Where a session's shell finds itself, as on an analysis host: its home, and the case
/// evidence the host fetched, read-only.
const SESSION_HOME: &str = "/home/ssm-user";

/// The lab's `ssm-user`: the uid a session's shell runs as when the lab can give it one (it
/// runs as root), a number no account of this machine is expected to hold.
const SESSION_UID: u32 = 61_000;

/// Run by `sh -c` in the session's own network and mount namespaces, with the host's
/// evidence and home directories, the lab's directory and the session user's uid (empty:
/// none) as `$1` to `$4`. The evidence appears at `/srv/irf/evidence` as on an analysis
/// host, mounted read-only; the home at `/home/ssm-user`; the lab's own directory (its
/// state, its buckets' objects, the other hosts) is covered, so the evidence is reached
/// only through the read-only mount; and the shell runs as the session user, with no
/// capability and no way to gain one, as the real agent's `ssm-user`. The directories are
/// opened before anything is mounted over them (a lab under `/home` or `/srv` would be
/// hidden by its own tmpfs) and bound through their descriptors.
const SESSION_SETUP: &str = r#"set -e
exec 3<"$1" 4<"$2"
mount -t tmpfs -o mode=0755 irf-srv /srv
mkdir -p /srv/irf/evidence
mount -t tmpfs -o mode=0755 irf-home /home
mkdir /home/ssm-user
mount --no-canonicalize --bind /proc/self/fd/3 /srv/irf/evidence
mount -o remount,bind,ro /srv/irf/evidence
mount --no-canonicalize --bind /proc/self/fd/4 /home/ssm-user
exec 3<&- 4<&-
if [ -d "$3" ]; then mount -t tmpfs -o mode=0755 irf-lab-hidden "$3"; fi
cd /home/ssm-user
if [ -n "$4" ]; then
  chown "$4:$4" /home/ssm-user
  exec setpriv --reuid="$4" --regid="$4" --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs sh -i
fi
exec sh -i
"#;

/// The uid sessions run as: the lab's `ssm-user` when the lab runs as root and can change
/// to it; `None` otherwise (the session is then root of its own user namespace, which the
/// read-only evidence mount holds back from writing, though as that namespace's root it
/// could mount it again writable).
fn session_user() -> Option<u32> {
    nix::unistd::geteuid().is_root().then_some(SESSION_UID)
}

/// Plays a shell on a pseudo-terminal until it exits or the client goes. There is no
/// handshake (a `Standard_Stream` session without KMS skips it): the terminal's output
/// goes out from sequence 0, and input before the terminal is ready is not acknowledged.
async fn shell(
    channel: &mut AgentStream,
    hosts: &Path,
    instance_id: &str,
    sandbox: bool,
    session_id: &str,
) -> Result<(), String> {
    let home = super::hosts::host_home(hosts, instance_id).map_err(|err| err.to_string())?;
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|err| err.to_string())?;
    let mut command = if sandbox {
        std::fs::create_dir_all(&home.evidence).map_err(|err| err.to_string())?;
        let session_user = session_user();
        let mut command = CommandBuilder::new("unshare");
        command.env_clear();
        command.args(["--net", "--mount"]);
        if session_user.is_none() {
            command.arg("--map-root-user");
        }
        command.args(["sh", "-c", SESSION_SETUP, "irf-lab-session"]);
        command.arg(&home.evidence);
        command.arg(&home.home);
        command.arg(hosts.parent().unwrap_or(hosts));
        command.arg(session_user.map(|uid| uid.to_string()).unwrap_or_default());
        command.env("HOME", SESSION_HOME);
        command.cwd(&home.home);
        command
    } else {
        // The real agent's Standard_Stream shell is `sh` (dash on Debian and Ubuntu), not
        // bash: a script typed into a session meets the same shell here.
        let mut command = CommandBuilder::new("sh");
        command.env_clear();
        command.arg("-i");
        command.env("HOME", &home.home);
        command.env("IRF_EVIDENCE_DIR", &home.evidence);
        command.cwd(&home.home);
        command
    };
    command.env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
    command.env("TERM", "xterm-256color");
    command.env("LANG", "C.UTF-8");
    command.env("PS1", format!("analyst@{instance_id}$ "));
    let terminal_ready = tokio::time::Instant::now() + TERMINAL_STARTS_AFTER;
    let mut child = pty
        .slave
        .spawn_command(command)
        .map_err(|err| err.to_string())?;
    drop(pty.slave);
    let mut reader = pty
        .master
        .try_clone_reader()
        .map_err(|err| err.to_string())?;
    let mut writer = pty.master.take_writer().map_err(|err| err.to_string())?;
    let (output_tx, mut output) = mpsc::channel::<Vec<u8>>(64);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        loop {
            match reader.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if output_tx.blocking_send(buffer[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let (input, input_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        while let Ok(bytes) = input_rx.recv() {
            if writer
                .write_all(&bytes)
                .and_then(|()| writer.flush())
                .is_err()
            {
                break;
            }
        }
    });
    let mut resend = tokio::time::interval(RESEND_CHECK);
    let outcome = loop {
        let readiness = if tokio::time::Instant::now() >= terminal_ready {
            Readiness::Ready
        } else {
            Readiness::NotReady
        };
        tokio::select! {
            produced = output.recv() => match produced {
                Some(bytes) => channel.send_data(payload::OUTPUT, &bytes).await?,
                // The shell exited (its terminal closed): shell.go reports "Terminating".
                None => {
                    channel.send_session_state(session_id, "Terminating").await?;
                    break Ok(());
                }
            },
            frame = channel.next_frame() => {
                let mut closed = false;
                for taken in channel.take(frame, readiness).await? {
                    match taken {
                        FromClient::Data { payload_type: payload::OUTPUT, payload } => { let _ = input.send(payload); }
                        FromClient::Data { payload_type: payload::SIZE, payload } => {
                            let size: serde_json::Value = serde_json::from_slice(&payload).unwrap_or_default();
                            let (cols, rows) = (size["cols"].as_u64().unwrap_or(80), size["rows"].as_u64().unwrap_or(24));
                            let _ = pty.master.resize(PtySize {
                                rows: u16::try_from(rows).unwrap_or(24),
                                cols: u16::try_from(cols).unwrap_or(80),
                                pixel_width: 0,
                                pixel_height: 0,
                            });
                        }
                        FromClient::Gone => closed = true,
                        FromClient::Data { .. } => {}
                    }
                }
                if closed {
                    break Ok(());
                }
            },
            _ = resend.tick() => channel.resend_due().await?,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

/// Connects the channel to `port` on the host (here: loopback) as the real agent's basic
/// port session does for a client without multiplexing (port_basic.go): the port is
/// dialled after the handshake, input before the dial is done is not acknowledged, the
/// client is never told when the port's service hangs up (the next client data dials
/// again), `DisconnectToPort` closes the connection until the next data, and
/// `TerminateSession` ends the session. A failed dial ends the session; the agent sends
/// the client no flag.
async fn forward_port(channel: &mut AgentStream, port: u16) -> Result<(), String> {
    let dial = || async move {
        TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|err| format!("{PORT_REFUSED}: {err}"))
    };
    let dial_done = tokio::time::Instant::now() + DIAL_SETTLES_AFTER;
    let mut connection: Option<TcpStream> = Some(dial().await?);
    let mut buffer = vec![0u8; stream::STREAM_DATA_PAYLOAD_SIZE];
    let mut resend = tokio::time::interval(RESEND_CHECK);
    loop {
        let readiness = if tokio::time::Instant::now() >= dial_done {
            Readiness::Ready
        } else {
            Readiness::NotReady
        };
        let room = channel.has_room();
        let read = async {
            match connection.as_mut() {
                Some(stream) if room => stream.read(&mut buffer).await.ok(),
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            read = read => match read {
                Some(n) if n > 0 => {
                    let bytes = buffer[..n].to_vec();
                    channel.send_data(payload::OUTPUT, &bytes).await?;
                }
                // The service on the host closed: the client is not told.
                _ => connection = None,
            },
            frame = channel.next_frame() => {
                for taken in channel.take(frame, readiness).await? {
                    match taken {
                        FromClient::Data { payload_type: payload::OUTPUT, payload } => {
                            if connection.is_none() {
                                connection = Some(dial().await?);
                            }
                            if let Some(stream) = connection.as_mut()
                                && stream.write_all(&payload).await.is_err()
                            {
                                connection = None;
                            }
                        }
                        FromClient::Data { payload_type: payload::FLAG, payload } => {
                            match payload.as_slice() {
                                [0, 0, 0, 1] => connection = None,
                                [0, 0, 0, 2] => return Ok(()),
                                _ => {}
                            }
                        }
                        FromClient::Gone => return Ok(()),
                        FromClient::Data { .. } => {}
                    }
                }
            }
            _ = resend.tick() => channel.resend_due().await?,
        }
    }
}
