//! Per-alarm settings from alarm tags, and where each alarm's investigation goes.
//!
//! Teams set priority, service, destination and opt-out where they define the alarm, as tags
//! (read by the enricher with the alarm): `alarm-relay:priority` (CRITICAL | HIGH | MEDIUM |
//! LOW | MINIMAL), `alarm-relay:service` (the body's `service`), `alarm-relay:destination` (a
//! destination name) and `alarm-relay:enabled` (`false`: recorded SKIPPED, never delivered).
//! An invalid value falls back to the default and leaves a note. The destination is the tag's,
//! else the alarm account's (`ACCOUNT_DESTINATIONS`), else the default (the `WebhookSecretArn`
//! secret). Without tags the body is the seed's: priority `DEFAULT_PRIORITY` (HIGH), service the
//! alarm name.

use crate::config::RoutingConfig;
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

pub const PRIORITY_TAG: &str = "alarm-relay:priority";
pub const SERVICE_TAG: &str = "alarm-relay:service";
pub const DESTINATION_TAG: &str = "alarm-relay:destination";
pub const ENABLED_TAG: &str = "alarm-relay:enabled";
/// The longest destination name (a Secrets Manager name is at most 512 with the prefix).
const MAX_DESTINATION: usize = 128;

/// A DevOps Agent incident priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Priority {
    Critical,
    High,
    Medium,
    Low,
    Minimal,
}

impl Priority {
    pub const ALL: [Self; 5] = [
        Self::Critical,
        Self::High,
        Self::Medium,
        Self::Low,
        Self::Minimal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "CRITICAL",
            Self::High => "HIGH",
            Self::Medium => "MEDIUM",
            Self::Low => "LOW",
            Self::Minimal => "MINIMAL",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|priority| priority.as_str() == text.trim())
            .ok_or_else(|| {
                format!("must be one of CRITICAL, HIGH, MEDIUM, LOW, MINIMAL, got {text:?}")
            })
    }
}

/// Whether `name` can name a destination (a secret name suffix: letters, digits, `/_+=.@-`).
pub fn valid_destination(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_DESTINATION
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "/_+=.@-".contains(ch))
}

/// What one alarm's tags and account say about its investigation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmSettings {
    pub priority: Priority,
    /// The body's `service`; `None`: the alarm name (the seed's).
    pub service: Option<String>,
    /// `None`: the default destination.
    pub destination: Option<String>,
    /// `tag`, `account` or `default`.
    pub routed_by: &'static str,
    pub enabled: bool,
    /// Tag values that were not used, and why.
    pub notes: Vec<String>,
}

/// Whether the alarm's `alarm-relay:enabled` tag lets it be delivered (anything but `false`,
/// case-insensitively), and a note when the value is neither `true` nor `false`.
pub fn enabled(tags: Option<&Value>) -> (bool, Option<String>) {
    let value = tags
        .and_then(|tags| tags.get(ENABLED_TAG))
        .and_then(Value::as_str)
        .map(|text| text.trim().to_ascii_lowercase());
    match value.as_deref() {
        None | Some("true") => (true, None),
        Some("false") => (false, None),
        Some(other) => (
            true,
            Some(format!(
                "{ENABLED_TAG} must be true or false, got {other:?}: enabled"
            )),
        ),
    }
}

