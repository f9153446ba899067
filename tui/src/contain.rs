//! The containment commands: `irf contain plan|apply|rollback` and `irf approvals`, on the
//! engine's containment code (the same the workflow and the member trigger run).

use std::process::ExitCode;
use std::sync::Arc;

use irf_engine::aws::AwsContext;
use irf_engine::containment::{self, ContainmentOptions, ContainmentOutcome};
use irf_engine::desk::{self, client::Containing};
use irf_engine::model::case::{CaseStatus, ContainmentPolicy};
use irf_engine::model::containment::{ContainmentPlan, ContainmentState, InstanceRef};
use irf_engine::plane::Plane;
use serde::Serialize;

use crate::cli::{ContainCommand, ContainTarget, GlobalArgs};
use crate::text::escape_untrusted;

/// Refuses a mutating command in read-only mode, naming it.
pub(crate) fn refuse_read_only(global: &GlobalArgs, command: &str) -> anyhow::Result<()> {
    if global.read_only {
        anyhow::bail!(
            "--read-only: '{command}' changes AWS resources; run it without --read-only to do so"
        );
    }
    Ok(())
}

async fn target(
    context: &Arc<AwsContext>,
    global: &GlobalArgs,
    target: &ContainTarget,
) -> anyhow::Result<InstanceRef> {
    let (account, region) = crate::acquire::place_instance(
        context,
        &target.instance,
        target.account.as_deref(),
        global.region.as_deref(),
    )
    .await?;
    Ok(InstanceRef {
        account,
        region,
        instance_id: target.instance.clone(),
    })
}

