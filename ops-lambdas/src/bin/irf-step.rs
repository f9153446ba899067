//! `irf-step`: the Lambda function behind the `steps`, `approvals` and `decisions` queues
//! (SQS event source mappings with ReportBatchItemFailures). A step record is one callback
//! task; a decision record goes to the desk with the sender SQS saw. A record that could not
//! be answered is reported failed so that SQS delivers it again.

use std::sync::Arc;
use std::time::Duration;

use irf_engine::plane::Plane;
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
    #[serde(rename = "eventSourceARN", default)]
    event_source_arn: String,
    #[serde(default)]
    attributes: SqsAttributes,
}

#[derive(Debug, Default, Deserialize)]
struct SqsAttributes {
    #[serde(rename = "SenderId")]
    sender_id: Option<String>,
}

/// Whether a record came from the queue at `queue_url` (its ARN ends in the queue's name).
fn from_queue(record: &SqsRecord, queue_url: Option<&str>) -> bool {
    let name = queue_url.and_then(|url| url.rsplit('/').next());
    name.is_some_and(|name| record.event_source_arn.rsplit(':').next() == Some(name))
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
    let decisions = irf_engine::desk::queue_url(plane.ctx.config());
    for record in event.payload.records {
        if from_queue(&record, decisions) {
            let sender = record.attributes.sender_id.as_deref();
            if !irf_engine::desk::take(&plane, &record.body, sender).await {
                failures.push(ItemFailure {
                    item_identifier: record.message_id,
                });
            }
            continue;
        }
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
