//! The workstation without a terminal: the update driven by inputs and engine events, and
//! every view and dialog rendered on a test backend and compared with reviewed snapshots.

use irf_engine::aws::CallerIdentity;
use irf_engine::config::AccountId;
use irf_engine::findings::Finding;
use irf_engine::inventory::{Instance, SweepEvent};
use irf_engine::model::case::{
    ApprovalDecision, ArtifactKind, ArtifactProgress, ArtifactState, Case, CaseId, CaseStatus,
    CaseSubject, ContainmentPolicy, PendingApproval, StepRecord, StepStatus,
};
use irf_engine::model::case_detail::CaseDetail;
use irf_engine::organization::{MemberAccount, Organization, Scope, WhoAmI};
use irf_engine::store::case_table::Opened;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rstest::rstest;

use super::app::{App, Effect, EngineEvent, Input, Mode, Status, View};
use crate::keymap::{Key, KeyName, Keymap};
use crate::theme::Theme;

mod acquisition;
mod analysis;
mod cases;
mod decisions;
mod evidence;
mod screens;
mod tables;

/// An engine failure with this text, as an event carries one.
fn failed(text: &str) -> super::failure::Failure {
    super::failure::Failure::boxed(text.into())
}

fn instances() -> Vec<Instance> {
    serde_json::from_str(include_str!("../../../tests/fixtures/instances.json"))
        .expect("instances fixture")
}

fn findings() -> Vec<Finding> {
    serde_json::from_str(include_str!("../../../tests/fixtures/findings.json"))
        .expect("findings fixture")
}

fn scope() -> Scope {
    let mut accounts: Vec<MemberAccount> = Vec::new();
    for instance in instances() {
        if !accounts.iter().any(|a| a.id.as_str() == instance.account) {
            accounts.push(MemberAccount {
                id: AccountId::parse(&instance.account).expect("fixture account"),
                name: instance.account_name.to_string(),
            });
        }
    }
    accounts.push(MemberAccount {
        id: AccountId::parse("662994680443").expect("id"),
        name: "legacy-unmanaged".into(),
    });
    Scope {
        accounts,
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
    }
}

fn whoami() -> WhoAmI {
    WhoAmI {
        caller: CallerIdentity {
            account: "123456789012".into(),
            arn: "arn:aws:sts::123456789012:assumed-role/irf-responder/alice".into(),
            user_id: "AROAEXAMPLE:alice".into(),
        },
        region: "us-east-1".into(),
        endpoint_url: None,
        credentials_expire: None,
        organization: Some(Organization {
            id: "o-example1234".into(),
            arn: "arn:aws:organizations::123456789012:organization/o-example1234".into(),
            management_account: "123456789012".into(),
        }),
        organization_error: None,
    }
}

fn new_app(read_only: bool) -> App {
    let mut app = App::new(
        Keymap::load(None, read_only).expect("default keymap"),
        read_only,
        "default-dark",
    );
    app.handle(Input::Resize {
        width: 150,
        height: 32,
    });
    app.now = "08:00:00 UTC".into();
    app
}

/// An app that went through a whole first sweep and a findings load.
fn loaded_app(read_only: bool) -> App {
    let mut app = new_app(read_only);
    let effects = app.start();
    assert_eq!(
        effects,
        vec![
            Effect::LoadIdentity,
            Effect::StartSweep,
            Effect::LoadFindings
        ]
    );
    app.on_engine(EngineEvent::Identity(Ok(whoami())));
    let scope = scope();
    app.on_engine(EngineEvent::Scope(Ok(scope.clone())));
    app.on_engine(EngineEvent::Sweep(SweepEvent::Started {
        accounts: scope.accounts.len(),
        regions: 2,
    }));
    app.on_engine(EngineEvent::Sweep(SweepEvent::Instances {
        account: String::new(),
        region: String::new(),
        instances: instances(),
    }));
    app.on_engine(EngineEvent::Sweep(SweepEvent::Failed {
        account: "662994680443".into(),
        account_name: "legacy-unmanaged".into(),
        region: None,
        error: irf_engine::aws::AwsError::AssumeRole {
            account: AccountId::parse("662994680443").expect("id"),
            role_arn: "arn:aws:iam::662994680443:role/IRAutomation".into(),
            message: "AccessDenied: not authorized".into(),
        },
    }));
    app.on_engine(EngineEvent::Sweep(SweepEvent::Finished));
    app.on_engine(EngineEvent::Findings(Ok(findings())));
    app
}

