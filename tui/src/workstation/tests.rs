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

/// An engine failure with this text, as an event carries one.
fn failed(text: &str) -> super::failure::Failure {
    super::failure::Failure::boxed(text.into())
}

fn instances() -> Vec<Instance> {
    serde_json::from_str(include_str!("../../tests/fixtures/instances.json"))
        .expect("instances fixture")
}

fn findings() -> Vec<Finding> {
    serde_json::from_str(include_str!("../../tests/fixtures/findings.json"))
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
        .selected()
        .map(|r| r.instance.id.to_string())
        .unwrap_or_default()
}

#[test]
fn first_sweep_streams_in_and_the_unmanaged_account_shows_its_error() {
    let app = loaded_app(false);
    assert_eq!(app.instances.rows().len(), instances().len());
    let unmanaged = app
        .accounts
        .rows()
        .iter()
        .find(|a| a.name == "legacy-unmanaged")
        .expect("listed");
    assert!(
        unmanaged.errors[0].contains("cannot assume role"),
        "{:?}",
        unmanaged.errors
    );
    assert_eq!(app.sweep.failures, 1);
    let analyzed = app
        .instances
        .rows()
        .iter()
        .find(|r| r.instance.incident_status() == Some("Analyze"))
        .expect("the suspect");
    assert!(
        analyzed.instance.findings.open >= 1,
        "findings joined to their instance"
    );
}

#[test]
fn movement_keys_move_and_stop_at_the_ends() {
    let mut app = loaded_app(false);
    let total = app.instances.visible_len();
    press(&mut app, "jj");
    assert_eq!(app.instances.cursor(), 2);
    press(&mut app, "G");
    assert_eq!(app.instances.cursor(), total - 1);
    press(&mut app, "j");
    assert_eq!(app.instances.cursor(), total - 1, "stays at the end");
    press(&mut app, "g");
    assert_eq!(app.instances.cursor(), 0);
    press(&mut app, "k");
    assert_eq!(app.instances.cursor(), 0, "stays at the top");
    app.handle(Input::ScrollDown);
    assert_eq!(app.instances.cursor(), 1, "the wheel moves the selection");
}

#[test]
fn selection_follows_the_row_through_sorting_and_refresh() {
    let mut app = loaded_app(false);
    press(&mut app, "jjj");
    let chosen = selected_instance(&app);
    press(&mut app, ">~>");
    assert_eq!(
        selected_instance(&app),
        chosen,
        "re-sorting keeps the selected row"
    );

    // A second sweep: the table keeps its rows until the sweep completes.
    let effects = app.handle(Input::RefreshDue);
    assert_eq!(effects, vec![Effect::StartSweep, Effect::LoadFindings]);
    assert!(
        app.handle(Input::RefreshDue).is_empty(),
        "no second sweep while one runs"
    );
    app.on_engine(EngineEvent::Scope(Ok(scope())));
    let mut fewer = instances();
    fewer.retain(|i| i.id != instances()[0].id || i.id == chosen);
    app.on_engine(EngineEvent::Sweep(SweepEvent::Instances {
        account: String::new(),
        region: String::new(),
        instances: fewer.clone(),
    }));
    assert_eq!(
        app.instances.rows().len(),
        instances().len(),
        "old rows stay while the sweep runs"
    );
    app.on_engine(EngineEvent::Sweep(SweepEvent::Finished));
    assert_eq!(app.instances.rows().len(), fewer.len());
    assert_eq!(
        selected_instance(&app),
        chosen,
        "selection survives the refresh"
    );
    for instance in &fewer {
        assert_eq!(
            app.instance(&instance.id).map(|i| &i.id),
            Some(&instance.id),
            "found by id"
        );
    }
    if fewer.len() < instances().len() {
        assert!(
            app.instance(&instances()[0].id).is_none(),
            "gone after the refresh"
        );
    }
}

#[rstest]
#[case("tag:Role=web", 2)]
#[case("!tag:Role=web", 7)]
#[case("sev>=CRITICAL", 2)]
#[case("/^i-0hostile/", 1)]
#[case("state:stopped", 1)]
fn filter_narrows_rows_as_typed(#[case] filter: &str, #[case] expected: usize) {
    let mut app = loaded_app(false);
    press(&mut app, "/");
    press(&mut app, filter);
    assert!(matches!(app.mode, Mode::Filter { .. }));
    assert_eq!(app.instances.visible_len(), expected, "'{filter}'");
    press_named(&mut app, KeyName::Enter);
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.instances.visible_len(), expected, "kept after enter");
    press_named(&mut app, KeyName::Esc);
    assert_eq!(
        app.instances.visible_len(),
        instances().len(),
        "esc clears it"
    );
}

#[test]
fn a_bad_filter_says_why_and_keeps_the_rows() {
    let mut app = loaded_app(false);
    press(&mut app, "/sev>=URGENT");
    press_named(&mut app, KeyName::Enter);
    assert!(
        matches!(&app.status, Some(Status::Error(e)) if e.contains("'URGENT'")),
        "{:?}",
        app.status
    );
    assert_eq!(
        app.mode,
        Mode::Filter {
            input: "sev>=URGENT".into()
        },
        "still in the filter line to fix it"
    );
    press_named(&mut app, KeyName::Esc);
    assert_eq!(
        app.instances.visible_len(),
        instances().len(),
        "esc clears it"
    );
}

