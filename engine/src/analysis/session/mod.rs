//! Session Manager sessions spoken natively: `StartSession` and `TerminateSession`, and
//! the data channel they open ([`wire`] for its messages, [`channel`] for the client's
//! end), for an interactive shell or one forwarded port.

pub mod channel;
pub mod upstream_frames;
pub mod wire;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

pub use channel::{DataChannel, Delivered};
pub use wire::CLIENT_VERSION;

use super::{Analysis, AnalysisError};

/// Where the official client can be had, for sessions irf cannot speak itself.
pub const PLUGIN_HELP: &str = "install the Session Manager plugin (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html) and run 'aws ssm start-session --target";

/// A session the service started: where to connect and with what. Its Debug leaves the
/// token and the stream URL's query out: they open the session.
#[derive(Clone, PartialEq, Eq)]
pub struct StartedSession {
    pub session_id: String,
    pub stream_url: String,
    pub token: String,
    pub target: String,
    /// What the session is for: a shell may start without a handshake, a port never does.
    pub kind: SessionKind,
    /// StartSession's request id, for the ledger.
    pub request_id: Option<String>,
}

impl std::fmt::Debug for StartedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedSession")
            .field("session_id", &self.session_id)
            .field("stream_url", &redact(&self.stream_url))
            .field("token", &"redacted")
            .field("target", &self.target)
            .field("kind", &self.kind)
            .field("request_id", &self.request_id)
            .finish()
    }
}

/// What the session is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionKind {
    Shell,
    /// Forward a local port to `remote_port` on the host.
    Port {
        remote_port: u16,
    },
}

/// Asks Systems Manager for a session to an analysis host.
pub async fn start(
    analysis: &Analysis,
    target: &str,
    session: &SessionKind,
) -> Result<StartedSession, AnalysisError> {
    let mut request = analysis.ssm.start_session().target(target);
    if let SessionKind::Port { remote_port } = session {
        request = request
            .document_name("AWS-StartPortForwardingSession")
            .parameters("portNumber", vec![remote_port.to_string()])
            .parameters("localPortNumber", vec!["0".to_owned()]);
    }
    let out = request
        .send()
        .await
        .map_err(|err| analysis.call_error("ssm:StartSession", &err))?;
    let (Some(session_id), Some(stream_url), Some(token)) =
        (out.session_id(), out.stream_url(), out.token_value())
    else {
        return Err(AnalysisError::Session {
            target: target.to_owned(),
            why: "StartSession returned no session id, stream URL or token".to_owned(),
        });
    };
    Ok(StartedSession {
        session_id: session_id.to_owned(),
        stream_url: stream_url.to_owned(),
        token: token.to_owned(),
        target: target.to_owned(),
        kind: session.clone(),
        request_id: aws_types::request_id::RequestId::request_id(&out).map(str::to_owned),
    })
}

/// Ends a session on the service side (the agent closes its shell).
pub async fn terminate(analysis: &Analysis, session_id: &str) -> Result<(), AnalysisError> {
    analysis
        .ssm
        .terminate_session()
        .session_id(session_id)
        .send()
        .await
        .map(drop)
        .map_err(|err| analysis.call_error("ssm:TerminateSession", &err))
}

/// How a session ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnd {
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// What the agent said when it closed the channel.
    pub closing_message: Option<String>,
    /// `true` when the local side ended it (end of input, a closed connection).
    pub ended_locally: bool,
}

/// A stream URL without its query (which may carry a signature), for messages.
fn redact(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Reads `reader` into chunks for a session's input, until it ends.
pub fn pump<R: AsyncRead + Unpin + Send + 'static>(mut reader: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 4096];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buffer[..n].to_vec()).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}
