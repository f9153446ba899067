//! Session Manager sessions spoken natively: `StartSession`, then the data channel's
//! WebSocket protocol (agent messages with sequence numbers, acknowledgements and
//! retransmission, the handshake) for an interactive shell or one forwarded port. The
//! message codec is shared with the lab, which plays the agent side.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::{Analysis, AnalysisError};

/// The client version irf announces. Below 1.1.70, agents forward ports without
/// multiplexing (one TCP connection at a time), which is what irf speaks.
pub const CLIENT_VERSION: &str = "1.1.61.0";
/// Where the official client can be had, for sessions irf cannot speak itself.
pub const PLUGIN_HELP: &str = "install the Session Manager plugin (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html) and run 'aws ssm start-session --target";

const HEADER_LENGTH: u32 = 116;
const PAYLOAD_OFFSET: usize = 120;
const RESEND_AFTER: Duration = Duration::from_secs(3);

/// Message types of the data channel.
pub mod kind {
    pub const INPUT: &str = "input_stream_data";
    pub const OUTPUT: &str = "output_stream_data";
    pub const ACK: &str = "acknowledge";
    pub const CHANNEL_CLOSED: &str = "channel_closed";
    pub const START_PUBLICATION: &str = "start_publication";
    pub const PAUSE_PUBLICATION: &str = "pause_publication";
}

/// Payload types of stream data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum PayloadType {
    None = 0,
    Output = 1,
    Error = 2,
    Size = 3,
    Parameter = 4,
    HandshakeRequest = 5,
    HandshakeResponse = 6,
    HandshakeComplete = 7,
    EncChallengeRequest = 8,
    EncChallengeResponse = 9,
    Flag = 10,
    StdErr = 11,
    ExitCode = 12,
}

impl PayloadType {
    fn from_u32(value: u32) -> Option<Self> {
        use PayloadType as P;
        Some(match value {
            0 => P::None,
            1 => P::Output,
            2 => P::Error,
            3 => P::Size,
            4 => P::Parameter,
            5 => P::HandshakeRequest,
            6 => P::HandshakeResponse,
            7 => P::HandshakeComplete,
            8 => P::EncChallengeRequest,
            9 => P::EncChallengeResponse,
            10 => P::Flag,
            11 => P::StdErr,
            12 => P::ExitCode,
            _ => return None,
        })
    }
}

/// Flags a port session sends as a `Flag` payload.
pub mod flag {
    pub const DISCONNECT_TO_PORT: u32 = 1;
    pub const TERMINATE_SESSION: u32 = 2;
    pub const CONNECT_TO_PORT_ERROR: u32 = 3;
}

/// One binary frame of the data channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentMessage {
    pub message_type: String,
    pub schema_version: u32,
    /// Milliseconds since the epoch.
    pub created_ms: u64,
    pub sequence: i64,
    pub flags: u64,
    pub message_id: [u8; 16],
    pub payload_type: u32,
    pub payload: Vec<u8>,
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is shorter than its {PAYLOAD_OFFSET}-byte header")]
    Short(usize),
    #[error("header length {0}, expected {HEADER_LENGTH}")]
    HeaderLength(u32),
    #[error("payload length {declared} but {present} bytes follow the header")]
    PayloadLength { declared: usize, present: usize },
    #[error("payload digest does not match its payload")]
    Digest,
}

fn now_ms() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// A new random message id.
pub fn new_message_id() -> [u8; 16] {
    rand::random()
}