#[test]
fn command_mode_switches_views_and_completes() {
    let mut app = loaded_app(false);
    press(&mut app, ":fi");
    press_named(&mut app, KeyName::Tab);
    assert_eq!(
        app.mode,
        Mode::Command {
            input: "findings".into()
        }
    );
    press_named(&mut app, KeyName::Enter);
    assert_eq!(app.view, View::Findings);
    press(&mut app, ":sh");
    press_named(&mut app, KeyName::Enter);
    assert_eq!(app.view, View::Findings, "alias");
    press(&mut app, ":org");
    press_named(&mut app, KeyName::Enter);
    assert_eq!(app.view, View::Accounts);
    press(&mut app, ":frobnicate");
    press_named(&mut app, KeyName::Enter);
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("'frobnicate'")));
    let effects = press(&mut app, ":theme light");
    assert!(effects.is_empty());
    assert_eq!(
        press_named(&mut app, KeyName::Enter),
        vec![Effect::SetTheme("light".into())]
    );
}

#[test]
fn resolving_a_finding_asks_first_and_cancels_on_any_other_key() {
    let mut app = loaded_app(false);
    press(&mut app, "2");
    assert_eq!(app.view, View::Findings);
    assert!(press(&mut app, "R").is_empty());
    assert!(matches!(app.mode, Mode::Confirm(_)));
    assert!(press(&mut app, "n").is_empty(), "cancelled");
    assert_eq!(app.mode, Mode::Normal);
    press(&mut app, "R");
    let effects = press(&mut app, "y");
    let selected = app
        .findings
        .selected()
        .expect("a finding")
        .finding
        .id
        .clone();
    assert!(
        matches!(effects.as_slice(), [Effect::ResolveFinding { finding, .. }] if finding.id == selected),
        "{effects:?}"
    );
    let reload = app.on_engine(EngineEvent::FindingResolved(Ok("title".into())));
    assert_eq!(
        reload,
        vec![Effect::LoadFindings],
        "the view reloads after the change"
    );
}

#[test]
fn read_only_mode_has_no_mutating_binding_and_refuses_the_command() {
    let mut app = loaded_app(true);
    assert!(
        app.keymap
            .help()
            .iter()
            .all(|(command, _)| !command.is_mutating())
    );
    press(&mut app, "2");
    assert!(press(&mut app, "R").is_empty());
    assert_eq!(app.mode, Mode::Normal, "no confirmation opens");
    assert!(
        app.command(crate::keymap::KeyAction::ResolveFinding)
            .is_empty()
    );
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("read-only")));
}

#[test]
fn a_click_selects_the_row_under_the_mouse() {
    let mut app = loaded_app(false);
    let body = app.areas().table_body();
    app.handle(Input::Click {
        column: body.x + 3,
        row: body.y + 4,
    });
    assert_eq!(app.instances.cursor(), 4);
    app.handle(Input::Click { column: 0, row: 0 });
    assert_eq!(
        app.instances.cursor(),
        4,
        "a click outside the table changes nothing"
    );
}

#[test]
fn hostile_strings_render_inert() {
    let mut app = loaded_app(false);
    press(&mut app, "/hostile");
    press_named(&mut app, KeyName::Enter);
    let table = render(&app, &dark());
    let line = table
        .lines()
        .find(|l| l.contains("i-0hostile00000000a"))
        .expect("the hostile row");
    assert!(
        line.contains("evil\\e]0;pwned") && line.contains('…'),
        "escaped, and cut to its column with an ellipsis:\n{table}"
    );
    assert!(table.contains("acct\\e[1;1H"), "{table}");
    press_named(&mut app, KeyName::Enter);
    let screen = render(&app, &dark());
    for screen in [&table, &screen] {
        assert!(
            !screen.chars().any(|c| c.is_control() && c != '\n'),
            "no control character reaches the terminal"
        );
    }
    assert!(
        screen.contains("evil\\e]0;pwned\\x07\\e[2J\\e[31mred\\u{202e}afed"),
        "shown whole, escaped:\n{screen}"
    );
    assert!(
        screen.contains("\\r\\nInjected:"),
        "line breaks shown, not obeyed"
    );
    press(&mut app, "2");
    let screen = render(&app, &dark());
    assert!(
        screen.contains("Title with \\e[5m blink and \\x07 bell"),
        "{screen}"
    );
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
        trigger: "operator".into(),
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
fn acquiring_an_instance_says_what_will_happen_then_starts_the_case() {
    let mut app = loaded_app(false);
    press(&mut app, &format!("/{WEB}"));
    enter(&mut app);
    assert!(
        press(&mut app, "a").is_empty(),
        "nothing starts before the yes"
    );
    let text = confirmation_text(&app);
    for expected in [
        "Acquire memory and disk of i-ad331045abe82ba53 (prod-web-01)",
        "in account 165667010651 (prod-web), region eu-west-1:",
        "snapshots of every attached volume",
        "termination protection turned on",
        "a memory capture through SSM",
        "evidence written to the evidence bucket",
        "containment waits for approval",
    ] {
        assert!(text.contains(expected), "'{expected}' in:\n{text}");
    }
    assert!(
        !text.contains("IR instance profile"),
        "SSM reaches prod-web-01: nothing else changes"
    );
    assert!(press(&mut app, "n").is_empty(), "any other key cancels");
    assert_eq!(app.mode, Mode::Normal);

    press(&mut app, "a");
    let effects = press(&mut app, "y");
    let expected = CaseSubject {
        account: AccountId::parse(ACCOUNT).expect("account"),
        region: "eu-west-1".into(),
        instance_id: WEB.into(),
        memory: true,
        disk: true,
        containment: ContainmentPolicy::Approval,
    };
    assert_eq!(
        effects,
        vec![Effect::StartAcquisition { subject: expected }]
    );
    assert!(
        effects[0].is_mutating(),
        "refused by the runtime in read-only mode"
    );
}

#[test]
fn the_confirmation_follows_the_configured_policy_and_bucket() {
    let mut app = loaded_app(false);
    app.acquisition.containment = Ok(ContainmentPolicy::Never);
    app.acquisition.evidence_bucket = Some("irf-evidence-111122223333".into());
    press(&mut app, "a");
    let text = confirmation_text(&app);
    assert!(
        text.contains("evidence bucket irf-evidence-111122223333"),
        "{text}"
    );
    assert!(text.contains("no containment"), "{text}");
    press(&mut app, "n");

    app.acquisition.containment = Err("'yolo' is not a containment policy".into());
    assert!(press(&mut app, "a").is_empty());
    assert_eq!(app.mode, Mode::Normal, "no confirmation for a bad policy");
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("'yolo'")));
}

