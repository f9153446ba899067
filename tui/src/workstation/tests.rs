//! The workstation without a terminal: the update driven by inputs and engine events, and
//! every view and dialog rendered on a test backend and compared with reviewed snapshots.

use irf_engine::aws::CallerIdentity;
use irf_engine::config::AccountId;
use irf_engine::findings::Finding;
use irf_engine::inventory::{Instance, SweepEvent};
use irf_engine::organization::{MemberAccount, Organization, Scope, WhoAmI};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rstest::rstest;

use super::app::{App, Effect, EngineEvent, Input, Mode, Status, View};
use crate::keymap::{Key, KeyName, Keymap};
use crate::theme::Theme;

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
    let body = super::ui::table_body(&app);
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
