//! Who an STS identity is, as the four-eyes rule compares a requester with an approver: the
//! person behind a session, not the session's ARN.

/// The people behind STS caller ARNs, as this deployment names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct People {
    /// Roles whose trust policy requires each session to be named after the IAM user who
    /// assumes it (`sts:RoleSessionName` and `sts:SourceIdentity` equal to `${aws:username}`:
    /// template 3's OperatorRole), as `arn:<partition>:iam::<account>:role/<name>`.
    named_session_roles: Vec<String>,
}

impl People {
    /// The people of the deployment `config` describes (`workflow.named_session_roles`).
    pub fn of(config: &crate::config::Config) -> Self {
        Self::new(&config.workflow.named_session_roles)
    }

    /// With `named_session_roles` given as role ARNs (any path).
    pub fn new(named_session_roles: &[String]) -> Self {
        Self {
            named_session_roles: named_session_roles
                .iter()
                .map(|arn| without_path(arn))
                .collect(),
        }
    }

    /// The person an STS caller ARN stands for.
    ///
    /// - An Identity Center session (`assumed-role/AWSReservedSSO_<set>_<id>/<user>`): the
    ///   user, whose name Identity Center sets as the session name and the user cannot choose.
    ///   One user is one person whatever permission set and account the session is of:
    ///   otherwise a user with two permission sets asks with one and approves with the other.
    /// - A session of a role that names each session after its user: that user.
    /// - Any other assumed role: the role alone. Whoever may assume it picks any session name,
    ///   so two sessions of one role are one person: otherwise a requester approves their own
    ///   request by assuming the role again under another name.
    /// - An IAM user, or anything else: the ARN itself.
    pub fn person(&self, caller_arn: &str) -> String {
        let fields: Vec<&str> = caller_arn.splitn(6, ':').collect();
        let [_, partition, "sts", _, account, resource] = fields.as_slice() else {
            return caller_arn.to_owned();
        };
        let Some(session) = resource.strip_prefix("assumed-role/") else {
            return caller_arn.to_owned();
        };
        let (role, session_name) = session.split_once('/').unwrap_or((session, ""));
        let role_arn = format!("arn:{partition}:iam::{account}:role/{role}");
        if role.starts_with("AWSReservedSSO_") {
            format!("identity-center user {session_name} ({partition})")
        } else if self.named_session_roles.contains(&role_arn) {
            format!("iam user {session_name} of account {account} ({partition})")
        } else {
            format!("arn:{partition}:sts::{account}:assumed-role/{role}")
        }
    }

    /// Whether two callers are the same person for the four-eyes rule.
    pub fn same(&self, a: &str, b: &str) -> bool {
        self.person(a) == self.person(b)
    }
}

/// A role ARN without its path: assumed-role ARNs carry none.
fn without_path(role_arn: &str) -> String {
    match role_arn.split_once(":role/") {
        Some((head, path_and_name)) => {
            let name = path_and_name.rsplit('/').next().unwrap_or(path_and_name);
            format!("{head}:role/{name}")
        }
        None => role_arn.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_sessions_of_one_role_are_one_person() {
        let people = People::default();
        assert!(people.same(
            "arn:aws:sts::111122223333:assumed-role/irf-operator/alice",
            "arn:aws:sts::111122223333:assumed-role/irf-operator/not-alice",
        ));
        assert!(!people.same(
            "arn:aws:sts::111122223333:assumed-role/irf-operator/alice",
            "arn:aws:sts::111122223333:assumed-role/irf-responder/alice",
        ));
        assert!(!people.same(
            "arn:aws:sts::111122223333:assumed-role/irf-operator/alice",
            "arn:aws:sts::444455556666:assumed-role/irf-operator/alice",
        ));
    }

    #[test]
    fn a_role_that_names_sessions_after_their_users_tells_them_apart() {
        let people = People::new(&["arn:aws:iam::111122223333:role/ops/irf-operator".to_owned()]);
        assert!(!people.same(
            "arn:aws:sts::111122223333:assumed-role/irf-operator/alice",
            "arn:aws:sts::111122223333:assumed-role/irf-operator/bob",
        ));
        assert!(people.same(
            "arn:aws:sts::111122223333:assumed-role/irf-operator/alice",
            "arn:aws:sts::111122223333:assumed-role/irf-operator/alice",
        ));
        // The same name in another account's role is no such role.
        assert!(people.same(
            "arn:aws:sts::444455556666:assumed-role/irf-operator/alice",
            "arn:aws:sts::444455556666:assumed-role/irf-operator/bob",
        ));
    }

    #[test]
    fn identity_center_users_of_one_permission_set_are_told_apart() {
        let people = People::default();
        let role = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_IncidentResponder_5e1f0c2a9b7d3e41";
        assert!(!people.same(
            &format!("{role}/alice@example.com"),
            &format!("{role}/bob@example.com")
        ));
        assert!(people.same(
            &format!("{role}/alice@example.com"),
            &format!("{role}/alice@example.com")
        ));
    }

    #[test]
    fn an_identity_center_user_is_one_person_in_every_permission_set_and_account() {
        let people = People::default();
        assert!(people.same(
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_IncidentResponder_5e1f0c2a9b7d3e41/alice@example.com",
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_AdministratorAccess_0a1b2c3d4e5f6a7b/alice@example.com",
        ));
        assert!(people.same(
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_IncidentResponder_5e1f0c2a9b7d3e41/alice@example.com",
            "arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_ReadOnly_9f8e7d6c5b4a3921/alice@example.com",
        ));
    }

    #[test]
    fn users_and_unknown_shapes_compare_whole() {
        let people = People::default();
        assert!(!people.same(
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:user/bob"
        ));
        assert_eq!(people.person("not an arn"), "not an arn");
    }
}