fn press(app: &mut App, keys: &str) -> Vec<Effect> {
    keys.chars()
        .flat_map(|c| app.handle(Input::Key(Key::char(c))))
        .collect()
}

fn press_named(app: &mut App, code: KeyName) -> Vec<Effect> {
    app.handle(Input::Key(Key {
        code,
        ctrl: false,
        alt: false,
    }))
}

fn render(app: &App, theme: &Theme) -> String {
    let mut terminal =
        Terminal::new(TestBackend::new(app.size.0, app.size.1)).expect("test terminal");
    terminal
        .draw(|frame| super::ui::draw(frame, app, theme))
        .expect("draw");
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            text.push_str(buffer[(x, y)].symbol());
        }
        text.push('\n');
    }
    text
}

fn dark() -> Theme {
    Theme::load("default-dark", None).expect("shipped theme")
}

fn selected_instance(app: &App) -> String {
    app.instances
        .table
        .selected()
        .map(|r| r.instance.id.to_string())
        .unwrap_or_default()
}

#[rstest]
#[case::instances("instances", "")]
#[case::instances_filtered("instances_filtered", "/tag:Role=web\n")]
#[case::instance_detail("instance_detail", "\n")]
#[case::findings("findings", "2")]
#[case::finding_detail("finding_detail", "2\n")]
#[case::accounts("accounts", "3")]
#[case::help("help", "?")]
#[case::command("command", ":th")]
#[case::confirm_resolve("confirm_resolve", "2R")]
#[case::confirm_acquire("confirm_acquire", "a")]
fn views_render(#[case] name: &str, #[case] keys: &str) {
    let mut app = loaded_app(false);
    for c in keys.chars() {
        if c == '\n' {
            press_named(&mut app, KeyName::Enter);
        } else {
            press(&mut app, &c.to_string());
        }
    }
    insta::assert_snapshot!(name, render(&app, &dark()));
}

#[test]
fn loading_and_read_only_states_render() {
    let mut app = new_app(true);
    app.start();
    insta::assert_snapshot!("loading_read_only", render(&app, &dark()));
}

#[test]
fn every_shipped_theme_renders_the_instances_view() {
    let app = loaded_app(false);
    for (name, _) in crate::theme::SHIPPED {
        let theme = Theme::load(name, None).expect("shipped");
        let screen = render(&app, &theme);
        assert!(screen.contains("prod-web-01"), "{name}");
    }
}

// --- Acquisition, the cases view and the case view ---

const WEB: &str = "i-ad331045abe82ba53";
const ACCOUNT: &str = "165667010651";

fn case_id(text: &str) -> CaseId {
    CaseId::parse(text).expect("case id")
}

/// A case as the case table keeps it, opened at a fixed time.
fn case_on(instance: &str, status: CaseStatus, opened_at: &str) -> Case {
    let stamp: String = opened_at
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    Case {
        case_id: case_id(&format!("{stamp}Z-{instance}")),
        subject: CaseSubject {
            account: AccountId::parse(ACCOUNT).expect("account"),
            region: "eu-west-1".into(),
            instance_id: instance.into(),
            memory: true,
            disk: true,
            containment: ContainmentPolicy::Approval,
        },
        requested_by: "arn:aws:sts::123456789012:assumed-role/irf-responder/alice".into(),
        trigger: irf_engine::model::case::Trigger::Operator,
        opened_at: opened_at.into(),
        status,
        execution_arn: None,
        closed_at: (!status.is_open()).then(|| "2026-11-27T18:04:51Z".to_owned()),
        error: (status == CaseStatus::Failed)
            .then(|| "disk: snapshot snap-0f00 failed: \u{1b}[31mIncorrectState\u{1b}[0m".into()),
    }
}

fn cases() -> Vec<Case> {
    vec![
        case_on(WEB, CaseStatus::Running, "2026-11-28T09:30:15Z"),
        case_on(
            "i-7525dc2b76aab96f0",
            CaseStatus::AwaitingApproval,
            "2026-11-28T07:12:03Z",
        ),
        case_on(
            "i-0hostile00000000a",
            CaseStatus::Failed,
            "2026-11-27T17:58:40Z",
        ),
        case_on(
            "i-dab89e3f12f63c9d1",
            CaseStatus::Succeeded,
            "2026-11-26T11:00:00Z",
        ),
    ]
}

const GIB: u64 = 1024 * 1024 * 1024;

fn step(step: &str, status: StepStatus, started: &str, ended: Option<&str>) -> StepRecord {
    StepRecord {
        step: step.into(),
        status,
        started_at: started.into(),
        ended_at: ended.map(str::to_owned),
        detail: None,
        attempts: 1,
    }
}

