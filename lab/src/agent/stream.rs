//! The agent's end of a Session Manager data channel, written from the agent's own
//! definition (`aws/amazon-ssm-agent`, `agent/session/contracts/agentmessage.go` and
//! `agent/session/datachannel/datachannel.go`) and sharing nothing with irf's client, so
//! that a mistake common to both cannot hide: its frame layout, the SYN flag on the first
//! message, acknowledgements, input held back unacknowledged while the agent is not
//! ready (the client must resend it), 1,024-byte payloads, and the frames the service
//! adds (`start_publication`, `channel_closed`).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use futures::stream::SplitStream;
use futures::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

// Field offsets of agentmessage.go's layout (HL_LENGTH .. PAYLOAD_LENGTH_OFFSET).
const AT_HEADER_LENGTH: usize = 0;
const AT_MESSAGE_TYPE: usize = 4;
const MESSAGE_TYPE_LENGTH: usize = 32;
const AT_SCHEMA_VERSION: usize = 36;
const AT_CREATED_DATE: usize = 40;
const AT_SEQUENCE_NUMBER: usize = 48;
const AT_FLAGS: usize = 56;
const AT_MESSAGE_ID: usize = 64;
const AT_PAYLOAD_DIGEST: usize = 80;
const AT_PAYLOAD_TYPE: usize = 112;
const AT_PAYLOAD_LENGTH: usize = 116;
/// The header length the agent writes: everything before the payload-length field.
const AGENT_HEADER_LENGTH: u32 = 116;

/// Message types (agent/session/contracts/model.go).
pub const INPUT_STREAM_DATA: &str = "input_stream_data";
pub const OUTPUT_STREAM_DATA: &str = "output_stream_data";
pub const ACKNOWLEDGE: &str = "acknowledge";
pub const AGENT_SESSION_STATE: &str = "agent_session_state";
pub const CHANNEL_CLOSED: &str = "channel_closed";
pub const START_PUBLICATION: &str = "start_publication";

/// Frame flags: data, the first message of a stream (SYN), an acknowledgement.
const FLAG_DATA: u64 = 0;
const FLAG_SYN: u64 = 1;
const FLAG_ACK: u64 = 3;

/// Payload types (model.go's PayloadType).
pub mod payload {
    pub const OUTPUT: u32 = 1;
    pub const SIZE: u32 = 3;
    pub const HANDSHAKE_REQUEST: u32 = 5;
    pub const HANDSHAKE_RESPONSE: u32 = 6;
    pub const HANDSHAKE_COMPLETE: u32 = 7;
    pub const FLAG: u32 = 10;
}

/// Bytes of stream data the agent puts in one message (its StreamDataPayloadSize).
pub const STREAM_DATA_PAYLOAD_SIZE: usize = 1024;
/// How long the agent waits for an acknowledgement before sending again.
const RESEND_AFTER: Duration = Duration::from_millis(200);
/// Messages in flight before the agent stops reading what it forwards (its outgoing
/// buffer's capacity).
pub const OUTGOING_WINDOW: usize = 10_000;

/// One frame as the agent reads it: the agent checks neither the digest nor the declared
/// length against what follows the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFrame {
    pub message_type: String,
    pub sequence: i64,
    pub flags: u64,
    /// The id in its text form, as acknowledgements name it.
    pub message_id: String,
    pub payload_type: u32,
    pub payload: Vec<u8>,
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(word)
}

fn be_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(word)
}

/// A UUID string from the 16 bytes of a frame: the least significant half comes first.
fn read_uuid(bytes: &[u8]) -> String {
    let mut ordered = [0u8; 16];
    ordered[..8].copy_from_slice(&bytes[8..16]);
    ordered[8..].copy_from_slice(&bytes[..8]);
    let text: String = ordered.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &text[..8],
        &text[8..12],
        &text[12..16],
        &text[16..20],
        &text[20..]
    )
}

