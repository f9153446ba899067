//! The irf configuration of a seeded lab: its accounts, workflow and evidence settings.

use crate::common::LAB_REGION;
use irf_engine::config::Config;

use super::seeded::SeededLab;

/// The configuration irf uses against a seeded lab.
pub fn lab_config(seeded: &SeededLab) -> Config {
    let (workflow, evidence) = match &seeded.plane {
        Some(plane) => (
            irf_engine::config::WorkflowConfig {
                region: Some(LAB_REGION.to_owned()),
                state_machine_arn: Some(plane.state_machine_arn.clone()),
                case_table: Some(plane.case_table.clone()),
                notification_topic_arn: Some(plane.topic_arn.clone()),
                step_queues: plane.step_queues.clone(),
                tooling_bucket: Some(plane.tooling_bucket.clone()),
                ir_instance_profile: Some("IRInstanceProfile".to_owned()),
                containment: None,
                // Short, so that a step whose worker died comes back within seconds.
                lease_secs: Some(15),
                // Below the lab's largest volumes (30 GiB, mostly empty), so that their raw
                // hash is left for later as a large volume's is in an Organization.
                raw_hash_inline_max_gib: Some(16),
                isolation_profile: Some(
                    irf_engine::containment::DEFAULT_ISOLATION_PROFILE.to_owned(),
                ),
                isolation_keeps_ssm: false,
                four_eyes: seeded.options.four_eyes,
                // Template 3's OperatorRole names its sessions after their users.
                named_session_roles: vec![format!(
                    "arn:aws:iam::{}:role/{}",
                    seeded.security,
                    crate::common::OPERATOR_ROLE
                )],
            },
            irf_engine::config::EvidenceConfig {
                bucket: Some(plane.evidence_bucket.clone()),
                kms_key_arn: plane.evidence_kms_key_arn.clone(),
                ledger_key_arn: plane.ledger_key_arn.clone(),
            },
        ),
        None => Default::default(),
    };
    Config {
        regions: seeded.options.regions.clone(),
        accounts: irf_engine::config::AccountsConfig {
            security: Some(seeded.security.clone()),
            forensics: Some(seeded.forensics.clone()),
            ..Default::default()
        },
        workflow,
        evidence,
        analysis: seeded
            .analysis
            .as_ref()
            .map(|a| irf_engine::config::AnalysisConfig {
                vpc_id: Some(a.vpc_id.clone()),
                subnet_ids: a.subnet_ids.clone(),
                instance_profile: Some(a.instance_profile.clone()),
                image_pipeline_arn: Some(a.image_pipeline_arn.clone()),
                security_group_id: Some(a.security_group_id.clone()),
                // Small: lab hosts cost nothing, and the view still shows a price.
                instance_type: Some("t3.large".to_owned()),
                kms_key_id: None,
            })
            .unwrap_or_default(),
        ..Config::default()
    }
}
