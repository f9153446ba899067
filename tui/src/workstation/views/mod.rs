//! The list views, one module each: the row and its searchable text, its columns, first sort
//! and widths, how a row is drawn, and what the view says while empty.

pub mod accounts;
pub mod approvals;
pub mod cases;
pub mod evidence;
pub mod findings;
pub mod hosts;
pub mod images;
pub mod instances;

pub use accounts::AccountRow;
pub use approvals::ApprovalRow;
pub use cases::CaseRow;
pub use evidence::EvidenceRow;
pub use findings::FindingRow;
pub use hosts::HostRow;
pub use images::ImageRow;
pub use instances::InstanceRow;

use crate::workstation::table::InstanceNames;

/// The lower-cased text a free filter term searches.
fn lower_join(parts: &[&str]) -> String {
    parts.join(" ").to_lowercase()
}

/// An instance id with its Name tag, when the sweep found one.
fn named_instance(names: &dyn InstanceNames, instance_id: &str) -> String {
    match names.instance_name(instance_id) {
        Some(name) => format!("{instance_id} {name}"),
        None => instance_id.to_owned(),
    }
}
