//! The planned findings, imported into Security Hub as a finding provider would.

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, RecordState, Resource, Severity, SeverityLabel,
};

use crate::common::{LAB_REGION, LabError};
use irf_engine::aws::AwsContext;
use irf_engine::config::AccountId;

use super::plan::{FINDING_KINDS, SeedPlan};
use super::seeded::{LabInstance, sdk_err};

pub(super) async fn import_findings(
    security: &AwsContext,
    security_id: &AccountId,
    plan: &SeedPlan,
    instances: &[LabInstance],
    created_of_planned: &[usize],
) -> Result<usize, LabError> {
    let hub = aws_sdk_securityhub::Client::new(&security.base_config(LAB_REGION));
    hub.enable_security_hub().send().await.map_err(sdk_err(
        "securityhub:EnableSecurityHub",
        security_id.as_str(),
        LAB_REGION,
    ))?;
    let now = time::OffsetDateTime::now_utc();
    let findings: Vec<AwsSecurityFinding> = plan
        .findings
        .iter()
        .enumerate()
        .map(|(n, planned)| {
            let instance = &instances[created_of_planned[planned.instance]];
            let (kind, label, title) = &FINDING_KINDS[planned.kind];
            let created = now - time::Duration::minutes(planned.age_minutes);
            let stamp = created
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let region = &instance.region;
            let account = &instance.account;
            AwsSecurityFinding::builder()
                .schema_version("2018-10-08")
                .id(format!(
                    "arn:aws:guardduty:{region}:{account}:detector/irflab/finding/{:032x}",
                    n + 1
                ))
                .product_arn(format!(
                    "arn:aws:securityhub:{region}::product/aws/guardduty"
                ))
                .generator_id(format!(
                    "arn:aws:guardduty:{region}:{account}:detector/irflab"
                ))
                .aws_account_id(account.as_str())
                .region(region)
                .types(*kind)
                .created_at(&stamp)
                .updated_at(&stamp)
                .first_observed_at(&stamp)
                .severity(
                    Severity::builder()
                        .label(label.clone())
                        .normalized(normalized(label))
                        .build(),
                )
                .title(title.replace("{id}", &instance.id))
                .description(format!(
                    "{} ({}), {}.",
                    title.replace("{id}", &instance.id),
                    instance.name,
                    kind
                ))
                .record_state(RecordState::Active)
                .workflow(
                    aws_sdk_securityhub::types::Workflow::builder()
                        .status(aws_sdk_securityhub::types::WorkflowStatus::New)
                        .build(),
                )
                .resources(
                    Resource::builder()
                        .r#type("AwsEc2Instance")
                        .id(format!(
                            "arn:aws:ec2:{region}:{account}:instance/{}",
                            instance.id
                        ))
                        .partition(aws_sdk_securityhub::types::Partition::Aws)
                        .region(region)
                        .build(),
                )
                .build()
        })
        .collect();
    let count = findings.len();
    // BatchImportFindings takes at most 100 findings a call.
    for batch in findings.chunks(100) {
        let out = hub
            .batch_import_findings()
            .set_findings(Some(batch.to_vec()))
            .send()
            .await
            .map_err(sdk_err(
                "securityhub:BatchImportFindings",
                security_id.as_str(),
                LAB_REGION,
            ))?;
        if out.failed_count().unwrap_or(0) > 0 {
            return Err(LabError::Seed {
                step: "securityhub:BatchImportFindings",
                message: format!(
                    "{} findings were refused: {:?}",
                    out.failed_count().unwrap_or(0),
                    out.failed_findings()
                ),
            });
        }
    }
    Ok(count)
}

pub(super) fn normalized(label: &SeverityLabel) -> i32 {
    match label {
        SeverityLabel::Critical => 90,
        SeverityLabel::High => 70,
        SeverityLabel::Medium => 50,
        SeverityLabel::Low => 30,
        _ => 0,
    }
}
