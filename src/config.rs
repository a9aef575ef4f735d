//! The Lambdas' configuration, read from their environment (set by `template.yaml`).

use crate::delivery::DeliveryMode;
use crate::enrich::network::{self, NetworkSettings};
use crate::routing::{Priority, valid_destination};
use std::collections::BTreeMap;
use std::time::Duration;

/// What the enricher reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnricherConfig {
    /// `TABLE_NAME`: the incident table.
    pub table_name: String,
    /// `RELAY_ACCOUNT_ID`: this account; alarms of any other are a member account's.
    pub relay_account_id: Option<String>,
    /// `MEMBER_READ_ROLE_NAME` (empty: this account only): the role the enricher assumes in
    /// a member account to read its alarms (`template-member.yaml`).
    pub member_read_role_name: Option<String>,
    /// What Network Flow Monitor is asked for the top contributors of its alarms:
    /// `TOP_CONTRIBUTORS` (default 10 flows, 0 = off, at most
    /// [`network::MAX_FLOWS`]), `TOP_CONTRIBUTORS_WAIT_SECONDS` (default 10, at most the
    /// invocation's time left less [`ENRICH_MARGIN`]) and `TOP_CONTRIBUTORS_CATEGORIES`
    /// (comma-separated destination categories; default `INTRA_AZ,INTER_AZ,INTER_VPC,INTER_REGION`).
    pub network: NetworkSettings,
}

/// The time an enricher invocation keeps, beyond polling queries, to record its result.
pub const ENRICH_MARGIN: Duration = Duration::from_secs(5);

impl EnricherConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let optional = |name: &str| {
            lookup(name)
                .map(|text| text.trim().to_owned())
                .filter(|text| !text.is_empty())
        };
        Ok(Self {
            table_name: required(&lookup, "TABLE_NAME", "must name the incident table")?,
            relay_account_id: optional("RELAY_ACCOUNT_ID"),
            member_read_role_name: optional("MEMBER_READ_ROLE_NAME"),
            network: Self::network(&lookup)?,
        })
    }

    /// `TOP_CONTRIBUTORS…`: what Network Flow Monitor is asked.
    fn network(lookup: &impl Fn(&str) -> Option<String>) -> Result<NetworkSettings, ConfigError> {
        let defaults = NetworkSettings::default();
        let flows = non_negative(lookup, "TOP_CONTRIBUTORS", defaults.flows as u64)?;
        if flows > network::MAX_FLOWS as u64 {
            return Err(ConfigError {
                variable: "TOP_CONTRIBUTORS",
                reason: format!("must be at most {}, got {flows}", network::MAX_FLOWS),
            });
        }
        let wait = non_negative(
            lookup,
            "TOP_CONTRIBUTORS_WAIT_SECONDS",
            defaults.wait.as_secs(),
        )?;
        let categories =
            match lookup("TOP_CONTRIBUTORS_CATEGORIES").filter(|t| !t.trim().is_empty()) {
                None => defaults.categories,
                Some(text) => network::parse_categories(&text).map_err(|reason| ConfigError {
                    variable: "TOP_CONTRIBUTORS_CATEGORIES",
                    reason,
                })?,
            };
        Ok(NetworkSettings {
            flows: usize::try_from(flows).unwrap_or(network::MAX_FLOWS),
            wait: Duration::from_secs(wait),
            categories,
        })
    }
}

/// The secret-name prefix of destinations other than the default.
pub const DEFAULT_DESTINATION_PREFIX: &str = "alarm-relay/destinations/";

/// Why the environment does not configure the function. Names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

/// Everything the signer reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerConfig {
    /// `SECRET_ARN`: the Secrets Manager secret holding `{"WEBHOOK_URL", "WEBHOOK_SECRET"}`.
    pub secret_id: String,
    /// `TABLE_NAME`: the incident table, where every attempt is appended.
    pub table_name: String,
    /// `SECRET_TTL_SECONDS` (default 300): how long a warm function reuses the secret.
    pub secret_ttl: Duration,
    /// `WEBHOOK_CONNECT_TIMEOUT_MS` (default 3000).
    pub connect_timeout: Duration,
    /// `WEBHOOK_TIMEOUT_MS` (default 10000): the whole request; keep it under the function timeout.
    pub timeout: Duration,
    /// `DELIVERY_MODE` (`live`, the default, or `dry-run`: render, sign and record what would
    /// be sent, and send nothing).
    pub delivery_mode: DeliveryMode,
    /// `DESTINATION_SECRET_PREFIX` (default `alarm-relay/destinations/`): the destination NAME
    /// is the secret `<prefix><NAME>`.
    pub destination_secret_prefix: String,
}

