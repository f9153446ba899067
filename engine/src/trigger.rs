//! The tag trigger, in the Security account: a member's `CreateTags` call that sets
//! `SecurityIncidentStatus` (CloudTrail's event, forwarded by the member) becomes an
//! acquisition (`Analyze`) or a containment request (`Contain`, through the same engine code as
//! the CLI), with whoever made the call recorded as requester. A Security Hub action arrives as
//! a "Tag Change on Resource" event. Malformed or foreign events are refused with the reason,
//! never guessed at.

use serde::Deserialize;

use crate::acquisition::{WorkflowError, start};

use crate::config::AccountId;
use crate::containment::{
    self, ContainmentError, ContainmentOptions, ContainmentOutcome, STATUS_TAG,
};
use crate::model::case::{CaseSubject, ContainmentPolicy, Trigger};
use crate::model::containment::{ContainmentRecord, ContainmentState, InstanceRef};
use crate::plane::Plane;
use crate::store::case_table::Opened;

/// What a tag-change event asks for, for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagRequest {
    /// `SecurityIncidentStatus=Analyze`: acquire evidence.
    Analyze(CaseSubject),
    /// `SecurityIncidentStatus=Contain`: contain the instance.
    Contain(InstanceRef),
    /// Any other value, or the tag removed: nothing for the trigger to do.
    Ignore(String),
}

/// An event read: where it came from, and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagEvent {
    pub origin: Origin,
    pub requests: Vec<TagRequest>,
}

/// Where an event came from, and so who asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A member's `CreateTags` call; `caller` is CloudTrail's `userIdentity` ARN.
    CreateTags { caller: String },
    /// A Security Hub custom action, whose event names no one.
    SecurityHubAction,
}

impl TagEvent {
    /// Whoever set the tag, where the event says.
    pub fn set_by(&self) -> Option<&str> {
        match &self.origin {
            Origin::CreateTags { caller } => Some(caller),
            Origin::SecurityHubAction => None,
        }
    }

    /// The case's trigger, as recorded.
    fn trigger(&self) -> Trigger {
        match self.origin {
            Origin::CreateTags { .. } => Trigger::Tag,
            Origin::SecurityHubAction => Trigger::SecurityHubAction,
        }
    }
}

/// The envelope EventBridge puts around every event.
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
    detail: serde_json::Value,
}

