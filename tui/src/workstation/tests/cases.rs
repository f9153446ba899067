//! The cases view and the case view: polling, progress, waiting for approval, verification and the report.

use super::*;

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
    assert_eq!(app.cases.table.visible_len(), 4);
    let newest = app
        .cases
        .table
        .selected()
        .expect("selected")
        .case
        .case_id
        .clone();
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
        app.cases.table.visible_len(),
        1,
        "filterable like the other tables"
    );
    let waiting = app
        .cases
        .table
        .selected()
        .expect("selected")
        .case
        .case_id
        .clone();
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
            .table
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
    use crate::workstation::case_view::progress_ratio;
    use crate::workstation::format::{eta, human_bytes, rate_text};
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

    assert_eq!(
        crate::text::wrap_untrusted_at_most("abcdef", 3, 3),
        vec!["abc", "def"]
    );
    assert_eq!(
        crate::text::wrap_untrusted_at_most("abcdefghij", 3, 2),
        vec!["abc", "de…"],
        "cut with an ellipsis"
    );
    assert_eq!(
        crate::text::wrap_untrusted_at_most("a\u{1b}b", 10, 1),
        vec!["a\\eb"]
    );

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
        screen.contains("waiting for approval: A shows the containment plan to approve, X refuses"),
        "{screen}"
    );
    if let Some(approval) = &mut detail.approval {
        approval.decided = Some(ApprovalDecision {
            decision: irf_engine::model::case::Verdict::Approved,
            by: "arn:aws:sts::123456789012:assumed-role/irf-approver/bob".into(),
            at: "2026-11-28T10:02:00Z".into(),
            reason: None,
        });
    }
    detail.case.status = CaseStatus::Running;
    let screen = render(&case_app(detail), &dark());
    assert!(!screen.contains("waiting for approval"), "{screen}");
    // Nor does the header's containment line still say it waits.
    assert!(!screen.contains("waits for approval"), "{screen}");
    assert!(screen.contains("containment approved"), "{screen}");
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
fn the_case_view_verifies_and_exports_and_shows_what_failed() {
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
    app.on_engine(one_of_two_verified(
        &case_id,
        "cases/x/memory/i-1.lime",
        "hashes to 00ff now, its manifest says 9f86",
    ));
    let screen = render(&app, &dark());
    assert!(screen.contains("1 of 2 items NOT verified"), "{screen}");
    assert!(
        screen.contains("NOT VERIFIED  hashes to 00ff now, its manifest says 9f86")
            && screen.contains("    cases/x/memory/i-1.lime"),
        "what did not verify, and why, in the panel that opened:\n{screen}"
    );
    app.on_engine(EngineEvent::ReportWritten(Ok("irf-report-x.md".into())));
    assert!(matches!(&app.status, Some(Status::Info(m)) if m.contains("irf-report-x.md")));
}

/// At 80x24 a failed verification opens its panel, where each item that did not verify reads
/// whole, however long its key and its reason, before those that did.
#[test]
fn a_failed_verification_opens_its_panel_with_every_reason_whole_at_80x24() {
    let mut detail = running_detail();
    detail.case.status = CaseStatus::Succeeded;
    let case_id = detail.case.case_id.clone();
    let mut app = case_app(detail);
    app.handle(Input::Resize {
        width: 80,
        height: 24,
    });
    // A key longer than three lines of the panel (S3 keys run to 1,024 characters).
    let key = format!(
        "cases/20261128T093015Z-i-ad331045abe82ba53/165667010651/i-ad331045abe82ba53/{}memory/i-ad331045abe82ba53.lime",
        "evidence-collected-by-the-responder-at-night/".repeat(4)
    );
    let key = key.as_str();
    let reason = "hashes to 00ff00ff00ff00ff00ff00ff00ff00ff now, where its manifest and the ledger entry 4 say 9f86d081884c7d659a2feaa0c55ad015";
    app.on_engine(one_of_two_verified(&case_id, key, reason));
    assert_eq!(
        app.case.as_ref().map(|screen| screen.panel),
        Some(crate::workstation::app::CasePanel::Verification)
    );
    // The panel's lines joined, without their borders and indentation.
    let joined = |screen: &str| -> String {
        screen
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '│')
            .collect()
    };
    let whole = |text: &str| -> String { text.split_whitespace().collect() };
    // Why it failed first, whole; then, a `j` away, its key, whole however long.
    let screen = render(&app, &dark());
    assert!(screen.contains("NOT VERIFIED"), "{screen}");
    assert!(
        joined(&screen).contains(&whole(reason)),
        "the reason whole:\n{screen}"
    );
    press(&mut app, "j");
    let screen = render(&app, &dark());
    assert!(
        joined(&screen).contains(&whole(key)),
        "the key whole:\n{screen}"
    );
    // What verified comes after what did not.
    let key_end = screen
        .find("i-ad331045abe82ba53.lime")
        .expect("the key's end");
    assert!(
        screen
            .find("verified      case opened")
            .is_some_and(|at| at > key_end),
        "{screen}"
    );
    press(&mut app, "j");
    let screen = render(&app, &dark());
    assert!(
        screen.contains("verified      case opened") && !screen.contains("NOT VERIFIED"),
        "{screen}"
    );
}