/// `irf contain ...`.
pub async fn contain(
    context: Arc<AwsContext>,
    global: &GlobalArgs,
    command: &ContainCommand,
) -> anyhow::Result<ExitCode> {
    let options = ContainmentOptions::from_config(context.config());
    match command {
        ContainCommand::Plan { target: at, json } => {
            let instance = target(&context, global, at).await?;
            let plane = Plane::connect(context).await?;
            let plan = containment::plan(&plane, &instance, &options).await?;
            if *json {
                out!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print_plan(&plan)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        ContainCommand::Apply {
            target: at,
            confirm,
            reason,
            json,
        } => {
            // Checked before anything is read or changed.
            containment::check_confirmation(&at.instance, confirm)?;
            refuse_read_only(global, "irf contain apply")?;
            let instance = target(&context, global, at).await?;
            let plane = Plane::connect(context).await?;
            match desk::client::contain(&plane, &instance, reason.clone()).await? {
                Containing::Requested(record) => {
                    if *json {
                        out!("{}", serde_json::to_string_pretty(&record)?);
                    }
                    eprintln!(
                        "irf: four-eyes: containment of {instance} is requested by {}; another person approves it with 'irf contain apply {} --confirm {}'",
                        record.requested_by, instance.instance_id, instance.instance_id
                    );
                }
                Containing::Contained(outcome) => report(&outcome, *json, "contained")?,
            }
            Ok(ExitCode::SUCCESS)
        }
        ContainCommand::Rollback {
            target: at,
            confirm,
            json,
        } => {
            containment::check_confirmation(&at.instance, confirm)?;
            refuse_read_only(global, "irf contain rollback")?;
            let instance = target(&context, global, at).await?;
            let plane = Plane::connect(context).await?;
            let outcome = desk::client::roll_back(&plane, &instance).await?;
            report(&outcome, *json, "rolled back")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn report(outcome: &ContainmentOutcome, json: bool, word: &str) -> anyhow::Result<()> {
    if json {
        out!("{}", serde_json::to_string_pretty(outcome)?);
        return Ok(());
    }
    if outcome.changed.is_empty() {
        eprintln!(
            "irf: {} is already {word}: nothing changed",
            outcome.record.instance
        );
    } else {
        eprintln!("irf: {word} {}:", outcome.record.instance);
        for action in &outcome.changed {
            out!(
                "  {:<44} {}",
                action.action,
                escape_untrusted(&action.detail)
            );
        }
    }
    Ok(())
}

fn print_plan(plan: &ContainmentPlan) -> anyhow::Result<()> {
    out!(
        "containment plan for {} (VPC {}){}",
        plan.instance,
        plan.vpc_id,
        if plan.is_done() {
            ": already contained, applying changes nothing"
        } else {
            ""
        }
    );
    for change in &plan.changes {
        out!(
            "  [{}] {:<44} {:<24} {} -> {}",
            if change.done { "x" } else { " " },
            change.action,
            escape_untrusted(&change.resource),
            escape_untrusted(&change.before),
            escape_untrusted(&change.after)
        );
    }
    for warning in &plan.warnings {
        out!("  warning: {}", escape_untrusted(warning));
    }
    out!(
        "apply: irf contain apply {} --confirm {}",
        plan.instance.instance_id,
        plan.instance.instance_id
    );
    Ok(())
}

/// One row of `irf approvals` and of the workstation's approvals view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingDecision {
    /// `case` (the workflow waits) or `request` (a direct request under four-eyes).
    pub kind: &'static str,
    /// The case id, or the instance id of a direct request.
    pub id: String,
    pub instance: InstanceRef,
    pub requested_by: String,
    pub requested_at: String,
    pub approve: String,
    pub reject: String,
}

/// What waits for an approver: cases at their approval step and direct requests.
pub async fn pending(plane: &Plane) -> anyhow::Result<Vec<PendingDecision>> {
    let mut rows = Vec::new();
    for case in plane.table.cases().await? {
        if case.status != CaseStatus::AwaitingApproval
            || case.subject.containment != ContainmentPolicy::Approval
        {
            continue;
        }
        let instance = InstanceRef::from(&case.subject);
        rows.push(PendingDecision {
            kind: "case",
            id: case.case_id.to_string(),
            approve: format!(
                "irf approve {} --confirm {}",
                case.case_id, instance.instance_id
            ),
            reject: format!("irf reject {} --reason ...", case.case_id),
            instance,
            requested_by: case.requested_by,
            requested_at: case.opened_at,
        });
    }
    for record in containment::records(plane).await? {
        if record.state != ContainmentState::Requested {
            continue;
        }
        let id = record.instance.instance_id.clone();
        rows.push(PendingDecision {
            kind: "request",
            approve: format!("irf contain apply {id} --confirm {id}"),
            reject: format!("irf reject {id} --reason ..."),
            id,
            instance: record.instance,
            requested_by: record.requested_by,
            requested_at: record.requested_at,
        });
    }
    rows.sort_by(|a, b| a.requested_at.cmp(&b.requested_at));
    Ok(rows)
}

/// `irf approvals`.
pub async fn approvals(context: Arc<AwsContext>, json: bool) -> anyhow::Result<ExitCode> {
    let plane = Plane::connect(context).await?;
    let rows = pending(&plane).await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        eprintln!("irf: nothing waits for an approver");
    }
    for row in rows {
        out!(
            "{:<8} {:<40} {} requested by {} at {}\n         approve: {}",
            row.kind,
            escape_untrusted(&row.id),
            row.instance,
            escape_untrusted(&row.requested_by),
            row.requested_at,
            row.approve
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `irf reject <instance-id>`: refuses a direct containment request.
pub async fn reject_request(
    context: Arc<AwsContext>,
    global: &GlobalArgs,
    instance: &str,
    reason: &str,
) -> anyhow::Result<ExitCode> {
    refuse_read_only(global, "irf reject")?;
    let at = ContainTarget {
        instance: instance.to_owned(),
        account: None,
    };
    let instance = target(&context, global, &at).await?;
    let plane = Plane::connect(context).await?;
    desk::client::reject_containment(&plane, &instance, reason).await?;
    eprintln!("irf: refused the containment request for {instance}");
    Ok(ExitCode::SUCCESS)
}