/// "Tag Change on Resource" (aws.tag), the shape Security Hub actions are reshaped into.
#[derive(Debug, Deserialize)]
struct TagChange {
    #[serde(rename = "changed-tag-keys", default)]
    changed_tag_keys: Vec<String>,
    service: String,
    #[serde(rename = "resource-type")]
    resource_type: String,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

/// "AWS API Call via CloudTrail" (aws.ec2): the `CreateTags` call a member forwards, with
/// who made it.
#[derive(Debug, Deserialize)]
struct ApiCall {
    #[serde(rename = "eventSource")]
    event_source: String,
    #[serde(rename = "eventName")]
    event_name: String,
    #[serde(rename = "errorCode", default)]
    error_code: Option<String>,
    #[serde(rename = "recipientAccountId", default)]
    recipient_account: Option<String>,
    #[serde(rename = "userIdentity", default)]
    user_identity: UserIdentity,
    #[serde(rename = "requestParameters", default)]
    request: Option<CreateTagsParameters>,
}

#[derive(Debug, Default, Deserialize)]
struct UserIdentity {
    #[serde(default)]
    arn: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CreateTagsParameters {
    #[serde(rename = "resourcesSet")]
    resources: ItemSet<TaggedResource>,
    #[serde(rename = "tagSet")]
    tags: ItemSet<TagItem>,
}

#[derive(Debug, Deserialize)]
struct ItemSet<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

#[derive(Debug, Deserialize)]
struct TaggedResource {
    #[serde(rename = "resourceId")]
    resource_id: String,
}

#[derive(Debug, Deserialize)]
struct TagItem {
    key: String,
    #[serde(default)]
    value: String,
}

/// Reads an EventBridge event, naming what is wrong with it.
pub fn parse_event(body: &str, policy: ContainmentPolicy) -> Result<TagEvent, String> {
    let event: Event = serde_json::from_str(body).map_err(|err| {
        let shown: String = body.chars().take(200).collect();
        format!("not a tag-change event ({err}): {shown:?}")
    })?;
    match (event.source.as_str(), event.detail_type.as_str()) {
        ("aws.ec2", "AWS API Call via CloudTrail") => parse_api_call(event, policy),
        ("aws.tag", "Tag Change on Resource") => {
            parse_tag_change(event, policy).map(|request| TagEvent {
                origin: Origin::SecurityHubAction,
                requests: vec![request],
            })
        }
        _ => Err(format!(
            "unexpected event '{}' from '{}': the trigger handles EC2's CreateTags calls (CloudTrail) and Security Hub actions",
            event.detail_type, event.source
        )),
    }
}

/// What a value of the incident tag on `instance` asks for.
fn request_of(value: Option<&str>, instance: InstanceRef, policy: ContainmentPolicy) -> TagRequest {
    match value {
        Some("Analyze") => TagRequest::Analyze(CaseSubject {
            account: instance.account,
            region: instance.region,
            instance_id: instance.instance_id,
            memory: true,
            disk: true,
            containment: policy,
        }),
        Some("Contain") => TagRequest::Contain(instance),
        Some(other) => {
            TagRequest::Ignore(format!("{STATUS_TAG}={other} asks for nothing irf does"))
        }
        None => TagRequest::Ignore(format!("{STATUS_TAG} was removed")),
    }
}

fn parse_api_call(event: Event, policy: ContainmentPolicy) -> Result<TagEvent, String> {
    let call: ApiCall = serde_json::from_value(event.detail)
        .map_err(|err| format!("not a CloudTrail API call ({err})"))?;
    let caller = call.user_identity.arn.clone().unwrap_or_else(|| {
        format!(
            "an identity of type {} in account {}",
            call.user_identity.kind.as_deref().unwrap_or("unknown"),
            event.account
        )
    });
    let ignore = |why: String| TagEvent {
        origin: Origin::CreateTags {
            caller: caller.clone(),
        },
        requests: vec![TagRequest::Ignore(why)],
    };
    if call.event_source != "ec2.amazonaws.com" || call.event_name != "CreateTags" {
        return Ok(ignore(format!(
            "{} {} is not EC2's CreateTags",
            call.event_source, call.event_name
        )));
    }
    // CloudTrail records refused calls too: nothing was tagged.
    if let Some(code) = call.error_code {
        return Ok(ignore(format!(
            "CreateTags failed ({code}): nothing was tagged"
        )));
    }
    let account = AccountId::parse(&event.account).map_err(|err| err.to_string())?;
    if let Some(recipient) = call.recipient_account.as_deref()
        && recipient != account.as_str()
    {
        return Err(format!(
            "the event from account {account} records a call in account {recipient:?}: a member \
             account may only raise incidents on its own instances"
        ));
    }
    let Some(request) = call.request else {
        return Err("the CreateTags event carries no request parameters".to_owned());
    };
    let Some(value) = request
        .tags
        .items
        .iter()
        .find(|tag| tag.key == STATUS_TAG)
        .map(|tag| tag.value.clone())
    else {
        return Ok(ignore(format!("{STATUS_TAG} was not set")));
    };
    let mut instances = Vec::new();
    for resource in &request.resources.items {
        let id = resource.resource_id.as_str();
        if crate::findings::is_instance_id(id) {
            instances.push(id.to_owned());
        } else if id.starts_with("i-") {
            return Err(format!("the event names a malformed instance id {id:?}"));
        }
    }
    if instances.is_empty() {
        return Ok(ignore("the call tagged no instance".to_owned()));
    }
    Ok(TagEvent {
        origin: Origin::CreateTags { caller },
        requests: instances
            .into_iter()
            .map(|instance_id| {
                let instance = InstanceRef {
                    account: account.clone(),
                    region: event.region.clone(),
                    instance_id,
                };
                request_of(Some(value.as_str()), instance, policy)
            })
            .collect(),
    })
}

fn parse_tag_change(event: Event, policy: ContainmentPolicy) -> Result<TagRequest, String> {
    let detail: TagChange = serde_json::from_value(event.detail)
        .map_err(|err| format!("not a tag-change event ({err})"))?;
    if detail.service != "ec2" || detail.resource_type != "instance" {
        return Ok(TagRequest::Ignore(format!(
            "{} {} is not an EC2 instance",
            detail.service, detail.resource_type
        )));
    }
    if !detail.changed_tag_keys.iter().any(|k| k == STATUS_TAG) {
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
    let instance = InstanceRef {
        account,
        region: event.region,
        instance_id,
    };
    Ok(request_of(
        detail.tags.get(STATUS_TAG).map(String::as_str),
        instance,
        policy,
    ))
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

/// Handles one event: for each instance it names, starts or joins the instance's case, or
/// contains it, when asked to. Whoever set the tag is recorded as the requester.
pub async fn handle_event(plane: &Plane, body: &str) -> Result<Vec<TriggerOutcome>, TriggerError> {
    let workflow = &plane.ctx.config().workflow;
    let policy = match workflow.containment.as_deref() {
        Some(text) => {
            ContainmentPolicy::parse(text).map_err(|err| TriggerError::Invalid(err.to_string()))?
        }
        None => ContainmentPolicy::default(),
    };
    let event = parse_event(body, policy).map_err(TriggerError::Invalid)?;
    // The trigger acts with its own role, and records the tagger as the one who asked: the
    // four-eyes rule keeps them from approving what they asked for.
    let acting = match event.set_by() {
        Some(arn) => plane.acting_for(arn),
        None => plane.clone(),
    };
    let mut outcomes = Vec::with_capacity(event.requests.len());
    for request in event.requests.clone() {
        let outcome = Box::pin(handle_request(&acting, request, &event, policy)).await?;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

async fn handle_request(
    plane: &Plane,
    request: TagRequest,
    event: &TagEvent,
    policy: ContainmentPolicy,
) -> Result<TriggerOutcome, TriggerError> {
    let workflow = &plane.ctx.config().workflow;
    match request {
        TagRequest::Analyze(subject) => Ok(TriggerOutcome::Opened(
            start(plane, subject, event.trigger()).await?,
        )),
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
                let reason = Some(match event.set_by() {
                    Some(who) => format!(
                        "{STATUS_TAG}=Contain tag set in account {} by {who}",
                        instance.account
                    ),
                    None => format!(
                        "{STATUS_TAG}=Contain tag set in account {}",
                        instance.account
                    ),
                });
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

    /// A Security Hub action's event, reshaped as "Tag Change on Resource".
    fn tag_change(tags: &str, resource: &str) -> String {
        format!(
            r#"{{"version":"0","id":"1","detail-type":"Tag Change on Resource","source":"aws.tag","account":"111122223333","time":"2026-11-28T09:00:00Z","region":"eu-west-1","resources":["{resource}"],"detail":{{"changed-tag-keys":["SecurityIncidentStatus"],"service":"ec2","resource-type":"instance","version":3,"tags":{tags}}}}}"#
        )
    }

    const CALLER: &str = "arn:aws:sts::111122223333:assumed-role/Admin/alice";

    /// CloudTrail's record of a `CreateTags` call, as EventBridge delivers it.
    fn create_tags(value: &str, ids: &[&str], extra: &str) -> String {
        let resources: Vec<String> = ids
            .iter()
            .map(|id| format!(r#"{{"resourceId":"{id}"}}"#))
            .collect();
        format!(
            r#"{{"version":"0","id":"2","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","account":"111122223333","time":"2026-11-28T09:00:00Z","region":"eu-west-1","resources":[],"detail":{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole","arn":"{CALLER}","accountId":"111122223333"}},"eventSource":"ec2.amazonaws.com","eventName":"CreateTags","awsRegion":"eu-west-1","requestParameters":{{"resourcesSet":{{"items":[{}]}},"tagSet":{{"items":[{{"key":"SecurityIncidentStatus","value":"{value}"}},{{"key":"Owner","value":"ops"}}]}}}},"recipientAccountId":"111122223333"{extra}}}}}"#,
            resources.join(",")
        )
    }

    fn only(event: Result<TagEvent, String>) -> Result<TagRequest, String> {
        event.map(|mut e| {
            assert_eq!(e.requests.len(), 1, "{e:?}");
            e.requests.remove(0)
        })
    }

    #[test]
    fn a_create_tags_call_names_its_caller_and_every_instance_it_tagged() {
        let event = parse_event(
            &create_tags(
                "Analyze",
                &[
                    "i-0123456789abcdef0",
                    "vol-0123456789abcdef0",
                    "i-0fedcba9876543210",
                ],
                "",
            ),
            ContainmentPolicy::Approval,
        )
        .expect("valid");
        assert_eq!(event.set_by(), Some(CALLER));
        let ids: Vec<&str> = event
            .requests
            .iter()
            .map(|r| match r {
                TagRequest::Analyze(subject) => {
                    assert!(subject.memory && subject.disk);
                    assert_eq!(subject.account.as_str(), "111122223333");
                    assert_eq!(subject.region, "eu-west-1");
                    subject.instance_id.as_str()
                }
                other => panic!("expected an acquisition: {other:?}"),
            })
            .collect();
        assert_eq!(ids, ["i-0123456789abcdef0", "i-0fedcba9876543210"]);
        let contain = only(parse_event(
            &create_tags("Contain", &["i-0123456789abcdef0"], ""),
            ContainmentPolicy::Approval,
        ));
        assert!(
            matches!(contain, Ok(TagRequest::Contain(ref i)) if i.instance_id == "i-0123456789abcdef0"),
            "{contain:?}"
        );
    }

    #[test]
    fn a_refused_call_a_foreign_account_and_a_malformed_id_open_nothing() {
        let refused = only(parse_event(
            &create_tags(
                "Contain",
                &["i-0123456789abcdef0"],
                r#","errorCode":"Client.UnauthorizedOperation""#,
            ),
            ContainmentPolicy::Auto,
        ));
        assert!(
            matches!(refused, Ok(TagRequest::Ignore(ref why)) if why.contains("UnauthorizedOperation")),
            "{refused:?}"
        );
        let elsewhere = create_tags("Contain", &["i-0123456789abcdef0"], "").replace(
            r#""recipientAccountId":"111122223333""#,
            r#""recipientAccountId":"444455556666""#,
        );
        let err = parse_event(&elsewhere, ContainmentPolicy::Auto).expect_err("other account");
        assert!(err.contains("444455556666"), "{err}");
        let hostile = parse_event(
            &create_tags("Analyze", &["i-$(reboot)"], ""),
            ContainmentPolicy::Auto,
        )
        .expect_err("bad id");
        assert!(hostile.contains("i-$(reboot)"), "{hostile}");
        let volumes = only(parse_event(
            &create_tags("Analyze", &["vol-0123456789abcdef0"], ""),
            ContainmentPolicy::Auto,
        ));
        assert!(matches!(volumes, Ok(TagRequest::Ignore(_))), "{volumes:?}");
    }

    #[test]
    fn a_security_hub_action_starts_an_acquisition_of_memory_and_disk() {
        let body = tag_change(
            r#"{"SecurityIncidentStatus":"Analyze","Name":"web"}"#,
            "arn:aws:ec2:eu-west-1:111122223333:instance/i-0123456789abcdef0",
        );
        let event = parse_event(&body, ContainmentPolicy::Approval).expect("valid");
        assert_eq!(
            event.origin,
            Origin::SecurityHubAction,
            "its event names no one"
        );
        assert_eq!(event.trigger(), Trigger::SecurityHubAction);
        let TagRequest::Analyze(subject) = only(Ok(event)).expect("valid") else {
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
        let contained = only(parse_event(
            &tag_change(r#"{"SecurityIncidentStatus":"Contain"}"#, arn),
            ContainmentPolicy::Auto,
        ));
        assert!(
            matches!(contained, Ok(TagRequest::Contain(ref i)) if i.instance_id == "i-0123456789abcdef0" && i.region == "eu-west-1"),
            "{contained:?}"
        );
        let released = only(parse_event(
            &tag_change(r#"{"SecurityIncidentStatus":"Released"}"#, arn),
            ContainmentPolicy::Auto,
        ));
        assert!(matches!(released, Ok(TagRequest::Ignore(why)) if why.contains("Released")));
        let removed = only(parse_event(&tag_change("{}", arn), ContainmentPolicy::Auto));
        assert!(matches!(removed, Ok(TagRequest::Ignore(why)) if why.contains("removed")));
    }

    #[test]
    fn malformed_and_hostile_events_are_refused_by_name() {
        assert!(
            parse_event("{not json", ContainmentPolicy::Auto)
                .expect_err("bad")
                .contains("not a tag-change event")
        );
        let hostile = tag_change(
            r#"{"SecurityIncidentStatus":"Analyze"}"#,
            "arn:aws:ec2:eu-west-1:111122223333:instance/i-$(reboot)",
        );
        assert!(
            parse_event(&hostile, ContainmentPolicy::Auto)
                .expect_err("bad id")
                .contains("no instance ARN")
        );
        let elsewhere = tag_change(
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
