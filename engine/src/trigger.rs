//! The member trigger: an EventBridge "Tag Change on Resource" event for an instance whose
//! `SecurityIncidentStatus` tag changed becomes an acquisition (`Analyze`) in the Security
//! account. Malformed or foreign events are refused with the reason, never guessed at.

use serde::Deserialize;

use crate::acquisition::{Plane, WorkflowError, start};
use crate::cases::{CaseSubject, ContainmentPolicy, Opened};
use crate::config::AccountId;
use crate::containment::STATUS_TAG;

/// What a tag-change event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagRequest {
    /// `SecurityIncidentStatus=Analyze`: acquire evidence.
    Analyze(CaseSubject),
    /// Any other value, or the tag removed: nothing for the trigger to do.
    Ignore(String),
}

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    account: String,
    region: String,
    #[serde(default)]
    resources: Vec<String>,
    detail: Detail,
}

#[derive(Debug, Deserialize)]
struct Detail {
    #[serde(rename = "changed-tag-keys", default)]
    changed_tag_keys: Vec<String>,
    service: String,
    #[serde(rename = "resource-type")]
    resource_type: String,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

/// Reads an EventBridge event, naming what is wrong with it.
pub fn parse_event(body: &str, policy: ContainmentPolicy) -> Result<TagRequest, String> {
    let event: Event = serde_json::from_str(body).map_err(|err| {
        let shown: String = body.chars().take(200).collect();
        format!("not a tag-change event ({err}): {shown:?}")
    })?;
    if event.source != "aws.tag" || event.detail_type != "Tag Change on Resource" {
        return Err(format!(
            "unexpected event '{}' from '{}': the trigger only handles 'Tag Change on Resource' from aws.tag",
            event.detail_type, event.source
        ));
    }
    if event.detail.service != "ec2" || event.detail.resource_type != "instance" {
        return Ok(TagRequest::Ignore(format!(
            "{} {} is not an EC2 instance",
            event.detail.service, event.detail.resource_type
        )));
    }
    if !event
        .detail
        .changed_tag_keys
        .iter()
        .any(|k| k == STATUS_TAG)
    {
        return Ok(TagRequest::Ignore(format!("{STATUS_TAG} did not change")));
    }
    let account = AccountId::parse(&event.account).map_err(|err| err.to_string())?;
    let instance_id = event
        .resources
        .iter()
        .find_map(|arn| arn.rsplit_once(":instance/").map(|(_, id)| id.to_owned()))
        .filter(|id| {
            id.starts_with("i-") && id.len() <= 32 && id[2..].bytes().all(|b| b.is_ascii_hexdigit())
        })
        .ok_or_else(|| format!("the event names no instance ARN: {:?}", event.resources))?;
    match event.detail.tags.get(STATUS_TAG).map(String::as_str) {
        Some("Analyze") => Ok(TagRequest::Analyze(CaseSubject {
            account,
            region: event.region,
            instance_id,
            memory: true,
            disk: true,
            containment: policy,
        })),
        Some(other) => Ok(TagRequest::Ignore(format!(
            "{STATUS_TAG}={other} does not start an acquisition"
        ))),
        None => Ok(TagRequest::Ignore(format!("{STATUS_TAG} was removed"))),
    }
}

/// Handles one event: starts or joins the instance's case when asked to.
pub async fn handle_event(plane: &Plane, body: &str) -> Result<Option<Opened>, TriggerError> {
    let policy = match plane.ctx.config().workflow.containment.as_deref() {
        Some(text) => {
            ContainmentPolicy::parse(text).map_err(|err| TriggerError::Invalid(err.to_string()))?
        }
        None => ContainmentPolicy::default(),
    };
    match parse_event(body, policy).map_err(TriggerError::Invalid)? {
        TagRequest::Analyze(subject) => Ok(Some(start(plane, subject, "tag").await?)),
        TagRequest::Ignore(why) => {
            tracing::info!(why, "tag change ignored");
            Ok(None)
        }
    }
}

/// Why an event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("refused event: {0}")]
    Invalid(String),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tags: &str, resource: &str) -> String {
        format!(
            r#"{{"version":"0","id":"1","detail-type":"Tag Change on Resource","source":"aws.tag","account":"111122223333","time":"2026-11-28T09:00:00Z","region":"eu-west-1","resources":["{resource}"],"detail":{{"changed-tag-keys":["SecurityIncidentStatus"],"service":"ec2","resource-type":"instance","version":3,"tags":{tags}}}}}"#
        )
    }

    #[test]
    fn analyze_starts_an_acquisition_of_memory_and_disk() {
        let body = event(
            r#"{"SecurityIncidentStatus":"Analyze","Name":"web"}"#,
            "arn:aws:ec2:eu-west-1:111122223333:instance/i-0123456789abcdef0",
        );
        let TagRequest::Analyze(subject) =
            parse_event(&body, ContainmentPolicy::Approval).expect("valid")
        else {
            panic!("expected an acquisition");
        };
        assert_eq!(subject.instance_id, "i-0123456789abcdef0");
        assert_eq!(subject.account.as_str(), "111122223333");
        assert_eq!(subject.region, "eu-west-1");
        assert!(subject.memory && subject.disk);
    }

    #[test]
    fn other_values_and_removal_are_ignored_with_a_reason() {
        let arn = "arn:aws:ec2:eu-west-1:111122223333:instance/i-0123456789abcdef0";
        let contained = parse_event(
            &event(r#"{"SecurityIncidentStatus":"Contain"}"#, arn),
            ContainmentPolicy::Auto,
        );
        assert!(matches!(contained, Ok(TagRequest::Ignore(why)) if why.contains("Contain")));
        let removed = parse_event(&event("{}", arn), ContainmentPolicy::Auto);
        assert!(matches!(removed, Ok(TagRequest::Ignore(why)) if why.contains("removed")));
    }

    #[test]
    fn malformed_and_hostile_events_are_refused_by_name() {
        assert!(
            parse_event("{not json", ContainmentPolicy::Auto)
                .expect_err("bad")
                .contains("not a tag-change event")
        );
        let hostile = event(
            r#"{"SecurityIncidentStatus":"Analyze"}"#,
            "arn:aws:ec2:eu-west-1:111122223333:instance/i-$(reboot)",
        );
        assert!(
            parse_event(&hostile, ContainmentPolicy::Auto)
                .expect_err("bad id")
                .contains("no instance ARN")
        );
        let foreign = r#"{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"111122223333","region":"r","detail":{"service":"ec2","resource-type":"instance"}}"#;
        assert!(
            parse_event(foreign, ContainmentPolicy::Auto)
                .expect_err("foreign")
                .contains("unexpected event")
        );
    }
}