#[test]
fn acquiring_from_a_finding_acquires_the_finding_s_instance() {
    let mut app = loaded_app(false);
    press(&mut app, "2");
    press(&mut app, &format!("/{WEB}"));
    enter(&mut app);
    press(&mut app, "a");
    assert!(confirmation_text(&app).contains("of i-ad331045abe82ba53 (prod-web-01)"));
    let effects = press(&mut app, "y");
    assert!(
        matches!(effects.as_slice(), [Effect::StartAcquisition { subject }]
            if subject.instance_id == WEB && subject.account.as_str() == ACCOUNT && subject.region == "eu-west-1"),
        "{effects:?}"
    );
}

#[test]
fn acquiring_elsewhere_says_what_to_select() {
    let mut app = loaded_app(false);
    press(&mut app, "3");
    assert!(press(&mut app, "a").is_empty());
    assert_eq!(app.mode, Mode::Normal);
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains(":instances")));
}

#[test]
fn read_only_mode_refuses_acquisition_and_says_why() {
    let mut app = loaded_app(true);
    assert!(press(&mut app, "a").is_empty());
    assert_eq!(app.mode, Mode::Normal, "no confirmation opens");
    assert!(
        matches!(&app.status, Some(Status::Error(e)) if e.contains("read-only") && e.contains("acquire")),
        "{:?}",
        app.status
    );
    assert!(
        app.command(crate::keymap::KeyAction::AcquireInstance)
            .is_empty()
    );
    // A dialog that reached read-only mode some other way still changes nothing.
    app.mode = Mode::Confirm(super::app::Confirmation {
        title: "Acquire memory and disk".into(),
        lines: vec![],
        effect: Effect::StartAcquisition {
            subject: cases()[0].subject.clone(),
        },
    });
    assert!(press(&mut app, "y").is_empty());
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("read-only")));
}

#[test]
fn a_started_case_opens_the_case_view() {
    let mut app = loaded_app(false);
    let case = case_on(WEB, CaseStatus::Running, "2026-11-28T09:30:15Z");
    let effects = app.on_engine(EngineEvent::AcquisitionStarted {
        instance_id: WEB.into(),
        result: Ok(Box::new(Opened::New(case.clone()))),
    });
    assert_eq!(effects, vec![Effect::LoadCase(case.case_id.clone())]);
    assert_eq!(app.view, View::Case);
    assert!(
        matches!(&app.status, Some(Status::Info(m)) if m.starts_with("opened case 20261128T093015Z-i-ad331045abe82ba53")),
        "{:?}",
        app.status
    );
    assert_eq!(app.cases.rows().len(), 1, "listed before the next load");

    let effects = app.on_engine(EngineEvent::AcquisitionStarted {
        instance_id: WEB.into(),
        result: Ok(Box::new(Opened::Joined(case.clone()))),
    });
    assert_eq!(effects, vec![Effect::LoadCase(case.case_id.clone())]);
    assert!(
        matches!(&app.status, Some(Status::Info(m)) if m.starts_with("joined open case")),
        "{:?}",
        app.status
    );
    assert_eq!(app.cases.rows().len(), 1, "joined, not listed twice");
}

#[test]
fn an_acquisition_that_cannot_start_says_why_in_full() {
    let mut app = loaded_app(false);
    let why = "workflow.case_table is not set in the configuration: deploy 3-security-acquisition-automation.yaml and put its outputs in the config (see 'irf config path'), or run 'irf lab' to use the local lab";
    let effects = app.on_engine(EngineEvent::AcquisitionStarted {
        instance_id: WEB.into(),
        result: Err(failed(why)),
    });
    assert!(effects.is_empty());
    assert_eq!(app.view, View::Instances, "stays where it was");
    let screen = render(&app, &dark());
    let footer: String = screen.lines().rev().take(2).collect::<Vec<_>>().join("");
    assert!(
        footer.contains("could not acquire i-ad331045abe82ba53") && footer.contains("local lab"),
        "the whole error, over two lines:\n{screen}"
    );
}

#[test]
fn the_cases_view_fills_polls_while_a_case_is_open_and_opens_a_case() {
    let mut app = loaded_app(false);
    press(&mut app, ":case");
    assert_eq!(
        enter(&mut app),
        vec![Effect::LoadCases],
        "`case` names it too"
    );
    assert_eq!(app.view, View::Cases);
    assert!(
        app.handle(Input::CasesPollDue).is_empty(),
        "no poll before the first answer"
    );
    app.on_engine(EngineEvent::Cases(Ok(cases())));
    assert_eq!(app.cases.visible_len(), 4);
    let newest = app.cases.selected().expect("selected").case.case_id.clone();
    assert_eq!(
        newest.as_str(),
        "20261128T093015Z-i-ad331045abe82ba53",
        "newest first"
    );

    assert_eq!(app.handle(Input::CasesPollDue), vec![Effect::LoadCases]);
    assert!(
        app.handle(Input::CasesPollDue).is_empty(),
        "one load at a time"
    );
    let ended: Vec<Case> = cases()
        .into_iter()
        .filter(|c| !c.status.is_open())
        .collect();
    app.on_engine(EngineEvent::Cases(Ok(ended)));
    assert!(
        app.handle(Input::CasesPollDue).is_empty(),
        "ended cases do not change by themselves"
    );
    assert_eq!(
        press(&mut app, "r"),
        vec![Effect::LoadCases],
        "r still reloads"
    );
    app.on_engine(EngineEvent::Cases(Ok(cases())));
    press(&mut app, "1");
    assert!(
        app.handle(Input::CasesPollDue).is_empty(),
        "no poll when the view is not shown"
    );

    press(&mut app, "4");
    app.on_engine(EngineEvent::Cases(Ok(cases())));
    press(&mut app, "/state:awaiting");
    enter(&mut app);
    assert_eq!(
        app.cases.visible_len(),
        1,
        "filterable like the other tables"
    );
    let waiting = app.cases.selected().expect("selected").case.case_id.clone();
    assert_eq!(enter(&mut app), vec![Effect::LoadCase(waiting.clone())]);
    assert_eq!(app.view, View::Case);
    assert_eq!(app.case.as_ref().map(|c| &c.case.case_id), Some(&waiting));
}

