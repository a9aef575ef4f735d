//! Timestamps as ASL reads them (Wait, Timestamp comparisons) and as history writes them.

use chrono::{DateTime, SecondsFormat, Utc};

/// Parses an ASL timestamp: RFC 3339 with an uppercase `T` between date and time and an
/// uppercase `Z` when there is no numeric offset (`2016-03-14T01:59:00Z`).
pub(crate) fn parse(text: &str) -> Option<DateTime<Utc>> {
    if text.contains(['t', 'z', ' ']) {
        return None;
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// RFC 3339 with milliseconds and `Z`, as Step Functions writes times (`2024-01-02T03:04:05.678Z`).
pub(crate) fn format(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Serde for history timestamps in [`format`]'s shape.
pub(crate) mod serde_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format(*time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_asl_timestamps() {
        assert!(parse("2016-03-14T01:59:00Z").is_some());
        assert!(parse("2016-03-14T01:59:00.123+02:00").is_some());
        assert!(parse("2016-03-14t01:59:00Z").is_none());
        assert!(parse("2016-03-14T01:59:00z").is_none());
        assert!(parse("2016-03-14 01:59:00Z").is_none());
        assert!(parse("2016-03-14").is_none());
    }

    #[test]
    fn formats_with_millis_and_z() {
        let time = parse("2016-03-14T01:59:00+01:00").unwrap();
        assert_eq!(format(time), "2016-03-14T00:59:00.000Z");
    }
}
