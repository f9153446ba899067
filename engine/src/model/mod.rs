//! The domain's pure types: a case and its detail, an instance's state and containment, the chain of
//! custody's entries and an artifact's manifest. Nothing here calls AWS: the stores keep these
//! types and every service and view reads them.

pub mod case;
pub mod case_detail;
pub mod containment;
pub mod instance;
pub mod ledger;
pub mod manifest;
