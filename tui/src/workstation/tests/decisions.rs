//! Decisions: approving with the typed instance id, refusing with a reason, rollback, and what each screen offers.

use super::*;

#[test]
fn approving_takes_the_typed_instance_id_and_nothing_else() {
    use crate::workstation::app::TypedDecision;
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
    use crate::workstation::app::TypedDecision;
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
    use crate::workstation::app::TypedDecision;
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

#[test]
fn a_command_the_screen_does_not_offer_is_refused_saying_where_it_works() {
    // A running case has no containment yet: rolling back is neither in the footer nor done.
    let mut app = case_app(running_detail());
    let footer = render(&app, &dark());
    assert!(!footer.contains("roll back"), "{footer}");
    assert!(press(&mut app, "U").is_empty());
    assert!(matches!(app.mode, Mode::Normal), "no prompt opens");
    assert!(
        matches!(&app.status, Some(Status::Error(e)) if e.contains("still running") && e.contains("nothing to roll back")),
        "{:?}",
        app.status
    );

    // Every view command refused in the instances view names where it works, and each one
    // the footer lists there is not refused.
    let mut app = loaded_app(false);
    let offered: Vec<_> = app.offered().into_iter().map(|(c, _)| c).collect();
    for (key, place) in [
        ("R", ":findings"),
        ("b", ":images"),
        ("s", ":hosts"),
        ("V", ":cases"),
    ] {
        assert!(press(&mut app, key).is_empty(), "{key}");
        assert!(
            matches!(&app.status, Some(Status::Error(e)) if e.contains(place)),
            "{key}: {:?}",
            app.status
        );
        app.status = None;
    }
    assert!(offered.contains(&crate::keymap::KeyAction::AcquireInstance));
    press(&mut app, "a");
    assert!(
        matches!(app.mode, Mode::Confirm(_)),
        "acquire is offered and asks"
    );
}

/// Every dialog names the command that does the same from a script, and that command is
/// one irf's own command line takes.
#[test]
fn every_dialog_names_a_command_irf_takes() {
    use crate::workstation::app::TypedDecision;
    use irf_engine::model::containment::InstanceRef;
    let case = CaseId::parse("20261128T093015Z-i-ad331045abe82ba53").expect("case id");
    let instance = InstanceRef {
        account: AccountId::parse("165667010651").expect("id"),
        region: "eu-west-1".into(),
        instance_id: "i-ad331045abe82ba53".into(),
    };
    let mut commands: Vec<String> = [
        Effect::StartAcquisition {
            subject: cases()[0].subject.clone(),
        },
        Effect::SetLegalHold {
            case_id: case.clone(),
            key: "cases/a/disk/vol-1.qcow2".into(),
            on: false,
        },
        Effect::StartImageBuild,
        Effect::ResolveFinding {
            finding: irf_engine::findings::FindingRef {
                id: "arn:aws:guardduty:eu-west-1:165667010651:detector/d/finding/f".into(),
                product_arn: "arn:aws:securityhub:eu-west-1::product/aws/guardduty".into(),
            },
            title: "a finding".into(),
            instance_id: None,
        },
        Effect::LaunchHost {
            case_id: case.clone(),
        },
    ]
    .iter()
    .map(|effect| effect.as_command().expect("a command"))
    .collect();
    commands.extend(
        [
            TypedDecision::ApproveCase(case.clone()),
            TypedDecision::RejectCase(case.clone()),
            TypedDecision::ApplyRequest(instance.clone()),
            TypedDecision::RejectRequest(instance.clone()),
            TypedDecision::Rollback(instance),
            TypedDecision::TerminateHost("i-0aaa1111bbbb2222c".into()),
        ]
        .iter()
        .map(|decision| decision.as_command(Some("i-ad331045abe82ba53"))),
    );
    for command in &commands {
        // The values are ids and a quoted key without spaces: words split on spaces.
        let words: Vec<String> = command.split(' ').map(|w| w.replace('\'', "")).collect();
        if let Err(err) = <crate::cli::Cli as clap::Parser>::try_parse_from(&words) {
            panic!("{command} is not a command irf takes: {err}");
        }
    }
    // And the dialog shows it.
    let mut app = loaded_app(false);
    press(&mut app, "a");
    let screen = render(&app, &dark());
    assert!(
        screen.contains(
            "From a script: irf --region eu-west-1 acquire --instance i-0hostile00000000a"
        ),
        "{screen}"
    );
}
