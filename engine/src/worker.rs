//! The step worker: consumes the step queues (and hands the decisions queue to the desk,
//! [`crate::desk`]), runs each step's handler, keeps the message
//! and the task alive while it works (visibility and Step Functions heartbeats), and
//! answers the task. A worker killed mid-step loses nothing: its message comes back when
//! its lease runs out and another worker starts the step again from a clean state.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Semaphore, watch};

use crate::acquisition::steps::{self, StepMessage};
use crate::acquisition::task::StepError;
use crate::aws::describe_sdk_error;
use crate::plane::Plane;

/// A queue the worker consumes.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub name: String,
    pub url: String,
    /// Steps run at once from this queue.
    pub concurrency: usize,
    /// How long one step may run before its runtime stops it, as Lambda stops a function
    /// at its timeout (`None`: the worker, which has no such limit). A stopped step's
    /// message comes back after its lease; its task stops beating and times out.
    pub time_limit: Option<Duration>,
}

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub queues: Vec<QueueSpec>,
    /// How long a received message stays hidden; renewed at a third of it.
    pub lease: Duration,
}

impl WorkerOptions {
    /// The queues and lease the configuration names.
    pub fn from_config(config: &crate::config::Config) -> Result<Self, crate::plane::PlaneError> {
        let queue = |name: &'static str, concurrency| {
            config
                .workflow
                .step_queues
                .get(name)
                .map(|url| QueueSpec {
                    name: name.to_owned(),
                    url: url.clone(),
                    concurrency,
                    time_limit: None,
                })
                .ok_or(crate::plane::PlaneError::NotConfigured {
                    setting: match name {
                        crate::acquisition::STEPS_QUEUE => "workflow.step_queues.steps",
                        crate::acquisition::IMAGING_QUEUE => "workflow.step_queues.imaging",
                        crate::desk::DECISIONS_QUEUE => "workflow.step_queues.decisions",
                        _ => "workflow.step_queues.approvals",
                    },
                    template: "3-security-acquisition-automation.yaml",
                })
        };
        Ok(Self {
            queues: vec![
                queue(crate::acquisition::STEPS_QUEUE, 8)?,
                queue(crate::acquisition::IMAGING_QUEUE, 2)?,
                queue(crate::acquisition::APPROVALS_QUEUE, 4)?,
                queue(crate::desk::DECISIONS_QUEUE, 2)?,
            ],
            lease: Duration::from_secs(config.workflow.lease_secs.unwrap_or(120).max(6)),
        })
    }
}

/// Waits for SIGINT or SIGTERM, the ways a worker is told to stop.
pub async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match terminate.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}

/// Runs the worker until `stop` turns true.
pub async fn run(plane: Arc<Plane>, options: WorkerOptions, stop: watch::Receiver<bool>) {
    let sqs = aws_sdk_sqs::Client::new(&plane.ctx.base_config(&plane.region));
    let mut consumers = Vec::new();
    for queue in options.queues.clone() {
        consumers.push(tokio::spawn(consume(
            plane.clone(),
            sqs.clone(),
            queue,
            options.lease,
            stop.clone(),
        )));
    }
    for consumer in consumers {
        if let Err(err) = consumer.await {
            tracing::error!(error = %err, "a queue consumer ended abnormally");
        }
    }
}

