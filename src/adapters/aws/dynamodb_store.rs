//! The incident store on one DynamoDB table: the reference for the table's layout (the SAM
//! template declares the same table) and for the queries an operator runs against it.
//!
//! # Layout
//!
//! | attribute | type | |
//! |---|---|---|
//! | `pk` | S | hash key: `INCIDENT#<incidentId>` |
//! | `sk` | S | range key: `STATE` for the projection, `EVENT#<seq>` (zero-padded to 10 digits) for the log |
//!
//! Billing is `PAY_PER_REQUEST`; the TTL attribute is `expiresAt` (epoch seconds).
//!
//! - **STATE item**: `pk`, `sk` and every [`Incident`] field under its serde (camelCase) name
//!   (`incidentId`, `status`, `alarmName`, `alarmArn`, `account`, `region`, `stateValue`,
//!   `stateTimestamp`, `eventSha256`, `executionName`, `executionArn`?, `attempts`, `lastError`?,
//!   `version`, `eventCount`, `createdAt`, `updatedAt`, `expiresAt`?). `alarmName` is left out when
//!   it is empty (rejected inputs): DynamoDB refuses empty strings as index keys, and this keeps
//!   rejected inputs out of `ByAlarm`. `outbox = "PENDING"` is present only while the status is
//!   `RECEIVED`, which makes `Outbox` a sparse index.
//! - **EVENT item**: `pk`, `sk`, `seq` (N), `type` (S), `at` (S), `data` (S: the event data as JSON
//!   text, so key order and number literals survive), `expiresAt` (N, copied from the projection
//!   when it has one, so the log expires with its incident).
//!
//! Global secondary indexes, all projecting ALL attributes:
//!
//! | index | hash | range | holds |
//! |---|---|---|---|
//! | `ByStatus` | `status` | `updatedAt` | every projection |
//! | `ByAlarm` | `alarmName` | `createdAt` | projections with an alarm (not rejected inputs) |
//! | `Outbox` | `outbox` | `createdAt` | RECEIVED projections only |
//! | `ByGroup` | `groupKey` | `createdAt` | projections the Correlate state decided on |
//!
//! - **EPISODE item** (`pk = EPISODE#<groupKey>`, `sk = STATE`): the current
//!   [`Episode`] of one group key under its serde names (`groupKey`, `number`,
//!   `primaryIncidentId`, `openedAt`, `lastTransitionAt`, `members`, `updates`,
//!   `resolvePending`?, `resolvedAt`?, `version`). The STATE item of a decided incident carries
//!   `groupKey` (copied from its `correlation`), which makes `ByGroup` a sparse index.
//!
//! # Writes
//!
//! `create` is one `TransactWriteItems`: the STATE item and every EVENT item, each on
//! `attribute_not_exists(pk)`. A `ConditionalCheckFailed` cancellation means the incident exists:
//! its projection is read back (consistent read) and returned. `append` is one transaction too:
//! the STATE item on `version = :expected` and the new EVENT item on `attribute_not_exists(pk)`.
//! `decide` adds the EPISODE item to `append`'s transaction, first, on `attribute_not_exists(pk)`
//! for a new episode item or `version = :expected`.
//! Transactions cancelled by `TransactionConflict` (another transaction on the same items) are
//! retried a few times with jittered backoff, then reported as [`StoreError::Unavailable`]. Every
//! transaction carries a fresh `ClientRequestToken`, so the SDK's own retry of a transaction that
//! did commit is answered with success instead of a spurious condition failure.
//!
//! # Errors
//!
//! Classified here; no `SdkError` leaves this module. Throttling
//! (`ProvisionedThroughputExceededException`, `ThrottlingException`, `RequestLimitExceeded`),
//! `InternalServerError`, `ServiceUnavailable`, any 5xx, timeouts and dispatch failures are
//! [`StoreError::Unavailable`]; everything else is [`StoreError::Failed`]. Messages carry the
//! operation and the error code, never item data.
//!
//! # Operator queries
//!
//! One incident and its log (`get`, `events`):
//!
//! ```text
//! aws dynamodb get-item --table-name T --consistent-read \
//!   --key '{"pk":{"S":"INCIDENT#<incidentId>"},"sk":{"S":"STATE"}}'
//! aws dynamodb query --table-name T \
//!   --key-condition-expression 'pk = :pk AND begins_with(sk, :e)' \
//!   --expression-attribute-values '{":pk":{"S":"INCIDENT#<incidentId>"},":e":{"S":"EVENT#"}}'
//! ```
//!
//! What failed since a time, newest first (`by_status`; `status` is a reserved word):
//!
//! ```text
//! aws dynamodb query --table-name T --index-name ByStatus --no-scan-index-forward \
//!   --key-condition-expression '#s = :s AND updatedAt >= :t' \
//!   --expression-attribute-names '{"#s":"status"}' \
//!   --expression-attribute-values '{":s":{"S":"FAILED"},":t":{"S":"2026-11-24T00:00:00.000Z"}}'
//! ```
//!
//! The history of one alarm, newest first (`by_alarm`):
//!
//! ```text
//! aws dynamodb query --table-name T --index-name ByAlarm --no-scan-index-forward \
//!   --key-condition-expression 'alarmName = :a' \
//!   --expression-attribute-values '{":a":{"S":"NFM-Alarm-EKS-DB"}}'
//! ```
//!
//! Every incident of one episode's group, newest first (`by_group`), and the episode itself:
//!
//! ```text
//! aws dynamodb query --table-name T --index-name ByGroup --no-scan-index-forward \
//!   --key-condition-expression 'groupKey = :g' \
//!   --expression-attribute-values '{":g":{"S":"monitor:arn:aws:networkflowmonitor:us-east-1:111122223333:monitor/eks-db"}}'
//! aws dynamodb get-item --table-name T --consistent-read \
//!   --key '{"pk":{"S":"EPISODE#monitor:arn:aws:networkflowmonitor:us-east-1:111122223333:monitor/eks-db"},"sk":{"S":"STATE"}}'
//! ```
//!
//! Recorded but never started, oldest first (`outbox`):
//!
//! ```text
//! aws dynamodb query --table-name T --index-name Outbox \
//!   --key-condition-expression 'outbox = :p AND createdAt < :t' \
//!   --expression-attribute-values '{":p":{"S":"PENDING"},":t":{"S":"2026-11-24T00:00:00.000Z"}}'
//! ```

