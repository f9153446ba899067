//! The case table (DynamoDB in the Security account): cases, their steps, artifacts and
//! approvals, each case's ledger entries, the desk's decisions and the containment records.
//!
//! Items are keyed `pk = CASE#<id>` with `sk` = `CASE`, `STEP#<name>`, `ARTIFACT#<key>` or
//! `APPROVAL`; an `OPEN#<account>#<region>#<instance>` item, written with a condition, makes
//! a second trigger for the same instance join the open case instead of starting another.
//! Each item keeps its record as JSON in `doc`, so the schema lives in the model's types alone.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::aws::{AwsError, CallSite};
use crate::model::case::now_rfc3339;
use crate::model::case::{
    ApprovalDecision, ArtifactProgress, BadInput, Case, CaseId, CaseStatus, CaseSubject,
    PendingApproval, StepRecord, StepStatus, TaskToken, Trigger,
};
use crate::model::case_detail::CaseDetail;
use crate::model::containment::{ContainmentRecord, InstanceRef};
use crate::model::ledger::LedgerEntry;

/// The task token of a case's approval wait, where only the automation writes.
#[derive(Serialize, Deserialize)]
struct ApprovalToken {
    token: TaskToken,
}

fn desk_approval_pk(case_id: &CaseId) -> String {
    format!("DESK#APPROVAL#{case_id}")
}

/// Errors about cases, each naming the bad value.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error(transparent)]
    BadInput(#[from] BadInput),
    #[error("no case '{0}' in the case table: list the cases with 'irf cases'")]
    NotFound(CaseId),
    #[error("the case table item {pk}/{sk} is damaged: {message}")]
    Damaged {
        pk: String,
        sk: String,
        message: String,
    },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// The case table in the Security account.
#[derive(Debug, Clone)]
pub struct CaseTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    site: CallSite,
}

/// The outcome of opening a case for an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "opened", content = "case", rename_all = "snake_case")]
pub enum Opened {
    /// A new case was recorded.
    New(Case),
    /// The instance already had an open case; the trigger joins it.
    Joined(Case),
}

impl Opened {
    pub fn case(&self) -> &Case {
        match self {
            Self::New(case) | Self::Joined(case) => case,
        }
    }
}

fn case_pk(id: &CaseId) -> String {
    format!("CASE#{id}")
}

fn open_pk(subject: &CaseSubject) -> String {
    format!(
        "OPEN#{}#{}#{}",
        subject.account, subject.region, subject.instance_id
    )
}

impl CaseTable {
    pub fn new(
        config: &aws_types::SdkConfig,
        table: impl Into<String>,
        account: impl Into<String>,
    ) -> Self {
        Self {
            client: aws_sdk_dynamodb::Client::new(config),
            table: table.into(),
            site: CallSite::new(config, account),
        }
    }

    pub fn name(&self) -> &str {
        &self.table
    }

