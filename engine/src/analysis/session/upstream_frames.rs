//! Frames of the data channel computed by hand from the upstream definition, for
//! byte-exact tests of both ends (irf's client and the lab's agent, a crate of its own),
//! which share no encoder. Compiled always, as reference data, so both crates' tests read
//! the one copy.

/// Frames computed by hand from the upstream layout (amazon-ssm-agent @1c217c89,
/// agent/session/contracts/agentmessage.go: offsets L80-105, Serialize L182-259,
/// putUuid L559-594; datachannel.go L423-426: flag 1 at sequence 0, L519-539: an
/// acknowledgement has sequence 0, flags 3, payload type 0), not with any encoder of
/// irf's: output "$ " at sequence 0 with the SYN flag, id
/// dd01e56b-ff48-483e-a508-b5f073f31b16, created 1700000000000 ms; and its
/// acknowledgement, id 11111111-2222-4333-8444-555555555555, created 1700000000001.
pub const UPSTREAM_OUTPUT_FRAME: &[&str] = &[
    "000000746f75747075745f73747265616d5f6461746120202020202020202020",
    "20202020000000010000018bcfe5680000000000000000000000000000000001",
    "a508b5f073f31b16dd01e56bff48483ee5b111ba26d5bb1cc89d8a3d74fad4cf",
    "1ebd5701c29877969c322b456d0784a300000001000000022420",
];
/// See [`UPSTREAM_OUTPUT_FRAME`].
pub const UPSTREAM_ACK_FRAME: &[&str] = &[
    "0000007461636b6e6f776c656467652020202020202020202020202020202020",
    "20202020000000010000018bcfe5680100000000000000000000000000000003",
    "84445555555555551111111122224333713a0a17057de630213f7292907ce384",
    "62812ea213a29366f537f68c6ab60e8500000000000000b07b2241636b6e6f77",
    "6c65646765644d65737361676554797065223a226f75747075745f7374726561",
    "6d5f64617461222c2241636b6e6f776c65646765644d6573736167654964223a",
    "2264643031653536622d666634382d343833652d613530382d62356630373366",
    "3331623136222c2241636b6e6f776c65646765644d6573736167655365717565",
    "6e63654e756d626572223a302c22497353657175656e7469616c4d6573736167",
    "65223a747275657d",
];

/// The bytes of a frame written as lines of hex; a pair that is not hex reads as no byte,
/// so a mistyped frame fails the byte-exact comparison it feeds.
pub fn unhex(lines: &[&str]) -> Vec<u8> {
    let text: String = lines.concat();
    (0..text.len())
        .step_by(2)
        .filter_map(|at| text.get(at..at + 2))
        .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
        .collect()
}
