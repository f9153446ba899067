//! The subcommands: each loads what it needs through the engine and prints for people or,
//! with `--json`, for pipelines.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use irf_engine::aws::{AwsContext, ConnectOptions};
use irf_engine::config::Config;
use irf_engine::inventory;
use irf_lab::{self as lab, Lab, LabOptions, LabState, seed::SeedOptions};

use crate::filter::Filter;
use crate::keymap::Keymap;
use crate::theme::Theme;
use irf_engine::findings::{FindingQuery, RecordState};

use crate::cli::{
    Cli, Command, ConfigCommand, Decision, EvidenceCommand, GlobalArgs, HostsCommand,
    ImagesCommand, LabCommand, LabUpArgs, OutputArgs, SessionCommand,
};
use crate::workstation;

/// Runs the command the operator asked for.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global;
    match cli.command {
        None => {
            let context = connect(&global).await?;
            let mut settings = workstation_settings(&global, context.config())?;
            // On AWS, :profile and :region connect again as the same command line would.
            settings.reconnect =
                Some((Arc::new(context.config().clone()), connect_options(&global)));
            settings.start_filter = cli.filter;
            workstation::run(context, settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Lab(lab)) => match lab.command {
            None => lab_attached(&lab.up, &global, lab.filter).await,
            Some(LabCommand::Up {
                detach: false,
                args,
            }) => lab_attached(&args, &global, lab.filter).await,
            Some(LabCommand::Up { detach: true, args }) => lab_detached(&args).await,
            Some(LabCommand::Down) => lab_down(),
            Some(LabCommand::Status {
                output: OutputArgs { json },
            }) => lab_status(json),
            Some(LabCommand::Env) => {
                let state = running_lab()?;
                out_raw!(state.env_exports());
                Ok(ExitCode::SUCCESS)
            }
            Some(LabCommand::Reset { seed }) => lab_reset(seed).await,
            Some(LabCommand::Runtime { dir, watch_stdin }) => {
                lab::runtime::run(&dir, watch_stdin).await?;
                Ok(ExitCode::SUCCESS)
            }
        },
        Some(Command::Acquire(args)) => {
            let context = connect(&global).await?;
            crate::acquire::acquire(context, &global, &args).await
        }
        Some(Command::Cases {
            output: OutputArgs { json },
        }) => crate::acquire::cases(connect(&global).await?, json).await,
        Some(Command::Case {
            case_id,
            output: OutputArgs { json },
        }) => crate::acquire::case(connect(&global).await?, &case_id, json).await,
        Some(Command::Approve { case_id, confirm }) => {
            crate::contain::refuse_read_only(&global, "irf approve")?;
            crate::acquire::approve(connect(&global).await?, &case_id, &confirm).await
        }
        Some(Command::Reject {
            target: Decision::Request(instance),
            reason,
        }) => {
            crate::contain::reject_request(connect(&global).await?, &global, &instance, &reason)
                .await
        }
        Some(Command::Reject {
            target: Decision::Case(case_id),
            reason,
        }) => {
            crate::contain::refuse_read_only(&global, "irf reject")?;
            crate::acquire::reject(connect(&global).await?, case_id.as_str(), &reason).await
        }
        Some(Command::Contain(command)) => {
            Box::pin(crate::contain::contain(
                connect(&global).await?,
                &global,
                &command,
            ))
            .await
        }
        Some(Command::Verify {
            case_id,
            output: OutputArgs { json },
        }) => crate::acquire::verify(connect(&global).await?, &case_id, json).await,
        Some(Command::Report {
            case_id,
            format,
            output,
        }) => {
            crate::acquire::report(connect(&global).await?, &case_id, format, output.as_deref())
                .await
        }
        Some(Command::Evidence {
            command,
            output: OutputArgs { json },
        }) => match command {
            None => crate::acquire::evidence(connect(&global).await?, json).await,
            Some(EvidenceCommand::Export { key, output, raw }) => {
                // The copy is recorded in the case's ledger: a write.
                crate::contain::refuse_read_only(&global, "irf evidence export")?;
                crate::acquire::export(connect(&global).await?, &key, &output, raw).await
            }
        },
        Some(Command::LegalHold {
            case_id,
            key,
            off,
            confirm,
        }) => {
            crate::contain::refuse_read_only(&global, "irf legal-hold")?;
            crate::acquire::legal_hold(connect(&global).await?, &case_id, &key, !off, &confirm)
                .await
        }
        Some(Command::Approvals {
            output: OutputArgs { json },
        }) => crate::contain::approvals(connect(&global).await?, json).await,
        Some(Command::Images {
            command,
            output: OutputArgs { json },
        }) => match command {
            None => crate::analysis::list_images(connect(&global).await?, json).await,
            Some(ImagesCommand::Build {
                output: OutputArgs { json },
            }) => {
                crate::contain::refuse_read_only(&global, "irf images build")?;
                crate::analysis::build_image(connect(&global).await?, json).await
            }
        },
        Some(Command::Hosts {
            command,
            output: OutputArgs { json },
        }) => match command {
            None => crate::analysis::list_hosts(connect(&global).await?, json).await,
            Some(HostsCommand::Launch {
                case_id,
                instance_type,
                output: OutputArgs { json },
            }) => {
                crate::contain::refuse_read_only(&global, "irf hosts launch")?;
                crate::analysis::launch_host(connect(&global).await?, &case_id, instance_type, json)
                    .await
            }
            Some(HostsCommand::Terminate {
                instance_id,
                confirm,
            }) => {
                crate::contain::refuse_read_only(&global, "irf hosts terminate")?;
                crate::analysis::terminate_host(connect(&global).await?, &instance_id, &confirm)
                    .await
            }
        },
        Some(Command::Session(args)) => match (args.command, args.host) {
            (
                Some(SessionCommand::Forward {
                    host,
                    remote_port,
                    local_port,
                }),
                _,
            ) => {
                crate::analysis::forward_command(
                    connect(&global).await?,
                    &host,
                    remote_port,
                    local_port,
                )
                .await
            }
            (None, Some(host)) => {
                crate::analysis::shell_command(connect(&global).await?, &host).await
            }
            (None, None) => anyhow::bail!(
                "name the analysis host: 'irf session <instance-id>' ('irf hosts' lists them)"
            ),
        },
        Some(Command::Memcap {
            source,
            iomem,
            plan,
        }) => crate::acquire::memcap(&source, &iomem, &plan),
        Some(Command::Config(command)) => config_command(&command),
        Some(Command::Resolve { finding_id }) => {
            crate::contain::refuse_read_only(&global, "irf resolve")?;
            resolve(connect(&global).await?, &finding_id).await
        }
        Some(Command::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "irf", &mut script);
            out_raw!(String::from_utf8_lossy(&script));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Whoami {
            output: OutputArgs { json },
        }) => whoami(&global, json).await,
        Some(Command::Instances {
            output: OutputArgs { json },
            account,
            region,
            filter,
        }) => instances(&global, json, &account, &region, filter.as_deref()).await,
        Some(Command::Findings {
            output: OutputArgs { json },
            min_severity,
            status,
            any_status,
            include_archived,
            all_resources,
            account,
            region,
            since,
            filter,
        }) => {
            let query = FindingQuery {
                min_severity,
                workflow_statuses: if any_status {
                    Vec::new()
                } else if status.is_empty() {
                    FindingQuery::open_on_instances().workflow_statuses
                } else {
                    status
                },
                record_state: (!include_archived).then_some(RecordState::Active),
                ec2_only: !all_resources,
                accounts: account,
                regions: region,
                updated_since: since,
                ids: Vec::new(),
            };
            findings(&global, json, &query, filter.as_deref()).await
        }
    }
}

