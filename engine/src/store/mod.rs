//! Where the workflow keeps what it knows: the case table (DynamoDB, Security account), the
//! evidence bucket (S3 with Object Lock, Forensics account) and the key that signs the
//! ledger (KMS). Each reads and writes the model's types and nothing else of irf's.

pub mod case_table;
pub mod evidence_bucket;
pub mod ledger_key;