/// The id as the agent writes it in acknowledgements (a UUID string).
pub fn message_id_text(id: &[u8; 16]) -> String {
    let hex = crate::hex(id);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl AgentMessage {
    pub fn new(
        message_type: &str,
        sequence: i64,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Self {
        Self {
            message_type: message_type.to_owned(),
            schema_version: 1,
            created_ms: now_ms(),
            sequence,
            flags: 0,
            message_id: new_message_id(),
            payload_type: payload_type as u32,
            payload,
        }
    }

    pub fn payload_type(&self) -> Option<PayloadType> {
        PayloadType::from_u32(self.payload_type)
    }

    /// The frame's bytes. The message id is written least significant half first, as the
    /// service's Java-style UUID layout does.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PAYLOAD_OFFSET + self.payload.len());
        out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        let mut name = [b' '; 32];
        for (slot, byte) in name.iter_mut().zip(self.message_type.bytes()) {
            *slot = byte;
        }
        out.extend_from_slice(&name);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_ms.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.message_id[8..16]);
        out.extend_from_slice(&self.message_id[0..8]);
        out.extend_from_slice(&Sha256::digest(&self.payload));
        out.extend_from_slice(&self.payload_type.to_be_bytes());
        out.extend_from_slice(
            &u32::try_from(self.payload.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        out.extend_from_slice(&self.payload);
        out
    }

    /// Reads a frame, checking its lengths and its payload digest.
    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        if bytes.len() < PAYLOAD_OFFSET {
            return Err(FrameError::Short(bytes.len()));
        }
        let u32_at = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let header = u32_at(0);
        if header != HEADER_LENGTH {
            return Err(FrameError::HeaderLength(header));
        }
        let declared = u32_at(116) as usize;
        let present = bytes.len() - PAYLOAD_OFFSET;
        if declared != present {
            return Err(FrameError::PayloadLength { declared, present });
        }
        let payload = bytes[PAYLOAD_OFFSET..].to_vec();
        if Sha256::digest(&payload).as_slice() != &bytes[80..112] {
            return Err(FrameError::Digest);
        }
        let mut message_id = [0u8; 16];
        message_id[8..16].copy_from_slice(&bytes[64..72]);
        message_id[0..8].copy_from_slice(&bytes[72..80]);
        Ok(Self {
            message_type: String::from_utf8_lossy(&bytes[4..36])
                .trim_end_matches([' ', '\0'])
                .to_owned(),
            schema_version: u32_at(36),
            created_ms: u64_at(40),
            sequence: i64::from_be_bytes(bytes[48..56].try_into().unwrap_or_default()),
            flags: u64_at(56),
            message_id,
            payload_type: u32_at(112),
            payload,
        })
    }

    /// The acknowledgement of this message.
    pub fn acknowledgement(&self) -> Self {
        let body = serde_json::json!({
            "AcknowledgedMessageType": self.message_type,
            "AcknowledgedMessageId": message_id_text(&self.message_id),
            "AcknowledgedMessageSequenceNumber": self.sequence,
            "IsSequentialMessage": true,
        });
        let mut ack = Self::new(
            kind::ACK,
            0,
            PayloadType::None,
            body.to_string().into_bytes(),
        );
        ack.flags = 3;
        ack
    }
}

/// The text frame that opens a data channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpenDataChannel {
    pub message_schema_version: String,
    pub request_id: String,
    pub token_value: String,
    pub client_id: String,
    pub client_version: String,
}

/// What the agent asks of the client in its handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeRequest {
    pub agent_version: String,
    pub requested_client_actions: Vec<RequestedAction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestedAction {
    pub action_type: String,
    #[serde(default)]
    pub action_parameters: serde_json::Value,
}

/// The client's answer to each requested action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeResponse {
    pub client_version: String,
    pub processed_client_actions: Vec<ProcessedAction>,
    #[serde(default)]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessedAction {
    pub action_type: String,
    /// 1 success, 2 failed, 3 unsupported.
    pub action_status: u32,
    #[serde(default)]
    pub error: String,
}

/// The session type an agent's handshake asks for, and the actions irf cannot do.
pub fn answer_handshake(
    request: &HandshakeRequest,
) -> (HandshakeResponse, Option<String>, Vec<String>) {
    let mut session_type = None;
    let mut refused = Vec::new();
    let processed = request
        .requested_client_actions
        .iter()
        .map(|action| match action.action_type.as_str() {
            "SessionType" => {
                session_type = action.action_parameters["SessionType"]
                    .as_str()
                    .map(str::to_owned);
                ProcessedAction {
                    action_type: action.action_type.clone(),
                    action_status: 1,
                    error: String::new(),
                }
            }
            other => {
                refused.push(other.to_owned());
                ProcessedAction {
                    action_type: other.to_owned(),
                    action_status: 3,
                    error: format!("irf does not support {other}"),
                }
            }
        })
        .collect();
    (
        HandshakeResponse {
            client_version: CLIENT_VERSION.to_owned(),
            processed_client_actions: processed,
            errors: Vec::new(),
        },
        session_type,
        refused,
    )
}