#[test]
fn the_case_view_polls_its_open_case_and_esc_goes_back() {
    let mut app = cases_app();
    let id = running_detail().case.case_id;
    assert_eq!(enter(&mut app), vec![Effect::LoadCase(id.clone())]);
    assert!(
        app.handle(Input::CasePollDue).is_empty(),
        "one load at a time"
    );
    // An answer about another case (the operator moved on) changes nothing.
    app.on_engine(EngineEvent::CaseLoaded {
        case_id: case_id("20261101T000000Z-i-other"),
        result: Ok(Box::new(running_detail())),
    });
    assert!(app.case.as_ref().is_some_and(|c| c.detail.is_none()));
    app.on_engine(EngineEvent::CaseLoaded {
        case_id: id.clone(),
        result: Ok(Box::new(running_detail())),
    });
    assert_eq!(
        app.case
            .as_ref()
            .and_then(|c| c.detail.as_ref())
            .map(|d| d.artifacts.len()),
        Some(2)
    );
    assert_eq!(
        app.handle(Input::CasePollDue),
        vec![Effect::LoadCase(id.clone())]
    );

    // A failed poll keeps the last detail and says why.
    app.on_engine(EngineEvent::CaseLoaded {
        case_id: id.clone(),
        result: Err(failed("dynamodb:Query failed: throttled")),
    });
    assert!(app.case.as_ref().is_some_and(|c| c.detail.is_some()));
    assert!(render(&app, &dark()).contains("could not refresh the case"));

    // The case ends: no more polling.
    assert_eq!(
        app.handle(Input::CasePollDue),
        vec![Effect::LoadCase(id.clone())]
    );
    let mut ended = running_detail();
    ended.case.status = CaseStatus::Succeeded;
    app.on_engine(EngineEvent::CaseLoaded {
        case_id: id.clone(),
        result: Ok(Box::new(ended)),
    });
    assert!(app.handle(Input::CasePollDue).is_empty());
    assert_eq!(
        app.cases
            .rows()
            .iter()
            .find(|r| r.case.case_id == id)
            .map(|r| r.case.status),
        Some(CaseStatus::Succeeded),
        "the list learns the new status too"
    );

    assert_eq!(press_named(&mut app, KeyName::Esc), vec![Effect::LoadCases]);
    assert_eq!(app.view, View::Cases);
}

#[test]
fn progress_is_shown_in_human_units() {
    use super::case_view::progress_ratio;
    use super::format::{eta, human_bytes, rate_text};
    assert_eq!(human_bytes(512), "512 B");
    assert_eq!(human_bytes(12 * GIB), "12.00 GiB");
    assert_eq!(human_bytes(1536 * 1024), "1.50 MiB");
    assert_eq!(rate_text(64.0 * 1024.0 * 1024.0), "64.0 MiB/s");
    assert_eq!(rate_text(f64::NAN), "- MiB/s");
    assert_eq!(
        eta(12 * GIB, 24 * GIB, 64.0 * 1024.0 * 1024.0).as_deref(),
        Some("3m 12s")
    );
    assert_eq!(eta(0, 24 * GIB, 1024.0).as_deref(), Some("291d 06h"));
    assert_eq!(eta(1, 2, 0.0), None, "no rate, no guess");
    assert_eq!(eta(1, 2, f64::INFINITY), None);

    use super::case_view::wrap_untrusted;
    assert_eq!(wrap_untrusted("abcdef", 3, 3), vec!["abc", "def"]);
    assert_eq!(
        wrap_untrusted("abcdefghij", 3, 2),
        vec!["abc", "de…"],
        "cut with an ellipsis"
    );
    assert_eq!(wrap_untrusted("a\u{1b}b", 10, 1), vec!["a\\eb"]);

    let mut artifact = running_detail().artifacts[0].clone();
    assert!((progress_ratio(&artifact) - 0.5).abs() < f64::EPSILON);
    artifact.bytes_done = artifact.bytes_total * 3;
    assert!(
        (progress_ratio(&artifact) - 1.0).abs() < f64::EPSILON,
        "never past full"
    );
    artifact.bytes_total = 0;
    assert!(
        progress_ratio(&artifact).abs() < f64::EPSILON,
        "size not known yet"
    );

    let app = case_app(running_detail());
    let screen = render(&app, &dark());
    for expected in [
        "12.00 GiB of 24.00 GiB  64.0 MiB/s  ETA 3m 12s",
        "8.00 GiB of 8.00 GiB",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "50.0%",
        "100.0%",
    ] {
        assert!(screen.contains(expected), "'{expected}' in:\n{screen}");
    }
}

