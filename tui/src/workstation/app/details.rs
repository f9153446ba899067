//! The fields of the selected row that its columns leave out, for the details panel beside
//! the instances, findings, accounts, evidence and hosts lists.

use irf_engine::inventory::Instance;

use super::{App, View};

impl App {
    /// The selected row's details as label and value pairs.
    pub fn detail_fields(&self) -> Vec<(String, String)> {
        let app = self;
        let mut lines = Vec::new();
        let mut push = |label: &str, value: &str| lines.push((label.to_owned(), value.to_owned()));
        match app.view {
            View::Instances => {
                let Some(row) = app.instances.table.selected() else {
                    return lines;
                };
                instance_details(&row.instance, &mut push);
                let findings = app.findings_of(&row.instance.id);
                push("findings", &findings.len().to_string());
                for finding in findings {
                    push(finding.severity.label(), &finding.title);
                }
            }
            View::Findings => {
                let Some(row) = app.findings.table.selected() else {
                    return lines;
                };
                let f = &row.finding;
                push("severity", f.severity.label());
                push("title", &f.title);
                push("description", &f.description);
                push("types", &f.types.join(", "));
                push("account", &f.account);
                push("region", &f.region);
                push("resource", &f.resource_id);
                push("workflow", &f.workflow_status);
                push("record", &f.record_state);
                push("created", &f.created_at);
                push("updated", &f.updated_at);
                push("note", f.note.as_deref().unwrap_or("-"));
                push("id", &f.id);
                match f.instance_id.as_deref().and_then(|id| app.instance(id)) {
                    Some(instance) => {
                        push("", "");
                        push("instance", "");
                        instance_details(instance, &mut push);
                    }
                    None => push("instance", f.instance_id.as_deref().unwrap_or("-")),
                }
            }
            View::Evidence => {
                let Some(row) = app.evidence.table.selected() else {
                    return lines;
                };
                let item = &row.item;
                push("case", item.case_id.as_str());
                push("kind", &item.kind);
                push("key", &item.key);
                push(
                    "size",
                    &format!(
                        "{} bytes ({})",
                        item.size,
                        crate::workstation::format::human_bytes(item.size)
                    ),
                );
                push("sha256", item.sha256.as_deref().unwrap_or("-"));
                push("state", &item.state);
                match &item.lock {
                    None => push("object lock", "GONE: the object is no longer in the bucket"),
                    Some(lock) => {
                        push("retention", lock.mode.as_deref().unwrap_or("none"));
                        push("retain until", lock.retain_until.as_deref().unwrap_or("-"));
                        push("legal hold", if lock.legal_hold { "on" } else { "off" });
                    }
                }
                push(
                    "export",
                    &format!(
                        "irf evidence export {} -o FILE",
                        irf_engine::shell_quote(&item.key)
                    ),
                );
            }
            View::Hosts => {
                let Some(row) = app.hosts.table.selected() else {
                    return lines;
                };
                let host = &row.host;
                push("instance", &host.instance_id);
                push("case", &host.case_id);
                push("state", host.state.as_str());
                push("type", &host.instance_type);
                push("image", &host.image_id);
                push("vpc", host.vpc_id.as_deref().unwrap_or("-"));
                push("subnet", host.subnet_id.as_deref().unwrap_or("-"));
                push("private ip", host.private_ip.as_deref().unwrap_or("-"));
                push("public ip", host.public_ip.as_deref().unwrap_or("none"));
                push("profile", host.instance_profile.as_deref().unwrap_or("-"));
                push(
                    "imdsv2",
                    if host.imdsv2_required {
                        "required"
                    } else {
                        "NOT required"
                    },
                );
                push("evidence", host.evidence.as_deref().unwrap_or("none"));
                push("ssm", host.ssm.as_str());
                push("launched", host.launched_at.as_deref().unwrap_or("-"));
                push(
                    "cost so far",
                    &host
                        .cost_usd
                        .map_or_else(|| "?".to_owned(), |c| format!("${c:.2}")),
                );
            }
            // The cases have their own view instead of a panel.
            View::Cases | View::Case | View::Approvals | View::Images => {}
            View::Accounts => {
                let Some(row) = app.accounts.table.selected() else {
                    return lines;
                };
                push("account", &row.id);
                push("name", &row.name);
                for (region, count) in &row.per_region {
                    push(region, &format!("{count} instances"));
                }
                for error in &row.errors {
                    push("error", error);
                }
            }
        }
        lines
    }
}

fn instance_details(i: &Instance, push: &mut impl FnMut(&str, &str)) {
    push("id", &i.id);
    push("name", i.name.as_deref().unwrap_or("-"));
    push("account", &format!("{} ({})", i.account, i.account_name));
    push("region", &i.region);
    push("zone", i.availability_zone.as_deref().unwrap_or("-"));
    push("state", i.state.as_str());
    push("type", &i.instance_type);
    push("platform", &i.platform);
    push("image", i.image_id.as_deref().unwrap_or("-"));
    push("vpc", i.vpc_id.as_deref().unwrap_or("-"));
    push("subnet", i.subnet_id.as_deref().unwrap_or("-"));
    push("private ip", i.private_ip.as_deref().unwrap_or("-"));
    push("public ip", i.public_ip.as_deref().unwrap_or("-"));
    let groups: Vec<String> = i
        .security_groups
        .iter()
        .map(|g| format!("{} ({})", g.id, g.name))
        .collect();
    push("groups", &groups.join(", "));
    push("profile", i.instance_profile_arn.as_deref().unwrap_or("-"));
    push("ssm", i.ssm.label());
    push("launched", i.launch_time.as_deref().unwrap_or("-"));
    for (key, value) in i.tags.iter() {
        push(&format!("tag {key}"), value);
    }
}