use crate::episode::Episode;
use crate::event::IncidentId;
use crate::incident::{EventType, Incident, IncidentEvent, IncidentStatus, NewEvent};
use crate::ports::{Created, IncidentStore, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem,
};
use aws_sdk_dynamodb::waiters::table_exists::WaitUntilTableExistsError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

/// The sort key of the projection.
pub const STATE_SK: &str = "STATE";
/// The prefix of every event's sort key.
pub const EVENT_SK_PREFIX: &str = "EVENT#";
/// The index of projections by `status`, range `updatedAt`.
pub const BY_STATUS_INDEX: &str = "ByStatus";
/// The index of projections by `alarmName`, range `createdAt`.
pub const BY_ALARM_INDEX: &str = "ByAlarm";
/// The sparse index of RECEIVED projections by `outbox`, range `createdAt`.
pub const OUTBOX_INDEX: &str = "Outbox";
/// The sparse index of decided projections by `groupKey`, range `createdAt`.
pub const BY_GROUP_INDEX: &str = "ByGroup";
/// The value of `outbox` while an incident waits to be started.
pub const OUTBOX_PENDING: &str = "PENDING";
/// The TTL attribute.
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// Attempts of one transaction cancelled by `TransactionConflict` before giving up.
const TRANSACTION_ATTEMPTS: u32 = 6;
/// The first backoff ceiling; doubled per attempt, full jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(20);
/// DynamoDB's limit of actions in one transaction.
const TRANSACTION_MAX_ITEMS: usize = 100;
/// How long [`DynamoDbStore::create_table`] waits for the table to become ACTIVE.
const TABLE_ACTIVE_WAIT: Duration = Duration::from_secs(300);

/// The incident store on one DynamoDB table (layout in the module documentation).
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
}