    async fn put<T: Serialize>(&self, pk: String, sk: String, doc: &T) -> Result<(), CaseError> {
        let doc = serde_json::to_string(doc).map_err(|err| CaseError::Damaged {
            pk: pk.clone(),
            sk: sk.clone(),
            message: err.to_string(),
        })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk))
            .item("sk", AttributeValue::S(sk))
            .item("doc", AttributeValue::S(doc))
            .send()
            .await
            .map_err(|err| self.site.error("dynamodb:PutItem", &err))?;
        Ok(())
    }

    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        pk: String,
        sk: String,
    ) -> Result<Option<T>, CaseError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.clone()))
            .key("sk", AttributeValue::S(sk.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| self.site.error("dynamodb:GetItem", &err))?;
        out.item().map(|item| decode(item, &pk, &sk)).transpose()
    }

    /// Opens a case for `subject`, or joins the instance's open case.
    pub async fn open_or_join(
        &self,
        subject: CaseSubject,
        requested_by: &str,
        trigger: Trigger,
    ) -> Result<Opened, CaseError> {
        let now = OffsetDateTime::now_utc();
        let case = Case {
            case_id: CaseId::new(now, &subject.instance_id),
            subject,
            requested_by: requested_by.to_owned(),
            trigger,
            opened_at: now.format(&Rfc3339).unwrap_or_else(|_| now_rfc3339()),
            status: CaseStatus::Opening,
            execution_arn: None,
            closed_at: None,
            error: None,
        };
        let lock = open_pk(&case.subject);
        let claimed = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(lock.clone()))
            .item("sk", AttributeValue::S("OPEN".to_owned()))
            .item("case_id", AttributeValue::S(case.case_id.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match claimed {
            Ok(_) => {
                self.save_case(&case).await?;
                Ok(Opened::New(case))
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                let holder = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", AttributeValue::S(lock.clone()))
                    .key("sk", AttributeValue::S("OPEN".to_owned()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|err| self.site.error("dynamodb:GetItem", &err))?;
                let open_id = holder
                    .item()
                    .and_then(|item| item.get("case_id"))
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(|| CaseError::Damaged {
                        pk: lock.clone(),
                        sk: "OPEN".to_owned(),
                        message: "no case_id".to_owned(),
                    })?;
                let open_id = CaseId::parse(open_id)?;
                match self.case(&open_id).await {
                    Ok(existing) if existing.status.is_open() => Ok(Opened::Joined(existing)),
                    // A lock left by a case that ended without releasing it (a handler
                    // killed at the very end): take it over rather than refuse forever.
                    Ok(_) | Err(CaseError::NotFound(_)) => {
                        self.client
                            .put_item()
                            .table_name(&self.table)
                            .item("pk", AttributeValue::S(lock))
                            .item("sk", AttributeValue::S("OPEN".to_owned()))
                            .item("case_id", AttributeValue::S(case.case_id.to_string()))
                            .condition_expression("case_id = :stale")
                            .expression_attribute_values(
                                ":stale",
                                AttributeValue::S(open_id.to_string()),
                            )
                            .send()
                            .await
                            .map_err(|err| self.site.error("dynamodb:PutItem", &err))?;
                        self.save_case(&case).await?;
                        Ok(Opened::New(case))
                    }
                    Err(err) => Err(err),
                }
            }
            Err(err) => Err(self.site.error("dynamodb:PutItem", &err).into()),
        }
    }

    /// Writes the case record.
    pub async fn save_case(&self, case: &Case) -> Result<(), CaseError> {
        self.put(case_pk(&case.case_id), "CASE".to_owned(), case)
            .await
    }

    /// Ends a case: records its final status and lets the next trigger open a new one.
    pub async fn close(
        &self,
        case_id: &CaseId,
        status: CaseStatus,
        error: Option<String>,
    ) -> Result<Case, CaseError> {
        let mut case = self.case(case_id).await?;
        case.status = status;
        case.closed_at = Some(now_rfc3339());
        if error.is_some() {
            case.error = error;
        }
        self.save_case(&case).await?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(open_pk(&case.subject)))
            .key("sk", AttributeValue::S("OPEN".to_owned()))
            .condition_expression("case_id = :mine")
            .expression_attribute_values(":mine", AttributeValue::S(case_id.to_string()))
            .send()
            .await
            .map(drop)
            .or_else(|err| {
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception())
                {
                    // Another case holds the lock now; it is not ours to release.
                    Ok(())
                } else {
                    Err(self.site.error("dynamodb:DeleteItem", &err))
                }
            })?;
        Ok(case)
    }

    /// Sets the status of an open case; a case that has ended keeps its final status.
    pub async fn set_status(&self, case_id: &CaseId, status: CaseStatus) -> Result<(), CaseError> {
        let mut case = self.case(case_id).await?;
        if case.status != status && case.status.is_open() {
            case.status = status;
            self.save_case(&case).await?;
        }
        Ok(())
    }

    /// One case's record.
    pub async fn case(&self, case_id: &CaseId) -> Result<Case, CaseError> {
        self.get(case_pk(case_id), "CASE".to_owned())
            .await?
            .ok_or_else(|| CaseError::NotFound(case_id.clone()))
    }

    /// Every case, newest first.
    pub async fn cases(&self) -> Result<Vec<Case>, CaseError> {
        let mut cases = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :case")
            .expression_attribute_values(":case", AttributeValue::S("CASE".to_owned()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| self.site.error("dynamodb:Scan", &err))?;
            for item in page.items() {
                cases.push(decode::<Case>(item, "CASE#*", "CASE")?);
            }
        }
        cases.sort_by(|a, b| {
            b.opened_at
                .cmp(&a.opened_at)
                .then(b.case_id.cmp(&a.case_id))
        });
        Ok(cases)
    }

    /// The case with its steps, artifacts and approval.
    pub async fn detail(&self, case_id: &CaseId) -> Result<CaseDetail, CaseError> {
        let pk = case_pk(case_id);
        let items = self.case_items(&pk, None).await?;
        let mut case = None;
        let mut steps = Vec::new();
        let mut artifacts = Vec::new();
        let mut approval = None;
        let mut ledger = Vec::new();
        for item in &items {
            let sk = item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                .unwrap_or_default();
            if sk == "CASE" {
                case = Some(decode::<Case>(item, &pk, sk)?);
            } else if sk.starts_with("STEP#") {
                steps.push(decode::<StepRecord>(item, &pk, sk)?);
            } else if sk.starts_with("ARTIFACT#") {
                artifacts.push(decode::<ArtifactProgress>(item, &pk, sk)?);
            } else if sk == "APPROVAL" {
                approval = Some(decode::<PendingApproval>(item, &pk, sk)?);
            } else if sk.starts_with(LEDGER_PREFIX) {
                ledger.push(decode::<LedgerEntry>(item, &pk, sk)?);
            }
        }
        let case = case.ok_or_else(|| CaseError::NotFound(case_id.clone()))?;
        steps.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        artifacts.sort_by(|a, b| a.key.cmp(&b.key));
        let containment = self.containment(&InstanceRef::from(&case.subject)).await?;
        // Kept in key order, as stored: sorting by the entries' own sequence numbers would
        // hide entries moved between keys.
        Ok(CaseDetail {
            case,
            steps,
            artifacts,
            approval,
            containment,
            ledger,
        })
    }

    /// Records that a step started (counting attempts) or changed state.
    pub async fn record_step(
        &self,
        case_id: &CaseId,
        step: &str,
        status: StepStatus,
        detail: Option<String>,
    ) -> Result<(), CaseError> {
        let pk = case_pk(case_id);
        let sk = format!("STEP#{step}");
        let previous: Option<StepRecord> = self.get(pk.clone(), sk.clone()).await?;
        let now = now_rfc3339();
        let record = match (previous, status) {
            (Some(mut record), StepStatus::Running) => {
                record.status = status;
                record.attempts += 1;
                record.started_at = now;
                record.ended_at = None;
                record.detail = detail;
                record
            }
            (Some(mut record), _) => {
                record.status = status;
                record.ended_at = (status != StepStatus::Waiting).then_some(now);
                record.detail = detail;
                record
            }
            (None, _) => StepRecord {
                step: step.to_owned(),
                status,
                started_at: now.clone(),
                ended_at: matches!(status, StepStatus::Succeeded | StepStatus::Failed)
                    .then_some(now),
                detail,
                attempts: 1,
            },
        };
        self.put(pk, sk, &record).await
    }

    /// Records an artifact's progress.
    pub async fn record_artifact(
        &self,
        case_id: &CaseId,
        progress: &ArtifactProgress,
    ) -> Result<(), CaseError> {
        self.put(
            case_pk(case_id),
            format!("ARTIFACT#{}", progress.key),
            progress,
        )
        .await
    }

    /// Records the approval wait, and keeps its task token in the desk's partition.
    pub async fn await_approval(
        &self,
        approval: &PendingApproval,
        token: &TaskToken,
    ) -> Result<(), CaseError> {
        self.put(
            desk_approval_pk(&approval.case_id),
            "TOKEN".to_owned(),
            &ApprovalToken {
                token: token.clone(),
            },
        )
        .await?;
        self.put(case_pk(&approval.case_id), "APPROVAL".to_owned(), approval)
            .await?;
        self.set_status(&approval.case_id, CaseStatus::AwaitingApproval)
            .await
    }

    /// The task token of `case_id`'s approval wait, as the approval step kept it.
    pub async fn approval_token(&self, case_id: &CaseId) -> Result<Option<TaskToken>, CaseError> {
        Ok(self
            .get::<ApprovalToken>(desk_approval_pk(case_id), "TOKEN".to_owned())
            .await?
            .map(|kept| kept.token))
    }

    /// The first of the two approvals a case opened by a Security Hub action needs.
    pub async fn first_approval(
        &self,
        case_id: &CaseId,
    ) -> Result<Option<ApprovalDecision>, CaseError> {
        self.get(desk_approval_pk(case_id), "FIRST".to_owned())
            .await
    }

    /// Records the first of two approvals, where only the automation writes.
    pub async fn save_first_approval(
        &self,
        case_id: &CaseId,
        first: &ApprovalDecision,
    ) -> Result<(), CaseError> {
        self.put(desk_approval_pk(case_id), "FIRST".to_owned(), first)
            .await
    }

    /// Records the answer to an approval wait.
    pub async fn decide(
        &self,
        case_id: &CaseId,
        decision: ApprovalDecision,
    ) -> Result<(), CaseError> {
        let mut approval: PendingApproval = self
            .get(case_pk(case_id), "APPROVAL".to_owned())
            .await?
            .ok_or_else(|| CaseError::NotFound(case_id.clone()))?;
        approval.decided = Some(decision);
        self.put(case_pk(case_id), "APPROVAL".to_owned(), &approval)
            .await?;
        self.set_status(case_id, CaseStatus::Running).await
    }

    /// Takes back a decision the workflow never received.
    pub async fn undecide(&self, case_id: &CaseId) -> Result<(), CaseError> {
        let mut approval: PendingApproval = self
            .get(case_pk(case_id), "APPROVAL".to_owned())
            .await?
            .ok_or_else(|| CaseError::NotFound(case_id.clone()))?;
        approval.decided = None;
        self.put(case_pk(case_id), "APPROVAL".to_owned(), &approval)
            .await?;
        self.set_status(case_id, CaseStatus::AwaitingApproval).await
    }
}