#[test]
fn hostile_case_text_renders_inert() {
    let app = case_app(running_detail());
    let screen = render(&app, &dark());
    assert!(
        screen.contains("connection reset\\e[0m") && screen.contains("\\e[31m"),
        "escaped:\n{screen}"
    );
    assert!(
        !screen.chars().any(|c| c.is_control() && c != '\n'),
        "no control character reaches the terminal"
    );
    let mut app = cases_app();
    press(&mut app, "/hostile");
    enter(&mut app);
    enter(&mut app);
    let mut failed = case_on(
        "i-0hostile00000000a",
        CaseStatus::Failed,
        "2026-11-27T17:58:40Z",
    );
    failed.requested_by = "arn:aws:sts::1:assumed-role/x/\u{1b}]0;owned\u{7}".into();
    app.on_engine(EngineEvent::CaseLoaded {
        case_id: failed.case_id.clone(),
        result: Ok(Box::new(CaseDetail {
            case: failed,
            steps: vec![],
            artifacts: vec![],
            approval: None,
            containment: None,
            ledger: vec![],
        })),
    });
    let screen = render(&app, &dark());
    assert!(screen.contains("\\e[31mIncorrectState"), "{screen}");
    assert!(screen.contains("x/\\e]0;owned\\x07"), "{screen}");
    assert!(!screen.chars().any(|c| c.is_control() && c != '\n'));
}

#[test]
fn a_case_waiting_for_approval_says_how_to_approve() {
    let mut detail = running_detail();
    detail.case.status = CaseStatus::AwaitingApproval;
    detail.approval = Some(PendingApproval {
        case_id: detail.case.case_id.clone(),
        requested_at: "2026-11-28T09:50:00Z".into(),
        decided: None,
    });
    let app = case_app(detail.clone());
    let screen = render(&app, &dark());
    assert!(
        screen.contains(
            "waiting for approval: irf approve 20261128T093015Z-i-ad331045abe82ba53 --confirm i-ad331045abe82ba53"
        ),
        "{screen}"
    );
    if let Some(approval) = &mut detail.approval {
        approval.decided = Some(ApprovalDecision {
            decision: "approved".into(),
            by: "arn:aws:sts::123456789012:assumed-role/irf-approver/bob".into(),
            at: "2026-11-28T10:02:00Z".into(),
            reason: None,
        });
    }
    detail.case.status = CaseStatus::Running;
    let screen = render(&case_app(detail), &dark());
    assert!(!screen.contains("waiting for approval"), "{screen}");
    assert!(
        screen.contains("approved by arn:aws:sts::123456789012:assumed-role/irf-approver/bob at 2026-11-28 10:02:00"),
        "{screen}"
    );
}

#[test]
fn the_cases_view_says_why_it_is_empty() {
    let mut app = loaded_app(false);
    press(&mut app, "4");
    assert!(render(&app, &dark()).contains("reading the case table…"));
    app.on_engine(EngineEvent::Cases(Err(failed(
        "workflow.case_table is not set in the configuration",
    ))));
    let screen = render(&app, &dark());
    assert!(
        screen.contains("could not read the case table: workflow.case_table is not set"),
        "{screen}"
    );
    assert!(
        app.handle(Input::CasesPollDue).is_empty(),
        "a failing table is not polled"
    );
    app.on_engine(EngineEvent::Cases(Ok(vec![])));
    assert!(render(&app, &dark()).contains("no cases yet: select an instance"));
}

#[test]
fn cases_and_case_views_render() {
    let app = cases_app();
    insta::assert_snapshot!("cases", render(&app, &dark()));
    let app = case_app(running_detail());
    insta::assert_snapshot!("case_running", render(&app, &dark()));
}

fn waiting(kind: &'static str, id: &str, instance_id: &str) -> crate::contain::PendingDecision {
    crate::contain::PendingDecision {
        kind,
        id: id.into(),
        instance: irf_engine::model::containment::InstanceRef {
            account: AccountId::parse("165667010651").expect("id"),
            region: "us-east-1".into(),
            instance_id: instance_id.into(),
        },
        requested_by: "arn:aws:sts::123456789012:assumed-role/irf-responder/alice".into(),
        requested_at: "2026-11-28T09:50:00Z".into(),
        approve: String::new(),
        reject: String::new(),
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
            "case",
            "20261128T093015Z-i-ad331045abe82ba53",
            "i-ad331045abe82ba53",
        ),
        waiting("request", "i-0b1c2d3e4f5a6b7c8", "i-0b1c2d3e4f5a6b7c8"),
    ])));
    app
}

#[test]
fn approving_takes_the_typed_instance_id_and_nothing_else() {
    use super::app::TypedDecision;
    let mut app = approvals_app(false);
    let screen = render(&app, &dark());
    assert!(screen.contains("approvals (2/2)"), "{screen}");
    assert!(screen.contains("i-0b1c2d3e4f5a6b7c8"), "{screen}");
    let expected_case = CaseId::parse("20261128T093015Z-i-ad331045abe82ba53").expect("case id");
    let effects = press(&mut app, "A");
    let [Effect::PlanContainment { decision, instance }] = effects.as_slice() else {
        panic!("approval plans first: {effects:?}");
    };
    assert_eq!(decision, &TypedDecision::ApproveCase(expected_case.clone()));
    assert_eq!(app.mode, Mode::Normal, "no dialog before the plan is there");
    app.on_engine(EngineEvent::ContainmentPlanned {
        decision: decision.clone(),
        result: Ok(Box::new(plan_of(instance))),
    });
    assert!(
        matches!(&app.mode, Mode::Typed(p) if p.expected.as_deref() == Some("i-ad331045abe82ba53"))
    );
    let screen = render(&app, &dark());
    assert!(
        screen.contains(
            "replace security groups eni-0a1: sg-web, sg-internal -> irf-isolation (new)"
        ),
        "the plan is shown: {screen}"
    );
    assert!(screen.contains("! containment cuts SSM off"), "{screen}");
    // A wrong id is refused by name, changes nothing, and leaves the prompt open to fix.
    assert!(press(&mut app, "i-ad331045abe82ba5").is_empty());
    assert!(press_named(&mut app, KeyName::Enter).is_empty());
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("'i-ad331045abe82ba5'")));
    assert!(matches!(&app.mode, Mode::Typed(_)));
    let screen = render(&app, &dark());
    assert!(
        screen.contains("instance id: i-ad331045abe82ba5"),
        "{screen}"
    );
    press(&mut app, "3");
    let effects = press_named(&mut app, KeyName::Enter);
    assert_eq!(
        effects,
        vec![Effect::Decide {
            decision: TypedDecision::ApproveCase(expected_case),
            answer: "i-ad331045abe82ba53".into(),
        }]
    );
    assert_eq!(app.mode, Mode::Normal);
    // The outcome is shown and what waits is read again.
    let reload = app.on_engine(EngineEvent::ContainmentDone(Ok("approved".into())));
    assert_eq!(reload, vec![Effect::LoadApprovals]);
}

