//! The lab's workflow resources, as templates 1, 3, 4 and 5 deploy them in AWS: the case
//! table, step queues with dead-letter queues, notification topic and acquisition state
//! machine in the Security account; the Object Lock evidence bucket in Forensics; the
//! memory tooling bucket. Their roles and policies are the templates' own (`templates`).

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use serde::{Deserialize, Serialize};

use crate::common::{LAB_REGION, LabError};
use irf_engine::acquisition::{APPROVALS_QUEUE, IMAGING_QUEUE, STEPS_QUEUE};
use irf_engine::aws::{AwsContext, describe_sdk_error};
use irf_engine::config::AccountId;

/// The state machine's role, as template 3 names it.
pub const STATE_MACHINE_ROLE: &str = "irf-acquisition-states";

/// The acquisition state machine, exactly as template 3 deploys it.
pub const ACQUISITION_ASL: &str = irf_templates::ACQUISITION_ASL;

/// The workflow resources of a seeded lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabPlane {
    pub state_machine_arn: String,
    pub case_table: String,
    pub topic_arn: String,
    pub step_queues: BTreeMap<String, String>,
    pub evidence_bucket: String,
    pub tooling_bucket: String,
    /// The evidence key template 1 creates (the bucket's default encryption).
    #[serde(default)]
    pub evidence_kms_key_arn: Option<String>,
    /// The key template 3 creates to sign ledger entries.
    #[serde(default)]
    pub ledger_key_arn: Option<String>,
    /// Template 3's step function's time limit, which the lab runtime applies to the
    /// steps queue it consumes in the function's place.
    #[serde(default)]
    pub step_function_timeout_secs: Option<u64>,
}

fn failed(step: &'static str) -> impl Fn(String) -> LabError {
    move |message| LabError::Seed { step, message }
}

/// Puts the state machine definition's queue placeholders in place, as CloudFormation's
/// `DefinitionSubstitutions` does.
pub fn substitute(definition: &str, queues: &BTreeMap<String, String>) -> String {
    let mut out = definition.to_owned();
    for (placeholder, name) in [
        ("${StepsQueueUrl}", STEPS_QUEUE),
        ("${ImagingQueueUrl}", IMAGING_QUEUE),
        ("${ApprovalsQueueUrl}", APPROVALS_QUEUE),
    ] {
        if let Some(url) = queues.get(name) {
            out = out.replace(placeholder, url);
        }
    }
    out
}

