//! The command line: global flags and subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use irf_engine::model::case::{CaseId, ContainmentPolicy};

/// irf: AWS incident response and forensics, from a terminal.
///
/// Without a subcommand, opens the workstation against the AWS credentials and
/// configuration in force. `irf lab` opens it against a local lab instead.
#[derive(Debug, Parser)]
#[command(name = "irf", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Open the workstation with this filter on the instances view: a filter text, or
    /// @NAME for one saved with :save NAME.
    #[arg(long, value_name = "FILTER")]
    pub filter: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags every command takes.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Named profile from the AWS shared config files (SSO profiles included).
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Home region for global calls (default: the first configured region).
    #[arg(long, global = true, value_parser = parse_region)]
    pub region: Option<String>,
    /// Show everything, change nothing: every mutating action is removed.
    #[arg(long, global = true)]
    pub read_only: bool,
    /// Workstation theme: default-dark, light, high-contrast, colorblind, or a file of yours
    /// (default: ui.theme in the configuration).
    #[arg(long, global = true)]
    pub theme: Option<String>,
}

/// How a command prints what it found.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct OutputArgs {
    /// Print JSON instead of text, for scripts and pipelines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The local lab: an AWS emulator seeded with a demo Organization.
    Lab(LabArgs),
    /// Where the configuration file is and what is in force.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Who the credentials belong to, and their Organization.
    Whoami {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Every EC2 instance of the member accounts, swept through the member role.
    Instances {
        #[command(flatten)]
        output: OutputArgs,
        /// Only these accounts (repeat the flag for more).
        #[arg(long)]
        account: Vec<String>,
        /// Only these regions (repeat the flag for more).
        #[arg(long)]
        region: Vec<String>,
        /// The workstation's filter language, for example 'tag:Environment=prod !state:stopped sev>=HIGH'.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Start (or join) the acquisition workflow for an instance.
    Acquire(AcquireArgs),
    /// List the cases of the case table, newest first.
    Cases {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show one case: steps, artifacts with progress and hashes, approval.
    Case {
        /// The case id ('irf cases' lists them).
        case_id: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Approve the containment a case waits for; the workflow then contains the instance.
    Approve {
        /// The case id ('irf cases' lists them).
        case_id: String,
        /// The case's instance id, typed again: containment can break production.
        #[arg(long, value_name = "INSTANCE_ID")]
        confirm: String,
    },
    /// Refuse the containment a case waits for (the case closes without it), or a direct
    /// containment request (give the instance id).
    Reject {
        /// The case id, or the instance id of a direct request.
        #[arg(value_name = "CASE_ID|INSTANCE_ID", value_parser = parse_decision)]
        target: Decision,
        /// Why, recorded with the decision.
        #[arg(long)]
        reason: String,
    },
    /// Verify a case's evidence: the ledger's chain and sealed copies, and every artifact
    /// re-hashed from the evidence bucket against its manifest and the ledger. Exit status 0
    /// only when every item verifies.
    Verify {
        /// The case id ('irf cases' lists them).
        case_id: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Export a case: timeline, artifacts with hashes, custody chain, approval, containment,
    /// and a fresh verification.
    Report {
        /// The case id ('irf cases' lists them).
        case_id: String,
        /// md, json (schema: engine/report.schema.json) or html.
        #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
        format: ReportFormat,
        /// Write to this file instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Every artifact of every case: size, SHA-256, state, Object Lock retention, legal hold;
    /// or (`export`) one artifact copied out, checked against its manifest.
    Evidence {
        #[command(subcommand)]
        command: Option<EvidenceCommand>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Place (or with --off remove) the legal hold on one of a case's artifacts; recorded in
    /// the case's ledger.
    LegalHold {
        /// The case id.
        case_id: String,
        /// The artifact's key ('irf evidence' lists them).
        key: String,
        /// Remove the hold instead of placing it.
        #[arg(long)]
        off: bool,
        /// The case id, typed again.
        #[arg(long, value_name = "CASE_ID")]
        confirm: String,
    },
    /// Containment of an instance: plan it, apply it, roll it back.
    #[command(subcommand)]
    Contain(ContainCommand),
    /// What waits for an approver: cases at their containment approval and direct
    /// containment requests (four-eyes).
    Approvals {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// The SIFT image pipeline: its images (version, state, build date, AMI per region),
    /// its last and next run; `build` starts a build.
    Images {
        #[command(subcommand)]
        command: Option<ImagesCommand>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Analysis hosts in the Analysis VPC: list them, launch one for a case with its
    /// evidence, terminate one.
    Hosts {
        #[command(subcommand)]
        command: Option<HostsCommand>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// A Session Manager shell on an analysis host, or (`forward`) one of its ports here.
    Session(SessionArgs),
    /// Capture memory on this host into pre-signed upload URLs (run by the workflow on a
    /// suspect host through SSM).
    #[command(hide = true)]
    Memcap {
        #[arg(long, default_value = "/proc/kcore")]
        source: PathBuf,
        #[arg(long, default_value = "/proc/iomem")]
        iomem: PathBuf,
        #[arg(long)]
        plan: PathBuf,
    },
    /// Mark a Security Hub finding RESOLVED, recorded with your identity in the finding's note
    /// and in the ledger of its instance's latest case.
    Resolve {
        /// The finding's id ('irf findings --json' lists them).
        finding_id: String,
    },
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell, for
    /// example: irf completions bash > ~/.local/share/bash-completion/completions/irf
    Completions { shell: clap_complete::Shell },
    /// Security Hub findings from the Security account's aggregator.
    Findings {
        #[command(flatten)]
        output: OutputArgs,
        /// At least this severity: INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL.
        #[arg(long)]
        min_severity: Option<irf_engine::findings::Severity>,
        /// Workflow status (repeat for more; default NEW and NOTIFIED): NEW, NOTIFIED, SUPPRESSED, RESOLVED.
        #[arg(long)]
        status: Vec<irf_engine::findings::WorkflowStatus>,
        /// Every workflow status, resolved and suppressed included.
        #[arg(long, conflicts_with = "status")]
        any_status: bool,
        /// Archived findings too.
        #[arg(long)]
        include_archived: bool,
        /// Findings about any resource, not only EC2 instances.
        #[arg(long)]
        all_resources: bool,
        /// Only these accounts (repeat for more).
        #[arg(long)]
        account: Vec<String>,
        /// Only these regions (repeat for more).
        #[arg(long)]
        region: Vec<String>,
        /// Only findings updated since this time (RFC 3339, for example 2026-11-01T00:00:00Z).
        #[arg(long, value_parser = irf_engine::findings::parse_time)]
        since: Option<time::OffsetDateTime>,
        /// The workstation's filter language, applied after the flags.
        #[arg(long)]
        filter: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Copy an artifact out of the evidence bucket, checked against its manifest on the way
    /// and recorded in its case's ledger. A disk image is QCOW2 as stored; `--raw` writes
    /// the raw image it stands for (sparse, so it takes the disk space of the data), whose
    /// `sha256sum` is the manifest's `sha256`.
    Export {
        /// The artifact's key ('irf evidence' lists them).
        key: String,
        /// The file to write; an existing file is never replaced.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// Write a disk image as its raw image.
        #[arg(long)]
        raw: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Start a build of the pipeline now.
    Build {
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum HostsCommand {
    /// Launch a host from the newest available image into a private subnet of the Analysis
    /// VPC, and fetch the case's evidence onto it with every hash checked there.
    Launch {
        /// The case whose evidence the host gets ('irf cases' lists them).
        #[arg(long = "case", value_name = "CASE_ID")]
        case_id: String,
        /// The instance type (default: analysis.instance_type, else m5.xlarge).
        #[arg(long = "type", value_name = "INSTANCE_TYPE")]
        instance_type: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Terminate an analysis host (only hosts irf launched).
    Terminate {
        /// The host's instance id.
        #[arg(value_parser = parse_instance_id)]
        instance_id: String,
        /// The instance id, typed again.
        #[arg(long, value_name = "INSTANCE_ID")]
        confirm: String,
    },
}

/// `irf session <host>` or `irf session forward ...`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SessionArgs {
    #[command(subcommand)]
    pub command: Option<SessionCommand>,
    /// The analysis host (instance id) to open a shell on.
    #[arg(value_parser = parse_instance_id)]
    pub host: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Forward a local port to a port on the host (for web tools on it); prints the local
    /// address. One connection at a time.
    Forward {
        /// The analysis host (instance id).
        #[arg(value_parser = parse_instance_id)]
        host: String,
        /// The port on the host.
        remote_port: u16,
        /// The local port (default: any free one).
        local_port: Option<u16>,
    },
}

/// What `irf acquire` acquires and from where.
#[derive(Debug, Args, Clone)]
pub struct AcquireArgs {
    /// The instance id.
    #[arg(long, value_parser = parse_instance_id)]
    pub instance: String,
    /// Its account (with --region for its region); found by a sweep of the Organization
    /// when left out.
    #[arg(long)]
    pub account: Option<String>,
    /// Skip memory capture.
    #[arg(long, conflicts_with = "no_disk")]
    pub no_memory: bool,
    /// Skip disk imaging.
    #[arg(long)]
    pub no_disk: bool,
    /// What happens after verification: approval (the default), auto, never.
    #[arg(long, value_parser = ContainmentPolicy::parse)]
    pub containment: Option<ContainmentPolicy>,
    /// Wait until the case ends (or waits for approval), showing progress.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The instance a containment command acts on.
#[derive(Debug, Clone, clap::Args)]
pub struct ContainTarget {
    /// The instance id.
    #[arg(value_parser = parse_instance_id)]
    pub instance: String,
    /// Its account (with the global --region for its region); found by a sweep of the
    /// Organization when left out.
    #[arg(long)]
    pub account: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ContainCommand {
    /// What containment would change (security groups per interface, profile, sessions,
    /// Auto Scaling group, load balancers, tag) and its warnings; changes nothing.
    Plan {
        #[command(flatten)]
        target: ContainTarget,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Contain the instance; with four-eyes, record a request or approve another operator's.
    Apply {
        #[command(flatten)]
        target: ContainTarget,
        /// The instance id, typed again: containment can break production.
        #[arg(long, value_name = "INSTANCE_ID")]
        confirm: String,
        /// Why, recorded with a four-eyes request.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Restore exactly what containment replaced.
    Rollback {
        #[command(flatten)]
        target: ContainTarget,
        /// The instance id, typed again.
        #[arg(long, value_name = "INSTANCE_ID")]
        confirm: String,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the configuration file's path.
    Path,
    /// Print the configuration in force (the file, or the defaults when there is none).
    Show,
}

#[derive(Debug, Args)]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: Option<LabCommand>,
    /// Open the workstation with this filter on the instances view (a filter text, or
    /// @NAME for a saved one).
    #[arg(long, value_name = "FILTER")]
    pub filter: Option<String>,
    #[command(flatten)]
    pub up: LabUpArgs,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Install (first time), start and seed the lab.
    Up {
        /// Return once the lab is seeded and leave it running (stop it with 'irf lab down').
        #[arg(long)]
        detach: bool,
        #[command(flatten)]
        args: LabUpArgs,
    },
    /// Stop the lab's emulator.
    Down,
    /// Whether a lab is running, and where.
    Status {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Print `export` lines that point the AWS CLI, the SDKs and irf at the lab:
    /// eval "$(irf lab env)".
    Env,
    /// Drop everything in the running lab and seed it again.
    Reset {
        /// A new seed number (default: the one in use).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// The lab runtime beside the emulator (started by 'irf lab up', not for direct use).
    #[command(hide = true)]
    Runtime {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        watch_stdin: bool,
    },
}

/// How to seed and run a lab.
#[derive(Debug, Args, Clone)]
pub struct LabUpArgs {
    /// Seed number: the same number gives the same Organization.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Member accounts with the IR role (3 to 50).
    #[arg(long, default_value_t = 4)]
    pub members: usize,
    /// Instances across the member accounts (at least 30).
    #[arg(long, default_value_t = 36)]
    pub instances: usize,
    /// Security Hub findings (at least 20).
    #[arg(long, default_value_t = 24)]
    pub findings: usize,
    /// Regions, comma-separated (at least 2, including us-east-1).
    #[arg(long, value_delimiter = ',', default_value = "us-east-1,eu-west-1")]
    pub regions: Vec<String>,
    /// Loopback port for the emulator (default: a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// Delay added to every AWS call, in milliseconds, to feel real latency.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u32,
    /// Deploy with four eyes required (template 3's FourEyes): whoever asks for a containment
    /// cannot approve it. Off by default: the lab has one responder.
    #[arg(long)]
    pub four_eyes: bool,
    /// The lab's directory (state file, config, log).
    #[arg(long, env = "IRF_LAB_DIR")]
    pub dir: Option<PathBuf>,
    /// How the lab authorizes requests: enforce (as AWS does, from the templates' policies),
    /// audit (answer all, record what enforce refuses), or off (diagnosis only).
    #[arg(long, env = "IRF_LAB_AUTHORIZATION", default_value = "enforce")]
    pub authorization: irf_lab::Authorization,
}

/// How `irf report` writes the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Md,
    Json,
    Html,
}

/// What `irf reject` refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The containment a case waits for.
    Case(CaseId),
    /// A direct containment request, named by its instance.
    Request(String),
}

/// An EC2 instance id, checked before any call: a typo is refused here rather than after a
/// sweep of the Organization finds nothing.
fn parse_instance_id(text: &str) -> Result<String, String> {
    if irf_engine::findings::is_instance_id(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "'{}' is not an EC2 instance id (i- and 8 or 17 lowercase hexadecimal digits, as 'irf instances' lists them)",
            crate::text::escape_untrusted(text)
        ))
    }
}

/// An AWS region name, checked for its shape before any call (a typo would otherwise reach
/// AWS as a host name that does not exist).
fn parse_region(text: &str) -> Result<String, String> {
    irf_engine::config::region_name(text)
        .map_err(|err| crate::text::escape_untrusted(&err.to_string()))
}

/// A case id, or the instance id of a direct containment request.
fn parse_decision(text: &str) -> Result<Decision, String> {
    if irf_engine::findings::is_instance_id(text) {
        return Ok(Decision::Request(text.to_owned()));
    }
    CaseId::parse(text).map(Decision::Case).map_err(|err| {
        format!("{err}; a direct containment request is named by its instance id ('irf approvals' lists both)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn lab_up_detach_parses() {
        let cli = Cli::try_parse_from([
            "irf",
            "lab",
            "up",
            "--detach",
            "--members",
            "5",
            "--regions",
            "us-east-1,us-west-2",
        ])
        .expect("parses");
        let Some(Command::Lab(LabArgs {
            command: Some(LabCommand::Up { detach, args }),
            ..
        })) = cli.command
        else {
            panic!("expected lab up, got {:?}", cli.command);
        };
        assert!(detach);
        assert_eq!(args.members, 5);
        assert_eq!(args.regions, vec!["us-east-1", "us-west-2"]);
    }

    #[test]
    fn bare_lab_means_up_and_workstation() {
        let cli =
            Cli::try_parse_from(["irf", "lab", "--seed", "7", "--filter", "@web"]).expect("parses");
        let Some(Command::Lab(LabArgs {
            command: None,
            up,
            filter,
        })) = cli.command
        else {
            panic!("expected bare lab");
        };
        assert_eq!(up.seed, 7);
        assert_eq!(filter.as_deref(), Some("@web"));
    }

    #[test]
    fn a_malformed_instance_id_is_refused_by_name_before_anything_runs() {
        for argv in [
            vec!["irf", "acquire", "--instance", "not-an-id"],
            vec!["irf", "contain", "plan", "not-an-id"],
            vec!["irf", "hosts", "terminate", "not-an-id", "--confirm", "x"],
            vec!["irf", "session", "not-an-id"],
        ] {
            let err = Cli::try_parse_from(&argv).expect_err("refused");
            let text = err.to_string();
            assert!(
                text.contains("'not-an-id' is not an EC2 instance id"),
                "{argv:?}: {text}"
            );
        }
        let cli = Cli::try_parse_from(["irf", "acquire", "--instance", "i-0abc12345def67890"])
            .expect("a well-formed id parses");
        assert!(
            matches!(cli.command, Some(Command::Acquire(args)) if args.instance == "i-0abc12345def67890")
        );
    }

    #[test]
    fn reject_tells_a_case_from_a_request_by_its_shape() {
        let parse =
            |target: &str| match Cli::try_parse_from(["irf", "reject", target, "--reason", "why"])
                .map(|cli| cli.command)
            {
                Ok(Some(Command::Reject { target, .. })) => Ok(target),
                Ok(other) => panic!("{other:?}"),
                Err(err) => Err(err.to_string()),
            };
        assert_eq!(
            parse("i-0abc12345def67890"),
            Ok(Decision::Request("i-0abc12345def67890".into()))
        );
        assert!(matches!(
            parse("20261128T093015Z-i-ad331045abe82ba53"),
            Ok(Decision::Case(case)) if case.as_str() == "20261128T093015Z-i-ad331045abe82ba53"
        ));
        let refused = parse("case one").expect_err("refused");
        assert!(refused.contains("case one"), "{refused}");
    }

    #[test]
    fn closed_sets_of_values_are_refused_with_the_valid_ones() {
        let err = Cli::try_parse_from(["irf", "report", "c", "--format", "pdf"])
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("pdf") && err.contains("md, json, html"),
            "{err}"
        );
        let err = Cli::try_parse_from([
            "irf",
            "acquire",
            "--instance",
            "i-0abc12345def67890",
            "--containment",
            "sometimes",
        ])
        .expect_err("refused")
        .to_string();
        assert!(err.contains("sometimes"), "{err}");
    }

    #[test]
    fn a_malformed_region_is_refused_by_name() {
        let err = Cli::try_parse_from(["irf", "--region", "mars-1", "whoami"])
            .expect_err("refused")
            .to_string();
        assert!(err.contains("'mars-1' is not an AWS region name"), "{err}");
        assert!(Cli::try_parse_from(["irf", "--region", "eu-west-1", "whoami"]).is_ok());
    }

    #[test]
    fn completions_cover_every_subcommand() {
        let cli = Cli::try_parse_from(["irf", "completions", "bash"]).expect("parses");
        let Some(Command::Completions { shell }) = cli.command else {
            panic!("{:?}", cli.command);
        };
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "irf", &mut script);
        let script = String::from_utf8(script).expect("text");
        for word in [
            "acquire",
            "approvals",
            "contain",
            "evidence",
            "hosts",
            "--read-only",
        ] {
            assert!(script.contains(word), "{word}");
        }
        assert!(Cli::try_parse_from(["irf", "completions", "tcsh"]).is_err());
    }
}
