//! How the store keeps a JSON document in a column: as TEXT while it is short, as a BLOB
//! once deflate makes it smaller. Readers take either, so rows written before documents were
//! packed read as they always did.
//!
//! An incident's audit events, its projection and its episode are each written once per
//! change and read back only by `audit`, the API and the engine. Each is a few hundred bytes
//! whose bulk is the same keys and phrases in every incident, which deflate cannot find in one
//! short document alone: they are compressed against [`DICTIONARY`], a preset dictionary of
//! those keys and of the CloudWatch event's fixed text (no value of anyone's alarms). Measured
//! on the bench's documents: 4.3 KB of text per incident deflate to 2.2 KB alone and to 1.3 KB
//! with the dictionary (docs/performance.md §2).
//!
//! A BLOB is one format byte, then raw deflate: [`FORMAT_DICTIONARY_1`] is the only format. The
//! dictionary file is frozen: every packed row depends on it byte for byte, so a better
//! dictionary is a new file and a new format byte, with this one kept for reading.
//!
//! `alarm-relay audit --db` reads the documents back as JSON; `sqlite3` shows the long ones as
//! BLOBs.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use std::cell::RefCell;
use std::thread::LocalKey;

/// Shorter text is stored as is: deflate saves little on it, and it stays readable with
/// `sqlite3` (most events: `Delivered`, `Correlated`, `ExecutionStarted`…).
const PACK_FROM: usize = 256;

/// The preset dictionary of format 1: frozen (see the module's documentation).
const DICTIONARY: &[u8] = include_bytes!("packed-dictionary-1.txt");

/// The first byte of a packed BLOB: raw deflate against [`DICTIONARY`].
const FORMAT_DICTIONARY_1: u8 = 1;

thread_local! {
    /// One compressor per thread, reset between documents: building one allocates its state
    /// (hundreds of KB), more than compressing a short document costs.
    static COMPRESSOR: RefCell<Compress> =
        RefCell::new(Compress::new(Compression::default(), false));
    /// The fastest level, for what is written once and deleted soon after: the history
    /// segments of a running execution.
    #[cfg(feature = "local")]
    static FAST_COMPRESSOR: RefCell<Compress> =
        RefCell::new(Compress::new(Compression::fast(), false));
}

/// A document as it is bound to a column.
#[derive(Debug)]
pub(crate) enum Packed {
    Text(String),
    Deflated(Vec<u8>),
}

impl Packed {
    /// `text` packed if it is at least [`PACK_FROM`] bytes long and packing makes it
    /// smaller, else `text` itself.
    pub(crate) fn new(text: String) -> Self {
        if text.len() < PACK_FROM {
            return Self::Text(text);
        }
        let mut packed = Vec::with_capacity(text.len() - 1);
        packed.push(FORMAT_DICTIONARY_1);
        if deflate_into(&COMPRESSOR, text.as_bytes(), Some(DICTIONARY), &mut packed) {
            Self::Deflated(packed)
        } else {
            Self::Text(text)
        }
    }
}

impl ToSql for Packed {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Self::Text(text) => ToSqlOutput::from(text.as_str()),
            Self::Deflated(bytes) => ToSqlOutput::from(bytes.as_slice()),
        })
    }
}

/// A document read back from a column written with [`Packed`] (or as plain text).
#[derive(Debug)]
pub(crate) struct Unpacked(pub(crate) String);

