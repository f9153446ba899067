//! Every list view and the containment approval at 80x24 and 200x50: what identifies a row
//! is on screen at both sizes, and nothing the approver decides on is cut.

use super::*;

/// The app resized to `width` x `height`.
fn at(mut app: App, (width, height): (u16, u16)) -> App {
    app.handle(Input::Resize { width, height });
    app
}

const SIZES: [(u16, u16); 2] = [(80, 24), (200, 50)];

/// Each list view with rows, and what must be on screen to tell its rows apart.
fn views_with_rows() -> Vec<(&'static str, App, Vec<&'static str>)> {
    let instances = loaded_app(false);
    let mut findings = loaded_app(false);
    press(&mut findings, "2");
    let mut accounts = loaded_app(false);
    press(&mut accounts, "3");
    let cases = cases_app();
    let approvals = approvals_app(false);
    let mut evidence = loaded_app(false);
    press(&mut evidence, "6");
    evidence.on_engine(EngineEvent::Evidence(Ok(vec![evidence_item(
        "cases/20261128T093015Z-i-ad331045abe82ba53/disk/vol-0a1.qcow2",
        true,
    )])));
    let mut images = loaded_app(false);
    press(&mut images, "7");
    images.on_engine(EngineEvent::Images(Ok(pipeline(vec![image(
        "1.0.0/1",
        "AVAILABLE",
        Some("ami-0aaa"),
    )]))));
    let mut hosts = loaded_app(false);
    press(&mut hosts, "8");
    hosts.on_engine(EngineEvent::Hosts(Ok(vec![host(
        "i-0aaa1111bbbb2222c",
        "20261128T093015Z-i-ad331045abe82ba53",
        "running",
    )])));
    vec![
        (
            "instances",
            instances,
            vec!["i-0d5334768b8c2bce7", "prod-batch-01", "running"],
        ),
        ("findings", findings, vec!["CRITICAL", "A process on EC2"]),
        ("accounts", accounts, vec!["662994680443", "legacy-unmanag"]),
        (
            "cases",
            cases,
            vec!["20261128T093015Z-i-ad331045abe82ba53", "awaiting approval"],
        ),
        (
            "approvals",
            approvals,
            vec!["i-ad331045abe82ba53", "i-0b1c2d3e4f5a6b7c8", "request"],
        ),
        (
            "evidence",
            evidence,
            vec!["20261128T093015Z-i-ad331045abe82ba53", "disk"],
        ),
        ("images", images, vec!["1.0.0/1", "AVAILABLE", "ami-0aaa"]),
        (
            "hosts",
            hosts,
            vec!["i-0aaa1111bbbb2222c", "20261128T093015Z-i-ad33", "running"],
        ),
    ]
}

#[test]
fn every_list_view_shows_what_identifies_its_rows_at_80x24_and_200x50() {
    for size in SIZES {
        for (view, app, identifying) in views_with_rows() {
            let screen = render(&at(app, size), &dark());
            for value in identifying {
                assert!(
                    screen.contains(value),
                    "{view} at {size:?} does not show {value}:\n{screen}"
                );
            }
        }
    }
}

#[test]
fn at_80x24_a_view_keeps_its_identifying_column_and_drops_the_least_important() {
    let screen = render(&at(loaded_app(false), (80, 24)), &dark());
    let header = screen
        .lines()
        .find(|l| l.contains("INSTANCE"))
        .expect("the header");
    for kept in ["INSTANCE", "NAME", "STATE", "FINDINGS"] {
        assert!(header.contains(kept), "{kept}: {header}");
    }
    assert!(!header.contains("PRIVATE IP"), "{header}");
    let wide = render(&at(loaded_app(false), (200, 50)), &dark());
    assert!(
        wide.contains("PRIVATE IP") && wide.contains("10.1.1.5"),
        "{wide}"
    );
}

/// A plan longer than any screen: the approver scrolls through every line of it, and the
/// line that takes the answer stays in sight throughout.
#[test]
fn the_containment_plan_is_never_cut_at_80x24() {
    use irf_engine::model::containment::PlannedChange;
    let mut app = at(approvals_app(false), (80, 24));
    let effects = press(&mut app, "A");
    let [Effect::PlanContainment { decision, instance }] = effects.as_slice() else {
        panic!("approval plans first: {effects:?}");
    };
    let mut plan = plan_of(instance);
    plan.changes = (0..30)
        .map(|n| PlannedChange {
            action: "replace security groups".into(),
            resource: format!("eni-{n:017x}"),
            before: "sg-0123456789abcdef0, sg-0fedcba9876543210, sg-0a1b2c3d4e5f60718".into(),
            after: format!("irf-isolation-{n} (new, no rules)"),
            done: false,
        })
        .collect();
    plan.warnings
        .push("the instance is in Auto Scaling group web-asg: it is detached first, or the group replaces it".into());
    app.on_engine(EngineEvent::ContainmentPlanned {
        decision: decision.clone(),
        result: Ok(Box::new(plan)),
    });
    let Mode::Typed(prompt) = app.mode.clone() else {
        panic!("the approval asks for the instance id");
    };
    // Every line of what the dialog says, as the 78 columns inside its borders hold it.
    let pieces: Vec<String> = prompt
        .lines
        .iter()
        .flat_map(|line| crate::text::wrap_untrusted(line, 78))
        .map(|piece| piece.trim().to_owned())
        .filter(|piece| !piece.is_empty())
        .collect();
    assert!(
        pieces.len() > 40,
        "taller than the screen: {}",
        pieces.len()
    );
    let mut screens = Vec::new();
    for _ in 0..80 {
        let screen = render(&app, &dark());
        assert!(
            screen.contains("instance id:"),
            "the answer line stays:\n{screen}"
        );
        screens.push(screen);
        press_named(&mut app, KeyName::Down);
    }
    for piece in &pieces {
        assert!(
            screens.iter().any(|screen| screen.contains(piece.as_str())),
            "never shown: {piece}"
        );
    }
    let all = prompt.lines.join("\n");
    for n in [0, 17, 29] {
        assert!(
            all.contains(&format!("eni-{n:017x}: sg-0123456789abcdef0")),
            "change {n}"
        );
    }
    assert!(all.contains("or the group replaces it"));
    assert!(
        screens[0].contains("lines above") || screens[0].contains("below"),
        "the title says there is more:\n{}",
        screens[0]
    );
    // Scrolling is not typing: the answer is still empty, and the prompt still open.
    assert!(matches!(&app.mode, Mode::Typed(p) if p.input.is_empty()));
}

