//! The list views as tables: the sweep streaming in, movement, sorting, filters, the command line, clicks, the help, and hostile text kept inert.

use super::*;

#[test]
fn first_sweep_streams_in_and_the_unmanaged_account_shows_its_error() {
    let app = loaded_app(false);
    assert_eq!(app.instances.table.rows().len(), instances().len());
    let unmanaged = app
        .accounts
        .table
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
        .table
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
    let total = app.instances.table.visible_len();
    press(&mut app, "jj");
    assert_eq!(app.instances.table.cursor(), 2);
    press(&mut app, "G");
    assert_eq!(app.instances.table.cursor(), total - 1);
    press(&mut app, "j");
    assert_eq!(app.instances.table.cursor(), total - 1, "stays at the end");
    press(&mut app, "g");
    assert_eq!(app.instances.table.cursor(), 0);
    press(&mut app, "k");
    assert_eq!(app.instances.table.cursor(), 0, "stays at the top");
    app.handle(Input::ScrollDown);
    assert_eq!(
        app.instances.table.cursor(),
        1,
        "the wheel moves the selection"
    );
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
        app.instances.table.rows().len(),
        instances().len(),
        "old rows stay while the sweep runs"
    );
    app.on_engine(EngineEvent::Sweep(SweepEvent::Finished));
    assert_eq!(app.instances.table.rows().len(), fewer.len());
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
    assert_eq!(app.instances.table.visible_len(), expected, "'{filter}'");
    press_named(&mut app, KeyName::Enter);
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(
        app.instances.table.visible_len(),
        expected,
        "kept after enter"
    );
    press_named(&mut app, KeyName::Esc);
    assert_eq!(
        app.instances.table.visible_len(),
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
        app.instances.table.visible_len(),
        instances().len(),
        "esc clears it"
    );
}

/// ctrl-u empties the line being typed (a filter, a command, a typed answer), as in a shell.
#[test]
fn ctrl_u_empties_the_line_being_typed() {
    let ctrl_u = Input::Key(Key {
        code: KeyName::Char('u'),
        ctrl: true,
        alt: false,
    });
    let mut app = loaded_app(false);
    press(&mut app, "/prod-db");
    assert_eq!(app.instances.table.visible_len(), 1);
    app.handle(ctrl_u);
    press(&mut app, "prod-web");
    assert_eq!(
        app.mode,
        Mode::Filter {
            input: "prod-web".into()
        },
        "a new term, not appended"
    );
    press_named(&mut app, KeyName::Enter);
    press(&mut app, ":fin");
    app.handle(ctrl_u);
    assert_eq!(
        app.mode,
        Mode::Command {
            input: String::new()
        }
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
        .table
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
    assert_eq!(app.instances.table.cursor(), 4);
    app.handle(Input::Click { column: 0, row: 0 });
    assert_eq!(
        app.instances.table.cursor(),
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
        line.contains("evil\\e]0;pwned\\x07\\e[2J\\e[31mred\\u{202e}afed"),
        "escaped, whole where there is room:\n{table}"
    );
    assert!(table.contains("acct\\e[1;1H"), "{table}");
    app.handle(Input::Resize {
        width: 80,
        height: 24,
    });
    let narrow = render(&app, &dark());
    let line = narrow
        .lines()
        .find(|l| l.contains("i-0hostile00000000a"))
        .expect("the hostile row at 80 columns");
    assert!(
        line.contains("evil\\e]0;pw") && line.contains('…'),
        "escaped, and cut to its column with an ellipsis:\n{narrow}"
    );
    app.handle(Input::Resize {
        width: 150,
        height: 32,
    });
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

#[test]
fn findings_name_their_accounts_and_account_filters_match_the_name() {
    use irf_engine::organization::MemberAccount;
    let mut app = loaded_app(false);
    // The Organization names the findings' account; the instances view names it the same.
    let mut named = scope();
    named.accounts = vec![MemberAccount {
        id: AccountId::parse("165667010651").expect("id"),
        name: "Prod-Payments".into(),
    }];
    app.on_engine(EngineEvent::Scope(Ok(named)));
    press(&mut app, "2");
    let total = app.findings.table.visible_len();
    assert!(total > 0);
    let screen = render(&app, &dark());
    assert!(screen.contains("Prod-Payments"), "{screen}");
    for term in ["account:prod-pay", "account:165667010651"] {
        press(&mut app, &format!("/{term}"));
        press_named(&mut app, KeyName::Enter);
        assert_eq!(app.findings.table.visible_len(), total, "{term}");
        press_named(&mut app, KeyName::Esc);
    }
    press(&mut app, "/account:billing");
    press_named(&mut app, KeyName::Enter);
    assert_eq!(app.findings.table.visible_len(), 0);
}

#[test]
fn profile_and_region_switch_the_identity_on_aws_and_say_why_not_on_the_lab() {
    let mut app = loaded_app(false);
    // The lab's workstation (no reconnection) refuses, saying why.
    press(&mut app, ":profile ir");
    assert!(press_named(&mut app, KeyName::Enter).is_empty());
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("lab's operator")));

    app.identity_switch = true;
    press(&mut app, ":profile ir");
    assert_eq!(
        press_named(&mut app, KeyName::Enter),
        vec![Effect::SwitchIdentity {
            profile: Some("ir".into()),
            region: None
        }]
    );
    press(&mut app, ":region eu-central-2");
    assert_eq!(
        press_named(&mut app, KeyName::Enter),
        vec![Effect::SwitchIdentity {
            profile: None,
            region: Some("eu-central-2".into())
        }]
    );
    press(&mut app, ":region mars-1");
    assert!(press_named(&mut app, KeyName::Enter).is_empty());
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("'mars-1'")));
    press(&mut app, ":profile");
    assert!(press_named(&mut app, KeyName::Enter).is_empty());
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("aws sso login")));
}

