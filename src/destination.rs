//! Destinations: the webhooks (agent spaces) investigations go to, each a name and a secret of
//! the Secrets Manager shape (`crate::secret`). The default destination is the relay's own
//! secret (`WebhookSecretArn`, or `serve --secret-file`); any other is found by name: in AWS the
//! secret `<DestinationSecretPrefix><NAME>` (adding an agent space is creating one secret), on
//! one machine a `--destination NAME=SECRET_FILE`. Each destination's secret is cached and
//! reread on 401/403 like the default's.

use crate::ports::{Destinations, SecretSource};
use crate::routing::valid_destination;
use crate::secret::SecretError;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The name of the default destination (the relay's own secret), in tags and in the log.
pub const DEFAULT: &str = "default";

/// Opens the secret source of a destination name not seen yet.
pub type OpenDestination = Box<dyn Fn(&str) -> Arc<dyn SecretSource> + Send + Sync>;

/// The default destination and the named ones, opened on first use and kept.
pub struct NamedDestinations {
    default: Arc<dyn SecretSource>,
    named: Mutex<BTreeMap<String, Arc<dyn SecretSource>>>,
    /// `None`: only the names given up front exist.
    open: Option<OpenDestination>,
}

impl NamedDestinations {
    /// Only the default destination, and `named`.
    pub fn fixed(
        default: Arc<dyn SecretSource>,
        named: BTreeMap<String, Arc<dyn SecretSource>>,
    ) -> Self {
        Self {
            default,
            named: Mutex::new(named),
            open: None,
        }
    }

    /// The default destination, and any valid name opened by `open`.
    pub fn opening(default: Arc<dyn SecretSource>, open: OpenDestination) -> Self {
        Self {
            default,
            named: Mutex::new(BTreeMap::new()),
            open: Some(open),
        }
    }
}

impl Destinations for NamedDestinations {
    fn secrets(&self, name: Option<&str>) -> Result<Arc<dyn SecretSource>, SecretError> {
        let Some(name) = name.filter(|name| *name != DEFAULT) else {
            return Ok(self.default.clone());
        };
        if !valid_destination(name) {
            return Err(SecretError::Malformed(format!(
                "destination {name:?} is not a destination name"
            )));
        }
        let mut named = self
            .named
            .lock()
            .map_err(|_| SecretError::Unavailable("the destination cache is unusable".into()))?;
        if let Some(source) = named.get(name) {
            return Ok(source.clone());
        }
        let open = self
            .open
            .as_ref()
            .ok_or_else(|| SecretError::Denied(format!("no destination {name:?} is configured")))?;
        let source = open(name);
        named.insert(name.to_owned(), source.clone());
        Ok(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Deliverer;
    use crate::event::AlarmEvent;
    use crate::payload::WebhookBody;
    use crate::secret::CachedSecretSource;
    use crate::signer::{ErrorName, SignerError};
    use crate::testing::{FakeTransport, FixedClock, SECRET_DOC, ScriptedFetcher};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn source(doc: &str) -> Arc<dyn SecretSource> {
        Arc::new(CachedSecretSource::new(
            ScriptedFetcher::new([doc.to_owned()]),
            Arc::new(FixedClock::at("2026-11-24T10:00:00Z")),
            Duration::from_secs(300),
        ))
    }

    #[test]
    fn fixed_destinations_know_only_their_names() {
        let destinations = NamedDestinations::fixed(
            source(SECRET_DOC),
            BTreeMap::from([("db-team".to_owned(), source(SECRET_DOC))]),
        );
        assert!(destinations.secrets(None).is_ok());
        assert!(Arc::ptr_eq(
            &destinations.secrets(Some(DEFAULT)).unwrap(),
            &destinations.secrets(None).unwrap()
        ));
        assert!(destinations.secrets(Some("db-team")).is_ok());
        let unknown = destinations.secrets(Some("payments")).err().unwrap();
        assert!(
            matches!(unknown, SecretError::Denied(ref m) if m.contains("payments")),
            "{unknown}"
        );
        let invalid = destinations.secrets(Some("a b")).err().unwrap();
        assert!(matches!(invalid, SecretError::Malformed(_)), "{invalid}");
    }

    #[test]
    fn opened_destinations_are_opened_once() {
        let opened = Arc::new(AtomicUsize::new(0));
        let counter = opened.clone();
        let destinations = NamedDestinations::opening(
            source(SECRET_DOC),
            Box::new(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
                source(SECRET_DOC)
            }),
        );
        for _ in 0..3 {
            destinations.secrets(Some("db-team")).unwrap();
        }
        destinations.secrets(Some("payments")).unwrap();
        assert_eq!(opened.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_unknown_destination_is_config_invalid_naming_it_and_sends_nothing() {
        let transport = Arc::new(FakeTransport::answering([]));
        let clock = Arc::new(FixedClock::at("2026-11-24T10:00:00Z"));
        let deliverer = Deliverer::new(source(SECRET_DOC), transport.clone(), clock);
        let event =
            AlarmEvent::parse(include_bytes!("../tests/fixtures/metric-alarm.json")).unwrap();
        let error = deliverer
            .deliver_to(&WebhookBody::render(&event), Some("payments"))
            .await
            .unwrap_err();
        let error = SignerError::from(error);
        assert_eq!(error.name, ErrorName::ConfigInvalid);
        assert!(
            error.message.contains("destination payments"),
            "{}",
            error.message
        );
        assert!(transport.sent().is_empty());
    }
}
