//! The client's end of a data channel: opening it with the session's token, the
//! handshake when the agent asks for one (a shell agent without KMS does not, and starts
//! with its output), sequence order, acknowledgements, resending what the agent has not
//! acknowledged (the agent withholds acknowledgements until its terminal or its port is
//! ready, and relies on the client to resend), keepalive pings, and the two uses: an
//! interactive shell and one forwarded TCP connection.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::wire::{
    AgentMessage, CLIENT_VERSION, HandshakeRequest, OpenDataChannel, PayloadType,
    STREAM_PAYLOAD_SIZE, answer_handshake, flag, kind, message_id_text, new_message_id,
};
use super::{PLUGIN_HELP, SessionEnd, SessionKind, StartedSession, redact};
use crate::analysis::AnalysisError;

/// The resend timeout adapts to the round trip between these bounds, as the plugin's
/// does; it is checked this often.
const MIN_RESEND: Duration = Duration::from_millis(200);
const MAX_RESEND: Duration = Duration::from_secs(1);
const RESEND_CHECK: Duration = Duration::from_millis(100);
/// A message resent this many times without an acknowledgement ends the session.
const MAX_ATTEMPTS: u32 = 3000;
/// Messages in flight before a forwarded connection stops reading its socket.
const WINDOW: usize = 10_000;
/// A WebSocket ping this often keeps an idle session open, as the plugin's does.
pub const KEEPALIVE: Duration = Duration::from_secs(300);
/// How long the agent has to start the session (handshake or first output).
const START_WITHIN: Duration = Duration::from_secs(30);
/// How long a forwarded connection that ended locally waits for its last bytes to be
/// acknowledged before the session ends.
const DRAIN_WITHIN: Duration = Duration::from_secs(10);

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

#[derive(Debug)]
struct InFlight {
    message: AgentMessage,
    first_sent: Instant,
    last_sent: Instant,
    attempts: u32,
}

/// The round-trip estimate that sets the resend timeout (smoothed mean and deviation,
/// sampled only from messages acknowledged without a resend).
#[derive(Debug, Clone, Copy)]
struct RoundTrip {
    smoothed: Duration,
    deviation: Duration,
}

impl Default for RoundTrip {
    fn default() -> Self {
        Self {
            smoothed: Duration::from_millis(100),
            deviation: Duration::ZERO,
        }
    }
}

impl RoundTrip {
    fn sample(&mut self, rtt: Duration) {
        let difference = self.smoothed.abs_diff(rtt);
        self.deviation = (self.deviation * 3 + difference) / 4;
        self.smoothed = (self.smoothed * 7 + rtt) / 8;
    }

    fn resend_after(&self) -> Duration {
        (self.smoothed + self.deviation * 4).clamp(MIN_RESEND, MAX_RESEND)
    }
}

/// A message that went unacknowledged through every resend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unacknowledged {
    pub sequence: i64,
    pub attempts: u32,
}

/// Messages sent and not yet acknowledged, resent when they wait too long.
#[derive(Debug, Default)]
pub struct Outbox {
    next_sequence: i64,
    in_flight: VecDeque<InFlight>,
    round_trip: RoundTrip,
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
        let now = Instant::now();
        self.in_flight.push_back(InFlight {
            message: message.clone(),
            first_sent: now,
            last_sent: now,
            attempts: 1,
        });
        message
    }

    /// Forgets the message an acknowledgement names.
    pub fn acknowledged(&mut self, ack: &AgentMessage) {
        let Some(sequence) = ack.acknowledged_sequence() else {
            return;
        };
        if let Some(at) = self
            .in_flight
            .iter()
            .position(|m| m.message.sequence == sequence)
            && let Some(done) = self.in_flight.remove(at)
            && done.attempts == 1
        {
            self.round_trip.sample(done.first_sent.elapsed());
        }
    }

    /// The oldest message, when it is due for another try (what the agent withholds is
    /// always the next one it expects, and it keeps what comes after: resending the oldest
    /// is enough, as the plugin does), or the message that has had all its tries.
    pub fn due(&mut self) -> Result<Option<AgentMessage>, Unacknowledged> {
        let now = Instant::now();
        let wait = self.round_trip.resend_after();
        let Some(oldest) = self.in_flight.front_mut() else {
            return Ok(None);
        };
        if now.duration_since(oldest.last_sent) < wait {
            return Ok(None);
        }
        if oldest.attempts >= MAX_ATTEMPTS {
            return Err(Unacknowledged {
                sequence: oldest.message.sequence,
                attempts: oldest.attempts,
            });
        }
        oldest.last_sent = now;
        oldest.attempts += 1;
        Ok(Some(oldest.message.clone()))
    }

    /// How long an unacknowledged message waits before it is sent again.
    pub fn resend_after(&self) -> Duration {
        self.round_trip.resend_after()
    }

    pub fn pending(&self) -> usize {
        self.in_flight.len()
    }
}

