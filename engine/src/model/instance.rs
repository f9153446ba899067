//! An EC2 instance's lifecycle state, as EC2 names it: one type for the inventory's
//! instances and the analysis hosts, compared as a value rather than as text.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state EC2 reports for an instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
    /// A state this version does not know (EC2 added one, or the answer had none), kept
    /// as it was named so that it is shown rather than mistaken for another.
    Other(String),
}

impl InstanceState {
    /// The state from EC2's name for it (`running`, `shutting-down`, ...).
    pub fn parse(name: &str) -> Self {
        match name {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            "shutting-down" => Self::ShuttingDown,
            "terminated" => Self::Terminated,
            other => Self::Other(other.to_owned()),
        }
    }

    /// EC2's name for the state.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Other(name) => name,
        }
    }

    /// Stopped or on its way out: nothing runs on it.
    pub fn is_down(&self) -> bool {
        matches!(
            self,
            Self::Stopping | Self::Stopped | Self::ShuttingDown | Self::Terminated
        )
    }
}

impl From<String> for InstanceState {
    fn from(name: String) -> Self {
        Self::parse(&name)
    }
}

impl From<InstanceState> for String {
    fn from(state: InstanceState) -> Self {
        state.as_str().to_owned()
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ec2_name_reads_back_as_itself_and_an_unknown_one_is_kept() {
        for name in [
            "pending",
            "running",
            "stopping",
            "stopped",
            "shutting-down",
            "terminated",
            "hibernating",
        ] {
            assert_eq!(InstanceState::parse(name).as_str(), name);
        }
        assert_eq!(
            InstanceState::parse("hibernating"),
            InstanceState::Other("hibernating".into())
        );
        let json = serde_json::to_string(&InstanceState::ShuttingDown).expect("serializes");
        assert_eq!(json, "\"shutting-down\"");
        let back: InstanceState = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, InstanceState::ShuttingDown);
    }
}
