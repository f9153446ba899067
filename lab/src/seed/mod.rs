//! The lab's demo Organization: planned deterministically from a seed number, then created
//! in the emulator through the same SDK calls irf uses against AWS.

mod apply;
mod config;
mod findings;
mod network;
mod plan;
mod seeded;
#[cfg(test)]
mod tests;

pub use apply::apply;
pub use config::lab_config;
pub use plan::{
    PlannedAccount, PlannedFinding, PlannedInstance, SeedOptions, SeedPlan, WorkloadRole,
};
pub use seeded::{LabAccount, LabInstance, SeededLab};
