//! The lab's deployments of irf's own CloudFormation templates: each template, with the
//! parameter file a deployer uses and the lab's account ids, rendered and created by the
//! emulator (its roles, instance profiles and policies), so that the lab's identities and
//! policies are exactly the templates'.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::analysis::{ANALYSIS_VPC_CIDR, LabAnalysis};
use crate::common::{LAB_REGION, LabError};
use crate::control::Control;
use irf_engine::config::AccountId;

/// One template with its example parameter file, under the stack name the lab gives it.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// The stack name the lab gives it.
    pub name: &'static str,
    body: &'static str,
    parameters: &'static str,
}

const fn stack(name: &'static str, template: irf_templates::Template) -> Template {
    Template {
        name,
        body: template.body,
        parameters: template.parameters,
    }
}

/// Template 1: the Forensics account's evidence bucket, key, Analysis VPC and analyst role.
pub const FORENSIC_ANALYSIS: Template = stack("irf-forensics", irf_templates::FORENSIC_ANALYSIS);
/// Template 3: the Security account's workflow, automation roles and operator role.
pub const ACQUISITION: Template = stack("irf-acquisition", irf_templates::ACQUISITION);
/// Template 4: the memory capture tooling bucket.
pub const MEMORY_TOOLING: Template = stack("irf-memory-tooling", irf_templates::MEMORY_TOOLING);
/// Template 5: every member account's IRAutomation role, IR profiles and trigger.
pub const MEMBER: Template = stack("irf-member", irf_templates::MEMBER);
/// Template 6: the evidence bucket's policy.
pub const EVIDENCE_POLICY: Template = stack("irf-evidence-policy", irf_templates::EVIDENCE_POLICY);
/// The Security Hub custom actions and their trigger.
pub const SECURITY_HUB_ACTIONS: Template = stack(
    "irf-securityhub-actions",
    irf_templates::SECURITY_HUB_ACTIONS,
);

/// The example account ids of the parameter files, which the lab's own ids replace.
pub const EXAMPLE_SECURITY: &str = "111111111111";
/// See [`EXAMPLE_SECURITY`].
pub const EXAMPLE_FORENSICS: &str = "222222222222";

/// What a deployment created, and what it could not (a policy on a resource the lab lacks).
#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    pub created: Vec<DeployedResource>,
    pub skipped: Vec<DeployedResource>,
    pub outputs: BTreeMap<String, serde_json::Value>,
    /// The time limit (seconds) of each Lambda function, by logical id.
    #[serde(default)]
    pub functions: BTreeMap<String, u64>,
}

/// What the deployed templates tell the lab: the evidence key, and the step function's
/// time limit, which the lab runtime applies to the steps it runs in the function's place.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub evidence_key_arn: String,
    /// Template 3's asymmetric key that signs ledger entries.
    pub ledger_key_arn: Option<String>,
    pub step_function_timeout_secs: Option<u64>,
}

/// One resource of a deployment.
#[derive(Debug, Clone, Deserialize)]
pub struct DeployedResource {
    pub logical_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub why: Option<String>,
}

#[derive(Deserialize)]
struct ParameterFileEntry {
    #[serde(rename = "ParameterKey")]
    key: String,
    #[serde(rename = "ParameterValue")]
    value: String,
}

/// The lab's accounts, which take the place of the parameter files' example ids.
#[derive(Debug, Clone)]
pub struct LabAccounts<'a> {
    pub security: &'a AccountId,
    pub forensics: &'a AccountId,
    pub organization_id: &'a str,
}

impl Template {
    /// The template's parameter file with the lab's ids in place of the examples, then
    /// `overrides` on top.
    pub fn parameters(
        &self,
        accounts: &LabAccounts<'_>,
        overrides: &[(&str, String)],
    ) -> Result<BTreeMap<String, String>, LabError> {
        let entries: Vec<ParameterFileEntry> =
            serde_json::from_str(self.parameters).map_err(|err| LabError::Seed {
                step: "read a template's parameter file",
                message: format!("{}: {err}", self.name),
            })?;
        let mut values: BTreeMap<String, String> = entries
            .into_iter()
            .map(|entry| {
                let value = entry
                    .value
                    .replace(EXAMPLE_SECURITY, accounts.security.as_str())
                    .replace(EXAMPLE_FORENSICS, accounts.forensics.as_str());
                (entry.key, value)
            })
            .collect();
        if values.contains_key("OrganizationId") {
            values.insert(
                "OrganizationId".to_owned(),
                accounts.organization_id.to_owned(),
            );
        }
        for (key, value) in overrides {
            values.insert((*key).to_owned(), value.clone());
        }
        Ok(values)
    }

    /// Renders the template in `account` and creates its policy-bearing resources there.
    /// `physical` names the ids of resources the lab made itself (`{"AnalysisVpc": {"ref":
    /// "vpc-..."}}`), which Ref and Fn::GetAtt resolve to.
    pub async fn deploy(
        &self,
        control: &Control,
        account: &AccountId,
        region: &str,
        parameters: &BTreeMap<String, String>,
        physical: serde_json::Value,
    ) -> Result<Deployment, LabError> {
        let answer = control
            .post_for_json(
                "/irf-lab/deploy",
                &serde_json::json!({
                    "name": self.name,
                    "template": self.body,
                    "account": account.as_str(),
                    "region": region,
                    "parameters": parameters,
                    "physical": physical,
                }),
            )
            .await?;
        let deployment: Deployment =
            serde_json::from_value(answer).map_err(|err| LabError::Seed {
                step: "deploy a template",
                message: format!("{}: the emulator's answer: {err}", self.name),
            })?;
        for skipped in &deployment.skipped {
            tracing::info!(
                template = self.name,
                resource = skipped.logical_id,
                why = skipped.why.as_deref().unwrap_or_default(),
                "not deployed in the lab"
            );
        }
        Ok(deployment)
    }
}

