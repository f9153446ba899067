//! The acquisition commands: `irf acquire`, `irf cases`, `irf case`, and the hidden `irf memcap`
//! that the workflow runs on a suspect host.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use irf_engine::acquisition;
use irf_engine::aws::AwsContext;
use irf_engine::config::AccountId;
use irf_engine::model::case::{CaseId, CaseStatus, CaseSubject, ContainmentPolicy};
use irf_engine::model::case_detail::{ArtifactSha256, CaseDetail, RAW_HASH_LEFT_FOR_LATER};
use irf_engine::plane::Plane;
use irf_engine::store::case_table::Opened;

use crate::cli::{AcquireArgs, GlobalArgs, ReportFormat};

/// Finds the account and region of `instance` by sweeping the Organization.
async fn locate(context: &Arc<AwsContext>, instance: &str) -> anyhow::Result<(AccountId, String)> {
    let scope = context
        .sweep_scope()
        .await
        .context("cannot decide which accounts to search")?;
    let snapshot = irf_engine::inventory::sweep_all(context.clone(), scope).await;
    snapshot
        .instances
        .iter()
        .find(|i| i.id.as_str() == instance)
        .map(|i| Ok((AccountId::parse(i.account.as_str())?, i.region.to_string())))
        .transpose()
        .map_err(|err: irf_engine::config::ConfigError| anyhow::anyhow!(err))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "instance '{instance}' was not found in any swept account and region{}: check the id, or give --account and --region",
                if snapshot.failures.is_empty() { String::new() } else { format!(" ({} account-regions could not be read)", snapshot.failures.len()) }
            )
        })
}

/// The account and region of `instance`: as given, or found by a sweep (and checked against
/// the account when only that is given).
pub(crate) async fn place_instance(
    context: &Arc<AwsContext>,
    instance: &str,
    account: Option<&str>,
    region: Option<&str>,
) -> anyhow::Result<(AccountId, String)> {
    // Checked before anything is asked of AWS: a sweep of the Organization for an id that
    // cannot exist would only delay the answer.
    if !irf_engine::findings::is_instance_id(instance) {
        anyhow::bail!(
            "'{}' is not an EC2 instance id (i- and 8 to 17 lowercase hex digits): 'irf instances' lists them",
            crate::text::escape_untrusted(instance)
        );
    }
    Ok(match (account, region) {
        (Some(account), Some(region)) => (AccountId::parse(account)?, region.to_owned()),
        (Some(account), None) => {
            let found = locate(context, instance).await?;
            if found.0.as_str() != account {
                anyhow::bail!(
                    "instance '{}' is in account {}, not {account}",
                    crate::text::escape_untrusted(instance),
                    found.0
                );
            }
            found
        }
        (None, _) => locate(context, instance).await?,
    })
}