/// The 16 frame bytes of a UUID string: its last eight bytes first.
fn write_uuid(text: &str) -> [u8; 16] {
    let digits: Vec<u8> = text
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|d| match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        })
        .collect();
    let mut uuid = [0u8; 16];
    for (slot, pair) in uuid.iter_mut().zip(digits.chunks(2)) {
        *slot = (pair[0] << 4) | pair.get(1).copied().unwrap_or(0);
    }
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&uuid[8..]);
    out[8..].copy_from_slice(&uuid[..8]);
    out
}

/// A fresh UUID string (version 4).
pub fn fresh_uuid() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut swapped = [0u8; 16];
    swapped[..8].copy_from_slice(&bytes[8..]);
    swapped[8..].copy_from_slice(&bytes[..8]);
    read_uuid(&swapped)
}

/// Reads a frame as `agentmessage.go`'s Deserialize does.
pub fn read_frame(bytes: &[u8]) -> Option<InFrame> {
    if bytes.len() < AT_PAYLOAD_LENGTH + 4 {
        return None;
    }
    let header_length = be_u32(bytes, AT_HEADER_LENGTH) as usize;
    let length = be_u32(bytes, AT_PAYLOAD_LENGTH) as usize;
    let start = header_length + 4;
    let payload = bytes.get(start..start.checked_add(length)?)?.to_vec();
    Some(InFrame {
        message_type: String::from_utf8_lossy(
            &bytes[AT_MESSAGE_TYPE..AT_MESSAGE_TYPE + MESSAGE_TYPE_LENGTH],
        )
        .trim_end_matches([' ', '\0'])
        .to_owned(),
        sequence: be_u64(bytes, AT_SEQUENCE_NUMBER).cast_signed(),
        flags: be_u64(bytes, AT_FLAGS),
        message_id: read_uuid(&bytes[AT_MESSAGE_ID..AT_MESSAGE_ID + 16]),
        payload_type: be_u32(bytes, AT_PAYLOAD_TYPE),
        payload,
    })
}

/// Writes a frame as `agentmessage.go`'s Serialize does.
#[allow(clippy::too_many_arguments)]
pub fn write_frame(
    message_type: &str,
    created_ms: u64,
    sequence: i64,
    flags: u64,
    message_id: &str,
    payload_type: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut frame = vec![0u8; AT_PAYLOAD_LENGTH + 4];
    frame[AT_HEADER_LENGTH..AT_HEADER_LENGTH + 4]
        .copy_from_slice(&AGENT_HEADER_LENGTH.to_be_bytes());
    let name = &mut frame[AT_MESSAGE_TYPE..AT_MESSAGE_TYPE + MESSAGE_TYPE_LENGTH];
    name.fill(b' ');
    name[..message_type.len().min(MESSAGE_TYPE_LENGTH)]
        .copy_from_slice(&message_type.as_bytes()[..message_type.len().min(MESSAGE_TYPE_LENGTH)]);
    frame[AT_SCHEMA_VERSION..AT_SCHEMA_VERSION + 4].copy_from_slice(&1u32.to_be_bytes());
    frame[AT_CREATED_DATE..AT_CREATED_DATE + 8].copy_from_slice(&created_ms.to_be_bytes());
    frame[AT_SEQUENCE_NUMBER..AT_SEQUENCE_NUMBER + 8].copy_from_slice(&sequence.to_be_bytes());
    frame[AT_FLAGS..AT_FLAGS + 8].copy_from_slice(&flags.to_be_bytes());
    frame[AT_MESSAGE_ID..AT_MESSAGE_ID + 16].copy_from_slice(&write_uuid(message_id));
    frame[AT_PAYLOAD_DIGEST..AT_PAYLOAD_DIGEST + 32].copy_from_slice(&Sha256::digest(payload));
    frame[AT_PAYLOAD_TYPE..AT_PAYLOAD_TYPE + 4].copy_from_slice(&payload_type.to_be_bytes());
    frame[AT_PAYLOAD_LENGTH..AT_PAYLOAD_LENGTH + 4].copy_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    frame.extend_from_slice(payload);
    frame
}

