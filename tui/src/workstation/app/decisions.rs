//! The update for what an approver decides: containment of a case or a request, its plan
//! shown in full, a rollback, and the approvals list.

use irf_engine::approvals::Awaiting;
use irf_engine::model::case::CaseId;

use irf_engine::model::containment::{ContainmentPlan, InstanceRef};

use super::*;

impl App {
    /// What `A` approves or `X` refuses here: the selected row of the approvals view, or
    /// the case of the case view: the case (`None` for a direct request) and its instance.
    pub(super) fn decision_target(&self) -> Result<(Option<CaseId>, InstanceRef), String> {
        match self.view {
            View::Approvals => {
                let row = self
                    .approvals
                    .table
                    .selected()
                    .ok_or("nothing waits for an approver")?;
                let pending = &row.pending;
                let case_id = match &pending.awaiting {
                    Awaiting::Case(case_id) => Some(case_id.clone()),
                    Awaiting::Request => None,
                };
                Ok((case_id, pending.instance.clone()))
            }
            View::Case => {
                let screen = self.case.as_ref().ok_or("no case is open")?;
                Ok((
                    Some(screen.case.case_id.clone()),
                    InstanceRef::from(&screen.case.subject),
                ))
            }
            _ => Err("nothing to decide on this screen".into()),
        }
    }

    /// Approving first plans the containment (the dialog shows the plan); refusing asks for
    /// a reason at once.
    pub(super) fn prompt_decision(&mut self, approve: bool) -> Vec<Effect> {
        let (case_id, instance) = match self.decision_target() {
            Ok(target) => target,
            Err(err) => {
                self.status = Some(Status::Error(err));
                return vec![];
            }
        };
        if approve {
            self.status = Some(Status::Info(format!(
                "planning the containment of {}…",
                instance.instance_id
            )));
            let decision = match case_id {
                Some(case) => TypedDecision::ApproveCase(case),
                None => TypedDecision::ApplyRequest(instance.clone()),
            };
            return vec![Effect::PlanContainment { decision, instance }];
        }
        let what = match &case_id {
            Some(case) => format!("case {case}"),
            None => "a direct containment request".to_owned(),
        };
        self.mode = Mode::Typed(TypedPrompt {
            scroll: 0,
            title: "Refuse containment".to_owned(),
            lines: vec![
                format!(
                    "Refuse containment of {} in account {}, region {} ({what}).",
                    instance.instance_id, instance.account, instance.region
                ),
                "Type the reason (recorded with the decision), enter to refuse, esc to cancel."
                    .into(),
            ],
            expected: None,
            input: String::new(),
            decision: match case_id {
                Some(case) => TypedDecision::RejectCase(case),
                None => TypedDecision::RejectRequest(instance),
            },
        });
        vec![]
    }

    /// Shows the plan and asks for the instance id to approve it.
    pub(super) fn prompt_approval(&mut self, decision: TypedDecision, plan: &ContainmentPlan) {
        let instance = &plan.instance;
        let what = match &decision {
            TypedDecision::ApproveCase(case) => format!("case {case}"),
            _ => "a direct containment request".to_owned(),
        };
        let mut lines = vec![format!(
            "Contain {} in account {}, region {} ({what}), VPC {}:",
            instance.instance_id, instance.account, instance.region, plan.vpc_id
        )];
        for change in &plan.changes {
            lines.push(format!(
                "  {} {} {}: {} -> {}",
                if change.done { "[done]" } else { "[ ]   " },
                change.action,
                change.resource,
                change.before,
                change.after
            ));
        }
        for warning in &plan.warnings {
            lines.push(format!("  ! {warning}"));
        }
        lines.push(
            "What it replaces is recorded first; rollback (U in the case view) restores it.".into(),
        );
        lines.push("Type the instance id to approve, enter to go ahead, esc to cancel.".into());
        self.mode = Mode::Typed(TypedPrompt {
            scroll: 0,
            title: "Approve containment".to_owned(),
            lines,
            expected: Some(instance.instance_id.clone()),
            input: String::new(),
            decision,
        });
    }

    /// Asks for the instance id before rolling back the open case's containment.
    pub(super) fn prompt_rollback(&mut self) {
        let Some(screen) = &self.case else {
            return;
        };
        let instance = InstanceRef::from(&screen.case.subject);
        self.mode = Mode::Typed(TypedPrompt {
            scroll: 0,
            title: "Roll back containment".into(),
            lines: vec![
                format!(
                    "Restore {} in account {}, region {} exactly as containment found it:",
                    instance.instance_id, instance.account, instance.region
                ),
                "  its security groups, instance profile, tag, load-balancer registrations,".into(),
                "  Auto Scaling group and termination protection, as recorded before containment."
                    .into(),
                "Type the instance id to roll back, enter to go ahead, esc to cancel.".into(),
            ],
            expected: Some(instance.instance_id.clone()),
            input: String::new(),
            decision: TypedDecision::Rollback(instance),
        });
    }

    pub(super) fn load_approvals(&mut self) -> Vec<Effect> {
        if !self.approvals.begin_load() {
            return vec![];
        }
        vec![Effect::LoadApprovals]
    }
}
