//! What waits for an approver: cases at their approval step and direct containment requests
//! under four-eyes, gathered from the case table, oldest first.

use crate::containment::{self, ContainmentError};
use crate::model::case::{CaseId, CaseStatus, ContainmentPolicy};
use crate::model::containment::{ContainmentState, InstanceRef};
use crate::plane::Plane;

/// What a decision would decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaiting {
    /// A case's workflow waits at its approval step.
    Case(CaseId),
    /// A direct containment request, recorded by one operator for another to approve.
    Request,
}

/// One thing waiting for an approver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDecision {
    pub awaiting: Awaiting,
    pub instance: InstanceRef,
    pub requested_by: String,
    pub requested_at: String,
}

impl PendingDecision {
    /// The case id, or the instance id of a direct request: what the decision names.
    pub fn id(&self) -> &str {
        match &self.awaiting {
            Awaiting::Case(case_id) => case_id.as_str(),
            Awaiting::Request => &self.instance.instance_id,
        }
    }

    /// `case` or `request`, as lists show the kind.
    pub fn kind(&self) -> &'static str {
        match self.awaiting {
            Awaiting::Case(_) => "case",
            Awaiting::Request => "request",
        }
    }
}

/// Cases waiting for approval (under the approval policy) and open containment requests.
pub async fn pending(plane: &Plane) -> Result<Vec<PendingDecision>, ContainmentError> {
    let mut waiting: Vec<PendingDecision> = plane
        .table
        .cases()
        .await?
        .into_iter()
        .filter(|case| {
            case.status == CaseStatus::AwaitingApproval
                && case.subject.containment == ContainmentPolicy::Approval
        })
        .map(|case| PendingDecision {
            instance: InstanceRef::from(&case.subject),
            awaiting: Awaiting::Case(case.case_id),
            requested_by: case.requested_by,
            requested_at: case.opened_at,
        })
        .collect();
    waiting.extend(
        containment::records(plane)
            .await?
            .into_iter()
            .filter(|record| record.state == ContainmentState::Requested)
            .map(|record| PendingDecision {
                awaiting: Awaiting::Request,
                instance: record.instance,
                requested_by: record.requested_by,
                requested_at: record.requested_at,
            }),
    );
    waiting.sort_by(|a, b| a.requested_at.cmp(&b.requested_at));
    Ok(waiting)
}