/// Deploys every template the lab needs, in the order a deployer follows: the Forensics
/// account's member role (5) and its own template (1, whose evidence key the others name), the
/// Security account's (3, 4, the Security Hub actions), every managed member's member role
/// (5), and the evidence bucket's policy (6). Returns the evidence key's ARN.
pub async fn deploy_all(
    control: &Control,
    accounts: &LabAccounts<'_>,
    managed_members: &[AccountId],
    analysis: &LabAnalysis,
    four_eyes: bool,
) -> Result<Deployed, LabError> {
    let region = LAB_REGION;
    let none = serde_json::json!({});
    let member_parameters = MEMBER.parameters(accounts, &[])?;
    MEMBER
        .deploy(
            control,
            accounts.forensics,
            region,
            &member_parameters,
            none.clone(),
        )
        .await?;
    let forensic_parameters = FORENSIC_ANALYSIS.parameters(
        accounts,
        &[("AnalysisVpcCidr", ANALYSIS_VPC_CIDR.to_owned())],
    )?;
    let forensics = FORENSIC_ANALYSIS
        .deploy(
            control,
            accounts.forensics,
            region,
            &forensic_parameters,
            analysis.physical_ids(ANALYSIS_VPC_CIDR),
        )
        .await?;
    let evidence_key = forensics
        .outputs
        .get("EvidenceKmsKeyArn")
        .and_then(|v| v.as_str())
        .ok_or_else(|| LabError::Seed {
            step: "deploy template 1",
            message: "it gave no EvidenceKmsKeyArn".to_owned(),
        })?
        .to_owned();
    let mut step_function_timeout_secs = None;
    let mut ledger_key_arn = None;
    let mut acquisition_outputs: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for template in [ACQUISITION, MEMORY_TOOLING, SECURITY_HUB_ACTIONS] {
        let overrides: Vec<(&str, String)> = if template.name == ACQUISITION.name {
            vec![
                ("EvidenceKmsKeyArn", evidence_key.clone()),
                (
                    "FourEyes",
                    if four_eyes { "required" } else { "off" }.to_owned(),
                ),
            ]
        } else if template.name == SECURITY_HUB_ACTIONS.name {
            // The keys template 3 created, not the parameter file's examples.
            ["CaseTableKmsKeyArn", "LedgerSigningKeyArn"]
                .into_iter()
                .filter_map(|name| {
                    acquisition_outputs
                        .get(name)
                        .and_then(|v| v.as_str())
                        .map(|arn| (name, arn.to_owned()))
                })
                .collect()
        } else {
            Vec::new()
        };
        let parameters = template.parameters(accounts, &overrides)?;
        let deployment = template
            .deploy(
                control,
                accounts.security,
                region,
                &parameters,
                none.clone(),
            )
            .await?;
        if template.name == ACQUISITION.name {
            step_function_timeout_secs = deployment.functions.get("StepFunction").copied();
            ledger_key_arn = deployment
                .outputs
                .get("LedgerSigningKeyArn")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            acquisition_outputs = deployment.outputs.clone();
        }
    }
    for account in managed_members {
        MEMBER
            .deploy(control, account, region, &member_parameters, none.clone())
            .await?;
    }
    let evidence_parameters =
        EVIDENCE_POLICY.parameters(accounts, &[("EvidenceKmsKeyArn", evidence_key.clone())])?;
    EVIDENCE_POLICY
        .deploy(
            control,
            accounts.forensics,
            region,
            &evidence_parameters,
            none,
        )
        .await?;
    Ok(Deployed {
        evidence_key_arn: evidence_key,
        ledger_key_arn,
        step_function_timeout_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_ids_replace_the_examples_and_overrides_win() {
        let security = AccountId::parse("123456789012").expect("id");
        let forensics = AccountId::parse("210987654321").expect("id");
        let accounts = LabAccounts {
            security: &security,
            forensics: &forensics,
            organization_id: "o-labexample01",
        };
        let values = MEMBER
            .parameters(
                &accounts,
                &[("GlobalResourcesRegion", "eu-west-1".to_owned())],
            )
            .expect("parameters");
        assert_eq!(values["OrganizationId"], "o-labexample01");
        assert_eq!(values["GlobalResourcesRegion"], "eu-west-1");
        assert!(
            values["IncidentEventBusArn"].contains(":123456789012:event-bus/irf-incidents"),
            "{}",
            values["IncidentEventBusArn"]
        );
        assert!(
            values["AutomationRoleArns"].contains(":123456789012:role/irf-trigger,"),
            "{}",
            values["AutomationRoleArns"]
        );
        assert!(
            values
                .values()
                .all(|v| !v.contains(EXAMPLE_SECURITY) && !v.contains(EXAMPLE_FORENSICS)),
            "an example id is left: {values:?}"
        );
    }

    #[test]
    fn every_embedded_parameter_file_parses() {
        let security = AccountId::parse("123456789012").expect("id");
        let accounts = LabAccounts {
            security: &security,
            forensics: &security,
            organization_id: "o-labexample01",
        };
        for template in [
            FORENSIC_ANALYSIS,
            ACQUISITION,
            MEMORY_TOOLING,
            MEMBER,
            EVIDENCE_POLICY,
            SECURITY_HUB_ACTIONS,
        ] {
            let values = template.parameters(&accounts, &[]).expect("parameters");
            assert!(!values.is_empty(), "{} has parameters", template.name);
        }
    }
}
