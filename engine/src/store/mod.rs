//! Where the workflow keeps what it knows: the case table (DynamoDB, Security account) and
//! the evidence bucket (S3 with Object Lock, Forensics account). Each reads and writes the
//! model's types and nothing else of irf's.

pub mod case_table;
pub mod evidence_bucket;