/// Theme, keymap and mode for the workstation, from the flags and the configuration.
fn workstation_settings(
    global: &GlobalArgs,
    config: &Config,
) -> anyhow::Result<workstation::Settings> {
    let theme_name = global
        .theme
        .clone()
        .unwrap_or_else(|| config.ui.theme.clone());
    let theme = Theme::load(&theme_name, crate::theme_dir().as_deref())?;
    let config_dir = Config::path()
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf));
    let keymap = Keymap::load_from_dir(config_dir.as_deref(), global.read_only)?;
    let saved_filters_path = crate::saved_filters::path();
    let saved_filters = match &saved_filters_path {
        Some(path) => crate::saved_filters::load(path)?,
        None => Default::default(),
    };
    Ok(workstation::Settings {
        read_only: global.read_only,
        theme,
        keymap,
        reconnect: None,
        start_filter: None,
        saved_filters,
        saved_filters_path,
    })
}

/// The context for the configuration and credentials in force.
async fn connect(global: &GlobalArgs) -> anyhow::Result<Arc<AwsContext>> {
    let loaded = Config::load()?;
    Ok(Arc::new(
        AwsContext::connect(Arc::new(loaded.config), &connect_options(global)).await,
    ))
}

/// How the command line asks to reach AWS.
fn connect_options(global: &GlobalArgs) -> ConnectOptions {
    ConnectOptions {
        profile: global.profile.clone(),
        region: global.region.clone(),
        ..ConnectOptions::default()
    }
}