impl SignerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            secret_id: required(&lookup, "SECRET_ARN", "must name the webhook secret")?,
            table_name: required(&lookup, "TABLE_NAME", "must name the incident table")?,
            secret_ttl: Duration::from_secs(positive(&lookup, "SECRET_TTL_SECONDS", 300)?),
            connect_timeout: Duration::from_millis(positive(
                &lookup,
                "WEBHOOK_CONNECT_TIMEOUT_MS",
                3000,
            )?),
            timeout: Duration::from_millis(positive(&lookup, "WEBHOOK_TIMEOUT_MS", 10_000)?),
            delivery_mode: match lookup("DELIVERY_MODE") {
                None => DeliveryMode::Live,
                Some(text) => text.parse().map_err(|reason| ConfigError {
                    variable: "DELIVERY_MODE",
                    reason,
                })?,
            },
            destination_secret_prefix: lookup("DESTINATION_SECRET_PREFIX")
                .unwrap_or_else(|| DEFAULT_DESTINATION_PREFIX.to_owned()),
        })
    }
}

/// Everything the intake and sweeper functions read from their environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeConfig {
    /// `TABLE_NAME`: the incident table.
    pub table_name: String,
    /// `STATE_MACHINE_ARN`: the incident workflow.
    pub state_machine_arn: String,
    /// `INCIDENT_TTL_DAYS` (default 90; 0 keeps records forever): DynamoDB TTL of a record.
    pub ttl: Option<Duration>,
    /// `SWEEP_GRACE_SECONDS` (default 120): the sweeper leaves younger outbox incidents to intake.
    pub sweep_grace: Duration,
    /// `SWEEP_BATCH` (default 100): outbox incidents started per sweeper run at most.
    pub sweep_batch: usize,
}

impl IntakeConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let ttl_days = match lookup("INCIDENT_TTL_DAYS") {
            Some(text) if text.trim() == "0" => 0,
            _ => positive(&lookup, "INCIDENT_TTL_DAYS", 90)?,
        };
        Ok(Self {
            table_name: required(&lookup, "TABLE_NAME", "must name the incident table")?,
            state_machine_arn: required(
                &lookup,
                "STATE_MACHINE_ARN",
                "must name the incident workflow",
            )?,
            ttl: (ttl_days > 0).then(|| Duration::from_secs(ttl_days * 86_400)),
            sweep_grace: Duration::from_secs(positive(&lookup, "SWEEP_GRACE_SECONDS", 120)?),
            sweep_batch: usize::try_from(positive(&lookup, "SWEEP_BATCH", 100)?)
                .unwrap_or(usize::MAX),
        })
    }
}

/// What the recorder (and the enricher) read from their environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderConfig {
    /// `TABLE_NAME`: the incident table.
    pub table_name: String,
}

impl RecorderConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(&lookup, "TABLE_NAME", "must name the incident table")?,
        })
    }
}

/// How alarms are grouped into episodes (`crate::episode`): read by the recorder, whose Lambda
/// runs the Correlate state, and by intake (whether OK transitions start the workflow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrelationConfig {
    /// `CORRELATION_WINDOW_SECONDS` (default 600; 0 turns correlation and flap suppression
    /// off, and every ALARM opens its own investigation, as the seed does): how long an episode
    /// stays open after its last member's transition.
    pub window: Duration,
    /// `MAX_EPISODE_SECONDS` (default 86400): an episode takes no members this long after it
    /// opened, however many of its alarms are still in ALARM.
    pub max_episode: Duration,
    /// `MAX_UPDATES_PER_EPISODE` (default 20): `updated` messages one episode sends at most.
    pub max_updates: u32,
    /// `RESOLVE_ON_OK` (default false): send `resolved` once every member recovered and stayed
    /// quiet.
    pub resolve_on_ok: bool,
    /// `RESOLVE_QUIET_SECONDS` (default 300): how long every member must stay recovered.
    pub resolve_quiet: Duration,
    /// `HONOUR_MUTE_RULES` (default true): an ALARM inside its mute window opens nothing.
    pub honour_mute_rules: bool,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(600),
            max_episode: Duration::from_secs(86_400),
            max_updates: 20,
            resolve_on_ok: false,
            resolve_quiet: Duration::from_secs(300),
            honour_mute_rules: true,
        }
    }
}

