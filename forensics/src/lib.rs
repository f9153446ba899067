//! irf's forensic tools, which know nothing of the workflow or of AWS: the disk imaging
//! pipeline behind a block source and a part sink, the QCOW2 image it writes and the reader
//! that checks one, and the memory capture tool that runs on a suspect host.

pub mod imaging;
pub mod memcap;
pub mod memory_source;
pub mod qcow2;

/// Lowercase hex of bytes: digests in manifests, ids derived from hashes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}