#[test]
fn refusing_needs_a_reason_and_esc_changes_nothing() {
    use super::app::TypedDecision;
    let mut app = approvals_app(false);
    press(&mut app, "j");
    press(&mut app, "X");
    assert!(
        press_named(&mut app, KeyName::Enter).is_empty(),
        "no reason, no refusal"
    );
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("reason")));
    press(&mut app, "false positive");
    let effects = press_named(&mut app, KeyName::Enter);
    assert!(
        matches!(effects.as_slice(), [Effect::Decide { decision: TypedDecision::RejectRequest(i), answer }] if i.instance_id == "i-0b1c2d3e4f5a6b7c8" && answer == "false positive"),
        "{effects:?}"
    );
    let effects = press(&mut app, "A");
    let [Effect::PlanContainment { decision, instance }] = effects.as_slice() else {
        panic!("approval plans first: {effects:?}");
    };
    assert_eq!(decision, &TypedDecision::ApplyRequest(instance.clone()));
    app.on_engine(EngineEvent::ContainmentPlanned {
        decision: decision.clone(),
        result: Ok(Box::new(plan_of(instance))),
    });
    press(&mut app, "i-0b1c2d3e4f5a6b7c8");
    assert!(press_named(&mut app, KeyName::Esc).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    assert!(matches!(&app.status, Some(Status::Info(m)) if m.contains("nothing was changed")));
}

#[test]
fn read_only_mode_shows_approvals_but_cannot_decide() {
    let mut app = approvals_app(true);
    let screen = render(&app, &dark());
    assert!(screen.contains("i-ad331045abe82ba53"), "{screen}");
    for key in ["A", "X", "U"] {
        assert!(press(&mut app, key).is_empty());
        assert_eq!(app.mode, Mode::Normal, "{key} opens nothing");
        assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("read-only")));
    }
    for action in [
        crate::keymap::KeyAction::ApproveContainment,
        crate::keymap::KeyAction::RejectContainment,
        crate::keymap::KeyAction::RollbackContainment,
    ] {
        assert!(action.is_mutating());
        assert!(
            app.keymap.key_for(action).is_none(),
            "{action:?} is unbound"
        );
    }
}

#[test]
fn rollback_from_the_case_view_takes_the_typed_instance_id() {
    use super::app::TypedDecision;
    let mut detail = running_detail();
    detail.case.status = CaseStatus::Succeeded;
    let mut app = case_app(detail);
    assert!(press(&mut app, "U").is_empty());
    press(&mut app, "i-ad331045abe82ba53");
    let effects = press_named(&mut app, KeyName::Enter);
    assert!(
        matches!(effects.as_slice(), [Effect::Decide { decision: TypedDecision::Rollback(i), .. }] if i.instance_id == "i-ad331045abe82ba53"),
        "{effects:?}"
    );
    // Approval is only offered for a case that waits for it.
    assert!(press(&mut app, "A").is_empty());
    assert!(
        matches!(&app.status, Some(Status::Error(e)) if e.contains("not waiting for approval"))
    );
}

