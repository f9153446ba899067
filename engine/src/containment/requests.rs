//! Containment records and requests: whether an instance carries the `Contain` tag, its
//! record, every record, and a request under the four-eyes rule or its refusal.

use serde::{Deserialize, Serialize};

use super::current::{Member, read_current};
use super::error::ContainmentError;
use super::options::STATUS_TAG;
use crate::model::case::{CaseId, now_rfc3339};
use crate::model::containment::{ContainmentRecord, ContainmentState, InstanceRef, RecordedAction};
use crate::plane::Plane;

/// Whether `instance` carries `SecurityIncidentStatus=Contain` now.
pub async fn carries_contain_tag(
    plane: &Plane,
    instance: &InstanceRef,
) -> Result<bool, ContainmentError> {
    let member = Member::reader(plane, instance).await?;
    let found = crate::ec2::find_instance(&member.ec2, instance)
        .await?
        .ok_or_else(|| ContainmentError::UnknownInstance(instance.clone()))?;
    Ok(found
        .tags()
        .iter()
        .any(|t| t.key() == Some(STATUS_TAG) && t.value() == Some("Contain")))
}

/// The containment record of `instance`, if irf ever planned or applied one.
pub async fn record(
    plane: &Plane,
    instance: &InstanceRef,
) -> Result<Option<ContainmentRecord>, ContainmentError> {
    Ok(plane.table.containment(instance).await?)
}

/// Every containment record, newest request first.
pub async fn records(plane: &Plane) -> Result<Vec<ContainmentRecord>, ContainmentError> {
    let mut all = plane.table.containments().await?;
    all.sort_by(|a, b| b.requested_at.cmp(&a.requested_at));
    Ok(all)
}

/// The outcome of an apply or a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainmentOutcome {
    pub record: ContainmentRecord,
    /// The changes this run made; empty when the instance already stood that way.
    pub changed: Vec<RecordedAction>,
}

/// Records a containment request under the four-eyes rule; a second operator applies it.
pub async fn request(
    plane: &Plane,
    instance: &InstanceRef,
    reason: Option<String>,
    case_id: Option<&CaseId>,
) -> Result<ContainmentRecord, ContainmentError> {
    let member = Member::reader(plane, instance).await?;
    read_current(&member, instance).await?;
    if let Some(existing) = plane.table.containment(instance).await?
        && matches!(
            existing.state,
            ContainmentState::Requested | ContainmentState::Applying | ContainmentState::Contained
        )
    {
        return Ok(existing);
    }
    let record = ContainmentRecord {
        instance: instance.clone(),
        state: ContainmentState::Requested,
        case_id: case_id.cloned(),
        original: None,
        isolation_group_id: None,
        profile_after: None,
        asg_decremented: false,
        requested_by: plane.operator.clone(),
        requested_at: now_rfc3339(),
        reason,
        actions: Vec::new(),
    };
    plane.table.save_containment(&record).await?;
    Ok(record)
}

/// Refuses a waiting containment request, with the reason recorded.
pub async fn reject_request(
    plane: &Plane,
    instance: &InstanceRef,
    reason: &str,
) -> Result<ContainmentRecord, ContainmentError> {
    let mut record = plane
        .table
        .containment(instance)
        .await?
        .filter(|r| r.state == ContainmentState::Requested)
        .ok_or_else(|| ContainmentError::NoRequest {
            instance: instance.instance_id.clone(),
            state: "none".to_owned(),
        })?;
    record.state = ContainmentState::Rejected;
    record.actions.push(RecordedAction {
        at: now_rfc3339(),
        by: plane.operator.clone(),
        action: "reject request".to_owned(),
        detail: reason.to_owned(),
    });
    plane.table.save_containment(&record).await?;
    Ok(record)
}
