//! Why the engine could not do what the workstation asked: the engine's own error, kept
//! whole until the screen writes it, so the update can tell one failure from another and
//! nothing is flattened into text on the way.

use std::sync::Arc;

/// An engine error as an event carries it (events are cloned, errors are not: shared).
#[derive(Debug, Clone)]
pub struct Failure(Arc<dyn std::error::Error + Send + Sync>);

impl Failure {
    /// The error itself, when it is a `T`.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

impl Failure {
    /// A failure from an error already boxed (what `anyhow` hands over).
    pub fn boxed(err: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self(Arc::from(err))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Failure {
    fn from(err: E) -> Self {
        Self(Arc::new(err))
    }
}

/// What the workstation itself refuses or could not finish around an engine call.
#[derive(Debug, thiserror::Error)]
pub enum WorkstationError {
    #[error(
        "four-eyes: {requested_by} asked for the containment of {instance}; another person approves it"
    )]
    StillRequested {
        requested_by: String,
        instance: String,
    },
    #[error("{instance_id}: terminate is carried out by the analysis side")]
    NotAContainmentDecision { instance_id: String },
    #[error("{path}: {source}")]
    ReportNotWritten {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the finding was resolved, but not recorded in its case: {0}")]
    FindingNotRecorded(#[source] irf_engine::findings::CustodyError),
}
