//! One apply or rollback: each change made to the instance is recorded, in the containment
//! record and, for a case, in its ledger; and the calls both directions share.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::ContainmentError;
use crate::aws::{AwsError, CallSite};
use crate::model::case::now_rfc3339;
use crate::model::containment::{ContainmentRecord, RecordedAction};
use crate::plane::Plane;

/// One apply or rollback: each change is made, then recorded.
pub(super) struct Run<'a> {
    pub(super) plane: &'a Plane,
    pub(super) record: &'a mut ContainmentRecord,
    pub(super) changed: Vec<RecordedAction>,
}

impl Run<'_> {
    pub(super) async fn done(
        &mut self,
        action: &str,
        detail: String,
    ) -> Result<(), ContainmentError> {
        let entry = RecordedAction {
            at: now_rfc3339(),
            by: self.plane.operator.clone(),
            action: action.to_owned(),
            detail,
        };
        self.record.actions.push(entry.clone());
        self.plane.table.save_containment(self.record).await?;
        if let Some(case_id) = &self.record.case_id {
            let instance = &self.record.instance;
            crate::ledger::append(
                self.plane,
                case_id,
                crate::model::ledger::NewEntry::new(
                    crate::model::ledger::Action::ContainmentChange(entry.action.clone()),
                    format!(
                        "{}/{}/{}",
                        instance.account, instance.region, instance.instance_id
                    ),
                )
                .detail(entry.detail.clone()),
            )
            .await?;
        }
        self.changed.push(entry);
        Ok(())
    }
}

/// Gives the instance `spec` as its profile: replaces its association, or associates one.
/// A failure carries EC2's error code, so the caller can name a missing profile.
pub(super) async fn set_profile(
    ec2: &aws_sdk_ec2::Client,
    site: &CallSite,
    instance_id: &str,
    association_id: Option<&str>,
    spec: aws_sdk_ec2::types::IamInstanceProfileSpecification,
) -> Result<(), (AwsError, Option<String>)> {
    pub(super) fn coded<E>(
        site: &CallSite,
        operation: &'static str,
        err: aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::http::Response,
        >,
    ) -> (AwsError, Option<String>)
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = err
            .as_service_error()
            .and_then(|e| e.code())
            .map(str::to_owned);
        (site.error(operation, &err), code)
    }
    match association_id {
        Some(association) => ec2
            .replace_iam_instance_profile_association()
            .association_id(association)
            .iam_instance_profile(spec)
            .send()
            .await
            .map(drop)
            .map_err(|err| coded(site, "ec2:ReplaceIamInstanceProfileAssociation", err)),
        None => ec2
            .associate_iam_instance_profile()
            .instance_id(instance_id)
            .iam_instance_profile(spec)
            .send()
            .await
            .map(drop)
            .map_err(|err| coded(site, "ec2:AssociateIamInstanceProfile", err)),
    }
}

pub(super) fn target(
    instance_id: &str,
    port: Option<i32>,
) -> aws_sdk_elasticloadbalancingv2::types::TargetDescription {
    aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
        .id(instance_id)
        .set_port(port)
        .build()
}