impl DynamoDbStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Creates the table exactly as the module documentation describes it (keys, the three
    /// indexes, on-demand billing), waits until it is ACTIVE and enables TTL on `expiresAt`. For
    /// tests and local use; deployed tables come from the SAM template. Fails
    /// (`ResourceInUseException`) if the table exists.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let string = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|_| StoreError::Failed(format!("attribute definition {name}")))
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|_| StoreError::Failed(format!("key schema {name}")))
        };
        let index = |name: &str, hash: &str, range: &str| -> Result<_, StoreError> {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash)?)
                .key_schema(key(range, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|_| StoreError::Failed(format!("index {name}")))
        };
        let mut request = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .global_secondary_indexes(index(BY_STATUS_INDEX, "status", "updatedAt")?)
            .global_secondary_indexes(index(BY_ALARM_INDEX, "alarmName", "createdAt")?)
            .global_secondary_indexes(index(OUTBOX_INDEX, "outbox", "createdAt")?)
            .global_secondary_indexes(index(BY_GROUP_INDEX, "groupKey", "createdAt")?);
        for name in [
            "pk",
            "sk",
            "status",
            "updatedAt",
            "alarmName",
            "createdAt",
            "outbox",
            "groupKey",
        ] {
            request = request.attribute_definitions(string(name)?);
        }
        request
            .send()
            .await
            .map_err(|error| classify("CreateTable", &error))?;

        client
            .wait_until_table_exists()
            .table_name(table)
            .wait(TABLE_ACTIVE_WAIT)
            .await
            .map_err(|error| match error {
                WaitUntilTableExistsError::ExceededMaxWait(_) => StoreError::Unavailable(
                    "DynamoDB CreateTable: the table did not become ACTIVE in time".into(),
                ),
                other => {
                    let code = other.code();
                    let message = format!(
                        "DynamoDB DescribeTable (waiting for ACTIVE): {}",
                        code.unwrap_or("the waiter failed")
                    );
                    if is_transient(code, None) {
                        StoreError::Unavailable(message)
                    } else {
                        StoreError::Failed(message)
                    }
                }
            })?;

        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(|_| StoreError::Failed("TTL specification".into()))?,
            )
            .send()
            .await
            .map_err(|error| classify("UpdateTimeToLive", &error))?;
        Ok(())
    }

    /// A conditional Put of `item` in a transaction.
    fn put(
        &self,
        item: Item,
        condition: &str,
        expected_version: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(expected_version.map(|version| {
                HashMap::from([(
                    ":expected".to_owned(),
                    AttributeValue::N(version.to_string()),
                )])
            }))
            .build()
            .map_err(|_| StoreError::Failed("DynamoDB Put: incomplete request".into()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Runs one transaction, retrying it while it is cancelled by `TransactionConflict`.
    /// `Err(Cancelled(codes))` carries the per-item cancellation codes of any other cancellation.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), Transaction> {
        for attempt in 0..TRANSACTION_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(request_token())
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            // TransactionInProgressException is not retried with a new token: the transaction
            // it names may still commit. It is classified (Unavailable) below.
            if let SdkError::ServiceError(context) = &error
                && let TransactWriteItemsError::TransactionCanceledException(cancelled) =
                    context.err()
            {
                let codes: Vec<String> = cancelled
                    .cancellation_reasons()
                    .iter()
                    .map(|reason| reason.code().unwrap_or("None").to_owned())
                    .collect();
                let conflict = codes.iter().any(|code| code == TRANSACTION_CONFLICT);
                let failed = codes.iter().any(|code| code == CONDITION_FAILED);
                if conflict && !failed {
                    tracing::debug!(attempt, "transaction conflict; retrying");
                    continue;
                }
                return Err(Transaction::Cancelled(codes));
            }
            return Err(Transaction::Store(classify("TransactWriteItems", &error)));
        }
        Err(Transaction::Store(StoreError::Unavailable(format!(
            "DynamoDB TransactWriteItems: {TRANSACTION_CONFLICT} after {TRANSACTION_ATTEMPTS} attempts"
        ))))
    }

    /// `append`, with the EPISODE item written first in the same transaction when given.
    async fn append_with(
        &self,
        episode: Option<&Episode>,
        next: &Incident,
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        let expected = next.version.checked_sub(1).filter(|_| next.event_count > 0);
        let Some(expected) = expected else {
            return Err(StoreError::Failed(format!(
                "incident {}: append needs version >= 1 and event_count >= 1 (use Incident::advance)",
                next.incident_id
            )));
        };
        let mut items = Vec::with_capacity(3);
        if let Some(episode) = episode {
            items.push(match episode.version.checked_sub(1).filter(|v| *v > 0) {
                None => self.put(episode_item(episode)?, NOT_EXISTS, None)?,
                Some(version) => {
                    self.put(episode_item(episode)?, "version = :expected", Some(version))?
                }
            });
        }
        let conditional = items.len() + 1;
        items.push(self.put(state_item(next)?, "version = :expected", Some(expected))?);
        items.push(self.put(event_item(next, next.event_count, event)?, NOT_EXISTS, None)?);
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(Transaction::Cancelled(codes))
                if codes
                    .iter()
                    .take(conditional)
                    .any(|code| code == CONDITION_FAILED) =>
            {
                Err(StoreError::VersionConflict(next.incident_id.to_string()))
            }
            Err(Transaction::Cancelled(codes))
                if codes.iter().any(|code| code == CONDITION_FAILED) =>
            {
                Err(StoreError::Failed(format!(
                    "incident {}: event {} exists although the version matched (event_count out of step)",
                    next.incident_id, next.event_count
                )))
            }
            Err(Transaction::Cancelled(codes)) => Err(cancelled(&next.incident_id, &codes)),
            Err(Transaction::Store(error)) => Err(error),
        }
    }

    async fn get_state(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(partition_key(id)))
            .key("sk", AttributeValue::S(STATE_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| classify("GetItem", &error))?;
        output.item.map(incident_from_item).transpose()
    }

    /// Follows a query's pages until `limit` items or the end.
    async fn query(
        &self,
        query: QueryFluentBuilder,
        limit: Option<usize>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let mut page = query.clone().set_exclusive_start_key(start.take());
            if let Some(limit) = limit {
                let remaining = limit.saturating_sub(found.len());
                if remaining == 0 {
                    break;
                }
                page = page.limit(i32::try_from(remaining).unwrap_or(i32::MAX));
            }
            let output = page
                .send()
                .await
                .map_err(|error| classify("Query", &error))?;
            found.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        if let Some(limit) = limit {
            found.truncate(limit);
        }
        Ok(found)
    }

    async fn query_incidents(
        &self,
        query: QueryFluentBuilder,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.query(query, Some(limit))
            .await?
            .into_iter()
            .map(incident_from_item)
            .collect()
    }
}