/// Creates the workflow resources. `security` acts in the Security account.
pub async fn create(
    security: &AwsContext,
    security_id: &AccountId,
    forensics: &AccountId,
    memcap_launcher: Option<&Path>,
) -> Result<LabPlane, LabError> {
    let home = security.base_config(LAB_REGION);

    let dynamodb = aws_sdk_dynamodb::Client::new(&home);
    let case_table = "irf-cases".to_owned();
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    dynamodb
        .create_table()
        .table_name(&case_table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            key("pk", KeyType::Hash).map_err(|e| failed("dynamodb:CreateTable")(e.to_string()))?,
        )
        .key_schema(
            key("sk", KeyType::Range).map_err(|e| failed("dynamodb:CreateTable")(e.to_string()))?,
        )
        .attribute_definitions(
            attribute("pk").map_err(|e| failed("dynamodb:CreateTable")(e.to_string()))?,
        )
        .attribute_definitions(
            attribute("sk").map_err(|e| failed("dynamodb:CreateTable")(e.to_string()))?,
        )
        .send()
        .await
        .map_err(|err| failed("dynamodb:CreateTable")(describe_sdk_error(&err)))?;

    let sqs = aws_sdk_sqs::Client::new(&home);
    let mut step_queues = BTreeMap::new();
    for name in [
        STEPS_QUEUE,
        IMAGING_QUEUE,
        APPROVALS_QUEUE,
        irf_engine::desk::DECISIONS_QUEUE,
    ] {
        let dlq = sqs
            .create_queue()
            .queue_name(format!("irf-{name}-dlq"))
            .send()
            .await
            .map_err(|err| failed("sqs:CreateQueue")(describe_sdk_error(&err)))?;
        let dlq_arn = format!("arn:aws:sqs:{LAB_REGION}:{security_id}:irf-{name}-dlq");
        let _ = dlq;
        let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"});
        let queue = sqs
            .create_queue()
            .queue_name(format!("irf-{name}"))
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
                redrive.to_string(),
            )
            .send()
            .await
            .map_err(|err| failed("sqs:CreateQueue")(describe_sdk_error(&err)))?;
        step_queues.insert(
            name.to_owned(),
            queue.queue_url().unwrap_or_default().to_owned(),
        );
    }

    let sns = aws_sdk_sns::Client::new(&home);
    let topic_arn = sns
        .create_topic()
        .name("irf-notifications")
        .send()
        .await
        .map_err(|err| failed("sns:CreateTopic")(describe_sdk_error(&err)))?
        .topic_arn()
        .unwrap_or_default()
        .to_owned();

    // Template 3's role for the state machine, deployed with the templates' other roles.
    let role_arn = format!("arn:aws:iam::{security_id}:role/{STATE_MACHINE_ROLE}");
    let sfn = aws_sdk_sfn::Client::new(&home);
    let state_machine_arn = sfn
        .create_state_machine()
        .name("irf-acquisition")
        .definition(substitute(ACQUISITION_ASL, &step_queues))
        .role_arn(role_arn)
        .send()
        .await
        .map_err(|err| failed("states:CreateStateMachine")(describe_sdk_error(&err)))?
        .state_machine_arn()
        .to_owned();

    // The evidence bucket belongs to the Forensics account.
    let forensics_config = security
        .account_config(forensics, LAB_REGION)
        .await
        .map_err(|err| failed("reach the Forensics account")(err.to_string()))?;
    let evidence_bucket = format!("irf-evidence-{forensics}");
    let s3 = aws_sdk_s3::Client::new(&forensics_config);
    s3.create_bucket()
        .bucket(&evidence_bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .map_err(|err| failed("s3:CreateBucket (evidence)")(describe_sdk_error(&err)))?;
    s3.put_object_lock_configuration()
        .bucket(&evidence_bucket)
        .object_lock_configuration(
            aws_sdk_s3::types::ObjectLockConfiguration::builder()
                .object_lock_enabled(aws_sdk_s3::types::ObjectLockEnabled::Enabled)
                .rule(
                    aws_sdk_s3::types::ObjectLockRule::builder()
                        .default_retention(
                            aws_sdk_s3::types::DefaultRetention::builder()
                                .mode(aws_sdk_s3::types::ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(|err| failed("s3:PutObjectLockConfiguration")(describe_sdk_error(&err)))?;

    let tooling_bucket = format!("irf-tooling-{security_id}");
    let tooling = aws_sdk_s3::Client::new(&home);
    tooling
        .create_bucket()
        .bucket(&tooling_bucket)
        .send()
        .await
        .map_err(|err| failed("s3:CreateBucket (tooling)")(describe_sdk_error(&err)))?;
    if let Some(launcher) = memcap_launcher {
        publish_memcap(&tooling, &tooling_bucket, launcher).await?;
    }

    Ok(LabPlane {
        state_machine_arn,
        case_table,
        topic_arn,
        step_queues,
        evidence_bucket,
        tooling_bucket,
        evidence_kms_key_arn: None,
        ledger_key_arn: None,
        step_function_timeout_secs: None,
    })
}

/// Publishes the capture tool the lab's hosts run: a launcher of this very `irf` binary,
/// with its SHA-256 in the object's metadata as template 4's publishing step records it.
async fn publish_memcap(s3: &aws_sdk_s3::Client, bucket: &str, irf: &Path) -> Result<(), LabError> {
    let quoted = irf_engine::shell_quote(&irf.display().to_string());
    let launcher = format!("#!/bin/sh\nexec {quoted} \"$@\"\n");
    let sha256 = irf_engine::hex(&<sha2::Sha256 as sha2::Digest>::digest(launcher.as_bytes()));
    s3.put_object()
        .bucket(bucket)
        .key(irf_engine::acquisition::memory::tool_key(
            std::env::consts::ARCH,
        ))
        .metadata("sha256", sha256)
        .body(aws_sdk_s3::primitives::ByteStream::from(
            launcher.into_bytes(),
        ))
        .send()
        .await
        .map_err(|err| failed("s3:PutObject (memory capture tool)")(describe_sdk_error(&err)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_json_and_every_placeholder_is_filled() {
        let queues: BTreeMap<String, String> = [STEPS_QUEUE, IMAGING_QUEUE, APPROVALS_QUEUE]
            .iter()
            .map(|q| ((*q).to_owned(), format!("http://q/{q}")))
            .collect();
        let filled = substitute(ACQUISITION_ASL, &queues);
        assert!(!filled.contains("${"), "a placeholder is left: {filled}");
        let asl: serde_json::Value = serde_json::from_str(&filled).expect("valid JSON");
        assert_eq!(asl["StartAt"], "Opened");
        let states = asl["States"].as_object().expect("states");
        for name in [
            "Prepare",
            "Acquire",
            "Verify",
            "AwaitApproval",
            "Contain",
            "Closed",
            "Failed",
        ] {
            assert!(states.contains_key(name), "missing {name}");
        }
        // Each acquisition branch catches its own failure.
        for branch in asl["States"]["Acquire"]["Branches"]
            .as_array()
            .expect("branches")
        {
            let task = branch["States"]
                .as_object()
                .expect("states")
                .values()
                .find(|s| s["Type"] == "Task")
                .expect("task");
            assert_eq!(task["Catch"][0]["ErrorEquals"][0], "States.ALL");
        }
    }

    /// Every `Retry` of the state machine names exactly the step codes the engine says are
    /// retried: a renamed code would otherwise end a step AWS could have tried again.
    #[test]
    fn the_state_machine_retries_exactly_the_codes_the_engine_marks_retried() {
        use irf_engine::acquisition::task::StepCode;
        fn retries(value: &serde_json::Value, found: &mut Vec<Vec<String>>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(rules) = map.get("Retry").and_then(|r| r.as_array()) {
                        for rule in rules {
                            let mut codes: Vec<String> = rule["ErrorEquals"]
                                .as_array()
                                .expect("ErrorEquals")
                                .iter()
                                .filter_map(|c| c.as_str())
                                .filter(|c| c.starts_with("irf."))
                                .map(str::to_owned)
                                .collect();
                            codes.sort();
                            // Step Functions' own errors (States.Timeout) have rules of their own.
                            if !codes.is_empty() {
                                found.push(codes);
                            }
                        }
                    }
                    map.values().for_each(|v| retries(v, found));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| retries(v, found)),
                _ => {}
            }
        }
        let queues: BTreeMap<String, String> = [STEPS_QUEUE, IMAGING_QUEUE, APPROVALS_QUEUE]
            .iter()
            .map(|q| ((*q).to_owned(), format!("http://q/{q}")))
            .collect();
        let asl: serde_json::Value =
            serde_json::from_str(&substitute(ACQUISITION_ASL, &queues)).expect("valid JSON");
        let mut found = Vec::new();
        retries(&asl, &mut found);
        let mut retried: Vec<String> = StepCode::ALL
            .iter()
            .filter(|code| code.is_retried())
            .map(|code| code.as_str().to_owned())
            .collect();
        retried.sort();
        assert!(found.len() >= 5, "a Retry per task: {found:?}");
        for codes in &found {
            assert_eq!(codes, &retried, "a Retry of the state machine");
        }
    }
}