/// Sort keys of ledger entries: `LEDGER#` and the sequence, zero-padded so that they sort.
const LEDGER_PREFIX: &str = "LEDGER#";

fn ledger_sk(seq: u64) -> String {
    format!("{LEDGER_PREFIX}{seq:010}")
}

impl CaseTable {
    /// The case's ledger entries as stored, in key order (which is sequence order).
    pub async fn ledger(&self, case_id: &CaseId) -> Result<Vec<LedgerEntry>, CaseError> {
        let pk = case_pk(case_id);
        self.case_items(&pk, Some(LEDGER_PREFIX))
            .await?
            .iter()
            .map(|item| {
                let sk = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    .unwrap_or_default();
                decode(item, &pk, sk)
            })
            .collect()
    }

    /// Every item of the case's partition (those whose sort key starts with `prefix`, when
    /// given), all pages, read consistently, in key order.
    async fn case_items(
        &self,
        pk: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, CaseError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true);
        query = match prefix {
            Some(prefix) => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned())),
            None => query.key_condition_expression("pk = :pk"),
        };
        let mut items = Vec::new();
        let mut pages = query.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| self.site.error("dynamodb:Query", &err))?;
            items.extend(page.items().iter().cloned());
        }
        Ok(items)
    }

    /// The case's newest ledger entry (by key), read without the rest of the ledger.
    pub async fn last_ledger_entry(
        &self,
        case_id: &CaseId,
    ) -> Result<Option<LedgerEntry>, CaseError> {
        let pk = case_pk(case_id);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :ledger)")
            .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
            .expression_attribute_values(":ledger", AttributeValue::S(LEDGER_PREFIX.to_owned()))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| self.site.error("dynamodb:Query", &err))?;
        out.items()
            .first()
            .map(|item| {
                let sk = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                decode(item, &pk, &sk)
            })
            .transpose()
    }

    /// Writes `entry` at its sequence unless another writer took that sequence first
    /// (`Ok(false)`: read the tail again and retry).
    pub async fn append_ledger(
        &self,
        case_id: &CaseId,
        entry: &LedgerEntry,
    ) -> Result<bool, CaseError> {
        let pk = case_pk(case_id);
        let sk = ledger_sk(entry.seq);
        let doc = serde_json::to_string(entry).map_err(|err| CaseError::Damaged {
            pk: pk.clone(),
            sk: sk.clone(),
            message: err.to_string(),
        })?;
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk))
            .item("sk", AttributeValue::S(sk))
            .item("doc", AttributeValue::S(doc))
            .condition_expression("attribute_not_exists(sk)")
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(self.site.error("dynamodb:PutItem", &err).into()),
        }
    }
}