#[async_trait]
impl IncidentStore for DynamoDbStore {
    async fn create(
        &self,
        incident: &Incident,
        events: &[NewEvent],
    ) -> Result<Created, StoreError> {
        if usize::try_from(incident.event_count).ok() != Some(events.len()) {
            return Err(StoreError::Failed(format!(
                "incident {} has event_count {} but {} events were given",
                incident.incident_id,
                incident.event_count,
                events.len()
            )));
        }
        if events.len() >= TRANSACTION_MAX_ITEMS {
            return Err(StoreError::Failed(format!(
                "{} events exceed one transaction ({} items)",
                events.len(),
                TRANSACTION_MAX_ITEMS
            )));
        }
        let mut items = vec![self.put(state_item(incident)?, NOT_EXISTS, None)?];
        for (seq, event) in (1..).zip(events) {
            items.push(self.put(event_item(incident, seq, event)?, NOT_EXISTS, None)?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(Created::New),
            Err(Transaction::Cancelled(codes))
                if codes.iter().any(|code| code == CONDITION_FAILED) =>
            {
                match self.get_state(&incident.incident_id).await? {
                    Some(existing) => Ok(Created::Existing(Box::new(existing))),
                    None => Err(StoreError::Failed(format!(
                        "incident {}: {CONDITION_FAILED} but no STATE item (orphaned events?)",
                        incident.incident_id
                    ))),
                }
            }
            Err(Transaction::Cancelled(codes)) => Err(cancelled(&incident.incident_id, &codes)),
            Err(Transaction::Store(error)) => Err(error),
        }
    }

    async fn append(&self, next: &Incident, event: &NewEvent) -> Result<(), StoreError> {
        self.append_with(None, next, event).await
    }

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        self.get_state(id).await
    }

