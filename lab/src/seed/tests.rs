//! The plan's determinism and shape.

use super::network::*;
use super::plan::*;

#[test]
fn same_seed_same_plan() {
    let options = SeedOptions::default();
    assert_eq!(SeedPlan::new(&options), SeedPlan::new(&options));
}

#[test]
fn other_seed_other_plan() {
    let a = SeedPlan::new(&SeedOptions::default());
    let b = SeedPlan::new(&SeedOptions {
        seed: 7,
        ..SeedOptions::default()
    });
    assert_ne!(a.instances, b.instances);
}

#[test]
fn plan_meets_the_minimums() {
    let options = SeedOptions::default();
    let plan = SeedPlan::new(&options);
    assert_eq!(plan.instances.len(), 36);
    assert_eq!(plan.findings.len(), 24);
    assert_eq!(plan.members.iter().filter(|m| m.managed).count(), 4);
    assert_eq!(plan.instances.iter().filter(|i| i.analyze).count(), 1);
    assert!(
        plan.instances.iter().any(|i| i.stopped),
        "some instances are stopped"
    );
    let roles: std::collections::HashSet<_> = plan.instances.iter().map(|i| i.role).collect();
    assert!(roles.len() >= 4, "varied roles: {roles:?}");
    let regions: std::collections::HashSet<_> = plan.instances.iter().map(|i| &i.region).collect();
    assert_eq!(regions.len(), 2);
    let labels: std::collections::HashSet<_> = plan
        .findings
        .iter()
        .map(|f| FINDING_KINDS[f.kind].1.as_str().to_owned())
        .collect();
    assert!(
        labels.contains("CRITICAL") && labels.contains("INFORMATIONAL"),
        "{labels:?}"
    );
}

#[test]
fn findings_point_at_managed_accounts_only() {
    let plan = SeedPlan::new(&SeedOptions::default());
    for finding in &plan.findings {
        let account = plan.instances[finding.instance].account;
        assert!(plan.members[account].managed);
    }
}

#[test]
fn bad_options_name_the_value() {
    let err = SeedOptions {
        members: 60,
        ..SeedOptions::default()
    }
    .validate()
    .expect_err("too many");
    assert!(err.to_string().contains("members = 60"), "{err}");
    let err = SeedOptions {
        regions: vec!["us-east-1".into()],
        ..SeedOptions::default()
    }
    .validate()
    .expect_err("one region");
    assert!(err.to_string().contains("us-east-1"), "{err}");
}

#[test]
fn many_members_get_distinct_names() {
    let plan = SeedPlan::new(&SeedOptions {
        members: 25,
        ..SeedOptions::default()
    });
    let names: std::collections::HashSet<_> = plan.members.iter().map(|m| &m.name).collect();
    assert_eq!(names.len(), plan.members.len());
}

#[test]
fn images_are_stable_per_os() {
    assert_eq!(image_for("Ubuntu 22.04 LTS"), image_for("Ubuntu 22.04 LTS"));
    assert_ne!(
        image_for("Ubuntu 22.04 LTS"),
        image_for("Amazon Linux 2023")
    );
    assert_eq!(image_for("Amazon Linux 2023").len(), 21);
}
