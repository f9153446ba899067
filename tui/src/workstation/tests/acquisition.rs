//! Acquisition from the workstation: the confirmation says what will happen, under which policy, and the started case opens.

use super::*;

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
    app.mode = Mode::Confirm(crate::workstation::app::Confirmation {
        scroll: 0,
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
    assert_eq!(
        app.cases.table.rows().len(),
        1,
        "listed before the next load"
    );

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
    assert_eq!(app.cases.table.rows().len(), 1, "joined, not listed twice");
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
