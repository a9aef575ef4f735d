//! Input and output processing: InputPath, Parameters/ResultSelector payload templates,
//! ResultPath and OutputPath, with the errors each raises.

use serde_json::{Map, Value};
use std::borrow::Cow;

use crate::path::{self, ContextObject, PathError};
use crate::{intrinsics, retry};

/// `States.ResultPathMatchFailure`: ResultPath could not be applied to the state's input.
pub(crate) const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
/// `States.IntrinsicFailure`: an intrinsic function failed.
pub(crate) const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";

/// An error a state raises while processing its input or output.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StateError {
    pub error: String,
    pub cause: String,
}

impl StateError {
    pub fn new(error: &str, cause: impl Into<String>) -> Self {
        StateError {
            error: error.to_owned(),
            cause: cause.into(),
        }
    }

    /// A `States.Runtime` error (never retried or caught).
    pub fn runtime(cause: impl Into<String>) -> Self {
        StateError::new(retry::STATES_RUNTIME, cause)
    }
}

/// Compact JSON text, as Step Functions quotes documents in causes and history.
pub(crate) fn text(value: &Value) -> String {
    value.to_string()
}

/// Applies `InputPath`/`OutputPath` (named `field`): `None` (JSON `null`) gives `{}`; a path
/// that selects nothing is a `States.Runtime` error.
pub(crate) fn filter(
    field: &str,
    path: Option<&str>,
    input: &Value,
    context: &dyn ContextObject,
) -> Result<Value, StateError> {
    let Some(path) = path else {
        return Ok(Value::Object(Map::new()));
    };
    path::select(path, input, context).map_err(|error| not_found(field, path, input, &error))
}

/// [`filter`] that borrows `input` for `$` (the default) instead of copying it.
pub(crate) fn filter_borrowed<'a>(
    field: &str,
    path: Option<&str>,
    input: &'a Value,
    context: &dyn ContextObject,
) -> Result<Cow<'a, Value>, StateError> {
    match path {
        Some("$") => Ok(Cow::Borrowed(input)),
        _ => filter(field, path, input, context).map(Cow::Owned),
    }
}

/// [`filter`] of a document the caller gives up: `$` (the default) answers it as it is.
pub(crate) fn filter_owned(
    field: &str,
    path: Option<&str>,
    input: Value,
    context: &dyn ContextObject,
) -> Result<Value, StateError> {
    match path {
        Some("$") => Ok(input),
        _ => filter(field, path, &input, context),
    }
}

/// Applies `ResultPath` (named `field`): `None` (JSON `null`) discards the result and keeps the
/// input; otherwise the result is placed into the input. Placing it inside a non-object is
/// `States.ResultPathMatchFailure`.
pub(crate) fn place(
    field: &str,
    path: Option<&str>,
    input: Value,
    result: Value,
) -> Result<Value, StateError> {
    let Some(path) = path else {
        return Ok(input);
    };
    path::set_or_keep(path, input, result).map_err(|input| {
        StateError::new(
            RESULT_PATH_MATCH_FAILURE,
            format!(
                "Unable to apply {field} '{path}' to input '{}'",
                text(&input)
            ),
        )
    })
}

/// Evaluates a payload template (`Parameters`, `ResultSelector`, named `field`): fields whose
/// names end in `.$` are replaced by what their path selects (from `input`, or from `context`
/// for `$$`) or by their intrinsic function's value, recursively through objects and arrays.
pub(crate) fn template(
    field: &str,
    template: &Value,
    input: &Value,
    context: &dyn ContextObject,
    random: &mut dyn FnMut() -> f64,
) -> Result<Value, StateError> {
    match template {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, item) in map {
                match (key.strip_suffix(".$"), item) {
                    (Some(name), Value::String(expression)) => {
                        let value = if intrinsics::is_intrinsic(expression) {
                            intrinsics::evaluate(expression, input, context, random)
                                .map_err(|error| StateError::new(INTRINSIC_FAILURE, error.cause))?
                        } else {
                            path::select(expression, input, context)
                                .map_err(|error| not_found(key, expression, input, &error))?
                        };
                        out.insert(name.to_owned(), value);
                    }
                    _ => {
                        out.insert(
                            key.clone(),
                            template_in(field, item, input, context, random)?,
                        );
                    }
                }
            }
            Ok(Value::Object(out))
        }
        other => template_in(field, other, input, context, random),
    }
}

fn template_in(
    field: &str,
    item: &Value,
    input: &Value,
    context: &dyn ContextObject,
    random: &mut dyn FnMut() -> f64,
) -> Result<Value, StateError> {
    match item {
        Value::Object(_) => template(field, item, input, context, random),
        Value::Array(items) => items
            .iter()
            .map(|item| template_in(field, item, input, context, random))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// The `States.Runtime` error of a path that selects nothing, worded as Step Functions does.
fn not_found(field: &str, path: &str, input: &Value, error: &PathError) -> StateError {
    let detail = match error {
        PathError::NotFound { .. } => "could not be found in the input",
        PathError::NotAnObject { .. } => "could not be applied to the input",
    };
    StateError::runtime(format!(
        "The JSONPath '{path}' specified for the field '{field}' {detail} '{}'",
        text(input)
    ))
}