fn lab_dir(args: Option<&LabUpArgs>) -> anyhow::Result<PathBuf> {
    match args.and_then(|a| a.dir.clone()) {
        Some(dir) => Ok(dir),
        None => Ok(lab::lab_dir()?),
    }
}

fn lab_options(args: &LabUpArgs, tie_to_this_process: bool) -> anyhow::Result<LabOptions> {
    Ok(LabOptions {
        dir: lab_dir(Some(args))?,
        port: args.port,
        latency_ms: args.latency_ms,
        authorization: args.authorization,
        time_scale: 1,
        tie_to_this_process,
        // The lab runtime is this very binary, as are the lab hosts' capture tool.
        runtime_exe: std::env::current_exe().ok(),
        seed: SeedOptions {
            seed: args.seed,
            members: args.members,
            regions: args.regions.clone(),
            instances: args.instances,
            findings: args.findings,
            unmanaged_account: true,
            four_eyes: args.four_eyes,
        },
    })
}

fn progress(message: &str) {
    eprintln!("irf lab: {message}");
}

async fn lab_attached(
    args: &LabUpArgs,
    global: &GlobalArgs,
    filter: Option<String>,
) -> anyhow::Result<ExitCode> {
    // Before the lab is seeded: a lab no one can see would be started and thrown away.
    workstation::require_terminal()?;
    let options = lab_options(args, true)?;
    let lab = Lab::up(&options, &progress).await?;
    eprintln!(
        "irf lab: ready at {}; opening the workstation (q quits and stops the lab, dropping \
         its cases and evidence; 'irf lab up --detach' keeps a lab until 'irf lab down')",
        lab.state.endpoint
    );
    let context = lab.state.connect().await?;
    let result = match workstation_settings(global, context.config()) {
        Ok(mut settings) => {
            settings.start_filter = filter;
            workstation::run(context, settings).await
        }
        Err(err) => Err(err),
    };
    lab.down(&options.dir);
    result?;
    eprintln!("irf lab: stopped; its cases and evidence are gone");
    Ok(ExitCode::SUCCESS)
}

async fn lab_detached(args: &LabUpArgs) -> anyhow::Result<ExitCode> {
    let options = lab_options(args, false)?;
    let state = Lab::up(&options, &progress).await?.detach();
    print_lab_summary(&state)?;
    out!("point your shell at it:  eval \"$(irf lab env)\"    stop it:  irf lab down");
    Ok(ExitCode::SUCCESS)
}

fn print_lab_summary(state: &LabState) -> anyhow::Result<()> {
    let seeded = &state.seeded;
    out!(
        "irf lab running at {} (pid {})",
        state.endpoint,
        state.emulator_pid
    );
    out!(
        "  Organization {}  Security {}  Forensics {}",
        seeded.organization_id,
        seeded.security,
        seeded.forensics
    );
    for member in &seeded.members {
        let count = seeded
            .instances
            .iter()
            .filter(|i| i.account == member.id)
            .count();
        let role = if member.managed {
            ""
        } else {
            "  (no IR role: not onboarded)"
        };
        out!(
            "  member {}  {:<20} {count:>3} instances{role}",
            member.id,
            member.name
        );
    }
    out!(
        "  regions {}  findings {}",
        seeded.options.regions.join(", "),
        seeded.findings
    );
    out!(
        "  config {}  log {}",
        state.config_path.display(),
        state.log_path.display()
    );
    match state.runtime_pid {
        Some(pid) if lab::runtime::is_our_runtime(pid) => out!(
            "  runtime pid {pid} (step queues, tag events, SSM agent)  log {}",
            state.log_path.with_file_name("runtime.log").display()
        ),
        Some(pid) => out!(
            "  runtime pid {pid} is gone: workflows will not run; restart the lab ('irf lab down', 'irf lab up')"
        ),
        None => out!("  no runtime: workflows will not run"),
    }
    if let Some(plane) = &seeded.plane {
        out!(
            "  evidence s3://{}  cases {}  workflow {}",
            plane.evidence_bucket,
            plane.case_table,
            plane.state_machine_arn
        );
    }
    Ok(())
}