async fn consume(
    plane: Arc<Plane>,
    sqs: aws_sdk_sqs::Client,
    queue: QueueSpec,
    lease: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(queue.concurrency.max(1)));
    let mut failures = 0u32;
    while !*stop.borrow() {
        let free = slots.available_permits().min(10);
        if free == 0 {
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            continue;
        }
        let received = tokio::select! {
            _ = stop.changed() => break,
            received = sqs
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages(i32::try_from(free).unwrap_or(1))
                // Who sent a decision, as SQS saw it (the desk checks it).
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::SenderId)
                .wait_time_seconds(2)
                .visibility_timeout(i32::try_from(lease.as_secs()).unwrap_or(120))
                .send() => received,
        };
        let out = match received {
            Ok(out) => {
                failures = 0;
                out
            }
            Err(err) => {
                failures += 1;
                let wait = Duration::from_secs(u64::from(failures.min(6)) * 5);
                tracing::warn!(queue = queue.name, error = %describe_sdk_error(&err), retry_in = ?wait, "cannot receive from the step queue");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        for message in out.messages().iter().cloned() {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let plane = plane.clone();
            let sqs = sqs.clone();
            let queue = queue.clone();
            tokio::spawn(async move {
                match queue.time_limit {
                    Some(limit) => {
                        if tokio::time::timeout(limit, handle(&plane, &sqs, &queue, message, lease))
                            .await
                            .is_err()
                        {
                            tracing::error!(
                                queue = queue.name,
                                limit = ?limit,
                                "the step ran past its runtime's time limit and was stopped"
                            );
                        }
                    }
                    None => handle(&plane, &sqs, &queue, message, lease).await,
                }
                drop(permit);
            });
        }
    }
}

/// A task that ends when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What to do with a step message once processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done (or no longer ours): delete it.
    Delete,
    /// Leave it: it comes back after its lease and the step runs again, or, after a few
    /// receives, it moves to the dead-letter queue where an operator can read it.
    Keep,
}

/// The lease of a received message, renewed while its step runs.
#[derive(Debug, Clone)]
pub struct Lease {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub receipt: String,
    pub duration: Duration,
}

/// Runs the step a message body asks for, answers its task, and says what to do with the
/// message. Used by the worker and by the Lambda runtime alike.
pub async fn process(
    plane: &Plane,
    body: &str,
    lease: Option<Lease>,
    heartbeat_every: Duration,
) -> Disposition {
    let parsed = match StepMessage::parse(body) {
        Ok(parsed) => parsed,
        Err(problem) => {
            tracing::error!(
                problem,
                "malformed step message; leaving it for the dead-letter queue"
            );
            return Disposition::Keep;
        }
    };
    let case = parsed
        .case()
        .map(|c| c.case_id.to_string())
        .unwrap_or_default();
    tracing::info!(step = parsed.step.as_str(), case, "step started");

    let (lost_tx, mut lost_rx) = watch::channel(false);
    // Stopped with the step, however the step ends (a runtime's time limit drops it).
    let keeper = AbortOnDrop(tokio::spawn(keep_alive(
        plane.sfn.clone(),
        lease,
        parsed.step.answers().then(|| parsed.token.clone()),
        heartbeat_every,
        lost_tx,
    )));
    let outcome = tokio::select! {
        // Boxed: the handlers' futures are large and would make every caller's as large.
        outcome = Box::pin(crate::request_ids::recording(steps::run(plane, &parsed))) => Some(outcome),
        _ = lost_rx.wait_for(|lost| *lost) => None,
    };
    drop(keeper);
    let Some(outcome) = outcome else {
        tracing::warn!(
            step = parsed.step.as_str(),
            case,
            "the task is no longer ours (timed out or answered elsewhere); abandoned the step"
        );
        return Disposition::Delete;
    };
    if !parsed.step.answers() {
        return match &outcome {
            Ok(_) => Disposition::Delete,
            Err(err) => {
                tracing::error!(step = parsed.step.as_str(), case, error = %err, "step failed; the message will come back");
                Disposition::Keep
            }
        };
    }
    match (
        &outcome,
        answer(plane, &parsed.token, outcome.as_ref()).await,
    ) {
        (_, Err(err))
            if err.contains("TaskTimedOut")
                || err.contains("InvalidToken")
                || err.contains("TaskDoesNotExist") =>
        {
            tracing::warn!(
                step = parsed.step.as_str(),
                case,
                "the task ended before the answer; dropping the message"
            );
            Disposition::Delete
        }
        (_, Err(err)) => {
            tracing::error!(
                step = parsed.step.as_str(),
                case,
                error = err,
                "cannot answer the task; the step will run again"
            );
            Disposition::Keep
        }
        (Ok(_), Ok(())) => {
            tracing::info!(step = parsed.step.as_str(), case, "step succeeded");
            Disposition::Delete
        }
        (Err(err), Ok(())) => {
            tracing::warn!(step = parsed.step.as_str(), case, error = %err, "step failed");
            Disposition::Delete
        }
    }
}