/// The client's connection: TLS in AWS, plain where the stream URL says `ws://`.
pub type ClientStream = tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>;

/// An open data channel: the client sends `input_stream_data` and receives
/// `output_stream_data`. Frames go out through a writer task of their own, so that the
/// channel goes on reading (acknowledgements above all) while its writes wait: two ends
/// that each wait to write before they read would stop each other.
pub struct DataChannel<S = ClientStream> {
    frames: SplitStream<tokio_tungstenite::WebSocketStream<S>>,
    outgoing: mpsc::UnboundedSender<Message>,
    writer: tokio::task::JoinHandle<()>,
    outbox: Outbox,
    inbound: Reorder,
    target: String,
    /// What was delivered while the session started, for the session to use first.
    early: VecDeque<Delivered>,
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

/// Writes what the channel queues until the queue or the socket ends.
async fn write_frames<S>(
    mut sink: SplitSink<tokio_tungstenite::WebSocketStream<S>, Message>,
    mut queue: mpsc::UnboundedReceiver<Message>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(message) = queue.recv().await {
        let closing = matches!(message, Message::Close(_));
        if sink.send(message).await.is_err() || closing {
            break;
        }
    }
    let _ = sink.close().await;
}

impl<S> DataChannel<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// The client's end of a channel whose socket is open (before the data channel is
    /// opened with the token).
    fn client(socket: tokio_tungstenite::WebSocketStream<S>, target: &str) -> Self {
        let (sink, frames) = socket.split();
        let (outgoing, queue) = mpsc::unbounded_channel();
        Self {
            frames,
            outgoing,
            writer: tokio::spawn(write_frames(sink, queue)),
            outbox: Outbox::default(),
            inbound: Reorder::default(),
            target: target.to_owned(),
            early: VecDeque::new(),
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
        self.queue(Message::binary(message.encode()))
    }

    fn queue(&self, message: Message) -> Result<(), AnalysisError> {
        self.outgoing
            .send(message)
            .map_err(|_| self.fail("the data channel broke: its connection is gone"))
    }

    /// Closes the socket once what is queued has gone out (bounded).
    async fn close(self) {
        let _ = self.outgoing.send(Message::Close(None));
        drop(self.outgoing);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.writer).await;
    }

