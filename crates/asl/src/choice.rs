//! Choice rule evaluation: comparisons, type tests, `StringMatches`, And/Or/Not.

use std::cmp::Ordering;

use serde_json::Value;

use crate::definition::{ChoiceRule, Condition, Operand, Relation, Test, TypeCheck, ValueKind};
use crate::io::StateError;
use crate::path::ContextObject;
use crate::{path, timestamp};

/// The `Next` of the first rule that matches `input`, if any.
pub(crate) fn choose<'a>(
    choices: &'a [ChoiceRule],
    input: &Value,
    context: &dyn ContextObject,
) -> Result<Option<&'a str>, StateError> {
    for rule in choices {
        if evaluate(&rule.condition, input, context)? {
            return Ok(Some(&rule.next));
        }
    }
    Ok(None)
}

/// Evaluates a condition. A `Variable` (or `…Path` operand) that selects nothing is a
/// `States.Runtime` error, except under `IsPresent`; a type mismatch makes a comparison false.
fn evaluate(
    condition: &Condition,
    input: &Value,
    context: &dyn ContextObject,
) -> Result<bool, StateError> {
    match condition {
        Condition::And(all) => {
            for condition in all {
                if !evaluate(condition, input, context)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Condition::Or(any) => {
            for condition in any {
                if evaluate(condition, input, context)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Condition::Not(inner) => Ok(!evaluate(inner, input, context)?),
        Condition::Test { variable, test } => {
            let value = path::select(variable, input, context).ok();
            if let Test::Is {
                check: TypeCheck::Present,
                expected,
            } = test
            {
                return Ok(value.is_some() == *expected);
            }
            let value = value.ok_or_else(|| invalid_path(variable))?;
            test_value(test, &value, input, context)
        }
    }
}

fn test_value(
    test: &Test,
    value: &Value,
    input: &Value,
    context: &dyn ContextObject,
) -> Result<bool, StateError> {
    Ok(match test {
        Test::Compare {
            kind,
            relation,
            operand,
        } => {
            let operand = match operand {
                Operand::Literal(literal) => literal.clone(),
                Operand::Path(operand) => {
                    path::select(operand, input, context).map_err(|_| invalid_path(operand))?
                }
            };
            compare(*kind, value, &operand).is_some_and(|ordering| holds(*relation, ordering))
        }
        Test::StringMatches(pattern) => value
            .as_str()
            .is_some_and(|text| string_matches(text, pattern)),
        Test::Is { check, expected } => {
            let actual = match check {
                TypeCheck::Null => value.is_null(),
                TypeCheck::Present => true,
                TypeCheck::Numeric => value.is_number(),
                TypeCheck::String => value.is_string(),
                TypeCheck::Boolean => value.is_boolean(),
                TypeCheck::Timestamp => value.as_str().and_then(timestamp::parse).is_some(),
            };
            actual == *expected
        }
    })
}

/// Orders two values as `kind`; `None` when either is not of that kind (the comparison is false).
fn compare(kind: ValueKind, left: &Value, right: &Value) -> Option<Ordering> {
    match kind {
        ValueKind::String => Some(left.as_str()?.cmp(right.as_str()?)),
        ValueKind::Numeric => {
            if !left.is_number() || !right.is_number() {
                return None;
            }
            left.as_f64()?.partial_cmp(&right.as_f64()?)
        }
        ValueKind::Boolean => Some(left.as_bool()?.cmp(&right.as_bool()?)),
        ValueKind::Timestamp => {
            let left = timestamp::parse(left.as_str()?)?;
            let right = timestamp::parse(right.as_str()?)?;
            Some(left.cmp(&right))
        }
    }
}

fn holds(relation: Relation, ordering: Ordering) -> bool {
    match relation {
        Relation::Equals => ordering == Ordering::Equal,
        Relation::LessThan => ordering == Ordering::Less,
        Relation::GreaterThan => ordering == Ordering::Greater,
        Relation::LessThanEquals => ordering != Ordering::Greater,
        Relation::GreaterThanEquals => ordering != Ordering::Less,
    }
}

fn invalid_path(path: &str) -> StateError {
    StateError::runtime(format!(
        "Invalid path '{path}': The choice state's condition path references an invalid value."
    ))
}

/// One element of a `StringMatches` pattern.
#[derive(Clone, Copy, PartialEq)]
enum Token {
    Star,
    Char(char),
}

/// `StringMatches`: `*` matches any run of characters; `\*` and `\\` are a literal `*` and `\`.
pub(crate) fn string_matches(text: &str, pattern: &str) -> bool {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Token::Star,
            '\\' => Token::Char(chars.next().unwrap_or('\\')),
            other => Token::Char(other),
        });
    }
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut p) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Token::Star) => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(Token::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    p = star + 1;
                    t = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|token| *token == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_matches_wildcards_and_escapes() {
        assert!(string_matches("log-2024.txt", "log-*.txt"));
        assert!(string_matches("anything", "*"));
        assert!(string_matches("", "*"));
        assert!(!string_matches("log.txt", "log-*"));
        assert!(string_matches("a*b", "a\\*b"));
        assert!(!string_matches("axb", "a\\*b"));
        assert!(string_matches("a\\b", "a\\\\b"));
        assert!(string_matches("abcbc", "a*bc"));
        assert!(string_matches("xyz", "x*y*z*"));
        assert!(!string_matches("xy", "x*y*z"));
    }

    #[test]
    fn type_mismatch_compares_false() {
        assert_eq!(
            compare(ValueKind::Numeric, &Value::from("1"), &Value::from(1)),
            None
        );
        assert_eq!(
            compare(ValueKind::String, &Value::from(1), &Value::from("1")),
            None
        );
        assert_eq!(
            compare(
                ValueKind::Numeric,
                &serde_json::json!(1),
                &serde_json::json!(1.0)
            ),
            Some(Ordering::Equal)
        );
    }
}