#[test]
fn the_case_view_shows_the_instances_containment() {
    use irf_engine::model::containment::{
        ContainmentRecord, ContainmentState, InstanceRef, RecordedAction,
    };
    let mut detail = running_detail();
    detail.case.status = CaseStatus::Succeeded;
    detail.containment = Some(ContainmentRecord {
        instance: InstanceRef::from(&detail.case.subject),
        state: ContainmentState::Contained,
        case_id: Some(detail.case.case_id.clone()),
        original: None,
        isolation_group_id: Some("sg-0isolation".into()),
        profile_after: Some("IRIsolationProfile".into()),
        asg_decremented: false,
        requested_by: "arn:aws:sts::123456789012:assumed-role/irf-responder/alice".into(),
        requested_at: "2026-11-28T09:40:00Z".into(),
        reason: None,
        actions: vec![RecordedAction {
            at: "2026-11-28T09:41:00Z".into(),
            by: "arn:aws:sts::1:assumed-role/x/\u{1b}[2Jbob".into(),
            action: "tag".into(),
            detail: "SecurityIncidentStatus=Contain".into(),
        }],
    });
    let app = case_app(detail);
    let screen = render(&app, &dark());
    assert!(
        screen.contains("contained (1 change recorded; last: tag at 2026-11-28T09:41:00Z"),
        "{screen}"
    );
    assert!(screen.contains("\\e[2Jbob"), "escaped: {screen}");
    assert!(screen.contains("<U> roll back"), "{screen}");
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

#[test]
fn the_evidence_view_lists_holds_and_asks_before_changing_one() {
    let mut app = loaded_app(false);
    // Wide enough for the key column, where the hostile key must show escaped.
    app.handle(Input::Resize {
        width: 230,
        height: 32,
    });
    assert_eq!(press(&mut app, "6"), vec![Effect::LoadEvidence]);
    app.on_engine(EngineEvent::Evidence(Ok(vec![
        evidence_item("cases/a/disk/vol-1.raw", false),
        evidence_item("cases/a/memory/i-1.lime\u{1b}[2J", true),
    ])));
    let screen = render(&app, &dark());
    assert!(screen.contains("evidence (2/2)"), "{screen}");
    assert!(screen.contains("COMPLIANCE"), "{screen}");
    assert!(screen.contains("HOLD"), "{screen}");
    assert!(!screen.contains('\u{1b}'), "escaped: {screen}");
    assert!(
        screen.contains("i-1.lime\\e[2J"),
        "the key is shown escaped: {screen}"
    );
    let selected = app
        .evidence
        .selected()
        .expect("a row is selected")
        .item
        .clone();
    let held = selected.lock.as_ref().is_some_and(|l| l.legal_hold);
    assert!(press(&mut app, "H").is_empty());
    let title = if held {
        "Remove legal hold"
    } else {
        "Place legal hold"
    };
    assert!(
        matches!(&app.mode, Mode::Confirm(c) if c.title == title),
        "{:?}",
        app.mode
    );
    let effects = press(&mut app, "y");
    assert_eq!(
        effects,
        vec![Effect::SetLegalHold {
            case_id: selected.case_id.clone(),
            key: selected.key.clone(),
            on: !held,
        }]
    );
    // Any other key than y cancels and changes nothing.
    press(&mut app, "H");
    assert!(press(&mut app, "n").is_empty());
    assert_eq!(app.mode, Mode::Normal);
    let reload = app.on_engine(EngineEvent::LegalHoldSet(Ok("legal hold placed".into())));
    assert_eq!(reload, vec![Effect::LoadEvidence]);

    let mut read_only = loaded_app(true);
    press(&mut read_only, "6");
    read_only.on_engine(EngineEvent::Evidence(Ok(vec![evidence_item("k", false)])));
    assert!(press(&mut read_only, "H").is_empty());
    assert_eq!(read_only.mode, Mode::Normal);
}

#[test]
fn the_case_view_verifies_and_exports_and_shows_what_failed() {
    use irf_engine::ledger::{CheckedItem, Verification};
    let mut detail = running_detail();
    detail.case.status = CaseStatus::Succeeded;
    let case_id = detail.case.case_id.clone();
    let mut app = case_app(detail);
    assert_eq!(
        press(&mut app, "V"),
        vec![Effect::VerifyCase(case_id.clone())]
    );
    assert_eq!(
        press(&mut app, "E"),
        vec![Effect::ExportReport(case_id.clone())]
    );
    app.on_engine(EngineEvent::CaseVerified {
        case_id: case_id.clone(),
        result: Ok(Box::new(Verification {
            case_id: case_id.clone(),
            verified_at: "2026-11-28T10:00:00Z".into(),
            items: vec![
                CheckedItem {
                    item: "ledger entry 1".into(),
                    verified: true,
                    detail: "case opened".into(),
                },
                CheckedItem {
                    item: "cases/x/memory/i-1.lime".into(),
                    verified: false,
                    detail: "hashes to 00ff now, its manifest says 9f86".into(),
                },
            ],
        })),
    });
    let screen = render(&app, &dark());
    assert!(screen.contains("1 of 2 items NOT verified"), "{screen}");
    assert!(
        screen.contains("cases/x/memory/i-1.lime: hashes to 00ff now, its manifest says 9f86"),
        "{screen}"
    );
    app.on_engine(EngineEvent::ReportWritten(Ok("irf-report-x.md".into())));
    assert!(matches!(&app.status, Some(Status::Info(m)) if m.contains("irf-report-x.md")));
}

#[test]
fn the_help_scrolls_when_it_is_taller_than_the_screen() {
    let mut app = loaded_app(false);
    app.handle(Input::Resize {
        width: 120,
        height: 24,
    });
    press(&mut app, "?");
    let screen = render(&app, &dark());
    assert!(screen.contains("j/k scroll"), "{screen}");
    assert!(!screen.contains("red keys change things"), "{screen}");
    for _ in 0..20 {
        press(&mut app, "j");
    }
    let screen = render(&app, &dark());
    assert!(screen.contains("red keys change things"), "{screen}");
    assert!(matches!(app.mode, Mode::Help { .. }));
    press(&mut app, "x");
    assert_eq!(app.mode, Mode::Normal, "any other key closes it");
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
        state: state.into(),
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

#[test]
fn the_images_view_lists_builds_polls_while_one_runs_and_asks_before_a_build() {
    let mut app = loaded_app(false);
    assert_eq!(press(&mut app, "7"), vec![Effect::LoadImages]);
    app.on_engine(EngineEvent::Images(Ok(pipeline(vec![
        image("1.0.0/1", "AVAILABLE", Some("ami-0aaa")),
        image("1.0.0/2", "BUILDING", None),
    ]))));
    let screen = render(&app, &dark());
    assert!(screen.contains("images (2/2)"), "{screen}");
    assert!(
        screen.contains("irf-sift ENABLED · schedule cron(0 6 ? * MON *) · last run never"),
        "the pipeline's runs: {screen}"
    );
    assert!(
        screen.contains("BUILDING") && screen.contains("us-east-1 ami-0aaa"),
        "{screen}"
    );
    // Newest first.
    assert_eq!(
        app.images.selected().map(|r| r.image.version.as_str()),
        Some("1.0.0/2")
    );
    // A running build is polled; a finished list is not.
    assert_eq!(app.handle(Input::CasesPollDue), vec![Effect::LoadImages]);
    app.on_engine(EngineEvent::Images(Ok(pipeline(vec![image(
        "1.0.0/1",
        "AVAILABLE",
        Some("ami-0aaa"),
    )]))));
    assert!(app.handle(Input::CasesPollDue).is_empty());

    assert!(press(&mut app, "b").is_empty());
    assert!(confirmation_text(&app).contains("irf-sift"));
    assert_eq!(press(&mut app, "y"), vec![Effect::StartImageBuild]);
    let reload = app.on_engine(EngineEvent::ImageBuildStarted(Ok("arn:image/2".into())));
    assert_eq!(reload, vec![Effect::LoadImages]);

    // b elsewhere says where builds start, and asks nothing.
    press(&mut app, "1");
    assert!(press(&mut app, "b").is_empty());
    assert_eq!(app.mode, Mode::Normal);
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains(":images")));
}