/// `irf acquire`.
pub async fn acquire(
    context: Arc<AwsContext>,
    global: &GlobalArgs,
    args: &AcquireArgs,
) -> anyhow::Result<ExitCode> {
    let containment = match (args.containment, &context.config().workflow.containment) {
        (Some(policy), _) => policy,
        (None, Some(text)) => ContainmentPolicy::parse(text)
            .with_context(|| "workflow.containment in the configuration")?,
        (None, None) => ContainmentPolicy::default(),
    };
    let (account, region) = place_instance(
        &context,
        &args.instance,
        args.account.as_deref(),
        global.region.as_deref(),
    )
    .await?;
    let plane = Plane::connect(context.clone()).await?;
    let subject = CaseSubject {
        account,
        region,
        instance_id: args.instance.clone(),
        memory: !args.no_memory,
        disk: !args.no_disk,
        containment,
    };
    let opened = irf_engine::desk::client::open_case(&plane, subject).await?;
    let joined = matches!(opened, Opened::Joined(_));
    let case_id = opened.case().case_id.clone();
    if !args.output.json {
        eprintln!(
            "irf: {} case {case_id} for {} (account {}, region {})",
            if joined { "joined the open" } else { "opened" },
            args.instance,
            opened.case().subject.account,
            opened.case().subject.region
        );
    }
    let detail = if args.wait {
        wait(&plane, &case_id, !args.output.json).await?
    } else {
        plane.table.detail(&case_id).await?
    };
    if args.output.json {
        let mut value = serde_json::to_value(&detail)?;
        value["case_id"] = serde_json::json!(case_id);
        value["joined"] = serde_json::json!(joined);
        out!("{}", serde_json::to_string_pretty(&value)?);
    } else if args.wait {
        print_detail(&detail)?;
    }
    Ok(if detail.case.status == CaseStatus::Failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Polls the case until it ends or waits for an approver.
async fn wait(plane: &Plane, case_id: &CaseId, show: bool) -> anyhow::Result<CaseDetail> {
    let mut last_line = String::new();
    loop {
        let detail = plane.table.detail(case_id).await?;
        if show {
            let line = progress_line(&detail);
            if line != last_line {
                eprintln!("irf: {}", crate::text::escape_untrusted(&line));
                last_line = line;
            }
        }
        if !detail.case.status.is_open() || detail.case.status == CaseStatus::AwaitingApproval {
            return Ok(detail);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn progress_line(detail: &CaseDetail) -> String {
    let running: Vec<&str> = detail
        .steps
        .iter()
        .filter(|s| s.status == irf_engine::model::case::StepStatus::Running)
        .map(|s| s.step.as_str())
        .collect();
    let artifacts: Vec<String> = detail
        .artifacts
        .iter()
        .map(|a| {
            let percent = a
                .bytes_done
                .saturating_mul(100)
                .checked_div(a.bytes_total)
                .unwrap_or(0);
            format!("{} {} {percent}%", a.kind.as_str(), a.source)
        })
        .collect();
    let mut line = detail.case.status.as_str().to_owned();
    if !running.is_empty() {
        line.push_str(&format!(" (step {})", running.join(" + ")));
    }
    if !artifacts.is_empty() {
        line.push_str(&format!(": {}", artifacts.join(", ")));
    }
    line
}

/// `irf cases`.
pub async fn cases(context: Arc<AwsContext>, json: bool) -> anyhow::Result<ExitCode> {
    let plane = Plane::connect(context).await?;
    let cases = plane.table.cases().await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&cases)?);
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{:<40} {:<18} {:<13} {:<20} {:<10} OPENED",
        "CASE",
        "STATUS",
        "ACCOUNT",
        "INSTANCE",
        "REGION"
    );
    for case in &cases {
        out!(
            "{:<40} {:<18} {:<13} {:<20} {:<10} {}",
            case.case_id,
            case.status.as_str(),
            case.subject.account,
            crate::text::clip_untrusted(&case.subject.instance_id, 20),
            case.subject.region,
            case.opened_at
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `irf case <id>`.
pub async fn case(context: Arc<AwsContext>, case_id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let case_id = CaseId::parse(case_id)?;
    let plane = Plane::connect(context).await?;
    let detail = plane.table.detail(&case_id).await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&detail)?);
    } else {
        print_detail(&detail)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_detail(detail: &CaseDetail) -> anyhow::Result<()> {
    let case = &detail.case;
    out!("case      {}", case.case_id);
    out!("status    {}", case.status.as_str());
    out!(
        "instance  {} (account {}, region {})",
        crate::text::escape_untrusted(&case.subject.instance_id),
        case.subject.account,
        crate::text::escape_untrusted(&case.subject.region)
    );
    out!(
        "opened    {} by {} ({})",
        case.opened_at,
        crate::text::escape_untrusted(&case.requested_by),
        case.trigger
    );
    if let Some(closed) = &case.closed_at {
        out!("closed    {closed}");
    }
    if let Some(error) = &case.error {
        out!("error     {}", crate::text::escape_untrusted(error));
    }
    if let Some(record) = &detail.containment {
        out!(
            "contained {}",
            crate::text::escape_untrusted(&record.summary())
        );
    }
    out!("steps");
    for step in &detail.steps {
        out!(
            "  {:<10} {:<10} {} {}{}",
            step.step,
            format!("{:?}", step.status).to_lowercase(),
            step.started_at,
            step.ended_at.as_deref().unwrap_or(""),
            step.detail
                .as_deref()
                .map(|d| format!("  {}", crate::text::escape_untrusted(d)))
                .unwrap_or_default()
        );
    }
    out!("artifacts");
    for artifact in &detail.artifacts {
        out!(
            "  {:<7} {:<22} {:>14} / {:<14} {:<9} {}",
            artifact.kind.as_str(),
            crate::text::escape_untrusted(&artifact.source),
            artifact.bytes_done,
            artifact.bytes_total,
            format!("{:?}", artifact.state).to_lowercase(),
            match detail.sha256_of(artifact) {
                ArtifactSha256::Known(sha256) => crate::text::escape_untrusted(sha256),
                ArtifactSha256::LeftForLater => RAW_HASH_LEFT_FOR_LATER.into(),
                ArtifactSha256::None => String::new(),
            }
        );
        out!(
            "          s3 key {}",
            crate::text::escape_untrusted(&artifact.key)
        );
    }
    Ok(())
}

/// `irf approve`: the typed instance id must be the case's, or nothing happens.
pub async fn approve(
    context: Arc<AwsContext>,
    case_id: &str,
    confirm: &str,
) -> anyhow::Result<ExitCode> {
    let case_id = CaseId::parse(case_id)?;
    let plane = Plane::connect(context).await?;
    let case = plane.table.case(&case_id).await?;
    if confirm != case.subject.instance_id {
        anyhow::bail!(
            "--confirm '{}' is not the instance of case {case_id} ({}): type the instance id to approve its containment",
            crate::text::escape_untrusted(confirm),
            case.subject.instance_id
        );
    }
    let decided =
        irf_engine::desk::client::decide_case(&plane, &case_id, acquisition::Decision::Approve)
            .await?;
    if decided == acquisition::Decided::AwaitsSecondApproval {
        eprintln!(
            "irf: first approval of the containment of {} for case {case_id} recorded: a Security Hub action opened the case, so a second person approves with the same command",
            case.subject.instance_id
        );
    } else {
        eprintln!(
            "irf: approved containment of {} for case {case_id}",
            case.subject.instance_id
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `irf reject`.
pub async fn reject(
    context: Arc<AwsContext>,
    case_id: &str,
    reason: &str,
) -> anyhow::Result<ExitCode> {
    let case_id = CaseId::parse(case_id)?;
    if reason.trim().is_empty() {
        anyhow::bail!(
            "--reason is empty: say why containment is refused, it is recorded with the decision"
        );
    }
    let plane = Plane::connect(context).await?;
    irf_engine::desk::client::decide_case(
        &plane,
        &case_id,
        acquisition::Decision::Reject {
            reason: reason.to_owned(),
        },
    )
    .await?;
    eprintln!("irf: refused containment for case {case_id}; the case closes without it");
    Ok(ExitCode::SUCCESS)
}

/// `irf verify`: each item verified or not, and why; success only when all verify.
pub async fn verify(
    context: Arc<AwsContext>,
    case_id: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let case_id = CaseId::parse(case_id)?;
    let plane = Plane::connect(context).await?;
    let verification = irf_engine::ledger::verify(&plane, &case_id).await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&verification)?);
    } else {
        for item in &verification.items {
            out!(
                "{:<13} {}  {}",
                if item.verified {
                    "verified"
                } else {
                    "NOT VERIFIED"
                },
                crate::text::escape_untrusted(&item.item),
                crate::text::escape_untrusted(&item.detail)
            );
        }
    }
    let failed = verification.items.iter().filter(|i| !i.verified).count();
    if verification.all_verified() {
        eprintln!(
            "irf: case {case_id}: all {} items verified",
            verification.items.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "irf: case {case_id}: {failed} of {} items did not verify",
            verification.items.len()
        );
        Ok(ExitCode::FAILURE)
    }
}

/// `irf report`: the case report in `format`, to `output` or standard output.
pub async fn report(
    context: Arc<AwsContext>,
    case_id: &str,
    format: ReportFormat,
    output: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let case_id = CaseId::parse(case_id)?;
    let plane = Plane::connect(context).await?;
    let report = irf_engine::report::build(&plane, &case_id).await?;
    let text = match format {
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReportFormat::Html => report.to_html(),
        ReportFormat::Md => report.to_markdown(),
    };
    match output {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
            eprintln!(
                "irf: report of case {case_id} written to {}",
                path.display()
            );
        }
        None => out_raw!(text),
    }
    if !report.verification.all_verified() {
        eprintln!(
            "irf: warning: not every item of case {case_id} verified (see the report's verification)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `irf evidence`.
pub async fn evidence(context: Arc<AwsContext>, json: bool) -> anyhow::Result<ExitCode> {
    let plane = Plane::connect(context).await?;
    let items = irf_engine::ledger::evidence(&plane).await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    for item in &items {
        let lock = match &item.lock {
            None => "GONE from the bucket".to_owned(),
            Some(lock) => format!(
                "{} until {}{}",
                lock.mode.as_deref().unwrap_or("no retention"),
                lock.retain_until.as_deref().unwrap_or("-"),
                if lock.legal_hold { ", LEGAL HOLD" } else { "" }
            ),
        };
        out!(
            "{}  {:<6} {:>14}  {:<9} {}  {}\n    {}",
            item.case_id,
            crate::text::escape_untrusted(&item.kind),
            item.size,
            crate::text::escape_untrusted(&item.state),
            crate::text::escape_untrusted(item.sha256.as_deref().unwrap_or("-")),
            crate::text::escape_untrusted(&lock),
            crate::text::escape_untrusted(&item.key)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `irf evidence export`: the artifact copied out, checked, and the copy recorded.
pub async fn export(
    context: Arc<AwsContext>,
    key: &str,
    output: &std::path::Path,
    raw: bool,
) -> anyhow::Result<ExitCode> {
    let plane = Plane::connect(context).await?;
    let (exported, entry) = irf_engine::ledger::export_artifact(&plane, key, output, raw).await?;
    out!(
        "{}  {}\n    {} bytes; sha256sum prints {}{}",
        crate::text::escape_untrusted(key),
        exported.path.display(),
        exported.size,
        exported.sha256,
        if exported.raw_hash_was_deferred {
            " (the raw image's hash, left for later at acquisition: now in the ledger)"
        } else {
            ""
        }
    );
    eprintln!("irf: {} (ledger entry {})", entry.action, entry.seq);
    Ok(ExitCode::SUCCESS)
}

/// `irf legal-hold`: the typed case id must be the case's, or nothing happens.
pub async fn legal_hold(
    context: Arc<AwsContext>,
    case_id: &str,
    key: &str,
    on: bool,
    confirm: &str,
) -> anyhow::Result<ExitCode> {
    if confirm != case_id {
        anyhow::bail!(
            "--confirm '{}' is not the case id {}: type the case id to change its legal hold",
            crate::text::escape_untrusted(confirm),
            crate::text::escape_untrusted(case_id)
        );
    }
    let case_id = CaseId::parse(case_id)?;
    let plane = Plane::connect(context).await?;
    let entry = irf_engine::ledger::set_legal_hold(&plane, &case_id, key, on).await?;
    eprintln!(
        "irf: {} on {} (ledger entry {})",
        entry.action,
        crate::text::escape_untrusted(key),
        entry.seq
    );
    Ok(ExitCode::SUCCESS)
}

/// `irf memcap`: prints the capture report as one JSON line.
pub fn memcap(
    source: &std::path::Path,
    iomem: &std::path::Path,
    plan: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let report = irf_forensics::memcap::run(source, iomem, plan)?;
    out!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}
