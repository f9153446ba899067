//! The data channel's messages as the client reads and writes them: the binary frame
//! (header, digest, payload), its message and payload types, port flags, acknowledgements
//! and the handshake's JSON. Reading is as lenient as the official plugin's: the payload
//! starts where the header length says, and an empty payload (the service's publication
//! frames) carries no digest to check.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The client version irf announces. Below 1.1.70, agents forward ports without
/// multiplexing (one TCP connection at a time), which is what irf speaks.
pub const CLIENT_VERSION: &str = "1.1.61.0";

/// The header length irf writes; frames from the service may declare a longer one.
const HEADER_LENGTH: u32 = 116;
/// Where the payload-length field sits, whatever the header length.
const PAYLOAD_LENGTH_OFFSET: usize = 116;
/// Bytes of stream data per message, as the plugin and the agent send them.
pub const STREAM_PAYLOAD_SIZE: usize = 1024;

/// Message types of the data channel.
pub mod kind {
    pub const INPUT: &str = "input_stream_data";
    pub const OUTPUT: &str = "output_stream_data";
    pub const ACK: &str = "acknowledge";
    pub const CHANNEL_CLOSED: &str = "channel_closed";
    pub const START_PUBLICATION: &str = "start_publication";
    pub const PAUSE_PUBLICATION: &str = "pause_publication";
    pub const AGENT_SESSION_STATE: &str = "agent_session_state";
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

/// The frame flag of acknowledgements.
const ACK_FLAGS: u64 = 3;

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
    #[error("frame of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("header length {0}, shorter than the {HEADER_LENGTH} bytes of the known fields")]
    HeaderLength(u32),
    #[error("payload length {declared} but {present} bytes follow the header")]
    PayloadLength { declared: usize, present: usize },
    #[error("payload digest does not match its payload")]
    Digest,
}

fn now_ms() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// A new random message id: a version-4 UUID, as the plugin makes them.
pub fn new_message_id() -> [u8; 16] {
    let mut id: [u8; 16] = rand::random();
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
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
        let mut out = Vec::with_capacity(HEADER_LENGTH as usize + 4 + self.payload.len());
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

    /// Reads a frame. The payload starts four bytes after the declared header length; a
    /// non-empty payload must have its declared length and digest, an empty one (and the
    /// service's publication frames) is taken as it comes, as the plugin takes them.
    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        if bytes.len() < PAYLOAD_LENGTH_OFFSET + 4 {
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
        if header < HEADER_LENGTH {
            return Err(FrameError::HeaderLength(header));
        }
        let payload_at = header as usize + 4;
        if bytes.len() < payload_at {
            return Err(FrameError::Short(bytes.len()));
        }
        let message_type = String::from_utf8_lossy(&bytes[4..36])
            .trim_end_matches([' ', '\0'])
            .to_owned();
        let payload = bytes[payload_at..].to_vec();
        let declared = u32_at(PAYLOAD_LENGTH_OFFSET) as usize;
        let publication = matches!(
            message_type.as_str(),
            kind::START_PUBLICATION | kind::PAUSE_PUBLICATION
        );
        if declared != 0 && !publication {
            if declared != payload.len() {
                return Err(FrameError::PayloadLength {
                    declared,
                    present: payload.len(),
                });
            }
            if Sha256::digest(&payload).as_slice() != &bytes[80..112] {
                return Err(FrameError::Digest);
            }
        }
        let mut message_id = [0u8; 16];
        message_id[8..16].copy_from_slice(&bytes[64..72]);
        message_id[0..8].copy_from_slice(&bytes[72..80]);
        Ok(Self {
            message_type,
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
        let body = AcknowledgeContent {
            acknowledged_message_type: &self.message_type,
            acknowledged_message_id: message_id_text(&self.message_id),
            acknowledged_message_sequence_number: self.sequence,
            is_sequential_message: true,
        };
        let mut ack = Self::new(
            kind::ACK,
            0,
            PayloadType::None,
            serde_json::to_vec(&body).unwrap_or_default(),
        );
        ack.flags = ACK_FLAGS;
        ack
    }

    /// The sequence number an acknowledgement names.
    pub fn acknowledged_sequence(&self) -> Option<i64> {
        serde_json::from_slice::<serde_json::Value>(&self.payload)
            .ok()?
            .get("AcknowledgedMessageSequenceNumber")?
            .as_i64()
    }
}

/// An acknowledgement's payload, its fields in the order the agent and the plugin write
/// them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AcknowledgeContent<'a> {
    acknowledged_message_type: &'a str,
    acknowledged_message_id: String,
    acknowledged_message_sequence_number: i64,
    is_sequential_message: bool,
}

/// The text frame that opens a data channel (its Debug leaves the token out).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpenDataChannel {
    pub message_schema_version: String,
    pub request_id: String,
    pub token_value: String,
    pub client_id: String,
    pub client_version: String,
}

