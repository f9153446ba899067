//! Creating the planned Organization in the emulator through the same SDK calls irf uses
//! against AWS: accounts, irf's own templates, the workflow, the Analysis VPC, disks and
//! the instances' profile.

use std::sync::Arc;

use crate::common::{LAB_REGION, LabError};
use irf_engine::aws::AwsContext;
use irf_engine::config::AccountId;

use super::findings::import_findings;
use super::network::{create_network, front_web_server, run_instance};
use super::plan::{PlannedInstance, SeedOptions, SeedPlan};
use super::seeded::{LabAccount, LabInstance, SeededLab, sdk_err, seed_err};
use crate::common::ORG_ACCESS_ROLE;

/// Creates the planned Organization. `security` acts as the Security account (the
/// emulator's default account, which is also the Organization's management account here).
pub async fn apply(
    security: Arc<AwsContext>,
    options: &SeedOptions,
    disk_dir: &std::path::Path,
    memcap: Option<&std::path::Path>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<SeededLab, LabError> {
    options.validate()?;
    let plan = SeedPlan::new(options);
    let caller = security
        .caller_identity()
        .await
        .map_err(seed_err("identify the Security account"))?;
    let security_id = AccountId::parse(&caller.account).map_err(|e| LabError::Seed {
        step: "identify the Security account",
        message: e.to_string(),
    })?;
    let home = security.base_config(LAB_REGION);

    progress("creating the Organization and its accounts");
    let orgs = aws_sdk_organizations::Client::new(&home);
    let org = orgs
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .map_err(sdk_err(
            "organizations:CreateOrganization",
            security_id.as_str(),
            LAB_REGION,
        ))?;
    let organization_id = org
        .organization()
        .and_then(|o| o.id())
        .unwrap_or_default()
        .to_owned();
    let create_account = async |name: &str| -> Result<AccountId, LabError> {
        let out = orgs
            .create_account()
            .account_name(name)
            .email(format!("aws+{name}@example.com"))
            .send()
            .await
            .map_err(sdk_err(
                "organizations:CreateAccount",
                security_id.as_str(),
                LAB_REGION,
            ))?;
        let id = out
            .create_account_status()
            .and_then(|s| s.account_id())
            .unwrap_or_default();
        AccountId::parse(id).map_err(|e| LabError::Seed {
            step: "organizations:CreateAccount",
            message: e.to_string(),
        })
    };
    let forensics = create_account("ir-forensics").await?;
    let mut members = Vec::new();
    for planned in &plan.members {
        let id = create_account(&planned.name).await?;
        members.push(LabAccount {
            id,
            name: planned.name.clone(),
            managed: planned.managed,
        });
    }

    // The seeder reaches member accounts the way an administrator would: through the role
    // Organizations created in each of them.
    let mut seeder_config = security.config().clone();
    seeder_config.accounts.member_role = ORG_ACCESS_ROLE.to_owned();
    let seeder = AwsContext::connect(
        Arc::new(seeder_config),
        &crate::common::connect_options_for(security.endpoint_url().unwrap_or_default()),
    )
    .await;

    let mut instances = Vec::with_capacity(plan.instances.len());
    // Where each planned instance landed in `instances`, for stopping and for findings.
    let mut created_of_planned = vec![0usize; plan.instances.len()];
    for (index, account) in members.iter().enumerate() {
        progress(&format!(
            "seeding account {} ({})",
            account.name, account.id
        ));
        let iam = aws_sdk_iam::Client::new(
            &seeder
                .account_config(&account.id, LAB_REGION)
                .await
                .map_err(seed_err("reach a member account"))?,
        );
        let profile = create_app_profile(&iam, &account.id).await?;
        for (region_index, region) in plan.regions.iter().enumerate() {
            let ec2 = aws_sdk_ec2::Client::new(
                &seeder
                    .account_config(&account.id, region)
                    .await
                    .map_err(seed_err("reach a member account"))?,
            );
            let network = create_network(&ec2, &account.id, region, index, region_index).await?;
            for (planned_index, planned) in plan
                .instances
                .iter()
                .enumerate()
                .filter(|(_, p)| p.account == index && &p.region == region)
            {
                let environment = &plan.members[index].environment;
                let (id, root_volume_id) = run_instance(
                    &ec2,
                    &account.id,
                    region,
                    planned,
                    environment,
                    &network,
                    &profile,
                )
                .await?;
                if planned.analyze {
                    Box::pin(front_web_server(
                        &seeder,
                        &account.id,
                        region,
                        &network,
                        &id,
                    ))
                    .await?;
                }
                created_of_planned[planned_index] = instances.len();
                instances.push(LabInstance {
                    id,
                    root_volume_id,
                    account: account.id.clone(),
                    region: region.clone(),
                    name: planned.name.clone(),
                    state: if planned.stopped {
                        "stopped"
                    } else {
                        "running"
                    }
                    .to_owned(),
                });
            }
        }
    }
    progress("stopping the instances that are planned stopped");
    for (planned_index, planned) in plan.instances.iter().enumerate() {
        if !planned.stopped {
            continue;
        }
        let created = &instances[created_of_planned[planned_index]];
        let ec2 = aws_sdk_ec2::Client::new(
            &seeder
                .account_config(&created.account, &created.region)
                .await
                .map_err(seed_err("reach a member account"))?,
        );
        ec2.stop_instances()
            .instance_ids(&created.id)
            .send()
            .await
            .map_err(sdk_err(
                "ec2:StopInstances",
                created.account.as_str(),
                &created.region,
            ))?;
    }

    progress("building the root filesystems of the Linux instances");
    let disks = build_disks(&plan, &instances, &created_of_planned, disk_dir).await?;

    progress("deploying the acquisition workflow and the evidence bucket");
    let managed: Vec<AccountId> = members
        .iter()
        .filter(|m| m.managed)
        .map(|m| m.id.clone())
        .collect();
    let mut plane = crate::plane::create(&seeder, &security_id, &forensics, memcap).await?;
    progress("building the Analysis VPC and the SIFT image pipeline");
    let analysis = Box::pin(crate::analysis::create(&seeder, &forensics)).await?;
    progress("deploying the templates' roles and policies");
    let deployed = crate::templates::deploy_all(
        &crate::control::Control::new(security.endpoint_url().unwrap_or_default()),
        &crate::templates::LabAccounts {
            security: &security_id,
            forensics: &forensics,
            organization_id: &organization_id,
        },
        &managed,
        &analysis,
        options.four_eyes,
    )
    .await?;
    plane.evidence_kms_key_arn = Some(deployed.evidence_key_arn);
    plane.ledger_key_arn = deployed.ledger_key_arn;
    plane.step_function_timeout_secs = deployed.step_function_timeout_secs;

    progress("importing Security Hub findings");
    let findings = import_findings(
        &security,
        &security_id,
        &plan,
        &instances,
        &created_of_planned,
    )
    .await?;

    Ok(SeededLab {
        options: options.clone(),
        organization_id,
        security: security_id,
        forensics,
        members,
        instances,
        findings,
        disks,
        plane: Some(plane),
        analysis: Some(analysis),
    })
}

/// Builds every Linux root volume's filesystem, two at a time (mke2fs is quick but the
/// images are many).
pub(super) async fn build_disks(
    plan: &SeedPlan,
    instances: &[LabInstance],
    created_of_planned: &[usize],
    disk_dir: &std::path::Path,
) -> Result<Vec<crate::disks::SeededDisk>, LabError> {
    use crate::disks::{DiskSpec, SeededDisk, build_image, planted_indicators};
    let jobs: Vec<(PlannedInstance, LabInstance)> = plan
        .instances
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.os.starts_with("Windows"))
        .map(|(i, p)| (p.clone(), instances[created_of_planned[i]].clone()))
        .collect();
    let mut built = Vec::with_capacity(jobs.len());
    for pair in jobs.chunks(2) {
        let handles: Vec<_> = pair
            .iter()
            .cloned()
            .map(|(planned, instance)| {
                let image = disk_dir.join(format!("{}.img", instance.root_volume_id));
                tokio::task::spawn_blocking(move || {
                    let spec = DiskSpec {
                        hostname: &planned.name,
                        os: &planned.os,
                        role: planned.role.name(),
                        compromised: planned.analyze,
                        size_gib: planned.root_gib,
                    };
                    let size_bytes = build_image(&spec, &image)?;
                    Ok::<_, LabError>(SeededDisk {
                        volume_id: instance.root_volume_id.clone(),
                        instance_id: instance.id.clone(),
                        device: "/dev/xvda".to_owned(),
                        image,
                        size_bytes,
                        planted: if planned.analyze {
                            planted_indicators()
                        } else {
                            Vec::new()
                        },
                    })
                })
            })
            .collect();
        for handle in handles {
            let disk = handle.await.map_err(|err| LabError::Seed {
                step: "build the lab's disk images",
                message: err.to_string(),
            })??;
            built.push(disk);
        }
    }
    Ok(built)
}

pub(super) async fn create_app_profile(
    iam: &aws_sdk_iam::Client,
    account: &AccountId,
) -> Result<String, LabError> {
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Principal": { "Service": "ec2.amazonaws.com" }, "Action": "sts:AssumeRole" }]
    });
    let name = "app-server";
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .map_err(sdk_err("iam:CreateRole", account.as_str(), LAB_REGION))?;
    iam.create_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .map_err(sdk_err(
            "iam:CreateInstanceProfile",
            account.as_str(),
            LAB_REGION,
        ))?;
    iam.add_role_to_instance_profile()
        .instance_profile_name(name)
        .role_name(name)
        .send()
        .await
        .map_err(sdk_err(
            "iam:AddRoleToInstanceProfile",
            account.as_str(),
            LAB_REGION,
        ))?;
    Ok(name.to_owned())
}
