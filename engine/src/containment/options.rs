//! What containment is told and what it names: the groups, tag and profile irf creates or
//! sets, the options the configuration gives, and the typed confirmation.

use super::error::ContainmentError;

/// The name of the isolation group irf creates in each VPC it contains an instance in.
pub const ISOLATION_GROUP: &str = "irf-isolation";
/// The group every interface passes through on its way to isolation: all traffic in and out,
/// which makes EC2 stop tracking the interface's connections (a tracked connection outlives a
/// change of groups; an untracked one is cut as soon as the groups no longer allow it).
pub const UNTRACKING_GROUP: &str = "irf-untrack";
/// The tag that marks irf's untracking groups: the only groups the containment role may open.
pub(super) const UNTRACKING_TAG: (&str, &str) = ("irf:purpose", "untrack-connections");
/// The isolation group that still lets the instance reach its VPC's SSM endpoints.
pub const ISOLATION_SSM_GROUP: &str = "irf-isolation-ssm";
/// The tag that marks and triggers incident handling on an instance.
pub const STATUS_TAG: &str = "SecurityIncidentStatus";
/// The deny-all instance profile template 5 creates in every member.
pub const DEFAULT_ISOLATION_PROFILE: &str = "IRIsolationProfile";
/// Inline policy put on the old role: its sessions issued to this instance are refused.
pub(super) const REVOKE_POLICY_PREFIX: &str = "irf-revoke-";
/// The interface endpoints the SSM agent needs.
pub(super) const SSM_SERVICES: [&str; 3] = ["ssm", "ssmmessages", "ec2messages"];

/// What containment uses, from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainmentOptions {
    /// The deny-all instance profile (name) in member accounts.
    pub isolation_profile: String,
    /// Keep SSM reachable: egress to the VPC's SSM endpoints only, and the SSM-only profile
    /// instead of deny-all, so that memory can still be captured after isolation.
    pub keep_ssm: bool,
    /// The SSM-only profile used with `keep_ssm`.
    pub ir_instance_profile: String,
}

impl ContainmentOptions {
    pub fn from_config(config: &crate::config::Config) -> Self {
        let workflow = &config.workflow;
        Self {
            isolation_profile: workflow
                .isolation_profile
                .clone()
                .unwrap_or_else(|| DEFAULT_ISOLATION_PROFILE.to_owned()),
            keep_ssm: workflow.isolation_keeps_ssm,
            ir_instance_profile: workflow
                .ir_instance_profile
                .clone()
                .unwrap_or_else(|| "IRInstanceProfile".to_owned()),
        }
    }
}

/// Refuses unless `typed` is exactly the instance id.
pub fn check_confirmation(instance_id: &str, typed: &str) -> Result<(), ContainmentError> {
    if typed == instance_id {
        Ok(())
    } else {
        Err(ContainmentError::Confirmation {
            typed: typed.escape_debug().to_string(),
            expected: instance_id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_instance_id_confirms() {
        assert!(check_confirmation("i-0123456789abcdef0", "i-0123456789abcdef0").is_ok());
        let err =
            check_confirmation("i-0123456789abcdef0", "i-0123456789abcdef").expect_err("short");
        let text = err.to_string();
        assert!(text.contains("'i-0123456789abcdef'") && text.contains("i-0123456789abcdef0"));
        let hostile = check_confirmation("i-1", "\u{1b}[2Jyes").expect_err("hostile");
        assert!(!hostile.to_string().contains('\u{1b}'), "{hostile}");
    }
}
