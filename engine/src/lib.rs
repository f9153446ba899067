//! irf's engine: every AWS call and all domain logic, behind domain types and event streams.

pub mod aws;
pub mod config;
pub mod findings;
pub mod inventory;
pub mod lab;
pub mod organization;
pub mod paths;