/// model.go's AcknowledgeContent, its fields in the order json.Marshal writes them.
fn acknowledgement_body(message_type: &str, message_id: &str, sequence: i64) -> String {
    format!(
        r#"{{"AcknowledgedMessageType":"{message_type}","AcknowledgedMessageId":"{message_id}","AcknowledgedMessageSequenceNumber":{sequence},"IsSequentialMessage":true}}"#
    )
}

fn now_ms() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// What the agent made of the client's frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromClient {
    /// Stream data, in sequence order, acknowledged.
    Data { payload_type: u32, payload: Vec<u8> },
    /// The client hung up.
    Gone,
}

/// Whether the agent can take the client's stream data now: input that arrives while
/// it cannot (its terminal or its port connection not yet ready) is neither acknowledged
/// nor kept, and the client sends it again (shell_unix.go, port.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady,
}

/// The agent's data channel. Frames go out through a writer task, so that the agent
/// reads the client's frames while its writes wait, as the real agent's goroutines do.
pub struct AgentStream {
    frames: SplitStream<WebSocketStream<TcpStream>>,
    outgoing: tokio::sync::mpsc::UnboundedSender<Message>,
    writer: tokio::task::JoinHandle<()>,
    next_sequence: i64,
    unacknowledged: VecDeque<(Instant, i64, Vec<u8>)>,
    expected: i64,
    /// Client messages that came before their turn, acknowledged and kept.
    ahead: BTreeMap<i64, InFrame>,
    /// Input the agent refused while it was not ready (for the lab's records).
    pub held_back: u64,
    /// The largest payload the client sent.
    pub largest_input: usize,
}