/// Puts messages of one direction back in sequence order and drops repeats.
#[derive(Debug, Default)]
pub struct Reorder {
    expected: i64,
    waiting: BTreeMap<i64, AgentMessage>,
}

impl Reorder {
    /// Takes a received message; returns those now deliverable, in order.
    pub fn accept(&mut self, message: AgentMessage) -> Vec<AgentMessage> {
        if message.sequence < self.expected {
            return Vec::new();
        }
        self.waiting.entry(message.sequence).or_insert(message);
        let mut ready = Vec::new();
        while let Some(next) = self.waiting.remove(&self.expected) {
            ready.push(next);
            self.expected += 1;
        }
        ready
    }
}

/// Messages sent and not yet acknowledged, resent when they wait too long.
#[derive(Debug, Default)]
pub struct Outbox {
    next_sequence: i64,
    unacked: VecDeque<(Instant, AgentMessage)>,
}

impl Outbox {
    /// A new stream message with the next sequence number, remembered until acknowledged.
    pub fn stream(
        &mut self,
        message_type: &str,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> AgentMessage {
        let message = AgentMessage::new(message_type, self.next_sequence, payload_type, payload);
        self.next_sequence += 1;
        self.unacked.push_back((Instant::now(), message.clone()));
        message
    }

    /// Forgets the message an acknowledgement names.
    pub fn acknowledged(&mut self, ack: &AgentMessage) {
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&ack.payload) else {
            return;
        };
        if let Some(sequence) = body["AcknowledgedMessageSequenceNumber"].as_i64() {
            self.unacked.retain(|(_, m)| m.sequence != sequence);
        }
    }

    /// Messages due for another try.
    pub fn due(&mut self) -> Vec<AgentMessage> {
        let now = Instant::now();
        let mut due = Vec::new();
        for (sent, message) in &mut self.unacked {
            if now.duration_since(*sent) >= RESEND_AFTER {
                *sent = now;
                due.push(message.clone());
            }
        }
        due
    }

    pub fn pending(&self) -> usize {
        self.unacked.len()
    }
}

/// A session the service started: where to connect and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedSession {
    pub session_id: String,
    pub stream_url: String,
    pub token: String,
    pub target: String,
    /// StartSession's request id, for the ledger.
    pub request_id: Option<String>,
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

/// The client's connection: TLS in AWS, plain where the stream URL says `ws://`.
pub type ClientStream = tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>;

/// An open data channel. The client sends `input_stream_data` and receives
/// `output_stream_data`; the agent side (the lab's) the other way round.
pub struct DataChannel<S = ClientStream> {
    socket: tokio_tungstenite::WebSocketStream<S>,
    outbox: Outbox,
    inbound: Reorder,
    target: String,
    sends: &'static str,
    receives: &'static str,
    pub session_type: String,
}

impl<S> std::fmt::Debug for DataChannel<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataChannel")
            .field("target", &self.target)
            .field("session_type", &self.session_type)
            .finish_non_exhaustive()
    }
}

/// What the channel delivered, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivered {
    Data(PayloadType, Vec<u8>),
    Closed(Option<String>),
}

/// One frame as the socket gave it (`None`: the socket ended). Reading a frame is
/// cancel-safe, so it may stand in a `select!`; handling it ([`DataChannel::take`]) is
/// not, and belongs in the branch's body.
pub type Frame = Option<Result<Message, tokio_tungstenite::tungstenite::Error>>;

