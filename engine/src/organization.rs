//! The Organization: its description, its accounts, and which of them irf sweeps.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aws::{AwsContext, AwsError, CallerIdentity};
use crate::config::AccountId;

/// The Organization as DescribeOrganization reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    pub id: String,
    pub arn: String,
    pub management_account: String,
}

/// One account of the Organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgAccount {
    pub id: AccountId,
    pub name: String,
    pub email: String,
    pub status: String,
}

/// `irf whoami`: the caller and the Organization it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct WhoAmI {
    pub caller: CallerIdentity,
    pub region: String,
    pub endpoint_url: Option<String>,
    /// When the credentials in force end (RFC 3339): an SSO role session's or an assumed
    /// role's; `None` for credentials that do not (an access key).
    pub credentials_expire: Option<String>,
    /// `None` when the account is not in an Organization or may not describe it.
    pub organization: Option<Organization>,
    /// Why the Organization could not be described, when it could not.
    pub organization_error: Option<String>,
}

/// Where a member account in the sweep scope came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberAccount {
    pub id: AccountId,
    /// The account's name in Organizations; its id when the name cannot be read.
    pub name: String,
}

/// The accounts and regions a sweep covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub accounts: Vec<MemberAccount>,
    pub regions: Vec<String>,
}

impl AwsContext {
    /// The caller and its Organization.
    pub async fn whoami(&self) -> Result<WhoAmI, AwsError> {
        let caller = self.caller_identity().await?;
        let (organization, organization_error) = match self.organization().await {
            Ok(org) => (Some(org), None),
            Err(err) => (None, Some(err.to_string())),
        };
        Ok(WhoAmI {
            caller,
            region: self.home_region(),
            endpoint_url: self.endpoint_url().map(str::to_owned),
            credentials_expire: self.credentials_expire().await,
            organization,
            organization_error,
        })
    }

    /// DescribeOrganization from the base credentials.
    pub async fn organization(&self) -> Result<Organization, AwsError> {
        let region = self.home_region();
        let client = aws_sdk_organizations::Client::new(&self.base_config(&region));
        let out = client.describe_organization().send().await.map_err(|err| {
            AwsError::from_sdk("organizations:DescribeOrganization", "-", &region, &err)
        })?;
        let org = out.organization().ok_or_else(|| AwsError::Incomplete {
            operation: "organizations:DescribeOrganization",
            missing: "the Organization".to_owned(),
        })?;
        Ok(Organization {
            id: org.id().unwrap_or_default().to_owned(),
            arn: org.arn().unwrap_or_default().to_owned(),
            management_account: org.master_account_id().unwrap_or_default().to_owned(),
        })
    }

    /// Every account Organizations lists, following pagination.
    pub async fn organization_accounts(&self) -> Result<Vec<OrgAccount>, AwsError> {
        let region = self.home_region();
        let client = aws_sdk_organizations::Client::new(&self.base_config(&region));
        let mut pages = client.list_accounts().into_paginator().send();
        let mut accounts = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| {
                AwsError::from_sdk("organizations:ListAccounts", "-", &region, &err)
            })?;
            for account in page.accounts() {
                let Some(id) = account.id().and_then(|id| AccountId::parse(id).ok()) else {
                    continue;
                };
                accounts.push(OrgAccount {
                    id,
                    name: account.name().unwrap_or_default().to_owned(),
                    email: account.email().unwrap_or_default().to_owned(),
                    status: account
                        .status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                });
            }
        }
        Ok(accounts)
    }

    /// The member accounts and regions to sweep.
    ///
    /// Explicit `accounts.members` win; otherwise every active account of the Organization
    /// except the Security and Forensics accounts and `accounts.exclude`. When the
    /// Organization cannot be listed and no members are configured, that is an error that
    /// says how to fix it.
    pub async fn sweep_scope(&self) -> Result<Scope, AwsError> {
        let accounts_config = &self.config().accounts;
        let regions = self.config().regions.clone();
        let listed = self.organization_accounts().await;
        let names: BTreeMap<AccountId, String> = listed
            .as_ref()
            .map(|accounts| {
                accounts
                    .iter()
                    .map(|a| (a.id.clone(), a.name.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let name_of = |id: &AccountId| names.get(id).cloned().unwrap_or_else(|| id.to_string());

        if !accounts_config.members.is_empty() {
            let accounts = accounts_config
                .members
                .iter()
                .map(|id| MemberAccount {
                    id: id.clone(),
                    name: name_of(id),
                })
                .collect();
            return Ok(Scope { accounts, regions });
        }
        let listed = listed.map_err(|err| match err {
            AwsError::Credentials { .. } => err,
            err => AwsError::NoAccountList {
                source: Box::new(err),
                config: crate::config::Config::path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "config.toml".into()),
            },
        })?;
        let skip: Vec<&AccountId> = accounts_config
            .security
            .iter()
            .chain(accounts_config.forensics.iter())
            .chain(accounts_config.exclude.iter())
            .collect();
        let accounts = listed
            .into_iter()
            .filter(|a| a.status.eq_ignore_ascii_case("ACTIVE") && !skip.contains(&&a.id))
            .map(|a| MemberAccount {
                id: a.id,
                name: a.name,
            })
            .collect();
        Ok(Scope { accounts, regions })
    }
}