fn running_lab() -> anyhow::Result<LabState> {
    let dir = lab_dir(None)?;
    LabState::load(&dir)?
        .filter(LabState::is_running)
        .ok_or_else(|| lab::LabError::NotRunning.into())
}

fn lab_down() -> anyhow::Result<ExitCode> {
    let dir = lab_dir(None)?;
    if lab::down(&dir)? {
        out!("irf lab stopped");
    } else {
        out!("no lab was running");
    }
    Ok(ExitCode::SUCCESS)
}

fn lab_status(json: bool) -> anyhow::Result<ExitCode> {
    let dir = lab_dir(None)?;
    let state = LabState::load(&dir)?;
    let running = state.as_ref().is_some_and(LabState::is_running);
    if json {
        let value = serde_json::json!({ "running": running, "dir": dir, "lab": state });
        out!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        match &state {
            Some(state) if running => print_lab_summary(state)?,
            Some(state) => out!(
                "the lab recorded in {} is not running (its emulator, pid {}, is gone): 'irf lab down' clears it",
                dir.display(),
                state.emulator_pid
            ),
            None => out!("no lab is running (directory {})", dir.display()),
        }
    }
    Ok(if running {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

async fn lab_reset(seed: Option<u64>) -> anyhow::Result<ExitCode> {
    let dir = lab_dir(None)?;
    let options = match seed {
        Some(seed) => {
            let mut options = running_lab()?.seeded.options;
            options.seed = seed;
            Some(options)
        }
        None => None,
    };
    let state = lab::reset(&dir, options, &progress).await?;
    print_lab_summary(&state)?;
    Ok(ExitCode::SUCCESS)
}

fn config_command(command: &ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Path => out!("{}", Config::path()?.display()),
        ConfigCommand::Show => {
            let loaded = Config::load()?;
            match &loaded.source {
                irf_engine::config::ConfigSource::File(path) => out!("# from {}", path.display()),
                irf_engine::config::ConfigSource::Defaults(path) => {
                    out!("# defaults: no file at {}", path.display());
                }
            }
            out_raw!(loaded.config.to_toml());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn whoami(global: &GlobalArgs, json: bool) -> anyhow::Result<ExitCode> {
    let context = connect(global).await?;
    let who = context.whoami().await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&who)?);
        return Ok(ExitCode::SUCCESS);
    }
    out!("caller   {}", who.caller.arn);
    out!("account  {}", who.caller.account);
    out!("region   {}", who.region);
    if let Some(endpoint) = &who.endpoint_url {
        out!("endpoint {endpoint}");
    }
    match (&who.organization, &who.organization_error) {
        (Some(org), _) => out!(
            "org      {} (management account {})",
            org.id,
            org.management_account
        ),
        (None, Some(err)) => out!("org      unavailable: {err}"),
        (None, None) => out!("org      none"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn instances(
    global: &GlobalArgs,
    json: bool,
    accounts: &[String],
    regions: &[String],
    filter: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let filter = filter
        .map(Filter::parse)
        .transpose()
        .map_err(|err| anyhow::anyhow!("--filter: {err}"))?;
    let context = connect(global).await?;
    let mut scope = context
        .sweep_scope()
        .await
        .context("cannot decide which accounts to sweep")?;
    if !accounts.is_empty() {
        scope
            .accounts
            .retain(|a| accounts.iter().any(|w| w == a.id.as_str() || *w == a.name));
        if scope.accounts.is_empty() {
            anyhow::bail!(
                "no member account matches --account {}: 'irf instances' without it lists them all",
                accounts.join(", ")
            );
        }
    }
    if !regions.is_empty() {
        scope.regions = regions.to_vec();
    }
    // Instances and findings at the same time: each instance carries its open findings.
    let open = FindingQuery::open_on_instances();
    let (mut snapshot, findings) = tokio::join!(
        inventory::sweep_all(context.clone(), scope),
        context.findings(&open)
    );
    let summaries = match &findings {
        Ok(findings) => irf_engine::findings::summarize_by_instance(findings),
        Err(err) => {
            eprintln!("irf: findings unavailable, counts left at zero: {err}");
            Default::default()
        }
    };
    for instance in &mut snapshot.instances {
        instance.findings = summaries
            .get(instance.id.as_str())
            .copied()
            .unwrap_or_default();
    }
    if let Some(filter) = &filter {
        // The rows the views filter, so the language means the same here; no copies.
        snapshot.instances = std::mem::take(&mut snapshot.instances)
            .into_iter()
            .map(workstation::views::InstanceRow::new)
            .filter(|row| filter.matches(row))
            .map(|row| row.instance)
            .collect();
    }
    snapshot
        .instances
        .sort_by(|a, b| (&a.account, &a.region, &a.id).cmp(&(&b.account, &b.region, &b.id)));
    if json {
        out!("{}", serde_json::to_string_pretty(&snapshot)?);
    } else {
        for i in &snapshot.instances {
            out!(
                "{:<20} {:<12} {:<10} {:<9} {:<12} {:<7} {}",
                i.id,
                i.account,
                i.region,
                i.state,
                i.instance_type,
                i.ssm.label(),
                crate::text::clip_untrusted(i.name.as_deref().unwrap_or("-"), 40)
            );
        }
        for f in &snapshot.failures {
            eprintln!(
                "failed: account {} ({}) {}: {}",
                f.account,
                crate::text::clip_untrusted(&f.account_name, 30),
                f.region.as_deref().unwrap_or("all regions"),
                f.error
            );
        }
    }
    // Partial results are still results; the exit status says some were missing.
    Ok(if snapshot.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `irf resolve`: the finding RESOLVED, and the change in its instance's latest case.
async fn resolve(context: Arc<AwsContext>, finding_id: &str) -> anyhow::Result<ExitCode> {
    use irf_engine::findings::{FindingRef, WorkflowStatus};
    let query = FindingQuery {
        ids: vec![finding_id.to_owned()],
        ..FindingQuery::default()
    };
    let finding = context
        .findings(&query)
        .await?
        .into_iter()
        .find(|f| f.id == finding_id)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no finding '{}' in the Security Hub aggregator: 'irf findings --any-status --json' lists them",
                crate::text::escape_untrusted(finding_id)
            )
        })?;
    context
        .set_workflow_status(
            &[FindingRef::from(&finding)],
            WorkflowStatus::Resolved,
            "Resolved with irf resolve",
        )
        .await?;
    eprintln!(
        "irf: resolved: {}",
        crate::text::clip_untrusted(&finding.title, 100)
    );
    // The change belongs to the custody of the instance's latest case, where there is one.
    if let Some(instance_id) = &finding.instance_id {
        match irf_engine::plane::Plane::connect(context.clone()).await {
            Ok(plane) => {
                if let Some(case_id) = irf_engine::findings::record_in_case(
                    &plane,
                    instance_id,
                    &finding.id,
                    WorkflowStatus::Resolved,
                )
                .await?
                {
                    eprintln!("irf: recorded in the ledger of case {case_id}");
                }
            }
            Err(err) => eprintln!("irf: warning: not recorded in a case: {err}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn findings(
    global: &GlobalArgs,
    json: bool,
    query: &FindingQuery,
    filter: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let filter = filter
        .map(Filter::parse)
        .transpose()
        .map_err(|err| anyhow::anyhow!("--filter: {err}"))?;
    let context = connect(global).await?;
    let mut findings = context.findings(query).await?;
    if let Some(filter) = &filter {
        // account: matches names as in the workstation; without the Organization's names
        // (no access to list them), it matches ids alone.
        let names: std::collections::HashMap<String, String> = match context.sweep_scope().await {
            Ok(scope) => scope
                .accounts
                .into_iter()
                .map(|a| (a.id.to_string(), a.name))
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "account names unknown: account: matches ids only");
                std::collections::HashMap::new()
            }
        };
        findings = findings
            .into_iter()
            .map(|f| {
                let name = names.get(&f.account).map(String::as_str);
                workstation::views::FindingRow::new(f, name)
            })
            .filter(|row| filter.matches(row))
            .map(|row| row.finding)
            .collect();
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        for f in &findings {
            out!(
                "{:<13} {:<12} {:<10} {:<20} {:<9} {}",
                f.severity.label(),
                crate::text::escape_untrusted(&f.account),
                crate::text::escape_untrusted(&f.region),
                crate::text::escape_untrusted(f.instance_id.as_deref().unwrap_or("-")),
                crate::text::escape_untrusted(&f.workflow_status),
                crate::text::clip_untrusted(&f.title, 80)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