impl std::fmt::Debug for AgentStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentStream")
            .field("next_sequence", &self.next_sequence)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl AgentStream {
    pub fn new(socket: WebSocketStream<TcpStream>) -> Self {
        let (mut sink, frames) = socket.split();
        let (outgoing, mut queue) = tokio::sync::mpsc::unbounded_channel::<Message>();
        let writer = tokio::spawn(async move {
            while let Some(message) = queue.recv().await {
                let closing = matches!(message, Message::Close(_));
                if sink.send(message).await.is_err() || closing {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        Self {
            frames,
            outgoing,
            writer,
            next_sequence: 0,
            unacknowledged: VecDeque::new(),
            expected: 0,
            ahead: BTreeMap::new(),
            held_back: 0,
            largest_input: 0,
        }
    }

    async fn send_bytes(&mut self, frame: Vec<u8>) -> Result<(), String> {
        self.outgoing
            .send(Message::binary(frame))
            .map_err(|_| "the data channel broke".to_owned())
    }

    /// Whether the agent has room for more output before the client acknowledges some.
    pub fn has_room(&self) -> bool {
        self.unacknowledged.len() < OUTGOING_WINDOW
    }

    /// What the service sends before the agent's first message: a publication frame with
    /// no payload (and no digest).
    pub async fn service_starts_publication(&mut self) -> Result<(), String> {
        let mut frame = write_frame(
            START_PUBLICATION,
            now_ms(),
            0,
            FLAG_DATA,
            &fresh_uuid(),
            0,
            &[],
        );
        frame[AT_PAYLOAD_DIGEST..AT_PAYLOAD_DIGEST + 32].fill(0);
        self.send_bytes(frame).await
    }

    /// Sends stream data in messages of at most 1,024 bytes; the first message of the
    /// stream carries the SYN flag.
    pub async fn send_data(&mut self, payload_type: u32, data: &[u8]) -> Result<(), String> {
        let empty: &[u8] = &[];
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![empty]
        } else {
            data.chunks(STREAM_DATA_PAYLOAD_SIZE).collect()
        };
        for chunk in chunks {
            let sequence = self.next_sequence;
            self.next_sequence += 1;
            let flags = if sequence == 0 { FLAG_SYN } else { FLAG_DATA };
            let frame = write_frame(
                OUTPUT_STREAM_DATA,
                now_ms(),
                sequence,
                flags,
                &fresh_uuid(),
                payload_type,
                chunk,
            );
            self.unacknowledged
                .push_back((Instant::now(), sequence, frame.clone()));
            self.send_bytes(frame).await?;
        }
        Ok(())
    }

    /// The agent's session state, as it reports it to the service (`agent_session_state`).
    pub async fn send_session_state(
        &mut self,
        session_id: &str,
        state: &str,
    ) -> Result<(), String> {
        let body = serde_json::json!({
            "SchemaVersion": 1,
            "SessionState": state,
            "SessionId": session_id,
        });
        let frame = write_frame(
            AGENT_SESSION_STATE,
            now_ms(),
            0,
            FLAG_DATA,
            &fresh_uuid(),
            0,
            body.to_string().as_bytes(),
        );
        self.send_bytes(frame).await
    }

    /// The service's `channel_closed` to the client, then the socket's close.
    pub async fn service_closes(&mut self, session_id: &str, output: &str) -> Result<(), String> {
        let message_id = fresh_uuid();
        let body = serde_json::json!({
            "MessageId": message_id,
            "CreatedDate": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            "DestinationId": session_id,
            "SessionId": session_id,
            "MessageType": CHANNEL_CLOSED,
            "SchemaVersion": 1,
            "Output": output,
        });
        let frame = write_frame(
            CHANNEL_CLOSED,
            now_ms(),
            0,
            FLAG_DATA,
            &message_id,
            0,
            body.to_string().as_bytes(),
        );
        self.send_bytes(frame).await?;
        // The client reads it and hangs up; one that does not is cut off after two seconds.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(frame)) = self.frames.next().await {
                if matches!(frame, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
        let _ = self.outgoing.send(Message::Close(None));
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.writer).await;
        Ok(())
    }

    /// Resends the oldest message the client has not acknowledged in time (the agent's
    /// resend looks at the oldest only).
    pub async fn resend_due(&mut self) -> Result<(), String> {
        let now = Instant::now();
        let due = self
            .unacknowledged
            .front_mut()
            .filter(|(sent, _, _)| now.duration_since(*sent) >= RESEND_AFTER)
            .map(|(sent, _, frame)| {
                *sent = now;
                frame.clone()
            });
        if let Some(frame) = due {
            self.send_bytes(frame).await?;
        }
        Ok(())
    }

    async fn acknowledge(&mut self, frame: &InFrame) -> Result<(), String> {
        let body = acknowledgement_body(&frame.message_type, &frame.message_id, frame.sequence);
        let ack = write_frame(
            ACKNOWLEDGE,
            now_ms(),
            0,
            FLAG_ACK,
            &fresh_uuid(),
            0,
            body.as_bytes(),
        );
        self.send_bytes(ack).await
    }

    /// The next frame from the socket (cancel-safe).
    pub async fn next_frame(
        &mut self,
    ) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
        self.frames.next().await
    }

    /// Handles one frame. In-order stream data is taken (and acknowledged) only when the
    /// agent is ready; data ahead of its turn is acknowledged and kept; repeats are
    /// acknowledged again and dropped; acknowledgements retire what the agent sent.
    pub async fn take(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        readiness: Readiness,
    ) -> Result<Vec<FromClient>, String> {
        let bytes = match frame {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(vec![FromClient::Gone]),
            Some(Ok(Message::Binary(bytes))) => bytes,
            Some(Ok(_)) => return Ok(Vec::new()),
        };
        let Some(frame) = read_frame(&bytes) else {
            return Ok(Vec::new());
        };
        match frame.message_type.as_str() {
            ACKNOWLEDGE => {
                let body: serde_json::Value =
                    serde_json::from_slice(&frame.payload).unwrap_or_default();
                if let Some(sequence) = body["AcknowledgedMessageSequenceNumber"].as_i64() {
                    self.unacknowledged.retain(|(_, s, _)| *s != sequence);
                }
                Ok(Vec::new())
            }
            INPUT_STREAM_DATA => {
                self.largest_input = self.largest_input.max(frame.payload.len());
                if frame.sequence < self.expected {
                    self.acknowledge(&frame).await?;
                    return Ok(Vec::new());
                }
                if frame.sequence > self.expected {
                    self.acknowledge(&frame).await?;
                    self.ahead.insert(frame.sequence, frame);
                    return Ok(Vec::new());
                }
                if readiness == Readiness::NotReady {
                    self.held_back += 1;
                    return Ok(Vec::new());
                }
                self.acknowledge(&frame).await?;
                let mut taken = vec![FromClient::Data {
                    payload_type: frame.payload_type,
                    payload: frame.payload,
                }];
                self.expected += 1;
                while let Some(next) = self.ahead.remove(&self.expected) {
                    taken.push(FromClient::Data {
                        payload_type: next.payload_type,
                        payload: next.payload,
                    });
                    self.expected += 1;
                }
                Ok(taken)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Waits, bounded, until the client has acknowledged everything the agent sent.
    pub async fn flush(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !self.unacknowledged.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::select! {
                frame = self.next_frame() => {
                    match self.take(frame, Readiness::NotReady).await {
                        Ok(taken) if taken.contains(&FromClient::Gone) => return,
                        Err(_) => return,
                        Ok(_) => {}
                    }
                }
                () = tokio::time::sleep(RESEND_AFTER) => {
                    if self.resend_due().await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_travel_least_significant_half_first() {
        let id = "dd01e56b-ff48-483e-a508-b5f073f31b16";
        let bytes = write_uuid(id);
        assert_eq!(
            bytes,
            [
                0xa5, 0x08, 0xb5, 0xf0, 0x73, 0xf3, 0x1b, 0x16, 0xdd, 0x01, 0xe5, 0x6b, 0xff, 0x48,
                0x48, 0x3e
            ]
        );
        assert_eq!(read_uuid(&bytes), id);
    }

    #[test]
    fn frames_match_the_upstream_layout_byte_for_byte() {
        use irf_engine::analysis::session::upstream_frames::{
            UPSTREAM_ACK_FRAME, UPSTREAM_OUTPUT_FRAME, unhex,
        };
        let output = write_frame(
            OUTPUT_STREAM_DATA,
            1_700_000_000_000,
            0,
            FLAG_SYN,
            "dd01e56b-ff48-483e-a508-b5f073f31b16",
            payload::OUTPUT,
            b"$ ",
        );
        assert_eq!(output, unhex(UPSTREAM_OUTPUT_FRAME));
        let ack = read_frame(&unhex(UPSTREAM_ACK_FRAME)).expect("upstream ack read");
        assert_eq!(
            (
                ack.message_type.as_str(),
                ack.sequence,
                ack.flags,
                ack.payload_type
            ),
            (ACKNOWLEDGE, 0, FLAG_ACK, 0)
        );
        assert_eq!(ack.message_id, "11111111-2222-4333-8444-555555555555");
        assert_eq!(
            acknowledgement_body(
                OUTPUT_STREAM_DATA,
                "dd01e56b-ff48-483e-a508-b5f073f31b16",
                0
            )
            .as_bytes(),
            ack.payload.as_slice()
        );
    }

    #[test]
    fn frames_read_back_as_written() {
        let frame = write_frame(
            OUTPUT_STREAM_DATA,
            1,
            0,
            FLAG_SYN,
            &fresh_uuid(),
            payload::OUTPUT,
            b"$ ",
        );
        let read = read_frame(&frame).expect("read");
        assert_eq!(read.sequence, 0);
        assert_eq!(read.flags, FLAG_SYN);
        assert_eq!(read.payload, b"$ ");
        assert_eq!(read.message_type, OUTPUT_STREAM_DATA);
    }
}
