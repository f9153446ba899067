//! The member trigger: an EventBridge "Tag Change on Resource" event for an instance whose
//! `SecurityIncidentStatus` tag changed becomes an acquisition (`Analyze`) in the Security
//! account, or its containment (`Contain`, through the same engine code as the CLI). Malformed
//! or foreign events are refused with the reason, never guessed at.

use serde::Deserialize;

use crate::acquisition::{Plane, WorkflowError, start};
use crate::cases::{CaseSubject, ContainmentPolicy, Opened};
use crate::config::AccountId;
use crate::containment::{
    self, ContainmentError, ContainmentOptions, ContainmentOutcome, ContainmentRecord,
    ContainmentState, InstanceRef, STATUS_TAG,
};

/// What a tag-change event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagRequest {
    /// `SecurityIncidentStatus=Analyze`: acquire evidence.
    Analyze(CaseSubject),
    /// `SecurityIncidentStatus=Contain`: contain the instance.
    Contain(InstanceRef),
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
    /// Resource ARNs; a Security Hub action passes its finding's `Resources` objects instead
    /// (`{"Type": "AwsEc2Instance", "Id": "<arn>"}`), in any order.
    #[serde(default)]
    resources: Vec<serde_json::Value>,
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
    let (owner, instance_id) = event
        .resources
        .iter()
        .filter_map(resource_arn)
        .find_map(instance_of_arn)
        .ok_or_else(|| format!("the event names no instance ARN: {:?}", event.resources))?;
    // EventBridge sets `account` to the account the event came from; an event about another
    // account's instance is not that account's to raise.
    if owner != account.as_str() {
        return Err(format!(
            "the event from account {account} names an instance of account {owner:?}: a member \
             account may only raise incidents on its own instances"
        ));
    }
    match event.detail.tags.get(STATUS_TAG).map(String::as_str) {
        Some("Analyze") => Ok(TagRequest::Analyze(CaseSubject {
            account,
            region: event.region,
            instance_id,
            memory: true,
            disk: true,
            containment: policy,
        })),
        Some("Contain") => Ok(TagRequest::Contain(InstanceRef {
            account,
            region: event.region,
            instance_id,
        })),
        Some(other) => Ok(TagRequest::Ignore(format!(
            "{STATUS_TAG}={other} asks for nothing irf does"
        ))),
        None => Ok(TagRequest::Ignore(format!("{STATUS_TAG} was removed"))),
    }
}

/// (account, instance id) of an EC2 instance ARN, `arn:<partition>:ec2:<region>:<account>:instance/<id>`.
fn instance_of_arn(arn: &str) -> Option<(String, String)> {
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _, "ec2", _, owner, resource] = fields.as_slice() else {
        return None;
    };
    let id = resource.strip_prefix("instance/")?;
    crate::findings::is_instance_id(id).then(|| ((*owner).to_owned(), id.to_owned()))
}

/// The ARN of one entry of an event's `resources`: a string, or a Security Hub resource
/// object of type `AwsEc2Instance`.
fn resource_arn(resource: &serde_json::Value) -> Option<&str> {
    match resource {
        serde_json::Value::String(arn) => Some(arn),
        serde_json::Value::Object(fields) => fields
            .get("Type")
            .filter(|kind| kind.as_str() == Some("AwsEc2Instance"))
            .and_then(|_| fields.get("Id"))
            .and_then(serde_json::Value::as_str),
        _ => None,
    }
}

/// What the trigger did with an event.
#[derive(Debug)]
pub enum TriggerOutcome {
    /// An acquisition case was opened or joined.
    Opened(Opened),
    /// The instance was contained (or already was: nothing changed then).
    Contained(ContainmentOutcome),
    /// Under the four-eyes rule, a containment request waits for an approver.
    Requested(ContainmentRecord),
    Ignored(String),
}

