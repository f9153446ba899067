//! The command line that does what a dialog is about to do, shown in the dialog, so that a
//! responder can script what they just did by hand.

use irf_engine::shell_quote;

use super::*;

impl Effect {
    /// The `irf` command that does what this effect does; `None` where the effect changes
    /// nothing.
    pub fn as_command(&self) -> Option<String> {
        Some(match self {
            Self::StartAcquisition { subject } => {
                let mut command = format!(
                    "irf --region {} acquire --instance {} --account {} --containment {}",
                    subject.region,
                    subject.instance_id,
                    subject.account,
                    subject.containment.as_str()
                );
                if !subject.memory {
                    command.push_str(" --no-memory");
                }
                if !subject.disk {
                    command.push_str(" --no-disk");
                }
                command
            }
            Self::SetLegalHold { case_id, key, on } => format!(
                "irf legal-hold {case_id} {}{} --confirm {case_id}",
                shell_quote(key),
                if *on { "" } else { " --off" }
            ),
            Self::StartImageBuild => "irf images build".to_owned(),
            Self::ResolveFinding { finding, .. } => {
                format!("irf resolve {}", shell_quote(&finding.id))
            }
            Self::LaunchHost { case_id } => format!("irf hosts launch --case {case_id}"),
            _ => return None,
        })
    }
}

impl TypedDecision {
    /// The `irf` command that takes this decision, with `expected` (the instance id typed to
    /// confirm) in its place; a refusal's reason is left for the script to give.
    pub fn as_command(&self, expected: Option<&str>) -> String {
        let confirm = expected.unwrap_or("INSTANCE_ID");
        match self {
            Self::ApproveCase(case_id) => format!("irf approve {case_id} --confirm {confirm}"),
            Self::RejectCase(case_id) => format!("irf reject {case_id} --reason 'WHY'"),
            Self::ApplyRequest(instance) => format!(
                "irf --region {} contain apply {} --account {} --confirm {}",
                instance.region, instance.instance_id, instance.account, instance.instance_id
            ),
            Self::RejectRequest(instance) => format!(
                "irf --region {} reject {} --reason 'WHY'",
                instance.region, instance.instance_id
            ),
            Self::Rollback(instance) => format!(
                "irf --region {} contain rollback {} --account {} --confirm {}",
                instance.region, instance.instance_id, instance.account, instance.instance_id
            ),
            Self::TerminateHost(instance_id) => {
                format!("irf hosts terminate {instance_id} --confirm {instance_id}")
            }
        }
    }
}
