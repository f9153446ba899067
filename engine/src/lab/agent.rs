//! The agent side of Session Manager sessions to lab instances. It listens on loopback,
//! registers its stream URL with the emulator (whose StartSession hands it out), redeems
//! each session's token, and then speaks the data channel protocol from the agent's end:
//! the handshake, a shell on a pseudo-terminal for a shell session, or a connection to the
//! host's port for a port session. A shell starts in the host's home with a clean
//! environment (no credentials), and, where the kernel allows unprivileged namespaces,
//! without a network, as an analysis host in the isolated VPC has none to the internet.

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
use crate::analysis::session::{
    DataChannel, Delivered, HandshakeRequest, HandshakeResponse, OpenDataChannel, PayloadType,
    RequestedAction, flag,
};

/// How the agent says the forwarded port could not be reached.
const PORT_REFUSED: &str = "Unable to connect to specified port";

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
    let sandbox = network_namespaces_work();
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

/// Whether `unshare --net --map-root-user` can start a process here.
fn network_namespaces_work() -> bool {
    std::process::Command::new("unshare")
        .args(["--net", "--map-root-user", "true"])
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
    let socket =
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
    let (mut sink, mut source) = futures::StreamExt::split(socket);
    // The first frame is the text that opens the channel, with the session's token.
    let open = loop {
        match futures::StreamExt::next(&mut source).await {
            Some(Ok(Message::Text(text))) => break text,
            Some(Ok(_)) => continue,
            _ => return Err("closed before opening".to_owned()),
        }
    };
    let open: OpenDataChannel = serde_json::from_str(&open).map_err(|err| err.to_string())?;
    let claimed = control
        .post_for_json(
            "/irf-lab/ssm/session/claim",
            &serde_json::json!({ "session_id": session_id, "token": open.token_value }),
        )
        .await;
    let claimed: Claimed = match claimed {
        Ok(value) => serde_json::from_value(value).map_err(|err| err.to_string())?,
        Err(err) => {
            let _ = futures::SinkExt::close(&mut sink).await;
            return Err(format!("token refused: {err}"));
        }
    };
    let socket = sink.reunite(source).map_err(|err| err.to_string())?;
    let mut channel = DataChannel::agent(socket, &claimed.target);
    let port = (claimed.document == "AWS-StartPortForwardingSession")
        .then(|| {
            claimed
                .parameters
                .get("portNumber")
                .and_then(|p| p.first())
                .and_then(|p| p.parse::<u16>().ok())
        })
        .flatten();
    let session_type = if port.is_some() {
        "Port"
    } else {
        "Standard_Stream"
    };
    let request = HandshakeRequest {
        agent_version: "3.3.1142.0".to_owned(),
        requested_client_actions: vec![RequestedAction {
            action_type: "SessionType".to_owned(),
            action_parameters: serde_json::json!({ "SessionType": session_type, "Properties": {} }),
        }],
    };
    let started = std::time::Instant::now();
    channel
        .send_stream(
            PayloadType::HandshakeRequest,
            serde_json::to_vec(&request).map_err(|e| e.to_string())?,
        )
        .await
        .map_err(|err| err.to_string())?;
    'handshake: loop {
        for delivered in channel.receive().await.map_err(|err| err.to_string())? {
            match delivered {
                Delivered::Data(PayloadType::HandshakeResponse, body) => {
                    let response: HandshakeResponse =
                        serde_json::from_slice(&body).map_err(|err| err.to_string())?;
                    if response
                        .processed_client_actions
                        .iter()
                        .any(|a| a.action_status != 1)
                    {
                        let _ = channel
                            .close_channel(&session_id, "The client refused the session type.")
                            .await;
                        return Err("handshake refused".to_owned());
                    }
                    break 'handshake;
                }
                Delivered::Closed(_) => return Err("closed during the handshake".to_owned()),
                Delivered::Data(..) => {}
            }
        }
    }
    let complete = serde_json::json!({
        "HandshakeTimeToComplete": u64::try_from(started.elapsed().as_nanos()).unwrap_or(0),
        "CustomerMessage": "",
    });
    channel
        .send_stream(
            PayloadType::HandshakeComplete,
            complete.to_string().into_bytes(),
        )
        .await
        .map_err(|err| err.to_string())?;
    let result = match port {
        Some(port) => forward_port(&mut channel, port).await,
        None => shell(&mut channel, hosts, &claimed.target, sandbox).await,
    };
    let closing = match &result {
        Err(why) if why.starts_with(PORT_REFUSED) => format!("{why}\r\n"),
        _ => format!("\r\nExiting session with sessionId: {session_id}.\r\n"),
    };
    let _ = channel.close_channel(&session_id, &closing).await;
    let _ = control
        .post_json(
            "/irf-lab/ssm/session/end",
            &serde_json::json!({ "session_id": session_id }),
        )
        .await;
    result
}