/// The running case on prod-web-01: memory verified, the disk half imaged, and a hostile
/// error left by a lost worker.
fn running_detail() -> CaseDetail {
    let mut case = case_on(WEB, CaseStatus::Running, "2026-11-28T09:30:15Z");
    case.error =
        Some("memory: first attempt lost its worker: \u{1b}[31mconnection reset\u{1b}[0m".into());
    let prefix = format!("cases/{}/{ACCOUNT}/{WEB}", case.case_id);
    let mut memory = step(
        "memory",
        StepStatus::Succeeded,
        "2026-11-28T09:31:02Z",
        Some("2026-11-28T09:36:40Z"),
    );
    memory.attempts = 2;
    memory.detail = Some("retried after a lost worker".into());
    let mut disk = step("disk", StepStatus::Running, "2026-11-28T09:31:02Z", None);
    disk.detail = Some("vol-0123456789abcdef0: imaging".into());
    CaseDetail {
        steps: vec![
            step(
                "opened",
                StepStatus::Succeeded,
                "2026-11-28T09:30:15Z",
                Some("2026-11-28T09:30:16Z"),
            ),
            step(
                "prepare",
                StepStatus::Succeeded,
                "2026-11-28T09:30:16Z",
                Some("2026-11-28T09:31:01Z"),
            ),
            memory,
            disk,
        ],
        artifacts: vec![
            ArtifactProgress {
                key: format!("{prefix}/disk/vol-0123456789abcdef0.raw"),
                kind: ArtifactKind::Disk,
                source: "vol-0123456789abcdef0".into(),
                state: ArtifactState::Acquiring,
                bytes_done: 12 * GIB,
                bytes_total: 24 * GIB,
                rate: 64.0 * 1024.0 * 1024.0,
                updated_at: "2026-11-28T09:34:00Z".into(),
                sha256: None,
                error: None,
            },
            ArtifactProgress {
                key: format!("{prefix}/memory/{WEB}.lime"),
                kind: ArtifactKind::Memory,
                source: WEB.into(),
                state: ArtifactState::Verified,
                bytes_done: 8 * GIB,
                bytes_total: 8 * GIB,
                rate: 0.0,
                updated_at: "2026-11-28T09:36:40Z".into(),
                sha256: Some(
                    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                ),
                error: None,
            },
        ],
        approval: None,
        containment: None,
        ledger: vec![],
        case,
    }
}

fn enter(app: &mut App) -> Vec<Effect> {
    press_named(app, KeyName::Enter)
}

/// An app showing the cases view with the case table loaded.
fn cases_app() -> App {
    let mut app = loaded_app(false);
    press(&mut app, ":cases");
    assert_eq!(enter(&mut app), vec![Effect::LoadCases]);
    app.on_engine(EngineEvent::Cases(Ok(cases())));
    app
}

/// An app showing the running case, as after Enter on it in the cases view.
fn case_app(detail: CaseDetail) -> App {
    let mut app = cases_app();
    let effects = enter(&mut app);
    assert_eq!(effects, vec![Effect::LoadCase(detail.case.case_id.clone())]);
    app.on_engine(EngineEvent::CaseLoaded {
        case_id: detail.case.case_id.clone(),
        result: Ok(Box::new(detail)),
    });
    app
}

fn confirmation_text(app: &App) -> String {
    match &app.mode {
        Mode::Confirm(confirmation) => confirmation.lines.join("\n"),
        other => panic!("no confirmation: {other:?}"),
    }
}

#[test]
fn cases_and_case_views_render() {
    let app = cases_app();
    insta::assert_snapshot!("cases", render(&app, &dark()));
    let app = case_app(running_detail());
    insta::assert_snapshot!("case_running", render(&app, &dark()));
}

/// A case (`Some` case id) or a direct request waiting for an approver.
fn waiting(case: Option<&str>, instance_id: &str) -> irf_engine::approvals::PendingDecision {
    use irf_engine::approvals::Awaiting;
    irf_engine::approvals::PendingDecision {
        awaiting: case.map_or(Awaiting::Request, |id| Awaiting::Case(case_id(id))),
        instance: irf_engine::model::containment::InstanceRef {
            account: AccountId::parse("165667010651").expect("id"),
            region: "us-east-1".into(),
            instance_id: instance_id.into(),
        },
        requested_by: "arn:aws:sts::123456789012:assumed-role/irf-responder/alice".into(),
        requested_at: "2026-11-28T09:50:00Z".into(),
    }
}