/// Runs one received message to its end.
async fn handle(
    plane: &Plane,
    sqs: &aws_sdk_sqs::Client,
    queue: &QueueSpec,
    message: aws_sdk_sqs::types::Message,
    lease: Duration,
) {
    let Some(receipt) = message.receipt_handle().map(str::to_owned) else {
        return;
    };
    let body = message.body().unwrap_or_default();
    if queue.name == crate::desk::DECISIONS_QUEUE {
        let sender = message
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::SenderId))
            .map(String::as_str);
        if Box::pin(crate::desk::take(plane, body, sender)).await {
            delete(sqs, queue, &receipt).await;
        }
        return;
    }
    let renewal = Lease {
        sqs: sqs.clone(),
        queue_url: queue.url.clone(),
        receipt: receipt.clone(),
        duration: lease,
    };
    if process(plane, body, Some(renewal), lease / 3).await == Disposition::Delete {
        delete(sqs, queue, &receipt).await;
    }
}

async fn delete(sqs: &aws_sdk_sqs::Client, queue: &QueueSpec, receipt: &str) {
    if let Err(err) = sqs
        .delete_message()
        .queue_url(&queue.url)
        .receipt_handle(receipt)
        .send()
        .await
    {
        tracing::warn!(queue = queue.name, error = %describe_sdk_error(&err), "cannot delete a finished step message; it will be received again and dropped");
    }
}

async fn answer(
    plane: &Plane,
    token: &str,
    outcome: Result<&Value, &StepError>,
) -> Result<(), String> {
    match outcome {
        Ok(output) => plane
            .sfn
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .map(drop)
            .map_err(|err| describe_sdk_error(&err)),
        Err(err) => plane
            .sfn
            .send_task_failure()
            .task_token(token)
            .error(err.code.as_str())
            // Step Functions keeps at most 32,768 characters of cause.
            .cause(err.message.chars().take(32_000).collect::<String>())
            .send()
            .await
            .map(drop)
            .map_err(|err| describe_sdk_error(&err)),
    }
}

/// Renews the message's lease (when there is one) and heartbeats the task until aborted;
/// flags `lost` when the task is gone (timed out and retried elsewhere, or the execution
/// stopped).
async fn keep_alive(
    sfn: aws_sdk_sfn::Client,
    lease: Option<Lease>,
    token: Option<String>,
    every: Duration,
    lost: watch::Sender<bool>,
) {
    loop {
        tokio::time::sleep(every).await;
        if let Some(lease) = &lease
            && let Err(err) = lease
                .sqs
                .change_message_visibility()
                .queue_url(&lease.queue_url)
                .receipt_handle(&lease.receipt)
                .visibility_timeout(i32::try_from(lease.duration.as_secs()).unwrap_or(120))
                .send()
                .await
        {
            tracing::warn!(error = %describe_sdk_error(&err), "cannot renew the step message's lease");
        }
        if let Some(token) = &token {
            match sfn.send_task_heartbeat().task_token(token).send().await {
                Ok(_) => {}
                Err(err) => {
                    let gone = err.as_service_error().is_some_and(|e| {
                        e.is_task_timed_out() || e.is_invalid_token() || e.is_task_does_not_exist()
                    });
                    if gone {
                        let _ = lost.send(true);
                        return;
                    }
                    tracing::warn!(error = %describe_sdk_error(&err), "heartbeat failed");
                }
            }
        }
    }
}