fn desk_pk(id: &str) -> String {
    format!("DESK#{id}")
}

impl CaseTable {
    /// The desk's answer to decision `id`, once taken (its type is the desk's).
    pub async fn desk_answer<T: for<'de> Deserialize<'de>>(
        &self,
        id: &str,
    ) -> Result<Option<T>, CaseError> {
        self.get(desk_pk(id), "ANSWER".to_owned()).await
    }

    /// Records the desk's answer to decision `id` (the automation's write alone).
    pub async fn save_desk_answer<T: Serialize>(
        &self,
        id: &str,
        answer: &T,
    ) -> Result<(), CaseError> {
        self.put(desk_pk(id), "ANSWER".to_owned(), answer).await
    }
}

fn containment_pk(instance: &InstanceRef) -> String {
    format!(
        "CONTAINMENT#{}#{}#{}",
        instance.account, instance.region, instance.instance_id
    )
}

impl CaseTable {
    /// The containment record of an instance.
    pub async fn containment(
        &self,
        instance: &InstanceRef,
    ) -> Result<Option<ContainmentRecord>, CaseError> {
        self.get(containment_pk(instance), "RECORD".to_owned())
            .await
    }

    /// Writes an instance's containment record (whole: one writer per instance at a time).
    pub async fn save_containment(&self, record: &ContainmentRecord) -> Result<(), CaseError> {
        self.put(
            containment_pk(&record.instance),
            "RECORD".to_owned(),
            record,
        )
        .await
    }