#[test]
fn the_case_view_at_80x24_reaches_every_artifact_and_its_footer_names_every_command() {
    let mut app = at(case_app(running_detail()), (80, 24));
    let artifacts: Vec<String> = app
        .case
        .as_ref()
        .and_then(|screen| screen.detail.as_ref())
        .map(|detail| detail.artifacts.iter().map(|a| a.source.clone()).collect())
        .unwrap_or_default();
    assert!(artifacts.len() > 1, "{artifacts:?}");
    let mut screens = Vec::new();
    for _ in 0..artifacts.len() {
        screens.push(render(&app, &dark()));
        press(&mut app, "j");
    }
    for source in &artifacts {
        assert!(
            screens.iter().any(|s| s.contains(source.as_str())),
            "{source} is never on screen"
        );
    }
    // The footer takes a second line rather than cut what the view offers.
    let footer: String = screens[0]
        .lines()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    for (_, label) in app.offered() {
        assert!(
            footer.contains(label),
            "{label} missing from the footer:\n{footer}"
        );
    }
}

/// At 80x24 an instance's details are longer than their panel: tab gives the panel the
/// movement keys, which scroll it to the last field (its findings) with the row kept; tab
/// gives them back, and the next row's details start at their first field.
#[test]
fn details_longer_than_their_panel_scroll_to_their_last_field() {
    let mut app = at(loaded_app(false), (80, 24));
    press(&mut app, "/hostile");
    press_named(&mut app, KeyName::Enter);
    press_named(&mut app, KeyName::Enter);
    let first = render(&app, &dark());
    assert!(first.contains("· tab scrolls"), "{first}");
    assert!(
        !first.contains("CRITICAL  "),
        "the findings are below:
{first}"
    );
    let cursor = app.current_cursor();
    press_named(&mut app, KeyName::Tab);
    assert!(
        app.footer_hint_lines()
            .concat()
            .iter()
            .any(|hint| hint.label == "back to the list")
    );
    let mut seen = false;
    for _ in 0..app.detail_fields().len() {
        press(&mut app, "j");
        let screen = render(&app, &dark());
        if screen.contains(" ↓0 ") {
            seen = true;
            assert!(
                screen.contains("CRITICAL"),
                "its finding is in view:\n{screen}"
            );
            break;
        }
    }
    assert!(seen, "the last field never came into view");
    assert_eq!(app.current_cursor(), cursor, "scrolling kept the row");
    press_named(&mut app, KeyName::Tab);
    press_named(&mut app, KeyName::Esc);
    press_named(&mut app, KeyName::Esc);
    press_named(&mut app, KeyName::Enter);
    press(&mut app, "j");
    assert_eq!(app.current_cursor(), cursor + 1, "j moves the row again");
    assert_eq!(app.details.first, 0, "a new row's details start at the top");
}

#[test]
fn without_credentials_every_view_says_how_to_sign_in_at_80x24() {
    let mut app = at(new_app(false), (80, 24));
    app.start();
    let why = "the SSO session for profile 'ir' has expired (token cache ~/.aws/sso/cache)";
    let failure = || {
        crate::workstation::failure::Failure::from(irf_engine::aws::AwsError::Credentials {
            message: why.into(),
        })
    };
    app.on_engine(EngineEvent::Identity(Err(failure())));
    app.on_engine(EngineEvent::Scope(Err(failure())));
    for view in ["1", "2", "3", "4"] {
        press(&mut app, view);
        let screen = render(&app, &dark());
        // Wrapped lines read as one text, the table's borders aside.
        let body: String = screen
            .replace('│', " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for needed in [
            "No usable AWS credentials",
            "has expired (token cache ~/.aws/sso/cache)",
            "aws sso login --profile NAME",
            "irf lab",
        ] {
            assert!(body.contains(needed), "view {view}: {needed}\n{screen}");
        }
    }
}

#[test]
fn the_header_says_whose_identity_acts_and_until_when() {
    let mut app = at(new_app(false), (200, 50));
    app.start();
    let mut who = whoami();
    who.credentials_expire = Some("2026-12-07T16:04:05Z".into());
    app.on_engine(EngineEvent::Identity(Ok(who)));
    let screen = render(&app, &dark());
    let header = screen.lines().next().expect("the header");
    assert!(
        header.contains("assumed-role/irf-responder/alice")
            && header.contains("credentials until 2026-12-07 16:04:05 UTC"),
        "{header}"
    );
}