impl<S> DataChannel<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// The client's end of a channel whose socket is open (before the data channel is
    /// opened with the token).
    fn client(socket: tokio_tungstenite::WebSocketStream<S>, target: &str) -> Self {
        Self {
            socket,
            outbox: Outbox::default(),
            inbound: Reorder::default(),
            target: target.to_owned(),
            sends: kind::INPUT,
            receives: kind::OUTPUT,
            session_type: String::new(),
        }
    }

    /// The agent's end of a channel whose socket is open.
    pub fn agent(socket: tokio_tungstenite::WebSocketStream<S>, target: &str) -> Self {
        Self {
            socket,
            outbox: Outbox::default(),
            inbound: Reorder::default(),
            target: target.to_owned(),
            sends: kind::OUTPUT,
            receives: kind::INPUT,
            session_type: String::new(),
        }
    }

    fn fail(&self, why: impl Into<String>) -> AnalysisError {
        AnalysisError::Session {
            target: self.target.clone(),
            why: why.into(),
        }
    }

    async fn send_frame(&mut self, message: &AgentMessage) -> Result<(), AnalysisError> {
        let bytes = message.encode();
        self.socket
            .send(Message::binary(bytes))
            .await
            .map_err(|err| self.fail(format!("the data channel broke: {err}")))
    }

    /// Sends stream data (keystrokes, a size, port bytes, a flag; output on the agent side).
    pub async fn send_stream(
        &mut self,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Result<(), AnalysisError> {
        let message = self.outbox.stream(self.sends, payload_type, payload);
        self.send_frame(&message).await
    }

    /// Resends what the other side has not acknowledged in time.
    pub async fn resend_due(&mut self) -> Result<(), AnalysisError> {
        for message in self.outbox.due() {
            self.send_frame(&message).await?;
        }
        Ok(())
    }

    /// Closes the channel from the agent side, with a message for the client.
    pub async fn close_channel(
        &mut self,
        session_id: &str,
        output: &str,
    ) -> Result<(), AnalysisError> {
        let body = serde_json::json!({
            "MessageType": kind::CHANNEL_CLOSED,
            "MessageId": message_id_text(&new_message_id()),
            "CreatedDate": time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
            "DestinationId": "",
            "SessionId": session_id,
            "SchemaVersion": 1,
            "Output": output,
        });
        let message = AgentMessage::new(
            kind::CHANNEL_CLOSED,
            0,
            PayloadType::None,
            body.to_string().into_bytes(),
        );
        self.send_frame(&message).await?;
        // Let the client read it and hang up first (its last acknowledgements arrive
        // meanwhile); a client that does not is cut off after two seconds.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(frame)) = self.socket.next().await {
                if matches!(frame, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
        let _ = self.socket.close(None).await;
        Ok(())
    }

    /// The next frame from the socket (cancel-safe).
    pub async fn next_frame(&mut self) -> Frame {
        self.socket.next().await
    }

    /// Reads one frame and handles it (not cancel-safe: for use outside `select!`).
    pub async fn receive(&mut self) -> Result<Vec<Delivered>, AnalysisError> {
        let frame = self.socket.next().await;
        self.take(frame).await
    }

    /// Handles one frame: acknowledgements are matched to what was sent, stream data is
    /// acknowledged and put in order, and what is now deliverable is returned in order.
    pub async fn take(&mut self, frame: Frame) -> Result<Vec<Delivered>, AnalysisError> {
        let Some(frame) = frame else {
            return Ok(vec![Delivered::Closed(None)]);
        };
        let frame = frame.map_err(|err| self.fail(format!("the data channel broke: {err}")))?;
        let bytes = match frame {
            Message::Binary(bytes) => bytes,
            Message::Close(_) => return Ok(vec![Delivered::Closed(None)]),
            _ => return Ok(Vec::new()),
        };
        let message = AgentMessage::decode(&bytes)
            .map_err(|err| self.fail(format!("bad frame on the data channel: {err}")))?;
        match message.message_type.as_str() {
            kind::ACK => {
                self.outbox.acknowledged(&message);
                Ok(Vec::new())
            }
            kind::CHANNEL_CLOSED => {
                let body: serde_json::Value =
                    serde_json::from_slice(&message.payload).unwrap_or_default();
                Ok(vec![Delivered::Closed(
                    body["Output"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                )])
            }
            t if t == self.receives => {
                // An acknowledgement that cannot go out is not fatal here: the other side
                // may have just closed, and what it sent before closing is still to be read.
                let ack = message.acknowledgement();
                if let Err(err) = self.send_frame(&ack).await {
                    tracing::debug!(error = %err, "acknowledgement not sent");
                }
                Ok(join_delivered(self.inbound.accept(message)))
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// What in-order messages deliver: consecutive output joined into one piece, everything
/// else (stderr, flags, sizes, exit codes) on its own, nothing lost or reordered.
fn join_delivered(ready: Vec<AgentMessage>) -> Vec<Delivered> {
    let mut delivered: Vec<Delivered> = Vec::new();
    for message in ready {
        let payload_type = message.payload_type().unwrap_or(PayloadType::None);
        match delivered.last_mut() {
            Some(Delivered::Data(PayloadType::Output, joined))
                if payload_type == PayloadType::Output =>
            {
                joined.extend(message.payload);
            }
            _ => delivered.push(Delivered::Data(payload_type, message.payload)),
        }
    }
    delivered
}

impl DataChannel<ClientStream> {
    /// Connects to the stream URL, opens the channel with the token and completes the
    /// agent's handshake.
    pub async fn open(started: &StartedSession) -> Result<Self, AnalysisError> {
        let fail = |why: String| AnalysisError::Session {
            target: started.target.clone(),
            why,
        };
        let (socket, _) = tokio_tungstenite::connect_async(started.stream_url.as_str())
            .await
            .map_err(|err| {
                fail(format!(
                    "cannot connect to {}: {err}",
                    redact(&started.stream_url)
                ))
            })?;
        let mut channel = Self::client(socket, &started.target);
        let open = OpenDataChannel {
            message_schema_version: "1.0".to_owned(),
            request_id: message_id_text(&new_message_id()),
            token_value: started.token.clone(),
            client_id: message_id_text(&new_message_id()),
            client_version: CLIENT_VERSION.to_owned(),
        };
        let text = serde_json::to_string(&open).map_err(|err| fail(err.to_string()))?;
        channel
            .socket
            .send(Message::text(text))
            .await
            .map_err(|err| fail(format!("cannot open the data channel: {err}")))?;
        channel.handshake().await?;
        Ok(channel)
    }

    async fn handshake(&mut self) -> Result<(), AnalysisError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let delivered = tokio::time::timeout_at(deadline, self.receive())
                .await
                .map_err(|_| self.fail("the agent did not complete the handshake within 30 s"))??;
            for delivered in delivered {
                match delivered {
                    Delivered::Data(PayloadType::HandshakeRequest, payload) => {
                        let request: HandshakeRequest = serde_json::from_slice(&payload)
                            .map_err(|err| self.fail(format!("unreadable handshake: {err}")))?;
                        let (response, session_type, refused) = answer_handshake(&request);
                        let body = serde_json::to_vec(&response)
                            .map_err(|err| self.fail(err.to_string()))?;
                        self.send_stream(PayloadType::HandshakeResponse, body)
                            .await?;
                        if !refused.is_empty() {
                            return Err(self.fail(format!(
                                "the session asks for {} (for example KMS-encrypted sessions), which irf's own client does not speak; {PLUGIN_HELP} {}'",
                                refused.join(", "),
                                self.target
                            )));
                        }
                        self.session_type = session_type.unwrap_or_default();
                    }
                    Delivered::Data(PayloadType::HandshakeComplete, _) => return Ok(()),
                    Delivered::Data(PayloadType::EncChallengeRequest, _) => {
                        return Err(self.fail(format!(
                            "the session is KMS-encrypted, which irf's own client does not speak; {PLUGIN_HELP} {}'",
                            self.target
                        )));
                    }
                    Delivered::Closed(message) => {
                        return Err(self.fail(format!(
                            "the agent closed the channel during the handshake: {}",
                            message.unwrap_or_default()
                        )));
                    }
                    Delivered::Data(..) => {}
                }
            }
        }
    }

    /// Runs an interactive shell: `input` bytes go to the host as typed, the host's output
    /// to `output`; `sizes` carries terminal sizes (columns, rows). Ends when the agent
    /// closes the channel or the input ends.
    pub async fn shell<W: AsyncWrite + Unpin>(
        mut self,
        mut input: mpsc::Receiver<Vec<u8>>,
        mut sizes: mpsc::Receiver<(u16, u16)>,
        mut output: W,
    ) -> Result<SessionEnd, AnalysisError> {
        let mut end = SessionEnd::default();
        let mut resend = tokio::time::interval(Duration::from_millis(500));
        'session: loop {
            tokio::select! {
                frame = self.next_frame() => {
                    for delivered in self.take(frame).await? {
                        match delivered {
                            Delivered::Data(PayloadType::Output | PayloadType::StdErr, bytes) => {
                                end.bytes_out += bytes.len() as u64;
                                output.write_all(&bytes).await.map_err(|err| self.fail(err.to_string()))?;
                                output.flush().await.map_err(|err| self.fail(err.to_string()))?;
                            }
                            Delivered::Closed(message) => {
                                end.closing_message = message;
                                break 'session;
                            }
                            Delivered::Data(..) => {}
                        }
                    }
                }
                typed = input.recv() => match typed {
                    Some(bytes) => {
                        end.bytes_in += bytes.len() as u64;
                        self.send_stream(PayloadType::Output, bytes).await?;
                    }
                    None => {
                        end.ended_locally = true;
                        break;
                    }
                },
                Some((cols, rows)) = sizes.recv() => {
                    let body = serde_json::json!({ "cols": cols, "rows": rows }).to_string();
                    self.send_stream(PayloadType::Size, body.into_bytes()).await?;
                }
                _ = resend.tick() => self.resend_due().await?,
            }
        }
        let _ = self.socket.close(None).await;
        Ok(end)
    }

    /// Carries one local TCP connection to the host's port until either end closes it or
    /// `stop` fires. Each connection has a session of its own, so connections run side
    /// by side (a browser opens several at once) without a multiplexer on the channel.
    pub async fn forward_connection(
        mut self,
        mut stream: tokio::net::TcpStream,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<SessionEnd, AnalysisError> {
        let mut end = SessionEnd::default();
        let mut resend = tokio::time::interval(Duration::from_millis(500));
        let mut buffer = vec![0u8; 64 * 1024];
        'session: loop {
            tokio::select! {
                read = stream.read(&mut buffer) => match read {
                    Ok(0) | Err(_) => {
                        end.ended_locally = true;
                        break;
                    }
                    Ok(n) => {
                        end.bytes_in += n as u64;
                        self.send_stream(PayloadType::Output, buffer[..n].to_vec()).await?;
                    }
                },
                frame = self.next_frame() => {
                    for delivered in self.take(frame).await? {
                        match delivered {
                            Delivered::Data(PayloadType::Output, bytes) => {
                                end.bytes_out += bytes.len() as u64;
                                if stream.write_all(&bytes).await.is_err() {
                                    end.ended_locally = true;
                                    break 'session;
                                }
                            }
                            Delivered::Data(PayloadType::Flag, bytes) if bytes.as_slice() == flag::CONNECT_TO_PORT_ERROR.to_be_bytes() => {
                                return Err(self.fail("the host refused the connection to the port: is anything listening on it?"));
                            }
                            Delivered::Closed(message) => {
                                end.closing_message = message;
                                break 'session;
                            }
                            Delivered::Data(..) => {}
                        }
                    }
                }
                _ = resend.tick() => self.resend_due().await?,
                _ = stop.changed() => { end.ended_locally = true; break; }
            }
        }
        if end.ended_locally {
            let _ = self
                .send_stream(
                    PayloadType::Flag,
                    flag::TERMINATE_SESSION.to_be_bytes().to_vec(),
                )
                .await;
        }
        let _ = stream.shutdown().await;
        let _ = self.socket.close(None).await;
        Ok(end)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_their_layout() {
        let mut message = AgentMessage::new(
            kind::INPUT,
            7,
            PayloadType::Size,
            br#"{"cols":80,"rows":24}"#.to_vec(),
        );
        message.flags = 1;
        let bytes = message.encode();
        assert_eq!(&bytes[0..4], &116u32.to_be_bytes());
        assert_eq!(&bytes[4..36], format!("{:<32}", kind::INPUT).as_bytes());
        assert_eq!(&bytes[48..56], &7i64.to_be_bytes());
        assert_eq!(&bytes[112..116], &3u32.to_be_bytes());
        assert_eq!(bytes.len(), 120 + message.payload.len());
        // The id travels least significant half first.
        assert_eq!(&bytes[64..72], &message.message_id[8..16]);
        assert_eq!(AgentMessage::decode(&bytes), Ok(message));
    }

    #[test]
    fn damaged_frames_are_refused_by_name() {
        let bytes =
            AgentMessage::new(kind::OUTPUT, 0, PayloadType::Output, b"ls\n".to_vec()).encode();
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(AgentMessage::decode(&flipped), Err(FrameError::Digest));
        assert_eq!(
            AgentMessage::decode(&bytes[..bytes.len() - 1]),
            Err(FrameError::PayloadLength {
                declared: 3,
                present: 2
            })
        );
        assert_eq!(
            AgentMessage::decode(&bytes[..50]),
            Err(FrameError::Short(50))
        );
        let mut header = bytes;
        header[3] = 0;
        assert_eq!(
            AgentMessage::decode(&header),
            Err(FrameError::HeaderLength(0))
        );
    }

    #[test]
    fn reorder_delivers_in_sequence_once() {
        let message = |seq: i64| {
            AgentMessage::new(
                kind::OUTPUT,
                seq,
                PayloadType::Output,
                vec![u8::try_from(seq).unwrap_or(0)],
            )
        };
        let mut reorder = Reorder::default();
        assert!(reorder.accept(message(1)).is_empty());
        let ready: Vec<i64> = reorder
            .accept(message(0))
            .iter()
            .map(|m| m.sequence)
            .collect();
        assert_eq!(ready, [0, 1]);
        assert!(reorder.accept(message(1)).is_empty(), "a repeat is dropped");
        assert_eq!(reorder.accept(message(2)).len(), 1);
    }

    #[test]
    fn acknowledged_messages_are_not_resent() {
        let mut outbox = Outbox::default();
        let first = outbox.stream(kind::INPUT, PayloadType::Output, b"a".to_vec());
        let second = outbox.stream(kind::INPUT, PayloadType::Output, b"b".to_vec());
        assert_eq!((first.sequence, second.sequence), (0, 1));
        outbox.acknowledged(&first.acknowledgement());
        assert_eq!(outbox.pending(), 1);
        // Not due yet: sent just now.
        assert!(outbox.due().is_empty());
    }

    #[test]
    fn handshake_accepts_the_session_type_and_refuses_encryption() {
        let request: HandshakeRequest = serde_json::from_value(serde_json::json!({
            "AgentVersion": "3.3.1142.0",
            "RequestedClientActions": [
                {"ActionType": "SessionType", "ActionParameters": {"SessionType": "Standard_Stream", "Properties": {}}},
                {"ActionType": "KMSEncryption", "ActionParameters": {"KMSKeyId": "arn:aws:kms:us-east-1:1:key/x"}}
            ]
        }))
        .expect("request");
        let (response, session_type, refused) = answer_handshake(&request);
        assert_eq!(session_type.as_deref(), Some("Standard_Stream"));
        assert_eq!(refused, ["KMSEncryption"]);
        assert_eq!(response.processed_client_actions[0].action_status, 1);
        assert_eq!(response.processed_client_actions[1].action_status, 3);
        let text = serde_json::to_value(&response).expect("json");
        assert_eq!(text["ClientVersion"], CLIENT_VERSION);
    }

    fn output_of(delivered: &[Delivered]) -> Vec<u8> {
        delivered
            .iter()
            .flat_map(|d| match d {
                Delivered::Data(PayloadType::Output, bytes) => bytes.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn everything_that_becomes_deliverable_at_once_is_delivered_in_order() {
        let message = |sequence, payload_type, payload: &[u8]| {
            AgentMessage::new(kind::OUTPUT, sequence, payload_type, payload.to_vec())
        };
        let delivered = join_delivered(vec![
            message(0, PayloadType::Output, b"ab"),
            message(1, PayloadType::Output, b"cd"),
            message(2, PayloadType::ExitCode, b"0"),
            message(3, PayloadType::StdErr, b"warn"),
            message(
                4,
                PayloadType::Flag,
                &flag::DISCONNECT_TO_PORT.to_be_bytes(),
            ),
            message(5, PayloadType::Output, b"ef"),
        ]);
        assert_eq!(
            delivered,
            vec![
                Delivered::Data(PayloadType::Output, b"abcd".to_vec()),
                Delivered::Data(PayloadType::ExitCode, b"0".to_vec()),
                Delivered::Data(PayloadType::StdErr, b"warn".to_vec()),
                Delivered::Data(
                    PayloadType::Flag,
                    flag::DISCONNECT_TO_PORT.to_be_bytes().to_vec()
                ),
                Delivered::Data(PayloadType::Output, b"ef".to_vec()),
            ]
        );
    }

    #[tokio::test]
    async fn a_read_given_up_in_a_select_loses_nothing() {
        // A narrow pipe and an agent slow to read acknowledgements: handling a frame then
        // waits on its acknowledgement's write, while a timer keeps winning the select.
        // Only a read that is cancel-safe up to the frame, with the handling in the branch
        // body, delivers everything.
        let (near, far) = tokio::io::duplex(256);
        let (client, agent) = tokio::join!(
            tokio_tungstenite::client_async("ws://lab.invalid/v1/data-channel/s-1", near),
            tokio_tungstenite::accept_async(far)
        );
        let mut client = DataChannel::client(client.expect("client handshake").0, "i-host");
        let (mut agent_out, mut agent_in) = agent.expect("agent handshake").split();
        let sent: Vec<u8> = (0..210u8).collect();
        let frames: Vec<Vec<u8>> = sent
            .chunks(7)
            .enumerate()
            .map(|(sequence, chunk)| {
                AgentMessage::new(
                    kind::OUTPUT,
                    i64::try_from(sequence).expect("small"),
                    PayloadType::Output,
                    chunk.to_vec(),
                )
                .encode()
            })
            .collect();
        let writer = tokio::spawn(async move {
            for (n, frame) in frames.into_iter().enumerate() {
                agent_out.send(Message::binary(frame)).await.expect("send");
                // Now and then nothing to read, so that the timer wins a round.
                if n % 4 == 3 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            agent_out
        });
        let drainer = tokio::spawn(async move {
            while agent_in.next().await.is_some() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let mut received = Vec::new();
        let mut given_up = 0;
        // A lost message leaves the channel waiting for ever: bounded, so that it fails.
        let finished = tokio::time::timeout(Duration::from_secs(30), async {
            while received.len() < sent.len() {
                tokio::select! {
                    frame = client.next_frame() => {
                        let delivered = client.take(frame).await.expect("take");
                        received.extend(output_of(&delivered));
                    }
                    () = tokio::time::sleep(Duration::from_micros(300)) => given_up += 1,
                }
            }
        })
        .await;
        assert!(
            finished.is_ok(),
            "{} of {} bytes arrived",
            received.len(),
            sent.len()
        );
        assert_eq!(received, sent);
        assert!(given_up > 0, "the timer never won: the test proved nothing");
        drop(writer.await.expect("writer"));
        drainer.abort();
    }
}
