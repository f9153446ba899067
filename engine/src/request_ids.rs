//! The AWS request ids of the calls a piece of work makes, for its ledger entries. Every
//! SDK client irf builds sends through one HTTP client that notes each response's request
//! id in the current task's record (when the task keeps one, see [`recording`]); each
//! ledger entry takes the ids noted since the entry before it.

use std::cell::RefCell;
use std::future::Future;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

tokio::task_local! {
    static RECORDED: RefCell<Vec<String>>;
}

/// The most ids one record keeps: an entry names the calls of one action, not of a sweep.
const LIMIT: usize = 200;

/// Runs `work` keeping a record of the request ids of its AWS calls. The work is boxed:
/// what is recorded is whole commands and steps, whose futures are large.
pub async fn recording<F: Future>(work: F) -> F::Output {
    RECORDED
        .scope(RefCell::new(Vec::new()), Box::pin(work))
        .await
}

/// The ids noted since the last take (none outside [`recording`]).
pub fn take() -> Vec<String> {
    RECORDED
        .try_with(|ids| std::mem::take(&mut *ids.borrow_mut()))
        .unwrap_or_default()
}

/// Puts ids taken with [`take`] back, for the next entry (one that names other calls was
/// written in between).
pub fn restore(ids: Vec<String>) {
    for id in ids {
        note(&id);
    }
}

fn note(id: &str) {
    let _ = RECORDED.try_with(|ids| {
        let mut ids = ids.borrow_mut();
        if ids.len() < LIMIT {
            ids.push(id.to_owned());
        }
    });
}

/// The HTTP client every SDK client of irf uses: `inner`, noting request ids.
pub fn client(inner: SharedHttpClient) -> SharedHttpClient {
    SharedHttpClient::new(NotingClient(inner))
}

#[derive(Debug)]
struct NotingClient(SharedHttpClient);

impl HttpClient for NotingClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(NotingConnector(self.0.http_connector(settings, components)))
    }
}

#[derive(Debug)]
struct NotingConnector(SharedHttpConnector);

impl HttpConnector for NotingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let response = self.0.call(request);
        HttpConnectorFuture::new(async move {
            let response = response.await?;
            // The SDK reads the same headers for its outputs' request ids.
            let headers = response.headers();
            if let Some(id) = headers
                .get("x-amzn-requestid")
                .or_else(|| headers.get("x-amz-request-id"))
            {
                note(id);
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_are_kept_per_task_and_taken_once() {
        let ids = recording(async {
            note("a");
            note("b");
            let first = take();
            note("c");
            (first, take(), take())
        })
        .await;
        assert_eq!(
            ids,
            (vec!["a".into(), "b".into()], vec!["c".into()], vec![])
        );
        // Outside a record nothing is kept, and nothing fails.
        note("lost");
        assert!(take().is_empty());
    }
}