    /// Sends stream data (keystrokes, a size, port bytes, a flag).
    pub async fn send_stream(
        &mut self,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Result<(), AnalysisError> {
        let message = self.outbox.stream(kind::INPUT, payload_type, payload);
        self.send_frame(&message).await
    }

    /// Resends what the agent has not acknowledged in time.
    pub async fn resend_due(&mut self) -> Result<(), AnalysisError> {
        let due = self.outbox.due().map_err(|lost| {
            self.fail(format!(
                "the agent did not acknowledge message {} after {} tries",
                lost.sequence, lost.attempts
            ))
        })?;
        if let Some(message) = due {
            self.send_frame(&message).await?;
        }
        Ok(())
    }

    /// A WebSocket ping, so that an idle session is not dropped on the way.
    async fn keepalive(&mut self) -> Result<(), AnalysisError> {
        self.queue(Message::Ping(Vec::new().into()))
    }

    /// The next frame from the socket (cancel-safe).
    pub async fn next_frame(&mut self) -> Frame {
        self.frames.next().await
    }

    /// Reads one frame and handles it (not cancel-safe: for use outside `select!`).
    pub async fn receive(&mut self) -> Result<Vec<Delivered>, AnalysisError> {
        let frame = self.frames.next().await;
        self.take(frame).await
    }

    /// Handles one frame: acknowledgements are matched to what was sent, stream data is
    /// acknowledged and put in order, and what is now deliverable is returned in order.
    /// A frame that cannot be read is dropped unacknowledged (the agent sends it again),
    /// and the service's own frames (publication, agent state) are passed over, as the
    /// plugin does: neither ends a session.
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
        let message = match AgentMessage::decode(&bytes) {
            Ok(message) => message,
            Err(err) => {
                tracing::debug!(target = self.target, error = %err, "unreadable frame dropped");
                return Ok(Vec::new());
            }
        };
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
            kind::OUTPUT => {
                // An acknowledgement that cannot go out is not fatal here: the other side
                // may have just closed, and what it sent before closing is still to be read.
                let ack = message.acknowledgement();
                if let Err(err) = self.send_frame(&ack).await {
                    tracing::debug!(error = %err, "acknowledgement not sent");
                }
                Ok(join_delivered(self.inbound.accept(message)))
            }
            other => {
                tracing::debug!(
                    target = self.target,
                    message_type = other,
                    "frame passed over"
                );
                Ok(Vec::new())
            }
        }
    }

    /// Waits for the agent to start the session. A shell agent without KMS sends no
    /// handshake and starts with its output, which is kept; a port agent always
    /// handshakes. Whatever arrives after the handshake's end is kept too.
    async fn start(&mut self, session: &SessionKind) -> Result<(), AnalysisError> {
        let deadline = tokio::time::Instant::now() + START_WITHIN;
        let mut handshaking = false;
        loop {
            let delivered = tokio::time::timeout_at(deadline, self.receive())
                .await
                .map_err(|_| {
                    self.fail(format!(
                        "the agent did not start the session within {} s",
                        START_WITHIN.as_secs()
                    ))
                })??;
            let mut delivered = delivered.into_iter();
            while let Some(item) = delivered.next() {
                match item {
                    Delivered::Data(PayloadType::HandshakeRequest, payload) => {
                        handshaking = true;
                        self.answer(&payload).await?;
                    }
                    Delivered::Data(PayloadType::HandshakeComplete, _) => {
                        self.early.extend(delivered);
                        return Ok(());
                    }
                    Delivered::Data(PayloadType::EncChallengeRequest, _) => {
                        return Err(self.fail(format!(
                            "the session is KMS-encrypted, which irf's own client does not speak; {PLUGIN_HELP} {}'",
                            self.target
                        )));
                    }
                    Delivered::Closed(message) => {
                        return Err(self.fail(format!(
                            "the agent closed the channel as the session started: {}",
                            message.unwrap_or_default()
                        )));
                    }
                    data @ Delivered::Data(PayloadType::Output | PayloadType::StdErr, _)
                        if !handshaking && *session == SessionKind::Shell =>
                    {
                        // No handshake: the shell's first output is the session's start.
                        self.session_type = "Standard_Stream".to_owned();
                        self.early.push_back(data);
                        self.early.extend(delivered);
                        return Ok(());
                    }
                    Delivered::Data(..) => {}
                }
            }
        }
    }

    async fn answer(&mut self, payload: &[u8]) -> Result<(), AnalysisError> {
        let request: HandshakeRequest = serde_json::from_slice(payload)
            .map_err(|err| self.fail(format!("unreadable handshake: {err}")))?;
        let (response, session_type, refused) = answer_handshake(&request);
        let body = serde_json::to_vec(&response).map_err(|err| self.fail(err.to_string()))?;
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
        Ok(())
    }

    /// What was delivered as the session started, then what the next frame delivers.
    async fn deliveries(&mut self, frame: Frame) -> Result<Vec<Delivered>, AnalysisError> {
        let mut delivered: Vec<Delivered> = self.early.drain(..).collect();
        delivered.extend(self.take(frame).await?);
        Ok(delivered)
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
        let mut resend = tokio::time::interval(RESEND_CHECK);
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        // What arrived as the session started is shown before anything else.
        let early: Vec<Delivered> = self.early.drain(..).collect();
        let mut closed = self.show(early, &mut output, &mut end).await?;
        while !closed {
            tokio::select! {
                frame = self.next_frame() => {
                    let delivered = self.take(frame).await?;
                    closed = self.show(delivered, &mut output, &mut end).await?;
                }
                typed = input.recv() => match typed {
                    Some(bytes) => {
                        end.bytes_in += bytes.len() as u64;
                        for chunk in bytes.chunks(STREAM_PAYLOAD_SIZE) {
                            self.send_stream(PayloadType::Output, chunk.to_vec()).await?;
                        }
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
                _ = keepalive.tick() => self.keepalive().await?,
            }
        }
        self.close().await;
        Ok(end)
    }

    /// Writes a shell's output; `true` once the channel closed.
    async fn show<W: AsyncWrite + Unpin>(
        &self,
        delivered: Vec<Delivered>,
        output: &mut W,
        end: &mut SessionEnd,
    ) -> Result<bool, AnalysisError> {
        for delivered in delivered {
            match delivered {
                Delivered::Data(PayloadType::Output | PayloadType::StdErr, bytes) => {
                    end.bytes_out += bytes.len() as u64;
                    output
                        .write_all(&bytes)
                        .await
                        .map_err(|err| self.fail(err.to_string()))?;
                    output
                        .flush()
                        .await
                        .map_err(|err| self.fail(err.to_string()))?;
                }
                Delivered::Closed(message) => {
                    end.closing_message = message;
                    return Ok(true);
                }
                Delivered::Data(..) => {}
            }
        }
        Ok(false)
    }

    /// Sends `bytes` from a forwarded connection in messages of the reference size.
    async fn send_port_bytes(&mut self, bytes: &[u8]) -> Result<(), AnalysisError> {
        for chunk in bytes.chunks(STREAM_PAYLOAD_SIZE) {
            self.send_stream(PayloadType::Output, chunk.to_vec())
                .await?;
        }
        Ok(())
    }

    /// Waits, bounded, until the agent has acknowledged everything sent.
    async fn drain(&mut self) -> Result<(), AnalysisError> {
        let deadline = tokio::time::Instant::now() + DRAIN_WITHIN;
        let mut resend = tokio::time::interval(RESEND_CHECK);
        while self.outbox.pending() > 0 && tokio::time::Instant::now() < deadline {
            tokio::select! {
                frame = self.next_frame() => {
                    if self.take(frame).await?.iter().any(|d| matches!(d, Delivered::Closed(_))) {
                        break;
                    }
                }
                _ = resend.tick() => self.resend_due().await?,
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        Ok(())
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
    /// Connects to the stream URL, opens the channel with the token, and waits for the
    /// agent to start the session.
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
            .queue(Message::text(text))
            .map_err(|err| fail(format!("cannot open the data channel: {err}")))?;
        channel.start(&started.kind).await?;
        Ok(channel)
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
        let mut resend = tokio::time::interval(RESEND_CHECK);
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        let mut buffer = vec![0u8; 64 * 1024];
        'session: loop {
            let room = self.outbox.pending() < WINDOW;
            tokio::select! {
                read = stream.read(&mut buffer), if room => match read {
                    Ok(0) | Err(_) => {
                        end.ended_locally = true;
                        break;
                    }
                    Ok(n) => {
                        end.bytes_in += n as u64;
                        self.send_port_bytes(&buffer[..n]).await?;
                    }
                },
                frame = self.next_frame() => {
                    for delivered in self.deliveries(frame).await? {
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
                _ = keepalive.tick() => self.keepalive().await?,
                _ = stop.changed() => { end.ended_locally = true; break; }
            }
        }
        if end.ended_locally {
            // What the local side sent last reaches the host before the session ends.
            self.drain().await?;
            let _ = self
                .send_stream(
                    PayloadType::Flag,
                    flag::TERMINATE_SESSION.to_be_bytes().to_vec(),
                )
                .await;
        }
        let _ = stream.shutdown().await;
        self.close().await;
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(outbox.due(), Ok(None));
    }

    #[test]
    fn the_resend_timeout_follows_the_round_trip_within_its_bounds() {
        let mut round_trip = RoundTrip::default();
        assert_eq!(round_trip.resend_after(), MIN_RESEND);
        for _ in 0..50 {
            round_trip.sample(Duration::from_secs(5));
        }
        assert_eq!(round_trip.resend_after(), MAX_RESEND);
        for _ in 0..200 {
            round_trip.sample(Duration::from_millis(1));
        }
        assert_eq!(round_trip.resend_after(), MIN_RESEND);
    }

    #[test]
    fn an_unacknowledged_message_is_resent_within_a_second_and_then_given_up() {
        let mut outbox = Outbox::default();
        let sent = outbox.stream(kind::INPUT, PayloadType::Output, b"k".to_vec());
        let backdate = |outbox: &mut Outbox, by: Duration| {
            for in_flight in &mut outbox.in_flight {
                in_flight.last_sent -= by;
            }
        };
        let second = outbox.stream(kind::INPUT, PayloadType::Output, b"l".to_vec());
        backdate(&mut outbox, MAX_RESEND);
        let due = outbox.due().expect("due");
        assert_eq!(
            due.map(|m| m.sequence),
            Some(sent.sequence),
            "the oldest only, not {}",
            second.sequence
        );
        assert_eq!(outbox.due(), Ok(None), "not again at once");
        for in_flight in &mut outbox.in_flight {
            in_flight.attempts = MAX_ATTEMPTS;
        }
        backdate(&mut outbox, MAX_RESEND);
        assert_eq!(
            outbox.due(),
            Err(Unacknowledged {
                sequence: 0,
                attempts: MAX_ATTEMPTS
            })
        );
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

    /// A client channel and the raw WebSocket of the other end.
    async fn pair() -> (
        DataChannel<tokio::io::DuplexStream>,
        tokio_tungstenite::WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (near, far) = tokio::io::duplex(1 << 16);
        let (client, agent) = tokio::join!(
            tokio_tungstenite::client_async("ws://lab.invalid/v1/data-channel/s-1", near),
            tokio_tungstenite::accept_async(far)
        );
        (
            DataChannel::client(client.expect("client handshake").0, "i-host"),
            agent.expect("agent handshake"),
        )
    }

    fn frame(
        message_type: &str,
        sequence: i64,
        payload_type: PayloadType,
        payload: &[u8],
    ) -> Message {
        Message::binary(
            AgentMessage::new(message_type, sequence, payload_type, payload.to_vec()).encode(),
        )
    }

    #[tokio::test]
    async fn a_shell_without_a_handshake_starts_with_its_output_kept() {
        let (mut client, mut agent) = pair().await;
        agent
            .send(frame(kind::OUTPUT, 0, PayloadType::Output, b"sh-5.2$ "))
            .await
            .expect("send");
        client
            .start(&SessionKind::Shell)
            .await
            .expect("started without a handshake");
        assert_eq!(client.session_type, "Standard_Stream");
        assert_eq!(
            client.early.drain(..).collect::<Vec<_>>(),
            [Delivered::Data(PayloadType::Output, b"sh-5.2$ ".to_vec())]
        );
    }

    #[tokio::test]
    async fn output_after_the_handshake_in_the_same_delivery_is_kept() {
        let (mut client, mut agent) = pair().await;
        let request = serde_json::json!({
            "AgentVersion": "3.3.1142.0",
            "RequestedClientActions": [{"ActionType": "SessionType", "ActionParameters": {"SessionType": "Port", "Properties": {"portNumber": "22"}}}]
        });
        // Sequence 2 arrives before 1 (HandshakeComplete): both become deliverable at once.
        agent
            .send(frame(
                kind::OUTPUT,
                0,
                PayloadType::HandshakeRequest,
                request.to_string().as_bytes(),
            ))
            .await
            .expect("send");
        agent
            .send(frame(kind::OUTPUT, 2, PayloadType::Output, b"SSH-2.0"))
            .await
            .expect("send");
        agent
            .send(frame(
                kind::OUTPUT,
                1,
                PayloadType::HandshakeComplete,
                b"{}",
            ))
            .await
            .expect("send");
        client
            .start(&SessionKind::Port { remote_port: 22 })
            .await
            .expect("handshake");
        assert_eq!(client.session_type, "Port");
        assert_eq!(
            output_of(&client.early.drain(..).collect::<Vec<_>>()),
            b"SSH-2.0"
        );
    }

    #[tokio::test]
    async fn frames_the_service_sends_do_not_end_a_session() {
        let (mut client, mut agent) = pair().await;
        let mut pause =
            AgentMessage::new(kind::PAUSE_PUBLICATION, 0, PayloadType::None, Vec::new()).encode();
        pause[80..112].fill(0);
        agent.send(Message::binary(pause)).await.expect("send");
        agent
            .send(frame(
                kind::AGENT_SESSION_STATE,
                0,
                PayloadType::None,
                br#"{"SessionState":"Connected"}"#,
            ))
            .await
            .expect("send");
        agent
            .send(Message::binary(vec![0u8; 12]))
            .await
            .expect("send");
        agent
            .send(frame(kind::OUTPUT, 0, PayloadType::Output, b"$ "))
            .await
            .expect("send");
        client.start(&SessionKind::Shell).await.expect("started");
        assert_eq!(
            output_of(&client.early.drain(..).collect::<Vec<_>>()),
            b"$ "
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