#[test]
fn a_host_is_launched_from_the_case_view_once_at_a_time() {
    let detail = running_detail();
    let case_id = detail.case.case_id.clone();
    let mut app = case_app(detail);
    assert!(press(&mut app, "l").is_empty());
    let text = confirmation_text(&app);
    assert!(
        text.contains(case_id.as_str()) && text.contains("SHA-256"),
        "{text}"
    );
    assert_eq!(
        press(&mut app, "y"),
        vec![Effect::LaunchHost {
            case_id: case_id.clone()
        }]
    );
    // A second launch waits for the first one's outcome.
    assert!(press(&mut app, "l").is_empty());
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("still being launched")));
    let effects = app.on_engine(EngineEvent::HostLaunched(Err(failed("no image"))));
    assert_eq!(effects, vec![Effect::LoadHosts]);
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("launch failed: no image")));
    press(&mut app, "l");
    assert!(matches!(app.mode, Mode::Confirm(_)));
    // Without a case, l says what to do.
    let mut elsewhere = loaded_app(false);
    assert!(press(&mut elsewhere, "l").is_empty());
    assert_eq!(elsewhere.mode, Mode::Normal);
}

#[test]
fn the_hosts_view_opens_sessions_and_terminates_only_after_the_typed_id() {
    let mut app = loaded_app(false);
    app.handle(Input::Resize {
        width: 230,
        height: 32,
    });
    assert_eq!(press(&mut app, "8"), vec![Effect::LoadHosts]);
    app.on_engine(EngineEvent::Hosts(Ok(vec![
        host(
            "i-0aaa",
            "20261128T150000Z-i-1\u{1b}]0;pwned\u{7}",
            "running",
        ),
        host("i-0bbb", "20261128T150000Z-i-2", "stopped"),
    ])));
    let screen = render(&app, &dark());
    assert!(screen.contains("hosts (2/2)"), "{screen}");
    assert!(
        screen.contains("verified 2/2") && screen.contains("$0.40"),
        "{screen}"
    );
    assert!(screen.contains("2h05m"), "age: {screen}");
    // The hostile case id is shown escaped (ratatui would drop raw control bytes silently).
    assert!(screen.contains("i-1\\e]0;pwned"), "{screen}");
    let selected = app
        .hosts
        .selected()
        .expect("a host")
        .host
        .instance_id
        .clone();
    let effects = press(&mut app, "s");
    if selected == "i-0aaa" {
        assert_eq!(
            effects,
            vec![Effect::OpenSession {
                instance_id: "i-0aaa".into()
            }]
        );
        press(&mut app, "j");
    }
    assert_eq!(
        app.hosts.selected().map(|r| r.host.instance_id.as_str()),
        Some("i-0bbb")
    );
    assert!(
        press(&mut app, "s").is_empty(),
        "a stopped host has no session"
    );
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("stopped")));

    assert!(press(&mut app, "T").is_empty());
    assert!(matches!(app.mode, Mode::Typed(_)));
    press(&mut app, "i-0aaa");
    assert!(enter(&mut app).is_empty(), "another host's id is refused");
    assert!(matches!(app.mode, Mode::Typed(_)));
    for _ in 0..6 {
        press_named(&mut app, KeyName::Backspace);
    }
    press(&mut app, "i-0bbb");
    assert_eq!(
        enter(&mut app),
        vec![Effect::Decide {
            decision: super::app::TypedDecision::TerminateHost("i-0bbb".into()),
            answer: "i-0bbb".into(),
        }]
    );
    let reload = app.on_engine(EngineEvent::HostTerminated(Ok(
        "i-0bbb is terminating".into()
    )));
    assert_eq!(reload, vec![Effect::LoadHosts]);
    // One load at a time; once it is answered, the hosts view polls while shown.
    assert!(app.handle(Input::CasesPollDue).is_empty());
    app.on_engine(EngineEvent::Hosts(Ok(vec![host("i-0aaa", "c", "running")])));
    assert_eq!(app.handle(Input::CasesPollDue), vec![Effect::LoadHosts]);
}

#[test]
fn read_only_mode_shows_images_and_hosts_but_changes_nothing() {
    let mut app = loaded_app(true);
    press(&mut app, "8");
    app.on_engine(EngineEvent::Hosts(Ok(vec![host("i-0aaa", "c", "running")])));
    for key in ["s", "T", "l"] {
        assert!(press(&mut app, key).is_empty(), "{key}");
        assert_eq!(app.mode, Mode::Normal);
    }
    press(&mut app, "7");
    assert!(press(&mut app, "b").is_empty());
    assert_eq!(app.mode, Mode::Normal);
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("read-only")));
    let screen = render(&app, &dark());
    assert!(!screen.contains("<b> build"), "{screen}");
}
