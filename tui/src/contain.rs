//! The containment commands: `irf contain plan|apply|rollback` and `irf approvals`, on the
//! engine's containment code (the same the workflow and the member trigger run).

use std::process::ExitCode;
use std::sync::Arc;

use irf_engine::approvals::{self, Awaiting, PendingDecision};
use irf_engine::aws::AwsContext;
use irf_engine::containment::{self, ContainmentOptions, ContainmentOutcome};
use irf_engine::desk::{self, client::Containing};
use irf_engine::model::containment::{ContainmentPlan, InstanceRef};
use irf_engine::plane::Plane;
use serde::Serialize;

use crate::cli::{ContainCommand, ContainTarget, GlobalArgs, OutputArgs};
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
        ContainCommand::Plan {
            target: at,
            output: OutputArgs { json },
        } => {
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
            output: OutputArgs { json },
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
            output: OutputArgs { json },
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

/// One row of `irf approvals --json`: what waits, and the commands that decide it.
#[derive(Debug, Serialize)]
struct ApprovalLine {
    /// `case` (the workflow waits) or `request` (a direct request under four-eyes).
    kind: &'static str,
    /// The case id, or the instance id of a direct request.
    id: String,
    instance: InstanceRef,
    requested_by: String,
    requested_at: String,
    approve: String,
    reject: String,
}

impl From<PendingDecision> for ApprovalLine {
    fn from(pending: PendingDecision) -> Self {
        let instance_id = &pending.instance.instance_id;
        let approve = match &pending.awaiting {
            Awaiting::Case(case_id) => format!("irf approve {case_id} --confirm {instance_id}"),
            Awaiting::Request => format!("irf contain apply {instance_id} --confirm {instance_id}"),
        };
        Self {
            kind: pending.kind(),
            id: pending.id().to_owned(),
            reject: format!("irf reject {} --reason ...", pending.id()),
            approve,
            instance: pending.instance,
            requested_by: pending.requested_by,
            requested_at: pending.requested_at,
        }
    }
}

/// `irf approvals`.
pub async fn approvals(context: Arc<AwsContext>, json: bool) -> anyhow::Result<ExitCode> {
    let plane = Plane::connect(context).await?;
    let rows: Vec<ApprovalLine> = approvals::pending(&plane)
        .await?
        .into_iter()
        .map(ApprovalLine::from)
        .collect();
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