    async fn events(&self, id: &IncidentId) -> Result<Vec<IncidentEvent>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(partition_key(id)))
            .expression_attribute_values(":prefix", AttributeValue::S(EVENT_SK_PREFIX.into()))
            .scan_index_forward(true);
        self.query(query, None)
            .await?
            .into_iter()
            .map(|item| event_from_item(id, item))
            .collect()
    }

    async fn by_status(
        &self,
        status: IncidentStatus,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_STATUS_INDEX)
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", AttributeValue::S(status.as_str().into()))
            .scan_index_forward(false);
        query = match since {
            Some(since) => query
                .key_condition_expression("#s = :s AND updatedAt >= :t")
                .expression_attribute_values(":t", AttributeValue::S(since.into())),
            None => query.key_condition_expression("#s = :s"),
        };
        self.query_incidents(query, limit).await
    }

    async fn by_alarm(&self, alarm_name: &str, limit: usize) -> Result<Vec<Incident>, StoreError> {
        if alarm_name.is_empty() {
            // Rejected inputs have no alarm name and are not in the index.
            return Ok(Vec::new());
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_ALARM_INDEX)
            .key_condition_expression("alarmName = :a")
            .expression_attribute_values(":a", AttributeValue::S(alarm_name.into()))
            .scan_index_forward(false);
        self.query_incidents(query, limit).await
    }

    async fn outbox(
        &self,
        created_before: &str,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OUTBOX_INDEX)
            .key_condition_expression("outbox = :p AND createdAt < :t")
            .expression_attribute_values(":p", AttributeValue::S(OUTBOX_PENDING.into()))
            .expression_attribute_values(":t", AttributeValue::S(created_before.into()))
            .scan_index_forward(true);
        self.query_incidents(query, limit).await
    }

    async fn episode(&self, group_key: &str) -> Result<Option<Episode>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(episode_key(group_key)))
            .key("sk", AttributeValue::S(STATE_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| classify("GetItem", &error))?;
        output
            .item
            .map(|item| {
                serde_dynamo::from_item(item).map_err(|_| {
                    StoreError::Failed(format!("the EPISODE item of {group_key} is malformed"))
                })
            })
            .transpose()
    }

    async fn decide(
        &self,
        episode: Option<&Episode>,
        next: &Incident,
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        self.append_with(episode, next, event).await
    }

    async fn by_group(&self, group_key: &str, limit: usize) -> Result<Vec<Incident>, StoreError> {
        if group_key.is_empty() {
            return Ok(Vec::new());
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_GROUP_INDEX)
            .key_condition_expression("groupKey = :g")
            .expression_attribute_values(":g", AttributeValue::S(group_key.into()))
            .scan_index_forward(false);
        self.query_incidents(query, limit).await
    }
}

const NOT_EXISTS: &str = "attribute_not_exists(pk)";
const CONDITION_FAILED: &str = "ConditionalCheckFailed";
const TRANSACTION_CONFLICT: &str = "TransactionConflict";

/// How a transaction ended when it did not commit.
enum Transaction {
    /// Cancelled; the per-item reason codes, in item order.
    Cancelled(Vec<String>),
    /// Any other failure, classified.
    Store(StoreError),
}

/// A cancellation that is neither a condition failure nor a conflict: throttling is worth
/// retrying, anything else (validation, item size) is not.
fn cancelled(id: &IncidentId, codes: &[String]) -> StoreError {
    let message = format!(
        "DynamoDB TransactWriteItems for incident {id}: TransactionCanceledException [{}]",
        codes.join(", ")
    );
    let transient = codes.iter().any(|code| {
        matches!(
            code.as_str(),
            "ThrottlingError" | "ProvisionedThroughputExceeded" | TRANSACTION_CONFLICT
        )
    });
    if transient {
        StoreError::Unavailable(message)
    } else {
        StoreError::Failed(message)
    }
}

/// Whether a DynamoDB error code (or, failing that, the HTTP status) names a condition that
/// retrying can cure.
fn is_transient(code: Option<&str>, status: Option<u16>) -> bool {
    match code {
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "TransactionConflictException"
            | "TransactionInProgressException",
        ) => true,
        _ => status.is_some_and(|status| status >= 500),
    }
}

