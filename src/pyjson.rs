//! JSON text exactly as Python's `json.dumps(obj)` writes it with default arguments.
//!
//! The webhook body is a contract with DevOps Agent that the seed's Python Lambda defined, and
//! the signature covers its bytes, so the body must be byte-identical to what
//! `json.dumps(payload)` produced: separators `", "` and `": "`, `ensure_ascii=True` escaping
//! (`\uXXXX` in lower-case hex, astral characters as surrogate pairs), object keys in insertion
//! order (`serde_json` is built with `preserve_order`), and numbers as Python would re-print the
//! value it parsed: integers as integers, anything with a fraction or an exponent as a `float`
//! through `repr` (`1e2` → `100.0`, `1e-05`, `1e+16`).
//!
//! Numbers reach this module as the exact text they were written with (`serde_json` is built
//! with `arbitrary_precision`); [`check_number`] decides whether Python and Rust agree on the
//! value, and the event parser refuses any that do not.

use serde_json::{Number, Value};
use std::fmt::Write;

/// Why a JSON number cannot be carried through unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// An integer literal outside the signed 64-bit range.
    #[error("integer {0} does not fit in a signed 64-bit integer")]
    IntegerOutOfRange(String),
    /// A literal with a fraction or exponent whose value overflows a 64-bit float.
    #[error("number {0} overflows a 64-bit float")]
    FloatOutOfRange(String),
}

/// The value a JSON number literal denotes, as Python's `json.loads` would classify it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PyNumber {
    /// No fraction and no exponent: a Python `int`.
    Int(i64),
    /// A fraction or an exponent: a Python `float`.
    Float(f64),
}

/// Classifies a number literal; refuses what an `i64` or a finite `f64` cannot hold.
/// Errors quote at most this many characters of a literal.
const LITERAL_QUOTE_LIMIT: usize = 40;

pub fn check_number(number: &Number) -> Result<PyNumber, NumberError> {
    let text = number.to_string();
    if text.contains(['.', 'e', 'E']) {
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(PyNumber::Float(value)),
            _ => Err(NumberError::FloatOutOfRange(short_literal(&text))),
        }
    } else {
        text.parse::<i64>()
            .map(PyNumber::Int)
            .map_err(|_| NumberError::IntegerOutOfRange(short_literal(&text)))
    }
}

/// Number literals are ASCII, so cutting at a byte index is safe.
fn short_literal(text: &str) -> String {
    if text.len() > LITERAL_QUOTE_LIMIT {
        format!("{}… ({} digits)", &text[..LITERAL_QUOTE_LIMIT], text.len())
    } else {
        text.to_owned()
    }
}

/// `json.dumps(value)` with Python's defaults.
///
/// Numbers must have passed [`check_number`] (the event parser guarantees it for every value it
/// hands out); one that did not is written as its literal text.
pub fn dumps(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => write_str(out, text),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_str(out, key);
                out.push_str(": ");
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, number: &Number) {
    match check_number(number) {
        Ok(PyNumber::Int(value)) => {
            let _ = write!(out, "{value}");
        }
        Ok(PyNumber::Float(value)) => out.push_str(&float_repr(value)),
        Err(_) => {
            let _ = write!(out, "{number}");
        }
    }
}