impl CorrelationConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            window: Duration::from_secs(non_negative(
                &lookup,
                "CORRELATION_WINDOW_SECONDS",
                defaults.window.as_secs(),
            )?),
            max_episode: Duration::from_secs(positive(
                &lookup,
                "MAX_EPISODE_SECONDS",
                defaults.max_episode.as_secs(),
            )?),
            max_updates: u32::try_from(non_negative(
                &lookup,
                "MAX_UPDATES_PER_EPISODE",
                u64::from(defaults.max_updates),
            )?)
            .unwrap_or(u32::MAX),
            resolve_on_ok: boolean(&lookup, "RESOLVE_ON_OK", defaults.resolve_on_ok)?,
            resolve_quiet: Duration::from_secs(non_negative(
                &lookup,
                "RESOLVE_QUIET_SECONDS",
                defaults.resolve_quiet.as_secs(),
            )?),
            honour_mute_rules: boolean(&lookup, "HONOUR_MUTE_RULES", defaults.honour_mute_rules)?,
        })
    }

    /// Whether alarms are grouped at all (a window of 0 is the seed's behaviour).
    pub fn enabled(&self) -> bool {
        !self.window.is_zero()
    }
}

/// The relay's routing defaults: the signer's environment, `serve`'s options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoutingConfig {
    /// `DEFAULT_PRIORITY` (default HIGH, the seed's).
    pub default_priority: Option<Priority>,
    /// `ACCOUNT_DESTINATIONS`: `accountId=name,…`.
    pub account_destinations: BTreeMap<String, String>,
}

impl RoutingConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let default_priority = match lookup("DEFAULT_PRIORITY").filter(|t| !t.trim().is_empty()) {
            None => None,
            Some(text) => Some(text.parse().map_err(|reason| ConfigError {
                variable: "DEFAULT_PRIORITY",
                reason,
            })?),
        };
        let account_destinations =
            parse_account_destinations(lookup("ACCOUNT_DESTINATIONS").as_deref().unwrap_or(""))
                .map_err(|reason| ConfigError {
                    variable: "ACCOUNT_DESTINATIONS",
                    reason,
                })?;
        Ok(Self {
            default_priority,
            account_destinations,
        })
    }

    /// The priority of alarms without a priority tag.
    pub fn priority(&self) -> Priority {
        self.default_priority.unwrap_or(Priority::High)
    }
}

/// `accountId=name` pairs, comma-separated (spaces around them ignored; empty = none).
pub fn parse_account_destinations(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut pairs = BTreeMap::new();
    for item in text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let (account, name) = parse_account_destination(item)?;
        pairs.insert(account, name);
    }
    Ok(pairs)
}

/// One `accountId=name`.
pub fn parse_account_destination(item: &str) -> Result<(String, String), String> {
    let (account, name) = item
        .split_once('=')
        .map(|(account, name)| (account.trim(), name.trim()))
        .ok_or_else(|| format!("{item:?} is not accountId=name"))?;
    if account.len() != 12 || !account.chars().all(|ch| ch.is_ascii_digit()) {
        return Err(format!("{account:?} is not a 12-digit account id"));
    }
    if !valid_destination(name) {
        return Err(format!("{name:?} is not a destination name"));
    }
    Ok((account.to_owned(), name.to_owned()))
}

fn required(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    reason: &str,
) -> Result<String, ConfigError> {
    lookup(variable)
        .filter(|value| !value.trim().is_empty())
        .ok_or_else(|| ConfigError {
            variable,
            reason: reason.to_owned(),
        })
}

fn positive(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match lookup(variable) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(ConfigError {
                variable,
                reason: format!("must be a positive integer, got {text:?}"),
            }),
    }
}

fn non_negative(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match lookup(variable) {
        None => Ok(default),
        Some(text) => text.trim().parse::<u64>().map_err(|_| ConfigError {
            variable,
            reason: format!("must be a whole number of 0 or more, got {text:?}"),
        }),
    }
}

