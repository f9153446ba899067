//! `irf-step`: the Lambda function behind the `steps` and `approvals` queues (SQS event
//! source mapping with ReportBatchItemFailures). Each record is one callback task; a record
//! whose task could not be answered is reported failed so that SQS delivers it again.

use std::sync::Arc;
use std::time::Duration;

use irf_engine::acquisition::Plane;
use irf_engine::worker::{Disposition, process};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
struct SqsEvent {
    #[serde(rename = "Records", default)]
    records: Vec<SqsRecord>,
}

#[derive(Debug, Deserialize)]
struct SqsRecord {
    #[serde(rename = "messageId")]
    message_id: String,
    #[serde(default)]
    body: String,
}

#[derive(Debug, Serialize)]
struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    failures: Vec<ItemFailure>,
}

#[derive(Debug, Serialize)]
struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    item_identifier: String,
}

async fn handle(plane: Arc<Plane>, event: LambdaEvent<SqsEvent>) -> Result<BatchResponse, Error> {
    let mut failures = Vec::new();
    for record in event.payload.records {
        // Heartbeats well inside the state machine's HeartbeatSeconds.
        if process(&plane, &record.body, None, Duration::from_secs(30)).await == Disposition::Keep {
            failures.push(ItemFailure {
                item_identifier: record.message_id,
            });
        }
    }
    Ok(BatchResponse { failures })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    irf_ops::init_logging();
    let plane = irf_ops::connect().await.map_err(Error::from)?;
    // Boxed: the step futures are large, and the runtime's own future holds one.
    Box::pin(lambda_runtime::run(service_fn(move |event| {
        Box::pin(irf_engine::request_ids::recording(handle(
            plane.clone(),
            event,
        )))
    })))
    .await
}