impl std::fmt::Debug for OpenDataChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenDataChannel")
            .field("request_id", &self.request_id)
            .field("token_value", &"redacted")
            .field("client_id", &self.client_id)
            .field("client_version", &self.client_version)
            .finish_non_exhaustive()
    }
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

    fn uuid_bytes(text: &str) -> [u8; 16] {
        let digits: String = text.chars().filter(char::is_ascii_hexdigit).collect();
        let mut id = [0u8; 16];
        for (at, slot) in id.iter_mut().enumerate() {
            *slot = u8::from_str_radix(&digits[at * 2..at * 2 + 2], 16).expect("hex");
        }
        id
    }

    #[test]
    fn frames_match_the_upstream_layout_byte_for_byte() {
        use super::super::upstream_frames::{UPSTREAM_ACK_FRAME, UPSTREAM_OUTPUT_FRAME, unhex};
        let output = unhex(UPSTREAM_OUTPUT_FRAME);
        let read = AgentMessage::decode(&output).expect("upstream frame read");
        assert_eq!(read.message_type, kind::OUTPUT);
        assert_eq!(
            (
                read.schema_version,
                read.created_ms,
                read.sequence,
                read.flags
            ),
            (1, 1_700_000_000_000, 0, 1)
        );
        assert_eq!(
            message_id_text(&read.message_id),
            "dd01e56b-ff48-483e-a508-b5f073f31b16"
        );
        assert_eq!(read.payload_type(), Some(PayloadType::Output));
        assert_eq!(read.payload, b"$ ");
        assert_eq!(read.encode(), output, "irf writes the same bytes");

        let mut ack = read.acknowledgement();
        ack.message_id = uuid_bytes("11111111-2222-4333-8444-555555555555");
        ack.created_ms = 1_700_000_000_001;
        assert_eq!(ack.encode(), unhex(UPSTREAM_ACK_FRAME));
        assert_eq!(ack.acknowledged_sequence(), Some(0));
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
    fn publication_frames_and_empty_payloads_carry_no_digest_to_check() {
        // As the service may send them: no payload, the digest left zero.
        let mut pause =
            AgentMessage::new(kind::PAUSE_PUBLICATION, 0, PayloadType::None, Vec::new()).encode();
        pause[80..112].fill(0);
        let read = AgentMessage::decode(&pause).expect("publication frame read");
        assert_eq!(read.message_type, kind::PAUSE_PUBLICATION);
        assert!(read.payload.is_empty());
        // A publication frame whose declared length disagrees is still taken.
        let mut start = AgentMessage::new(
            kind::START_PUBLICATION,
            0,
            PayloadType::None,
            b"{}".to_vec(),
        )
        .encode();
        start[116..120].copy_from_slice(&9u32.to_be_bytes());
        assert!(AgentMessage::decode(&start).is_ok());
    }

    #[test]
    fn a_longer_header_moves_the_payload() {
        // A frame with four more header bytes than irf writes: the payload starts four
        // bytes after the header length, as the plugin reads it.
        let message = AgentMessage::new(kind::OUTPUT, 3, PayloadType::Output, b"hi".to_vec());
        let short = message.encode();
        let mut long = short[..120].to_vec();
        long[0..4].copy_from_slice(&120u32.to_be_bytes());
        long.extend_from_slice(&[0, 0, 0, 0]);
        long.extend_from_slice(&short[120..]);
        let read = AgentMessage::decode(&long).expect("longer header read");
        assert_eq!(read.payload, b"hi");
        assert_eq!(read.sequence, 3);
    }

    #[test]
    fn message_ids_are_version_4_uuids() {
        for _ in 0..32 {
            let text = message_id_text(&new_message_id());
            assert_eq!(&text[14..15], "4", "{text}");
            assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"), "{text}");
        }
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
}