/// The verification of `case_id` that found its first ledger entry whole and `key` not,
/// for `reason`.
fn one_of_two_verified(case_id: &CaseId, key: &str, reason: &str) -> EngineEvent {
    use irf_engine::ledger::{CheckedItem, Verification};
    EngineEvent::CaseVerified {
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
                    item: key.into(),
                    verified: false,
                    detail: reason.into(),
                },
            ],
        })),
    }
}

/// A ledger entry of the running case.
fn ledger_entry(
    seq: u64,
    action: &str,
    detail: Option<&str>,
) -> irf_engine::model::ledger::LedgerEntry {
    irf_engine::model::ledger::LedgerEntry {
        seq,
        at: format!("2026-11-28T09:{:02}:00Z", 30 + seq),
        actor: "arn:aws:sts::123456789012:assumed-role/irf-responder/alice".into(),
        action: action.into(),
        target: "165667010651/eu-west-1/i-ad331045abe82ba53".into(),
        request_ids: vec![],
        artifacts: vec![],
        detail: detail.map(str::to_owned),
        prev_sha256: String::new(),
        sha256: String::new(),
        signature: None,
    }
}

#[test]
fn the_case_view_tells_its_custody_and_analysis_and_keeps_its_last_verification() {
    let mut detail = running_detail();
    detail.ledger = (1..=12)
        .map(|seq| ledger_entry(seq, &format!("step {seq} succeeded"), None))
        .chain([
            ledger_entry(
                13,
                "analysis host launched",
                Some("m5.xlarge from 1.0.0/1 (ami-0aaa) in subnet-a, no public address"),
            ),
            ledger_entry(14, "session opened", Some("interactive shell on i-0aaa")),
        ])
        .collect();
    let mut app = case_app(detail);
    app.handle(Input::Resize {
        width: 80,
        height: 24,
    });
    let footer = render(&app, &dark());
    assert!(footer.contains("<tab> panel"), "{footer}");

    // The custody ledger, every entry reachable by scrolling.
    press_named(&mut app, KeyName::Tab);
    let first = render(&app, &dark());
    assert!(
        first.contains("custody (14)") && first.contains("step 1 succeeded"),
        "{first}"
    );
    let mut seen = first.clone();
    for _ in 0..14 {
        press(&mut app, "j");
        seen.push_str(&render(&app, &dark()));
    }
    for seq in 1..=14 {
        assert!(
            seen.contains(&format!("#{seq:<4}")),
            "entry {seq} never shown"
        );
    }
    assert!(
        seen.contains("no public address"),
        "an entry's detail is shown:\n{}",
        render(&app, &dark())
    );

    // Analysis: the host and the session, from the same ledger.
    press_named(&mut app, KeyName::Tab);
    let analysis = render(&app, &dark());
    assert!(
        analysis.contains("analysis (2)")
            && analysis.contains("analysis host launched")
            && analysis.contains("session opened"),
        "{analysis}"
    );

    // A verification stays with its case when the case is left and opened again.
    let case_id = app.case.as_ref().expect("open").case.case_id.clone();
    let verification = irf_engine::ledger::Verification {
        case_id: case_id.clone(),
        verified_at: "2026-11-28T10:00:00Z".into(),
        items: vec![],
    };
    app.on_engine(EngineEvent::CaseVerified {
        case_id,
        result: Ok(Box::new(verification)),
    });
    press_named(&mut app, KeyName::Esc);
    enter(&mut app);
    let reopened = render(&app, &dark());
    assert!(
        reopened.contains("verified at 2026-11-28 10:00:00"),
        "{reopened}"
    );
}