/// Plays a shell on a pseudo-terminal until it exits or the client goes.
async fn shell(
    channel: &mut DataChannel<TcpStream>,
    hosts: &Path,
    instance_id: &str,
    sandbox: bool,
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
        let mut command = CommandBuilder::new("unshare");
        command.args([
            "--net",
            "--map-root-user",
            "bash",
            "--noprofile",
            "--norc",
            "-i",
        ]);
        command
    } else {
        let mut command = CommandBuilder::new("bash");
        command.args(["--noprofile", "--norc", "-i"]);
        command
    };
    command.env_clear();
    command.env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
    command.env("HOME", &home.home);
    command.env("TERM", "xterm-256color");
    command.env("LANG", "C.UTF-8");
    command.env("IRF_EVIDENCE_DIR", &home.evidence);
    command.env("PS1", format!("analyst@{instance_id}:\\w\\$ "));
    command.cwd(&home.home);
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
    let mut resend = tokio::time::interval(Duration::from_millis(500));
    let outcome = loop {
        tokio::select! {
            produced = output.recv() => match produced {
                Some(bytes) => channel.send_stream(PayloadType::Output, bytes).await.map_err(|e| e.to_string())?,
                // The shell exited (its terminal closed).
                None => break Ok(()),
            },
            frame = channel.next_frame() => {
                let mut closed = false;
                for delivered in channel.take(frame).await.map_err(|e| e.to_string())? {
                    match delivered {
                        Delivered::Data(PayloadType::Output, bytes) => { let _ = input.send(bytes); }
                        Delivered::Data(PayloadType::Size, body) => {
                            let size: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                            let (cols, rows) = (size["cols"].as_u64().unwrap_or(80), size["rows"].as_u64().unwrap_or(24));
                            let _ = pty.master.resize(PtySize {
                                rows: u16::try_from(rows).unwrap_or(24),
                                cols: u16::try_from(cols).unwrap_or(80),
                                pixel_width: 0,
                                pixel_height: 0,
                            });
                        }
                        Delivered::Closed(_) => closed = true,
                        Delivered::Data(..) => {}
                    }
                }
                if closed {
                    break Ok(());
                }
            },
            _ = resend.tick() => channel.resend_due().await.map_err(|e| e.to_string())?,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

/// Connects the channel to `port` on the host (here: loopback), one connection at a time,
/// as the agent does for a client without multiplexing: the port is dialled when the
/// session starts and again when the client's connection ends (or, after the service
/// closed its side, when the client sends more).
async fn forward_port(channel: &mut DataChannel<TcpStream>, port: u16) -> Result<(), String> {
    let dial = || TcpStream::connect(("127.0.0.1", port));
    // As the agent does without multiplexing: a port nothing listens on ends the session.
    let mut connection: Option<TcpStream> = match dial().await {
        Ok(stream) => Some(stream),
        Err(err) => return Err(format!("{PORT_REFUSED}: {err}")),
    };
    let mut buffer = vec![0u8; 64 * 1024];
    let mut resend = tokio::time::interval(Duration::from_millis(500));
    loop {
        let read = async {
            match connection.as_mut() {
                Some(stream) => stream.read(&mut buffer).await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = read => match read {
                Some(n) if n > 0 => {
                    let bytes = buffer[..n].to_vec();
                    channel.send_stream(PayloadType::Output, bytes).await.map_err(|e| e.to_string())?;
                }
                // The service on the host closed: the next client data reconnects.
                _ => connection = None,
            },
            frame = channel.next_frame() => {
                for delivered in channel.take(frame).await.map_err(|e| e.to_string())? {
                    match delivered {
                        Delivered::Data(PayloadType::Output, bytes) => {
                            if connection.is_none() {
                                connection = dial().await.ok();
                            }
                            let Some(stream) = connection.as_mut() else {
                                channel
                                    .send_stream(PayloadType::Flag, flag::CONNECT_TO_PORT_ERROR.to_be_bytes().to_vec())
                                    .await
                                    .map_err(|e| e.to_string())?;
                                continue;
                            };
                            if stream.write_all(&bytes).await.is_err() {
                                connection = None;
                            }
                        }
                        Delivered::Data(PayloadType::Flag, bytes) => {
                            if bytes.as_slice() == flag::DISCONNECT_TO_PORT.to_be_bytes() {
                                connection = dial().await.ok();
                            } else if bytes.as_slice() == flag::TERMINATE_SESSION.to_be_bytes() {
                                return Ok(());
                            }
                        }
                        Delivered::Closed(_) => return Ok(()),
                        Delivered::Data(..) => {}
                    }
                }
            }
            _ = resend.tick() => channel.resend_due().await.map_err(|e| e.to_string())?,
        }
    }
}