/// The settings of an alarm of `account` with `tags` (`None` when unknown: enrichment failed).
pub fn settings(tags: Option<&Value>, account: &str, config: &RoutingConfig) -> AlarmSettings {
    let mut notes = Vec::new();
    let tag = |key: &str| {
        tags.and_then(|tags| tags.get(key))
            .and_then(Value::as_str)
            .map(str::trim)
    };
    let priority = match tag(PRIORITY_TAG) {
        None => config.priority(),
        Some(text) => text.parse().unwrap_or_else(|reason: String| {
            notes.push(format!(
                "{PRIORITY_TAG} {reason}: priority {} used",
                config.priority()
            ));
            config.priority()
        }),
    };
    let service = match tag(SERVICE_TAG) {
        Some("") => {
            notes.push(format!("{SERVICE_TAG} is empty: the alarm name used"));
            None
        }
        other => other.map(str::to_owned),
    };
    let (destination, routed_by) = match tag(DESTINATION_TAG) {
        Some(name) if valid_destination(name) => (Some(name.to_owned()), "tag"),
        found => {
            if let Some(name) = found {
                notes.push(format!(
                    "{DESTINATION_TAG} {name:?} is not a destination name (letters, digits, /_+=.@-)"
                ));
            }
            match config.account_destinations.get(account) {
                Some(name) => (Some(name.clone()), "account"),
                None => (None, "default"),
            }
        }
    };
    let (enabled, note) = enabled(tags);
    notes.extend(note);
    AlarmSettings {
        priority,
        service,
        destination,
        routed_by,
        enabled,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn routing() -> RoutingConfig {
        RoutingConfig {
            default_priority: None,
            account_destinations: BTreeMap::from([("111122223333".into(), "payments".into())]),
        }
    }

    #[test]
    fn no_tags_are_the_seed() {
        let settings = settings(None, "123456789012", &routing());
        assert_eq!(settings.priority, Priority::High);
        assert_eq!((settings.service, settings.destination), (None, None));
        assert!(settings.enabled && settings.notes.is_empty());
        assert_eq!(settings.routed_by, "default");
    }

    #[test]
    fn the_tag_then_the_account_then_the_default() {
        let tagged = json!({DESTINATION_TAG: "db-team", PRIORITY_TAG: "CRITICAL", SERVICE_TAG: "checkout-db"});
        let by_tag = settings(Some(&tagged), "111122223333", &routing());
        assert_eq!(
            (by_tag.destination.as_deref(), by_tag.routed_by),
            (Some("db-team"), "tag")
        );
        assert_eq!(by_tag.priority, Priority::Critical);
        assert_eq!(by_tag.service.as_deref(), Some("checkout-db"));
        let by_account = settings(Some(&json!({})), "111122223333", &routing());
        assert_eq!(
            (by_account.destination.as_deref(), by_account.routed_by),
            (Some("payments"), "account")
        );
        let by_default = settings(Some(&json!({})), "999999999999", &routing());
        assert_eq!(
            (by_default.destination, by_default.routed_by),
            (None, "default")
        );
    }

    #[test]
    fn invalid_values_fall_back_with_a_note() {
        let config = RoutingConfig {
            default_priority: Some(Priority::Low),
            ..routing()
        };
        let tags = json!({
            PRIORITY_TAG: "urgent",
            SERVICE_TAG: " ",
            DESTINATION_TAG: "no spaces please",
            ENABLED_TAG: "maybe"
        });
        let settings = settings(Some(&tags), "111122223333", &config);
        assert_eq!(settings.priority, Priority::Low);
        assert_eq!(settings.service, None);
        assert_eq!(
            settings.destination.as_deref(),
            Some("payments"),
            "the account's"
        );
        assert!(settings.enabled);
        assert_eq!(settings.notes.len(), 4, "{:?}", settings.notes);
        let off = super::settings(Some(&json!({ENABLED_TAG: "False"})), "", &config);
        assert!(!off.enabled);
    }

    #[test]
    fn the_environment_is_parsed_and_errors_name_the_variable() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        let config = RoutingConfig::from_lookup(env(&[
            ("DEFAULT_PRIORITY", "MEDIUM"),
            (
                "ACCOUNT_DESTINATIONS",
                " 111122223333=payments , 444455556666=team/db ",
            ),
        ]))
        .unwrap();
        assert_eq!(config.priority(), Priority::Medium);
        assert_eq!(config.account_destinations["444455556666"], "team/db");
        assert_eq!(
            RoutingConfig::from_lookup(env(&[])).unwrap(),
            RoutingConfig::default()
        );
        for (variable, value) in [
            ("DEFAULT_PRIORITY", "high"),
            ("ACCOUNT_DESTINATIONS", "1111=payments"),
            ("ACCOUNT_DESTINATIONS", "111122223333"),
            ("ACCOUNT_DESTINATIONS", "111122223333=a b"),
        ] {
            let lookup = move |name: &str| (name == variable).then(|| value.to_owned());
            assert_eq!(
                RoutingConfig::from_lookup(lookup).unwrap_err().variable,
                variable
            );
        }
    }
}
