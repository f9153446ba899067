//! The analysis views: image builds, host launches one at a time, sessions, and termination after the typed id.

use super::*;

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
        app.images
            .table
            .selected()
            .map(|r| r.image.version.as_str()),
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
    // Each stage is said as it starts; a word of another case's launch is not.
    let stage = irf_engine::analysis::hosts::LaunchStage::AwaitingAgent {
        instance_id: "i-0aaa1111bbbb2222c".into(),
    };
    app.on_engine(EngineEvent::HostLaunchProgress {
        case_id: case_id.clone(),
        stage: stage.clone(),
    });
    assert!(
        matches!(&app.status, Some(Status::Info(s)) if s.contains("i-0aaa1111bbbb2222c launched: waiting for its SSM agent")),
        "{:?}",
        app.status
    );
    let other = CaseId::parse("20261127T175840Z-i-0hostile00000000a").expect("case id");
    app.on_engine(EngineEvent::HostLaunchProgress {
        case_id: other,
        stage: irf_engine::analysis::hosts::LaunchStage::Preparing,
    });
    assert!(matches!(&app.status, Some(Status::Info(s)) if s.contains("SSM agent")));
    // A second launch waits for the first one's outcome.
    assert!(press(&mut app, "l").is_empty());
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("still being launched")));
    let effects = app.on_engine(EngineEvent::HostLaunched(Err(failed("no image"))));
    assert_eq!(effects, vec![Effect::LoadHosts]);
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("launch failed: no image")));
    // A late word of the ended launch does not hide its outcome.
    app.on_engine(EngineEvent::HostLaunchProgress {
        case_id: case_id.clone(),
        stage,
    });
    assert!(matches!(&app.status, Some(Status::Error(e)) if e.contains("launch failed")));
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
        .table
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
        app.hosts
            .table
            .selected()
            .map(|r| r.host.instance_id.as_str()),
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
            decision: crate::workstation::app::TypedDecision::TerminateHost("i-0bbb".into()),
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
