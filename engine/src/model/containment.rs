//! An instance's containment as it is planned and recorded: the instance, what it was before
//! (what a rollback restores), the changes planned, and the record kept in the case table.

use serde::{Deserialize, Serialize};

use super::case::{CaseId, CaseSubject};
use crate::config::AccountId;

/// An instance, where it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstanceRef {
    pub account: AccountId,
    pub region: String,
    pub instance_id: String,
}

impl std::fmt::Display for InstanceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (account {}, {})",
            self.instance_id, self.account, self.region
        )
    }
}

impl From<&CaseSubject> for InstanceRef {
    fn from(subject: &CaseSubject) -> Self {
        Self {
            account: subject.account.clone(),
            region: subject.region.clone(),
            instance_id: subject.instance_id.clone(),
        }
    }
}

/// An interface and the security groups it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceGroups {
    pub interface_id: String,
    pub groups: Vec<String>,
}

/// An instance's registration in a load-balancer target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRegistration {
    pub target_group_arn: String,
    pub port: Option<i32>,
}

/// The instance as it stood before containment: what a rollback restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Original {
    pub interfaces: Vec<InterfaceGroups>,
    /// The instance profile's ARN, `None` when it had none.
    pub profile_arn: Option<String>,
    /// The role of that profile, whose sessions on this instance are revoked.
    pub role_name: Option<String>,
    pub autoscaling_group: Option<String>,
    pub target_registrations: Vec<TargetRegistration>,
    pub termination_protection: bool,
    /// The `SecurityIncidentStatus` value, `None` when the tag was absent.
    pub status_tag: Option<String>,
    /// Public addresses (Elastic IPs stay associated: the isolation group already drops
    /// their traffic, and releasing one could lose it for good).
    pub elastic_ips: Vec<String>,
}

/// One change of a plan: what, on which resource, from what to what, and whether the
/// instance already stands that way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    pub action: String,
    pub resource: String,
    pub before: String,
    pub after: String,
    pub done: bool,
}

/// What containment of an instance will change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainmentPlan {
    pub instance: InstanceRef,
    pub vpc_id: String,
    /// The state a rollback restores (from the record when containment already began).
    pub original: Original,
    pub isolation_group_name: String,
    /// `None` until the group is created by the first apply in this VPC.
    pub isolation_group_id: Option<String>,
    /// Security groups of the VPC's SSM endpoints the isolation group may reach.
    pub ssm_endpoint_groups: Vec<String>,
    /// The VPC's untracking group; `None` until the first apply in this VPC creates it.
    #[serde(default)]
    pub untracking_group_id: Option<String>,
    pub profile_after: String,
    /// The role whose sessions on this instance are revoked: the original role (irf's IR role
    /// included), unless there is none, it is the deny-all isolation role, or the instance
    /// keeps it.
    #[serde(default)]
    pub revoked_role: Option<String>,
    pub changes: Vec<PlannedChange>,
    pub warnings: Vec<String>,
}

impl ContainmentPlan {
    /// True when the instance already stands contained: applying changes nothing.
    pub fn is_done(&self) -> bool {
        self.changes.iter().all(|change| change.done)
    }
}

/// Where a containment record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainmentState {
    /// Asked for under the four-eyes rule; waits for a second approver.
    Requested,
    /// Begun: the originals are recorded, some changes may be made.
    Applying,
    Contained,
    RollingBack,
    RolledBack,
    /// A request refused by an approver.
    Rejected,
}

impl ContainmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Applying => "applying",
            Self::Contained => "contained",
            Self::RollingBack => "rolling_back",
            Self::RolledBack => "rolled_back",
            Self::Rejected => "rejected",
        }
    }

    /// States whose record holds originals a rollback must restore.
    pub fn holds_originals(self) -> bool {
        matches!(self, Self::Applying | Self::Contained | Self::RollingBack)
    }
}

impl ContainmentRecord {
    /// One line for people: where it stands and what was last done.
    pub fn summary(&self) -> String {
        let last = self
            .actions
            .last()
            .map(|a| format!("; last: {} at {} by {}", a.action, a.at, a.by))
            .unwrap_or_default();
        let count = match self.actions.len() {
            1 => "1 change".to_owned(),
            n => format!("{n} changes"),
        };
        format!("{} ({count} recorded{last})", self.state.as_str())
    }
}

/// A change made to the instance, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedAction {
    pub at: String,
    pub by: String,
    pub action: String,
    pub detail: String,
}

/// The record of an instance's containment, kept in the case table: the originals are
/// written before the first change, each change after it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainmentRecord {
    pub instance: InstanceRef,
    pub state: ContainmentState,
    /// The case it belongs to, when it came from one.
    #[serde(default)]
    pub case_id: Option<CaseId>,
    pub original: Option<Original>,
    #[serde(default)]
    pub isolation_group_id: Option<String>,
    #[serde(default)]
    pub profile_after: Option<String>,
    /// Whether detaching lowered the group's desired capacity (so that attaching restores it).
    #[serde(default)]
    pub asg_decremented: bool,
    pub requested_by: String,
    pub requested_at: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub actions: Vec<RecordedAction>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_that_hold_originals() {
        for state in [
            ContainmentState::Applying,
            ContainmentState::Contained,
            ContainmentState::RollingBack,
        ] {
            assert!(state.holds_originals(), "{}", state.as_str());
        }
        for state in [
            ContainmentState::Requested,
            ContainmentState::RolledBack,
            ContainmentState::Rejected,
        ] {
            assert!(!state.holds_originals(), "{}", state.as_str());
        }
    }
}
