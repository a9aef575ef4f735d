//! An [`AlarmSource`] with nothing to ask: on one machine without an alarm file, or in AWS for
//! an account the relay may not read. Every alarm is unknown and enrichment carries what the
//! event itself says (the metric, its dimensions, stat and period, the Network Flow Monitor
//! ARN), with a note for the rest.

use crate::event::StateValue;
use crate::ports::{AlarmDefinition, AlarmSource, Datapoint, EnrichError, MetricQuery};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// An [`AlarmSource`] that knows no alarm and no datapoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineAlarmSource;

#[async_trait]
impl AlarmSource for OfflineAlarmSource {
    async fn describe_alarm(&self, _name: &str) -> Result<Option<AlarmDefinition>, EnrichError> {
        Ok(None)
    }

    async fn metric_datapoints(
        &self,
        _query: &MetricQuery,
        _start: DateTime<Utc>,
        _end: DateTime<Utc>,
    ) -> Result<Vec<Datapoint>, EnrichError> {
        Ok(Vec::new())
    }

    async fn alarm_tags(
        &self,
        _arn: &str,
    ) -> Result<Option<BTreeMap<String, String>>, EnrichError> {
        Ok(None)
    }

    async fn alarm_states(
        &self,
        _names: &[String],
    ) -> Result<BTreeMap<String, StateValue>, EnrichError> {
        Ok(BTreeMap::new())
    }
}