#[test]
fn o_jumps_from_a_row_to_its_related_rows() {
    let mut app = loaded_app(false);
    // The instance with three findings: `o` names its findings, cases, evidence and hosts,
    // each by its view's key.
    while selected_instance(&app) != "i-ad331045abe82ba53" {
        press(&mut app, "j");
    }
    press(&mut app, "o");
    let picker = render(&app, &dark());
    for (key, view) in [
        ("2", "findings"),
        ("4", "cases"),
        ("6", "evidence"),
        ("8", "hosts"),
    ] {
        assert!(
            picker.lines().any(
                |l| l.contains(&format!("{key}  {view}")) && l.contains("/i-ad331045abe82ba53")
            ),
            "{view} by {key}:\n{picker}"
        );
    }
    press(&mut app, "2");
    assert_eq!(app.view, View::Findings);
    assert_eq!(app.findings.table.visible_len(), 3);
    assert!(
        app.findings
            .table
            .window(0, 10)
            .all(|row| row.finding.instance_id.as_deref() == Some("i-ad331045abe82ba53"))
    );
    // Back from a finding to its instance.
    press(&mut app, "o1");
    assert_eq!(app.view, View::Instances);
    assert_eq!(app.instances.table.visible_len(), 1);
    assert_eq!(selected_instance(&app), "i-ad331045abe82ba53");
    // And on to its cases, filtered to it; a key that names no related view stays here.
    press(&mut app, "ox");
    assert_eq!((app.view, &app.mode), (View::Instances, &Mode::Normal));
    press(&mut app, "o4");
    assert_eq!(app.view, View::Cases);
    assert!(matches!(&app.status, Some(Status::Info(i)) if i.contains("/i-ad331045abe82ba53")));
    // An account's instances.
    press(&mut app, "1");
    press_named(&mut app, KeyName::Esc);
    press(&mut app, "3");
    press(&mut app, "G");
    press(&mut app, "o1");
    assert_eq!(app.view, View::Instances);
    assert!(app.instances.table.visible_len() > 1);
    // A view without relations says so by its footer, and the key says where it works.
    press(&mut app, "7");
    press(&mut app, "o");
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("related rows")));
}

#[test]
fn filters_are_saved_by_name_applied_by_name_and_open_the_workstation() {
    let mut app = loaded_app(false);
    press(&mut app, ":save web");
    press_named(&mut app, KeyName::Enter);
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("no filter to save")));
    press(&mut app, "/tag:Role=web");
    press_named(&mut app, KeyName::Enter);
    let shown = app.instances.table.visible_len();
    press(&mut app, ":save web");
    let effects = press_named(&mut app, KeyName::Enter);
    assert_eq!(
        effects,
        vec![Effect::SaveFilter {
            name: "web".into(),
            text: "tag:Role=web".into()
        }]
    );
    app.on_engine(EngineEvent::FilterSaved(Ok(
        crate::workstation::app::SavedFilter {
            name: "web".into(),
            text: "tag:Role=web".into(),
            file: "/home/alice/.config/irf/filters.toml".into(),
        },
    )));
    // Cleared, then applied again by its name.
    press_named(&mut app, KeyName::Esc);
    assert!(app.instances.table.visible_len() > shown);
    press(&mut app, ":load web");
    press_named(&mut app, KeyName::Enter);
    assert_eq!(app.instances.table.visible_len(), shown);
    press(&mut app, ":load nope");
    press_named(&mut app, KeyName::Enter);
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("saved are web")));

    // --filter opens on a saved filter or a text; a wrong one says why and filters nothing.
    let mut fresh = loaded_app(false);
    fresh.saved_filters = app.saved_filters.clone();
    fresh.filter_instances("@web");
    assert_eq!(fresh.instances.table.visible_len(), shown);
    let mut wrong = loaded_app(false);
    wrong.filter_instances("@nope");
    assert!(matches!(&wrong.status, Some(Status::Error(e)) if e.contains("--filter @nope")));
    assert_eq!(wrong.instances.table.visible_len(), instances().len());
}

#[test]
fn an_information_line_clears_itself_and_an_error_stays() {
    let mut app = loaded_app(false);
    app.status = Some(Status::Info("resolved: a finding".into()));
    for _ in 0..4 {
        app.handle(Input::CasesPollDue);
        assert!(app.status.is_some(), "it stands a while");
    }
    app.handle(Input::CasesPollDue);
    assert_eq!(app.status, None, "then it goes");
    app.status = Some(Status::Error("could not verify".into()));
    for _ in 0..10 {
        app.handle(Input::CasesPollDue);
    }
    assert!(
        matches!(app.status, Some(Status::Error(_))),
        "an error waits to be read"
    );
}
