//! irf's deployment as text: each CloudFormation template with the parameter file a
//! deployer starts from, and the acquisition state machine template 3 deploys. The lab
//! deploys these very texts, so its identities and policies are the templates' own.

/// One template and its example parameter file.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// The file name without its extension, e.g. `3-security-acquisition-automation`.
    pub file: &'static str,
    /// The template's YAML.
    pub body: &'static str,
    /// The example parameter file's JSON (`parameters/<file>.json`).
    pub parameters: &'static str,
}

macro_rules! template {
    ($file:literal) => {
        Template {
            file: $file,
            body: include_str!(concat!($file, ".yaml")),
            parameters: include_str!(concat!("parameters/", $file, ".json")),
        }
    };
}

/// Template 1: the Forensics account's evidence bucket, key, Analysis VPC and analyst role.
pub const FORENSIC_ANALYSIS: Template = template!("1-forensic-analysis-vpc-and-buckets");
/// Template 2: the Forensics account's maintenance VPC and SIFT image pipeline.
pub const SIFT_PIPELINE: Template = template!("2-forensic-maintenance-vpc-and-sift-pipeline");
/// Template 3: the Security account's workflow, automation roles and operator role.
pub const ACQUISITION: Template = template!("3-security-acquisition-automation");
/// Template 4: the memory capture tooling bucket.
pub const MEMORY_TOOLING: Template = template!("4-security-memory-tooling");
/// Template 5: every member account's IRAutomation role, IR profiles and trigger.
pub const MEMBER: Template = template!("5-member-ir-automation");
/// Template 6: the evidence bucket's policy.
pub const EVIDENCE_POLICY: Template = template!("6-forensic-evidence-bucket-policies");
/// Template 7: the Security account's IR VPC.
pub const SECURITY_IR_VPC: Template = template!("7-security-ir-vpc");
/// The Security Hub custom actions and their trigger.
pub const SECURITY_HUB_ACTIONS: Template = template!("securityhub-custom-actions");

/// Every template, in the order of their numbers.
pub const ALL: [Template; 8] = [
    FORENSIC_ANALYSIS,
    SIFT_PIPELINE,
    ACQUISITION,
    MEMORY_TOOLING,
    MEMBER,
    EVIDENCE_POLICY,
    SECURITY_IR_VPC,
    SECURITY_HUB_ACTIONS,
];

/// The acquisition state machine, exactly as template 3 deploys it.
pub const ACQUISITION_ASL: &str = include_str!("statemachines/acquisition.asl.json");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_is_a_template_with_parameters_a_deployer_can_pass() {
        for template in ALL {
            assert!(
                template.body.starts_with("AWSTemplateFormatVersion")
                    && template.body.contains("\nResources:"),
                "{}.yaml is not a CloudFormation template",
                template.file
            );
            let parameters: Vec<serde_json::Value> = serde_json::from_str(template.parameters)
                .unwrap_or_else(|err| panic!("parameters/{}.json: {err}", template.file));
            for parameter in &parameters {
                assert!(
                    parameter["ParameterKey"].is_string()
                        && parameter["ParameterValue"].is_string(),
                    "parameters/{}.json: {parameter}",
                    template.file
                );
            }
        }
    }

    #[test]
    fn the_state_machine_is_json_with_states() {
        let machine: serde_json::Value =
            serde_json::from_str(ACQUISITION_ASL).expect("the state machine parses");
        assert!(machine["States"].is_object() && machine["StartAt"].is_string());
    }
}