/// A JSON string literal with `ensure_ascii=True` escaping.
pub fn write_str(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(ch),
            _ => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the
/// decimal exponent is in `-4..16`, otherwise `d.ddde±XX` with at least two exponent digits.
pub fn float_repr(value: f64) -> String {
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    }
    // Rust's `{:e}` prints the shortest round-tripping digits, as Python's repr does, but breaks
    // an exact tie between two such strings upwards, where Python's dtoa rounds half to even
    // (1125899906842624.25 → Python `…624.2`, `{:e}` `…624.3`). Precision formatting is exact and
    // rounds half to even, so redo the rounding at the same length and keep it if it round-trips.
    let shortest = format!("{:e}", value.abs());
    let length = shortest.split('e').next().map_or(1, |mantissa| {
        mantissa.chars().filter(char::is_ascii_digit).count()
    });
    let nearest = format!("{:.*e}", length - 1, value.abs());
    let scientific = if nearest.parse::<f64>() == Ok(value.abs()) {
        nearest
    } else {
        shortest
    };
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always writes an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` writes a decimal exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if value < 0.0 { "-" } else { "" };
    let mut out = String::from(sign);
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
            out.push_str(&digits);
        } else if (point as usize) < digits.len() {
            let (whole, fraction) = digits.split_at(point as usize);
            let _ = write!(out, "{whole}.{fraction}");
        } else {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
            out.push_str(".0");
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            let _ = write!(out, ".{rest}");
        }
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{exponent_sign}{:02}", exponent.unsigned_abs());
    }
    out
}

/// Python truthiness of a JSON value (`if dims:` in the seed).
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => match check_number(number) {
            Ok(PyNumber::Int(value)) => value != 0,
            Ok(PyNumber::Float(value)) => value != 0.0,
            Err(_) => true,
        },
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("test JSON is valid")
    }

    macro_rules! dumps_case {
        ($($name:ident: $input:expr => $expected:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(dumps(&parse($input)), $expected);
            }
        )*};
    }

    dumps_case! {
        dumps_uses_python_separators: r#"{"a":[1,2],"b":{}}"# => r#"{"a": [1, 2], "b": {}}"#;
        dumps_keeps_key_order: r#"{"z":1,"a":2,"m":3}"# => r#"{"z": 1, "a": 2, "m": 3}"#;
        dumps_duplicate_key_keeps_first_position_last_value: r#"{"a":1,"b":2,"a":3}"# => r#"{"a": 3, "b": 2}"#;
        dumps_escapes_non_ascii_lowercase: r#""é€""# => r#""\u00e9\u20ac""#;
        dumps_escapes_astral_as_surrogates: r#""😀""# => r#""\ud83d\ude00""#;
        dumps_escapes_controls_and_del: "\"\\u0001\\u001f\\u007f\"" => r#""\u0001\u001f\u007f""#;
        dumps_short_escapes: r#""\"\\\n\r\t\b\f/""# => r#""\"\\\n\r\t\b\f/""#;
        dumps_float_keeps_dot_zero: "50.0" => "50.0";
        dumps_exponent_literal_is_float: "1e2" => "100.0";
        dumps_small_float_uses_exponent: "0.00001" => "1e-05";
        dumps_large_float_uses_exponent: "1e16" => "1e+16";
        dumps_float_just_below_exponent_switch: "1e15" => "1000000000000000.0";
        dumps_fixed_small_float: "0.0001" => "0.0001";
        dumps_float_trailing_zeros_dropped: "1.50" => "1.5";
        dumps_negative_zero_int: "-0" => "0";
        dumps_negative_zero_float: "-0.0" => "-0.0";
        dumps_literals: "[true,false,null]" => "[true, false, null]";
        dumps_big_exponent_mantissa: "1.5e300" => "1.5e+300";
        dumps_i64_min: "-9223372036854775808" => "-9223372036854775808";
        dumps_float_tie_rounds_half_even: "1125899906842624.25" => "1125899906842624.2";
        dumps_float_tie_odd_neighbour_rounds_up: "1125899906842624.75" => "1125899906842624.8";
        dumps_float_tie_negative: "-1337759146030.65625" => "-1337759146030.6562";
    }

    #[test]
    fn check_number_refuses_integers_beyond_i64() {
        let value = parse("9223372036854775808");
        let Value::Number(number) = value else {
            panic!("a number")
        };
        assert_eq!(
            check_number(&number),
            Err(NumberError::IntegerOutOfRange("9223372036854775808".into()))
        );
    }

    #[test]
    fn check_number_refuses_float_overflow() {
        let Value::Number(number) = parse("1e400") else {
            panic!("a number")
        };
        assert!(matches!(
            check_number(&number),
            Err(NumberError::FloatOutOfRange(_))
        ));
    }

    #[test]
    fn truthiness_matches_python() {
        for (text, expected) in [
            ("{}", false),
            ("[]", false),
            ("\"\"", false),
            ("0", false),
            ("0.0", false),
            ("null", false),
            ("false", false),
            ("{\"a\":1}", true),
            ("[0]", true),
            ("\"x\"", true),
            ("-1", true),
            ("true", true),
        ] {
            assert_eq!(truthy(&parse(text)), expected, "{text}");
        }
    }

    proptest! {
        #[test]
        fn float_repr_round_trips(value in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
            let text = float_repr(value);
            prop_assert_eq!(text.parse::<f64>().unwrap().to_bits(), value.to_bits());
        }

        #[test]
        fn dumps_output_is_ascii_and_reparses_equal(text in any::<String>()) {
            let written = dumps(&Value::String(text.clone()));
            prop_assert!(written.is_ascii());
            let back: String = serde_json::from_str(&written).unwrap();
            prop_assert_eq!(back, text);
        }
    }
}
