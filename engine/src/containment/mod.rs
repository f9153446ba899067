//! Containment of an instance: the plan of what will change, its application with what it
//! replaced recorded first, and the exact rollback. One code path serves the workflow's contain
//! step, the member trigger's `Contain` tag, the CLI and the workstation.
//!
//! Containment, in the order it is applied: termination protection; detachment from its Auto
//! Scaling group (so that the group neither replaces nor terminates it); deregistration from
//! its load-balancer target groups; the isolation security group on every interface; the
//! deny-all instance profile; revocation of the old role's sessions issued to this instance;
//! the `SecurityIncidentStatus=Contain` tag. Each change is checked against the instance's
//! current state first, so applying twice changes nothing, and a run stopped halfway is
//! finished by running it again or undone by a rollback.

mod apply;
mod current;
mod error;
mod options;
mod plan;
mod requests;
mod rollback;
mod run;

pub use apply::{all_ipv4_traffic, apply};
pub use error::ContainmentError;
pub use options::{
    ContainmentOptions, DEFAULT_ISOLATION_PROFILE, ISOLATION_GROUP, ISOLATION_SSM_GROUP,
    STATUS_TAG, UNTRACKING_GROUP, check_confirmation,
};
pub use plan::plan;
pub use requests::{
    ContainmentOutcome, carries_contain_tag, record, records, reject_request, request,
};
pub use rollback::rollback;