impl FromSql for Unpacked {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Text(_) => String::column_result(value).map(Self),
            ValueRef::Blob([FORMAT_DICTIONARY_1, deflated @ ..]) => {
                let bytes = inflate_into(deflated, Some(DICTIONARY))
                    .map_err(|error| FromSqlError::Other(error.into()))?;
                String::from_utf8(bytes)
                    .map(Self)
                    .map_err(|error| FromSqlError::Other(Box::new(error)))
            }
            ValueRef::Blob(_) => Err(FromSqlError::Other(
                "a packed document of an unknown format (written by a newer build?)".into(),
            )),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

/// `bytes` as raw deflate (no dictionary: the ended executions' format), whatever their size.
#[cfg(feature = "local")]
pub(crate) fn deflate(bytes: &[u8]) -> Vec<u8> {
    deflate_with(&COMPRESSOR, bytes)
}

/// [`deflate`] at the fastest level: larger output, in under half the time.
#[cfg(feature = "local")]
pub(crate) fn deflate_fast(bytes: &[u8]) -> Vec<u8> {
    deflate_with(&FAST_COMPRESSOR, bytes)
}

#[cfg(feature = "local")]
fn deflate_with(compressor: &'static LocalKey<RefCell<Compress>>, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() / 4 + 64);
    while !deflate_into(compressor, bytes, None, &mut out) {
        out = Vec::with_capacity(out.capacity().saturating_mul(2));
    }
    out
}

/// Appends the raw deflate of `bytes` (against `dictionary`) to `out` if it fits in `out`'s
/// spare capacity; `false` if it does not (what was appended is then garbage).
fn deflate_into(
    compressor: &'static LocalKey<RefCell<Compress>>,
    bytes: &[u8],
    dictionary: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> bool {
    compressor.with_borrow_mut(|compressor| {
        compressor.reset();
        if let Some(dictionary) = dictionary
            && compressor.set_dictionary(dictionary).is_err()
        {
            return false;
        }
        // `compress_vec` writes into the spare capacity only, never past it.
        matches!(
            compressor.compress_vec(bytes, out, FlushCompress::Finish),
            Ok(Status::StreamEnd)
        )
    })
}

/// Raw deflate (no dictionary) back to its bytes.
#[cfg(feature = "local")]
pub(crate) fn inflate(bytes: &[u8]) -> Result<Vec<u8>, String> {
    inflate_into(bytes, None)
}

/// Raw deflate (against `dictionary`) back to its bytes.
fn inflate_into(bytes: &[u8], dictionary: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let corrupt = |error: &dyn std::fmt::Display| format!("corrupt deflate data: {error}");
    let mut decompressor = Decompress::new(false);
    if let Some(dictionary) = dictionary {
        decompressor
            .set_dictionary(dictionary)
            .map_err(|e| corrupt(&e))?;
    }
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4));
    loop {
        let consumed = usize::try_from(decompressor.total_in()).unwrap_or(usize::MAX);
        let before = out.len();
        let status = decompressor
            .decompress_vec(
                &bytes[consumed.min(bytes.len())..],
                &mut out,
                FlushDecompress::Finish,
            )
            .map_err(|e| corrupt(&e))?;
        match status {
            Status::StreamEnd => return Ok(out),
            _ if out.len() == out.capacity() => out.reserve(out.capacity().max(256)),
            _ if out.len() == before => return Err(corrupt(&"truncated")),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rusqlite::Connection;

    fn read(sql: &str, packed: &Packed) -> rusqlite::Result<Unpacked> {
        let connection = Connection::open_in_memory().expect("in-memory database");
        connection.query_row(sql, [packed], |row| row.get::<_, Unpacked>(0))
    }

    fn round_trip(packed: &Packed) -> String {
        read("SELECT ?1", packed).expect("read back").0
    }

    fn packed_len(packed: &Packed) -> usize {
        match packed {
            Packed::Text(text) => text.len(),
            Packed::Deflated(bytes) => bytes.len(),
        }
    }

    #[test]
    fn short_text_stays_text_and_long_json_is_packed() {
        let short = r#"{"statusCode":202}"#.to_owned();
        assert!(matches!(Packed::new(short.clone()), Packed::Text(ref t) if *t == short));

        let long = serde_json::json!({"reason": "Threshold Crossed: ".repeat(40)}).to_string();
        let packed = Packed::new(long.clone());
        let Packed::Deflated(ref bytes) = packed else {
            panic!("a repetitive 760-byte document is packed: {packed:?}");
        };
        assert_eq!(bytes[0], FORMAT_DICTIONARY_1);
        assert!(bytes.len() < long.len() / 4, "{} bytes", bytes.len());
        assert_eq!(round_trip(&packed), long);
    }

    #[test]
    fn the_dictionary_shrinks_every_fixture_event_beyond_deflate_alone() {
        for (name, raw) in [
            (
                "metric",
                &include_bytes!("../../../tests/fixtures/metric-alarm.json")[..],
            ),
            (
                "math",
                include_bytes!("../../../tests/fixtures/metric-math-alarm.json"),
            ),
            (
                "anomaly",
                include_bytes!("../../../tests/fixtures/anomaly-detection-alarm.json"),
            ),
            (
                "composite",
                include_bytes!("../../../tests/fixtures/composite-alarm.json"),
            ),
        ] {
            let text = serde_json::from_slice::<serde_json::Value>(raw)
                .expect("fixture JSON")
                .to_string();
            let mut alone = Vec::with_capacity(text.len());
            assert!(
                deflate_into(&COMPRESSOR, text.as_bytes(), None, &mut alone),
                "{name}"
            );
            let alone = alone.len();
            let packed = Packed::new(text.clone());
            assert!(
                packed_len(&packed) < alone,
                "{name}: {} >= {alone}",
                packed_len(&packed)
            );
            assert_eq!(round_trip(&packed), text, "{name}");
        }
    }

    #[test]
    fn the_dictionary_of_format_1_is_frozen() {
        // Every packed row depends on these bytes: a new dictionary is a new format.
        assert_eq!(
            crate::incident::sha256_hex(DICTIONARY),
            "a98a961dcb096968a9bec71c98b2c4828ae55cf1f3d4e704e7d2923c4dbfd288"
        );
    }

    #[cfg(feature = "local")]
    #[test]
    fn deflate_grows_its_output_when_it_must_and_inflates_back() {
        let json = serde_json::json!({"reason": "Threshold Crossed: ".repeat(40)}).to_string();
        let needed = deflate(json.as_bytes()).len();
        let mut tight = Vec::with_capacity(needed - 1);
        assert!(!deflate_into(
            &COMPRESSOR,
            json.as_bytes(),
            None,
            &mut tight
        ));
        // Incompressible bytes need more than the first guess of a quarter of their size.
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(inflate(&deflate(&noise)).expect("inflates"), noise);
    }

    #[test]
    fn corrupt_or_unknown_blobs_are_errors_not_panics() {
        let text = Packed::Text(String::new());
        for sql in [
            "SELECT x'01ffffffff'",
            "SELECT x'01'",
            "SELECT x'02abcd'",
            "SELECT x''",
            "SELECT 42",
        ] {
            let connection = Connection::open_in_memory().expect("in-memory database");
            let read = connection.query_row(sql, [], |row| row.get::<_, Unpacked>(0));
            assert!(read.is_err(), "{sql}");
        }
        let Packed::Deflated(mut bytes) = Packed::new("x".repeat(300)) else {
            panic!("300 x are packed");
        };
        bytes.truncate(bytes.len() - 1);
        assert!(read("SELECT ?1", &Packed::Deflated(bytes)).is_err());
        assert_eq!(round_trip(&text), "");
    }

    proptest! {
        #[test]
        fn every_text_reads_back_as_written(text in ".{0,2000}") {
            prop_assert_eq!(round_trip(&Packed::new(text.clone())), text);
        }

        #[cfg(feature = "local")]
        #[test]
        fn deflate_and_inflate_are_inverse_at_any_size(bytes in prop::collection::vec(any::<u8>(), 0..20_000)) {
            prop_assert_eq!(inflate(&deflate(&bytes)).expect("inflates"), bytes);
        }
    }
}
