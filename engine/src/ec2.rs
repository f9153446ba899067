//! Reading and setting an EC2 instance's posture in its member account: the instance itself,
//! its instance-profile association and its termination protection. Shared by the
//! acquisition's prepare step and containment, which both record and change them.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::{AwsError, CallSite};
use crate::model::containment::InstanceRef;

/// The case's instance as EC2 describes it now; `None` when EC2 does not know it (an id
/// that never existed, a malformed one, or one terminated long ago).
pub async fn find_instance(
    ec2: &aws_sdk_ec2::Client,
    subject: &InstanceRef,
) -> Result<Option<aws_sdk_ec2::types::Instance>, AwsError> {
    let id = &subject.instance_id;
    match ec2.describe_instances().instance_ids(id).send().await {
        Ok(out) => Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(id.as_str()))
            .cloned()),
        Err(err)
            if matches!(
                err.as_service_error().and_then(ProvideErrorMetadata::code),
                Some("InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed")
            ) =>
        {
            Ok(None)
        }
        Err(err) => Err(AwsError::from_sdk(
            "ec2:DescribeInstances",
            subject.account.as_str(),
            &subject.region,
            &err,
        )),
    }
}

/// The instance's current instance-profile association, if it has one.
pub async fn profile_association(
    ec2: &aws_sdk_ec2::Client,
    site: &CallSite,
    instance_id: &str,
) -> Result<Option<aws_sdk_ec2::types::IamInstanceProfileAssociation>, AwsError> {
    use aws_sdk_ec2::types::IamInstanceProfileAssociationState as State;
    let out = ec2
        .describe_iam_instance_profile_associations()
        .filters(filter("instance-id", instance_id))
        .send()
        .await
        .map_err(|err| site.error("ec2:DescribeIamInstanceProfileAssociations", &err))?;
    Ok(out
        .iam_instance_profile_associations()
        .iter()
        .find(|a| matches!(a.state(), Some(State::Associated | State::Associating)))
        .cloned())
}

/// Whether termination protection of `instance_id` is on.
pub async fn termination_protection(
    ec2: &aws_sdk_ec2::Client,
    site: &CallSite,
    instance_id: &str,
) -> Result<bool, AwsError> {
    Ok(ec2
        .describe_instance_attribute()
        .instance_id(instance_id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .map_err(|err| site.error("ec2:DescribeInstanceAttribute", &err))?
        .disable_api_termination()
        .and_then(|v| v.value())
        .unwrap_or(false))
}

/// Turns termination protection of `instance_id` on or off.
pub async fn set_termination_protection(
    ec2: &aws_sdk_ec2::Client,
    site: &CallSite,
    instance_id: &str,
    on: bool,
) -> Result<(), AwsError> {
    ec2.modify_instance_attribute()
        .instance_id(instance_id)
        .disable_api_termination(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(on)
                .build(),
        )
        .send()
        .await
        .map(drop)
        .map_err(|err| site.error("ec2:ModifyInstanceAttribute", &err))
}

fn filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .values(value)
        .build()
}