/// Sorts an SDK error into [`StoreError`]; the message names the operation and the error code.
fn classify<E>(operation: &str, error: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata,
{
    match error {
        SdkError::ServiceError(context) => {
            let code = context.err().code();
            let status = context.raw().status().as_u16();
            let message = format!(
                "DynamoDB {operation}: {} (HTTP {status})",
                code.unwrap_or("unknown error")
            );
            if is_transient(code, Some(status)) {
                StoreError::Unavailable(message)
            } else {
                StoreError::Failed(message)
            }
        }
        SdkError::TimeoutError(_) => {
            StoreError::Unavailable(format!("DynamoDB {operation}: timeout"))
        }
        SdkError::DispatchFailure(_) => {
            StoreError::Unavailable(format!("DynamoDB {operation}: dispatch failure"))
        }
        SdkError::ResponseError(_) => {
            StoreError::Unavailable(format!("DynamoDB {operation}: unreadable response"))
        }
        SdkError::ConstructionFailure(_) => {
            StoreError::Failed(format!("DynamoDB {operation}: request construction failed"))
        }
        _ => StoreError::Failed(format!("DynamoDB {operation}: unclassified SDK error")),
    }
}

/// Full jitter: uniform in `[0, BACKOFF_BASE * 2^(attempt - 1)]`.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    let fraction = (random_u64() % 1_000) as u32;
    ceiling * fraction / 1_000
}

/// A random value from the standard library's per-process randomly keyed hasher (enough for
/// jitter and request tokens; no cryptographic claim).
fn random_u64() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// A fresh `ClientRequestToken` (32 hex digits; DynamoDB allows 36).
fn request_token() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

fn partition_key(id: &IncidentId) -> String {
    format!("INCIDENT#{id}")
}

fn episode_key(group_key: &str) -> String {
    format!("EPISODE#{group_key}")
}

/// The EPISODE item of an episode.
fn episode_item(episode: &Episode) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(episode).map_err(|_| {
        StoreError::Failed(format!(
            "the episode of {} does not map to a DynamoDB item",
            episode.group_key
        ))
    })?;
    item.insert(
        "pk".into(),
        AttributeValue::S(episode_key(&episode.group_key)),
    );
    item.insert("sk".into(), AttributeValue::S(STATE_SK.into()));
    Ok(item)
}

fn event_sort_key(seq: u64) -> String {
    format!("{EVENT_SK_PREFIX}{seq:010}")
}

/// The STATE item of a projection.
fn state_item(incident: &Incident) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(incident).map_err(|_| {
        StoreError::Failed(format!(
            "incident {} does not map to a DynamoDB item",
            incident.incident_id
        ))
    })?;
    item.insert(
        "pk".into(),
        AttributeValue::S(partition_key(&incident.incident_id)),
    );
    item.insert("sk".into(), AttributeValue::S(STATE_SK.into()));
    if incident.alarm_name.is_empty() {
        item.remove("alarmName");
    }
    if incident.in_outbox() {
        item.insert("outbox".into(), AttributeValue::S(OUTBOX_PENDING.into()));
    }
    if let Some(correlation) = &incident.correlation {
        item.insert(
            "groupKey".into(),
            AttributeValue::S(correlation.group_key.clone()),
        );
    }
    Ok(item)
}

fn incident_from_item(mut item: Item) -> Result<Incident, StoreError> {
    item.entry("alarmName".into())
        .or_insert_with(|| AttributeValue::S(String::new()));
    let pk = match item.get("pk") {
        Some(AttributeValue::S(pk)) => pk.clone(),
        _ => String::from("(no pk)"),
    };
    serde_dynamo::from_item(item)
        .map_err(|_| StoreError::Failed(format!("the STATE item of {pk} is malformed")))
}

