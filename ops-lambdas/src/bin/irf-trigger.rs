//! `irf-trigger`: the Lambda function, in the Security account, behind the incident bus's
//! tag rule (template 3: member accounts forward CloudTrail's record of their `CreateTags`
//! calls that set `SecurityIncidentStatus` there, template 5) and the Security Hub custom
//! actions (which reshape a finding into a tag-change event). `Analyze` opens or joins the
//! instance's case; `Contain` opens a containment request (or contains at once, where the
//! deployment's policy is `auto`); whoever set the tag is the requester.
//!
//! An event that cannot be handled is returned as an error: the asynchronous invocation is
//! retried, then sent with its error to the function's on-failure queue, never dropped.

use std::sync::Arc;

use irf_engine::plane::Plane;
use irf_engine::store::case_table::Opened;
use irf_engine::trigger::{TriggerOutcome, handle_event};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// What the function answers for one instance of the event.
fn answer(outcome: TriggerOutcome) -> Value {
    match outcome {
        TriggerOutcome::Opened(opened) => {
            let joined = matches!(opened, Opened::Joined(_));
            let case_id = opened.case().case_id.to_string();
            tracing::info!(case = %case_id, joined, "case opened");
            json!({"case_id": case_id, "joined": joined})
        }
        TriggerOutcome::Contained(outcome) => {
            tracing::info!(instance = %outcome.record.instance, changes = outcome.changed.len(), "contained");
            json!({"contained": outcome.record.instance.instance_id, "changes": outcome.changed.len()})
        }
        TriggerOutcome::Requested(record) => {
            tracing::info!(instance = %record.instance, requested_by = record.requested_by, "containment requested");
            json!({"requested": record.instance.instance_id})
        }
        TriggerOutcome::Ignored(why) => json!({"ignored": why}),
    }
}

async fn handle(plane: Arc<Plane>, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let body = event.payload.to_string();
    match handle_event(&plane, &body).await {
        Ok(outcomes) => Ok(Value::Array(outcomes.into_iter().map(answer).collect())),
        Err(err) => {
            tracing::error!(error = %err, "event not handled");
            Err(Error::from(err.to_string()))
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    irf_ops::init_logging();
    let plane = irf_ops::connect().await.map_err(Error::from)?;
    // Boxed: the containment futures are large, and the runtime's own future holds one.
    Box::pin(lambda_runtime::run(service_fn(move |event| {
        Box::pin(irf_engine::request_ids::recording(handle(
            plane.clone(),
            event,
        )))
    })))
    .await
}