    /// Every containment record.
    pub async fn containments(&self) -> Result<Vec<ContainmentRecord>, CaseError> {
        let mut records = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :record")
            .expression_attribute_values(":record", AttributeValue::S("RECORD".to_owned()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| self.site.error("dynamodb:Scan", &err))?;
            for item in page.items() {
                records.push(decode(item, "CONTAINMENT#*", "RECORD")?);
            }
        }
        Ok(records)
    }
}

fn decode<T: for<'de> Deserialize<'de>>(
    item: &HashMap<String, AttributeValue>,
    pk: &str,
    sk: &str,
) -> Result<T, CaseError> {
    let damaged = |message: String| CaseError::Damaged {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
        message,
    };
    let doc = item
        .get("doc")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| damaged("no 'doc' attribute".to_owned()))?;
    serde_json::from_str(doc).map_err(|err| damaged(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_token_is_stored_but_never_printed() {
        let kept = ApprovalToken {
            token: TaskToken::new("AAAA-secret-token"),
        };
        assert!(!format!("{:?}", kept.token).contains("secret"));
        let stored = serde_json::to_string(&kept).expect("json");
        let read: ApprovalToken = serde_json::from_str(&stored).expect("read back");
        assert_eq!(read.token.expose(), "AAAA-secret-token");
        // Kept in the desk's partition, which operators may not write.
        let case = CaseId::parse("20261128T093015Z-i-0abc").expect("valid");
        assert!(desk_approval_pk(&case).starts_with("DESK#"));
    }
}
