//! The evidence view: artifacts with their Object Lock state, and legal holds asked before they change.

use super::*;

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
        .table
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
fn an_artifact_opens_in_full_beside_the_evidence_at_80x24() {
    let mut app = loaded_app(false);
    press(&mut app, "6");
    let key = "cases/20261128T093015Z-i-ad331045abe82ba53/165667010651/i-ad331045abe82ba53/disk/vol-0123456789abcdef0.qcow2";
    app.on_engine(EngineEvent::Evidence(Ok(vec![evidence_item(key, true)])));
    app.handle(Input::Resize {
        width: 80,
        height: 24,
    });
    press_named(&mut app, KeyName::Enter);
    assert!(app.detail_shown());
    let lines = app.detail_fields();
    let value = |label: &str| {
        lines
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(value("key"), key, "the whole key");
    assert_eq!(value("legal hold"), "on");
    assert!(value("export").starts_with("irf evidence export 'cases/"));
    let screen = render(&app, &dark());
    assert!(screen.contains("details"), "{screen}");
}