fn plan_of(
    instance: &irf_engine::model::containment::InstanceRef,
) -> irf_engine::model::containment::ContainmentPlan {
    use irf_engine::model::containment::{ContainmentPlan, Original, PlannedChange};
    ContainmentPlan {
        instance: instance.clone(),
        vpc_id: "vpc-1".into(),
        original: Original {
            interfaces: vec![],
            profile_arn: None,
            role_name: None,
            autoscaling_group: None,
            target_registrations: vec![],
            termination_protection: false,
            status_tag: None,
            elastic_ips: vec![],
        },
        isolation_group_name: "irf-isolation".into(),
        isolation_group_id: None,
        ssm_endpoint_groups: vec![],
        untracking_group_id: None,
        profile_after: "IRIsolationProfile".into(),
        revoked_role: None,
        changes: vec![PlannedChange {
            action: "replace security groups".into(),
            resource: "eni-0a1".into(),
            before: "sg-web, sg-internal".into(),
            after: "irf-isolation (new)".into(),
            done: false,
        }],
        warnings: vec!["containment cuts SSM off: no outbound traffic".into()],
    }
}

fn approvals_app(read_only: bool) -> App {
    let mut app = loaded_app(read_only);
    assert_eq!(press(&mut app, "5"), vec![Effect::LoadApprovals]);
    app.on_engine(EngineEvent::Approvals(Ok(vec![
        waiting(
            Some("20261128T093015Z-i-ad331045abe82ba53"),
            "i-ad331045abe82ba53",
        ),
        waiting(None, "i-0b1c2d3e4f5a6b7c8"),
    ])));
    app
}

fn evidence_item(key: &str, held: bool) -> irf_engine::ledger::EvidenceItem {
    irf_engine::ledger::EvidenceItem {
        case_id: CaseId::parse("20261128T093015Z-i-ad331045abe82ba53").expect("case id"),
        key: key.into(),
        kind: "disk".into(),
        size: 1 << 30,
        sha256: Some("9c8e604d066559f21f40a1c5e7d30c903a54ace884534d7c77de74870cde48fd".into()),
        state: "verified".into(),
        lock: Some(irf_engine::store::evidence_bucket::LockState {
            mode: Some("COMPLIANCE".into()),
            retain_until: Some("2027-11-28T09:40:00Z".into()),
            legal_hold: held,
        }),
    }
}

fn image(
    version: &str,
    state: &str,
    ami: Option<&str>,
) -> irf_engine::analysis::images::ImageBuild {
    irf_engine::analysis::images::ImageBuild {
        arn: format!("arn:aws:imagebuilder:us-east-1:210987654321:image/irf-sift/{version}"),
        version: version.into(),
        state: state.into(),
        reason: None,
        created: Some("2026-11-28T15:00:00.000Z".into()),
        build_type: Some("USER_INITIATED".into()),
        amis: ami
            .map(|id| irf_engine::analysis::images::ImageAmi {
                region: "us-east-1".into(),
                ami_id: id.into(),
                account: None,
            })
            .into_iter()
            .collect(),
    }
}

fn pipeline(
    images: Vec<irf_engine::analysis::images::ImageBuild>,
) -> Box<irf_engine::analysis::images::PipelineImages> {
    Box::new(irf_engine::analysis::images::PipelineImages {
        pipeline: irf_engine::analysis::images::PipelineSummary {
            arn: "arn:aws:imagebuilder:us-east-1:210987654321:image-pipeline/irf-sift".into(),
            name: "irf-sift".into(),
            status: "ENABLED".into(),
            schedule: Some("cron(0 6 ? * MON *)".into()),
            last_run: None,
            next_run: None,
        },
        images,
    })
}

fn host(id: &str, case: &str, state: &str) -> irf_engine::analysis::hosts::AnalysisHost {
    irf_engine::analysis::hosts::AnalysisHost {
        instance_id: id.into(),
        case_id: case.into(),
        state: irf_engine::model::instance::InstanceState::parse(state),
        instance_type: "m5.xlarge".into(),
        image_id: "ami-1".into(),
        subnet_id: Some("subnet-a".into()),
        vpc_id: Some("vpc-a".into()),
        private_ip: Some("10.200.1.4".into()),
        public_ip: None,
        instance_profile: Some("irf-analyst".into()),
        imdsv2_required: true,
        evidence: Some("verified 2/2".into()),
        ssm: irf_engine::analysis::hosts::Reachability::Online,
        launched_at: None,
        age_secs: Some(7_500),
        cost_usd: Some(0.4),
    }
}