/// An EVENT item, as stored.
#[derive(Serialize, Deserialize)]
struct EventItem {
    pk: String,
    sk: String,
    seq: u64,
    #[serde(rename = "type")]
    kind: EventType,
    at: String,
    /// JSON text.
    data: String,
    #[serde(rename = "expiresAt", default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

fn event_item(incident: &Incident, seq: u64, event: &NewEvent) -> Result<Item, StoreError> {
    let malformed = || {
        StoreError::Failed(format!(
            "event {seq} of incident {} does not map to a DynamoDB item",
            incident.incident_id
        ))
    };
    let item = EventItem {
        pk: partition_key(&incident.incident_id),
        sk: event_sort_key(seq),
        seq,
        kind: event.kind,
        at: event.at.clone(),
        data: serde_json::to_string(&event.data).map_err(|_| malformed())?,
        expires_at: incident.expires_at,
    };
    serde_dynamo::to_item(item).map_err(|_| malformed())
}

fn event_from_item(id: &IncidentId, item: Item) -> Result<IncidentEvent, StoreError> {
    let malformed = || StoreError::Failed(format!("an EVENT item of incident {id} is malformed"));
    let item: EventItem = serde_dynamo::from_item(item).map_err(|_| malformed())?;
    Ok(IncidentEvent {
        seq: item.seq,
        kind: item.kind,
        at: item.at,
        data: serde_json::from_str(&item.data).map_err(|_| malformed())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    #[test]
    fn error_codes_are_classified() {
        let rows: &[(Option<&str>, Option<u16>, bool)] = &[
            (
                Some("ProvisionedThroughputExceededException"),
                Some(400),
                true,
            ),
            (Some("ThrottlingException"), Some(400), true),
            (Some("RequestLimitExceeded"), Some(400), true),
            (Some("InternalServerError"), Some(500), true),
            (Some("ServiceUnavailable"), Some(503), true),
            (Some("TransactionConflictException"), Some(400), true),
            (None, Some(502), true),
            (Some("ValidationException"), Some(400), false),
            (Some("ResourceNotFoundException"), Some(400), false),
            (Some("AccessDeniedException"), Some(400), false),
            (Some("UnrecognizedClientException"), Some(400), false),
            (
                Some("ItemCollectionSizeLimitExceededException"),
                Some(400),
                false,
            ),
            (None, None, false),
        ];
        for &(code, status, transient) in rows {
            assert_eq!(is_transient(code, status), transient, "{code:?} {status:?}");
        }
    }

    #[test]
    fn cancellations_other_than_conditions_are_classified() {
        let id = IncidentId::from_raw("a-1");
        let codes = |codes: &[&str]| codes.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert!(matches!(
            cancelled(&id, &codes(&["None", "ThrottlingError"])),
            StoreError::Unavailable(_)
        ));
        let error = cancelled(&id, &codes(&["ValidationError", "None"]));
        assert!(matches!(error, StoreError::Failed(_)), "{error}");
        assert!(error.to_string().contains("ValidationError"), "{error}");
    }

    #[test]
    fn backoff_is_jittered_under_a_doubling_ceiling() {
        for attempt in 1..TRANSACTION_ATTEMPTS {
            let ceiling = BACKOFF_BASE * (1 << (attempt - 1));
            assert!(backoff(attempt) <= ceiling);
        }
        assert_ne!(request_token(), request_token());
        assert_eq!(request_token().len(), 32);
    }

    fn now() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap()
    }

    #[test]
    fn a_rejected_projection_has_no_alarm_name_and_round_trips() {
        let rejected = incident::rejected(b"not json", now(), Some(Duration::from_secs(60)));
        let item = state_item(&rejected).unwrap();
        assert!(!item.contains_key("alarmName"));
        assert!(!item.contains_key("outbox"));
        assert_eq!(item.get("sk"), Some(&AttributeValue::S(STATE_SK.into())));
        assert_eq!(
            item.get("expiresAt"),
            Some(&AttributeValue::N((now().timestamp() + 60).to_string()))
        );
        assert_eq!(incident_from_item(item).unwrap(), rejected);
    }

    #[test]
    fn event_data_keeps_key_order_and_number_literals() {
        let rejected = incident::rejected(b"x", now(), None);
        let data: serde_json::Value =
            serde_json::from_str(r#"{"z":1.10,"a":[1e-05,12345678901234567890123]}"#).unwrap();
        let event = NewEvent::new(EventType::Rejected, now(), data);
        let item = event_item(&rejected, 7, &event).unwrap();
        assert_eq!(
            item.get("sk"),
            Some(&AttributeValue::S("EVENT#0000000007".into()))
        );
        assert_eq!(
            item.get("data"),
            Some(&AttributeValue::S(
                r#"{"z":1.10,"a":[1e-05,12345678901234567890123]}"#.into()
            ))
        );
        assert!(!item.contains_key("expiresAt"));
        let back = event_from_item(&rejected.incident_id, item).unwrap();
        assert_eq!(back.seq, 7);
        assert_eq!(back.data, event.data);
        assert_eq!(json!(back.kind), json!("Rejected"));
    }
}