fn boolean(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match lookup(variable) {
        None => Ok(default),
        Some(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ConfigError {
                variable,
                reason: format!("must be true or false, got {text:?}"),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<SignerConfig, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SignerConfig::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_only_the_required_variables_are_set() {
        let config = config(&[
            ("SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:x"),
            ("TABLE_NAME", "incidents"),
        ])
        .unwrap();
        assert_eq!(config.secret_ttl, Duration::from_secs(300));
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.delivery_mode, DeliveryMode::Live);
    }

    #[test]
    fn the_delivery_mode_is_live_or_dry_run() {
        let base = [("SECRET_ARN", "x"), ("TABLE_NAME", "t")];
        let with = |mode| {
            let mut pairs = base.to_vec();
            pairs.push(("DELIVERY_MODE", mode));
            config(&pairs)
        };
        assert_eq!(with("dry-run").unwrap().delivery_mode, DeliveryMode::DryRun);
        assert_eq!(with("live").unwrap().delivery_mode, DeliveryMode::Live);
        assert_eq!(with("test").unwrap_err().variable, "DELIVERY_MODE");
    }

    #[test]
    fn intake_config_defaults_and_ttl_zero_keeps_forever() {
        let env = |ttl: Option<&'static str>| {
            move |name: &str| match name {
                "TABLE_NAME" => Some("incidents".to_owned()),
                "STATE_MACHINE_ARN" => Some("arn:aws:states:us-east-1:1:stateMachine:m".to_owned()),
                "INCIDENT_TTL_DAYS" => ttl.map(str::to_owned),
                _ => None,
            }
        };
        let config = IntakeConfig::from_lookup(env(None)).unwrap();
        assert_eq!(config.ttl, Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(config.sweep_grace, Duration::from_secs(120));
        assert_eq!(IntakeConfig::from_lookup(env(Some("0"))).unwrap().ttl, None);
        assert_eq!(
            IntakeConfig::from_lookup(env(Some("-1")))
                .unwrap_err()
                .variable,
            "INCIDENT_TTL_DAYS"
        );
        assert_eq!(
            IntakeConfig::from_lookup(|_| None).unwrap_err().variable,
            "TABLE_NAME"
        );
    }

    #[test]
    fn correlation_defaults_and_errors_name_the_variable() {
        let lookup = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        assert_eq!(
            CorrelationConfig::from_lookup(lookup(&[])).unwrap(),
            CorrelationConfig::default()
        );
        let off = CorrelationConfig::from_lookup(lookup(&[
            ("CORRELATION_WINDOW_SECONDS", "0"),
            ("RESOLVE_ON_OK", "TRUE"),
        ]))
        .unwrap();
        assert!(!off.enabled() && off.resolve_on_ok);
        for (variable, value) in [
            ("CORRELATION_WINDOW_SECONDS", "-1"),
            ("MAX_EPISODE_SECONDS", "0"),
            ("RESOLVE_ON_OK", "yes"),
            ("HONOUR_MUTE_RULES", ""),
        ] {
            let env = move |name: &str| (name == variable).then(|| value.to_owned());
            assert_eq!(
                CorrelationConfig::from_lookup(env).unwrap_err().variable,
                variable
            );
        }
    }

    #[test]
    fn the_enricher_asks_for_ten_flows_of_the_network_categories_unless_told() {
        let enricher = |pairs: &[(&str, &str)]| {
            let env: HashMap<String, String> = [("TABLE_NAME", "incidents")]
                .iter()
                .chain(pairs)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            EnricherConfig::from_lookup(|name| env.get(name).cloned())
        };
        assert_eq!(enricher(&[]).unwrap().network, NetworkSettings::default());
        let told = enricher(&[
            ("TOP_CONTRIBUTORS", "0"),
            ("TOP_CONTRIBUTORS_WAIT_SECONDS", "3"),
            ("TOP_CONTRIBUTORS_CATEGORIES", "inter_vpc,AMAZON_S3"),
        ])
        .unwrap()
        .network;
        assert_eq!(told.flows, 0);
        assert_eq!(told.wait, Duration::from_secs(3));
        assert_eq!(told.categories, ["INTER_VPC", "AMAZON_S3"]);
        assert_eq!(
            told.within(Duration::from_secs(1)).wait,
            Duration::from_secs(1),
            "never past the invocation's deadline"
        );
        for (variable, value, reason) in [
            ("TOP_CONTRIBUTORS", "51", "at most 50"),
            ("TOP_CONTRIBUTORS", "-1", "whole number"),
            ("TOP_CONTRIBUTORS_WAIT_SECONDS", "soon", "whole number"),
            (
                "TOP_CONTRIBUTORS_CATEGORIES",
                "INTER_GALAXY",
                "INTER_GALAXY",
            ),
        ] {
            let error = enricher(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable);
            assert!(error.reason.contains(reason), "{error}");
        }
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(config(&[]).unwrap_err().variable, "SECRET_ARN");
        assert_eq!(
            config(&[("SECRET_ARN", "x")]).unwrap_err().variable,
            "TABLE_NAME"
        );
        let error = config(&[
            ("SECRET_ARN", "x"),
            ("TABLE_NAME", "t"),
            ("WEBHOOK_TIMEOUT_MS", "soon"),
        ])
        .unwrap_err();
        assert_eq!(error.variable, "WEBHOOK_TIMEOUT_MS");
        assert!(error.to_string().contains("\"soon\""));
    }
}
