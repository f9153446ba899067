//! The lab: a local AWS emulator seeded with a demo Organization, and its lifecycle
//! (install, start, seed, state file, environment exports, reset, stop).
//!
//! Everything lab-specific lives here. The rest of the engine only ever sees an endpoint
//! and credentials, exactly as it would for AWS.

pub mod agent;
pub mod analysis;
pub mod common;
pub mod control;
pub mod disks;
pub mod emulator;
pub mod hosts;
pub mod install;
pub mod lifecycle;
pub mod plane;
pub mod runtime;
pub mod seed;
pub mod state;
pub mod templates;

/// The lab's shared names, error and credentials, at the crate's root as its users name them.
pub use common::*;
pub use emulator::Authorization;
pub use lifecycle::{Lab, LabOptions, down, operator_user, reset};
pub use state::LabState;