/// Handles one event: starts or joins the instance's case, or contains it, when asked to.
pub async fn handle_event(plane: &Plane, body: &str) -> Result<TriggerOutcome, TriggerError> {
    let workflow = &plane.ctx.config().workflow;
    let policy = match workflow.containment.as_deref() {
        Some(text) => {
            ContainmentPolicy::parse(text).map_err(|err| TriggerError::Invalid(err.to_string()))?
        }
        None => ContainmentPolicy::default(),
    };
    match parse_event(body, policy).map_err(TriggerError::Invalid)? {
        TagRequest::Analyze(subject) => {
            Ok(TriggerOutcome::Opened(start(plane, subject, "tag").await?))
        }
        TagRequest::Contain(instance) => {
            // irf's own containment sets this tag too, and an event can arrive late: an
            // instance whose containment irf is running, finished or undoing is left alone.
            if let Some(record) = containment::record(plane, &instance).await?
                && matches!(
                    record.state,
                    ContainmentState::Applying
                        | ContainmentState::Contained
                        | ContainmentState::RollingBack
                )
            {
                let why = format!(
                    "containment of {instance} is already {}",
                    record.state.as_str()
                );
                tracing::info!(why, "Contain tag ignored");
                return Ok(TriggerOutcome::Ignored(why));
            }
            if !containment::carries_contain_tag(plane, &instance).await? {
                let why =
                    format!("{instance} no longer carries {STATUS_TAG}=Contain: a stale event");
                tracing::info!(why, "Contain tag ignored");
                return Ok(TriggerOutcome::Ignored(why));
            }
            // Anything that may tag an instance can set this tag: it opens a request that an
            // operator approves, unless the deployment chose to contain on sight.
            if workflow.four_eyes || policy != ContainmentPolicy::Auto {
                let reason = Some(format!(
                    "{STATUS_TAG}=Contain tag set in account {}",
                    instance.account
                ));
                return Ok(TriggerOutcome::Requested(
                    containment::request(plane, &instance, reason, None).await?,
                ));
            }
            let options = ContainmentOptions::from_config(plane.ctx.config());
            Ok(TriggerOutcome::Contained(
                containment::apply(plane, &instance, &options, None, false).await?,
            ))
        }
        TagRequest::Ignore(why) => {
            tracing::info!(why, "tag change ignored");
            Ok(TriggerOutcome::Ignored(why))
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
    #[error(transparent)]
    Containment(#[from] ContainmentError),
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
    fn contain_is_containment_and_other_values_or_removal_are_ignored() {
        let arn = "arn:aws:ec2:eu-west-1:111122223333:instance/i-0123456789abcdef0";
        let contained = parse_event(
            &event(r#"{"SecurityIncidentStatus":"Contain"}"#, arn),
            ContainmentPolicy::Auto,
        );
        assert!(
            matches!(contained, Ok(TagRequest::Contain(ref i)) if i.instance_id == "i-0123456789abcdef0" && i.region == "eu-west-1"),
            "{contained:?}"
        );
        let released = parse_event(
            &event(r#"{"SecurityIncidentStatus":"Released"}"#, arn),
            ContainmentPolicy::Auto,
        );
        assert!(matches!(released, Ok(TagRequest::Ignore(why)) if why.contains("Released")));
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
        let elsewhere = event(
            r#"{"SecurityIncidentStatus":"Contain"}"#,
            "arn:aws:ec2:eu-west-1:444455556666:instance/i-0123456789abcdef0",
        );
        let refused = parse_event(&elsewhere, ContainmentPolicy::Auto).expect_err("other account");
        assert!(
            refused.contains("111122223333") && refused.contains("444455556666"),
            "{refused}"
        );
        let foreign = r#"{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"111122223333","region":"r","detail":{"service":"ec2","resource-type":"instance"}}"#;
        assert!(
            parse_event(foreign, ContainmentPolicy::Auto)
                .expect_err("foreign")
                .contains("unexpected event")
        );
    }
}
