//! `irf-trigger`: the Lambda function, in the Security account, behind the incident bus's
//! tag-change rule (template 3: member accounts forward their `SecurityIncidentStatus` tag
//! changes there, template 5) and the Security Hub custom actions (which reshape a finding
//! into the same event). `Analyze` opens or joins the instance's case; `Contain` opens a
//! containment request (or contains at once, where the deployment's policy is `auto`).
//!
//! An event that cannot be handled is returned as an error: the asynchronous invocation is
//! retried, then sent with its error to the function's on-failure queue, never dropped.

use std::sync::Arc;

use irf_engine::acquisition::Plane;
use irf_engine::cases::Opened;
use irf_engine::trigger::{TriggerOutcome, handle_event};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handle(plane: Arc<Plane>, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let body = event.payload.to_string();
    match handle_event(&plane, &body).await {
        Ok(TriggerOutcome::Opened(opened)) => {
            let joined = matches!(opened, Opened::Joined(_));
            let case_id = opened.case().case_id.to_string();
            tracing::info!(case = %case_id, joined, "case opened");
            Ok(json!({"case_id": case_id, "joined": joined}))
        }
        Ok(TriggerOutcome::Contained(outcome)) => {
            tracing::info!(instance = %outcome.record.instance, changes = outcome.changed.len(), "contained");
            Ok(
                json!({"contained": outcome.record.instance.instance_id, "changes": outcome.changed.len()}),
            )
        }
        Ok(TriggerOutcome::Requested(record)) => {
            tracing::info!(instance = %record.instance, "containment requested (four-eyes)");
            Ok(json!({"requested": record.instance.instance_id}))
        }
        Ok(TriggerOutcome::Ignored(why)) => Ok(json!({"ignored": why})),
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
