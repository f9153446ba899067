//! Who an STS identity is, as the four-eyes rule compares a requester with an approver: the
//! person behind a session, not the session's ARN.

/// The person an STS caller ARN stands for.
///
/// - An Identity Center session (`assumed-role/AWSReservedSSO_<set>_<id>/<user>`): the user,
///   whose name Identity Center sets as the session name and the user cannot choose. One user
///   is one person whatever permission set and account the session is of: otherwise a user
///   with two permission sets asks with one and approves with the other.
/// - Any other assumed role: the role alone. Whoever may assume it picks any session name, so two
///   sessions of one role are one person: otherwise a requester approves their own request by
///   assuming the role again under another name.
/// - An IAM user, or anything else: the ARN itself.
pub fn person(caller_arn: &str) -> String {
    let fields: Vec<&str> = caller_arn.splitn(6, ':').collect();
    let [_, partition, "sts", _, account, resource] = fields.as_slice() else {
        return caller_arn.to_owned();
    };
    let Some(session) = resource.strip_prefix("assumed-role/") else {
        return caller_arn.to_owned();
    };
    let (role, session_name) = session.split_once('/').unwrap_or((session, ""));
    if role.starts_with("AWSReservedSSO_") {
        format!("identity-center user {session_name} ({partition})")
    } else {
        format!("arn:{partition}:sts::{account}:assumed-role/{role}")
    }
}

/// Whether two callers are the same person for the four-eyes rule.
pub fn same_person(a: &str, b: &str) -> bool {
    person(a) == person(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_sessions_of_one_role_are_one_person() {
        assert!(same_person(
            "arn:aws:sts::111122223333:assumed-role/irf-operator/alice",
            "arn:aws:sts::111122223333:assumed-role/irf-operator/not-alice",
        ));
        assert!(!same_person(
            "arn:aws:sts::111122223333:assumed-role/irf-operator/alice",
            "arn:aws:sts::111122223333:assumed-role/irf-responder/alice",
        ));
        assert!(!same_person(
            "arn:aws:sts::111122223333:assumed-role/irf-operator/alice",
            "arn:aws:sts::444455556666:assumed-role/irf-operator/alice",
        ));
    }

    #[test]
    fn identity_center_users_of_one_permission_set_are_told_apart() {
        let role = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_IncidentResponder_5e1f0c2a9b7d3e41";
        assert!(!same_person(
            &format!("{role}/alice@example.com"),
            &format!("{role}/bob@example.com")
        ));
        assert!(same_person(
            &format!("{role}/alice@example.com"),
            &format!("{role}/alice@example.com")
        ));
    }

    #[test]
    fn an_identity_center_user_is_one_person_in_every_permission_set_and_account() {
        assert!(same_person(
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_IncidentResponder_5e1f0c2a9b7d3e41/alice@example.com",
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_AdministratorAccess_0a1b2c3d4e5f6a7b/alice@example.com",
        ));
        assert!(same_person(
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_IncidentResponder_5e1f0c2a9b7d3e41/alice@example.com",
            "arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_ReadOnly_9f8e7d6c5b4a3921/alice@example.com",
        ));
    }

    #[test]
    fn users_and_unknown_shapes_compare_whole() {
        assert!(!same_person(
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:user/bob"
        ));
        assert_eq!(person("not an arn"), "not an arn");
    }
}
