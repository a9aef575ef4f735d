//! Reads a definition document into the [`Definition`] model, checking every field's presence,
//! type and range, and refusing what the local engine does not run.

use serde_json::{Map, Value};

use crate::LoadError;
use crate::definition::{
    Catcher, ChoiceRule, Condition, Definition, Kind, Operand, Relation, Resource, Retrier, State,
    Task, Test, Text, Transition, TypeCheck, ValueKind, WaitFor,
};
use crate::{intrinsics, lambda, path, timestamp};

/// Fields of the language the local engine knowingly does not run.
const UNSUPPORTED: &[&str] = &[
    "Arguments",
    "Output",
    "Assign",
    "Credentials",
    "HeartbeatSeconds",
    "HeartbeatSecondsPath",
    "TimeoutSecondsPath",
    "Branches",
    "Iterator",
    "ItemProcessor",
    "ItemsPath",
    "ItemSelector",
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "MaxConcurrency",
    "MaxConcurrencyPath",
    "ToleratedFailureCount",
    "ToleratedFailurePercentage",
    "Label",
];

/// The largest integer Step Functions accepts in its numeric fields.
const MAX_INT: u64 = 99_999_999;

/// Parses a whole definition document.
pub(crate) fn parse(document: &Value) -> Result<Definition, LoadError> {
    let top = Obj::root(document)?;
    top.check_fields(&[
        "StartAt",
        "States",
        "Comment",
        "Version",
        "TimeoutSeconds",
        "QueryLanguage",
    ])?;
    top.query_language()?;
    top.string("Comment")?;
    top.string("Version")?;
    let start_at = top.required_string("StartAt")?.to_owned();
    let timeout_seconds = top.integer("TimeoutSeconds", 1, MAX_INT)?;
    let states_map = match top.get("States") {
        Some(Value::Object(map)) if !map.is_empty() => map,
        Some(Value::Object(_)) => return Err(top.err("States", "must contain at least one state")),
        Some(_) => return Err(top.err("States", "must be an object")),
        None => return Err(top.err("States", "is required")),
    };
    let states = states_map
        .iter()
        .map(|(name, value)| parse_state(name, value))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Definition {
        start_at,
        states,
        timeout_seconds,
    })
}

/// Parses one state.
fn parse_state(name: &str, value: &Value) -> Result<State, LoadError> {
    if name.is_empty() || name.chars().count() > 80 {
        return Err(LoadError::new(
            Some(name),
            "States",
            "a state name must be 1 to 80 characters long",
        ));
    }
    let Value::Object(map) = value else {
        return Err(LoadError::new(
            Some(name),
            "States",
            "a state must be an object",
        ));
    };
    let obj = Obj {
        state: Some(name),
        at: String::new(),
        map,
    };
    let type_name = obj.required_string("Type")?;
    let allowed: &[&str] = match type_name {
        "Task" => &[
            "Resource",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "InputPath",
            "OutputPath",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "Next",
            "End",
        ],
        "Pass" => &[
            "Result",
            "Parameters",
            "ResultPath",
            "InputPath",
            "OutputPath",
            "Next",
            "End",
        ],
        "Choice" => &["Choices", "Default", "InputPath", "OutputPath"],
        "Wait" => &[
            "Seconds",
            "Timestamp",
            "SecondsPath",
            "TimestampPath",
            "InputPath",
            "OutputPath",
            "Next",
            "End",
        ],
        "Succeed" => &["InputPath", "OutputPath"],
        "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
        "Parallel" | "Map" => {
            return Err(obj.err(
                "Type",
                format!("{type_name} states are not supported by the local engine"),
            ));
        }
        other => return Err(obj.err("Type", format!("\"{other}\" is not a state type"))),
    };
    let mut fields = vec!["Type", "Comment", "QueryLanguage"];
    fields.extend_from_slice(allowed);
    obj.check_fields(&fields)?;
    obj.query_language()?;
    obj.string("Comment")?;
    let input_path = obj.path_or_null("InputPath", PathKind::Path)?;
    let output_path = obj.path_or_null("OutputPath", PathKind::Path)?;
    let kind = match type_name {
        "Task" => Kind::Task(parse_task(&obj)?),
        "Pass" => Kind::Pass {
            result: obj.get("Result").cloned(),
            parameters: obj.template("Parameters")?,
            result_path: obj.path_or_null("ResultPath", PathKind::Reference)?,
            transition: obj.transition()?,
        },
        "Choice" => parse_choice(&obj)?,
        "Wait" => Kind::Wait {
            wait: parse_wait(&obj)?,
            transition: obj.transition()?,
        },
        "Succeed" => Kind::Succeed,
        _ => Kind::Fail {
            error: obj.text("Error", "ErrorPath")?,
            cause: obj.text("Cause", "CausePath")?,
        },
    };
    Ok(State {
        name: name.to_owned(),
        input_path,
        output_path,
        kind,
    })
}

fn parse_task(obj: &Obj<'_>) -> Result<Task, LoadError> {
    let arn = obj.required_string("Resource")?;
    let resource = if arn == lambda::LAMBDA_INVOKE {
        Resource::LambdaInvoke
    } else if lambda::is_function_arn(arn) {
        Resource::LambdaFunction(arn.to_owned())
    } else {
        return Err(obj.err(
            "Resource",
            format!(
                "\"{arn}\" is not supported by the local engine (only {} and Lambda function ARNs)",
                lambda::LAMBDA_INVOKE
            ),
        ));
    };
    let parameters = obj.template("Parameters")?;
    if resource == Resource::LambdaInvoke {
        let named = parameters
            .as_ref()
            .and_then(Value::as_object)
            .is_some_and(|map| {
                map.contains_key("FunctionName") || map.contains_key("FunctionName.$")
            });
        if !named {
            return Err(obj.err(
                "Parameters",
                "lambda:invoke requires Parameters.FunctionName",
            ));
        }
    }
    let retry = obj
        .array("Retry")?
        .iter()
        .enumerate()
        .map(|(index, value)| parse_retrier(obj, index, value))
        .collect::<Result<Vec<_>, _>>()?;
    check_states_all_last(obj, "Retry", retry.iter().map(|r| &r.error_equals))?;
    let catch = obj
        .array("Catch")?
        .iter()
        .enumerate()
        .map(|(index, value)| parse_catcher(obj, index, value))
        .collect::<Result<Vec<_>, _>>()?;
    check_states_all_last(obj, "Catch", catch.iter().map(|c| &c.error_equals))?;
    Ok(Task {
        resource,
        parameters,
        result_selector: obj.template("ResultSelector")?,
        result_path: obj.path_or_null("ResultPath", PathKind::Reference)?,
        retry,
        catch,
        timeout_seconds: obj.integer("TimeoutSeconds", 1, MAX_INT)?,
        transition: obj.transition()?,
    })
}

fn parse_retrier(state: &Obj<'_>, index: usize, value: &Value) -> Result<Retrier, LoadError> {
    let obj = state.child(&format!("Retry[{index}]"), value)?;
    obj.check_fields(&[
        "ErrorEquals",
        "IntervalSeconds",
        "MaxAttempts",
        "BackoffRate",
        "MaxDelaySeconds",
        "JitterStrategy",
        "Comment",
    ])?;
    obj.string("Comment")?;
    let backoff_rate = match obj.get("BackoffRate") {
        None => 2.0,
        Some(value) => match value.as_f64() {
            Some(rate) if rate >= 1.0 && rate.is_finite() => rate,
            _ => {
                return Err(obj.err(
                    "BackoffRate",
                    "must be a number greater than or equal to 1.0",
                ));
            }
        },
    };
    let full_jitter = match obj.string("JitterStrategy")? {
        None | Some("NONE") => false,
        Some("FULL") => true,
        Some(_) => return Err(obj.err("JitterStrategy", "must be FULL or NONE")),
    };
    Ok(Retrier {
        error_equals: obj.error_equals()?,
        interval_seconds: obj.integer("IntervalSeconds", 1, MAX_INT)?.unwrap_or(1),
        max_attempts: obj.integer("MaxAttempts", 0, MAX_INT)?.unwrap_or(3),
        backoff_rate,
        max_delay_seconds: obj.integer("MaxDelaySeconds", 1, 31_622_400)?,
        full_jitter,
    })
}

fn parse_catcher(state: &Obj<'_>, index: usize, value: &Value) -> Result<Catcher, LoadError> {
    let obj = state.child(&format!("Catch[{index}]"), value)?;
    obj.check_fields(&["ErrorEquals", "Next", "ResultPath", "Comment"])?;
    obj.string("Comment")?;
    Ok(Catcher {
        error_equals: obj.error_equals()?,
        next: obj.required_string("Next")?.to_owned(),
        result_path: obj.path_or_null("ResultPath", PathKind::Reference)?,
    })
}

/// `States.ALL` may appear only in the last retrier/catcher.
fn check_states_all_last<'v>(
    obj: &Obj<'_>,
    field: &str,
    lists: impl ExactSizeIterator<Item = &'v Vec<String>>,
) -> Result<(), LoadError> {
    let last = lists.len().saturating_sub(1);
    for (index, errors) in lists.enumerate() {
        if index != last && errors.iter().any(|e| e == crate::retry::STATES_ALL) {
            return Err(obj.err(
                &format!("{field}[{index}].ErrorEquals"),
                "States.ALL may only appear in the last element",
            ));
        }
    }
    Ok(())
}

fn parse_choice(obj: &Obj<'_>) -> Result<Kind, LoadError> {
    let rules = obj.array("Choices")?;
    if rules.is_empty() {
        return Err(obj.err("Choices", "must be a non-empty array"));
    }
    let choices = rules
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let rule = obj.child(&format!("Choices[{index}]"), value)?;
            let condition = parse_condition(&rule, true)?;
            let next = rule.required_string("Next")?.to_owned();
            Ok(ChoiceRule { condition, next })
        })
        .collect::<Result<Vec<_>, LoadError>>()?;
    Ok(Kind::Choice {
        choices,
        default: obj.string("Default")?.map(str::to_owned),
    })
}

/// Parses a Choice rule's condition; `top` rules carry `Next`, nested ones must not.
fn parse_condition(rule: &Obj<'_>, top: bool) -> Result<Condition, LoadError> {
    let operators: Vec<&String> = rule
        .map
        .keys()
        .filter(|key| !matches!(key.as_str(), "Variable" | "Next" | "Comment"))
        .collect();
    for key in &operators {
        if !matches!(key.as_str(), "And" | "Or" | "Not") && operator(key).is_none() {
            return Err(rule.err(key, "is not a Choice rule field"));
        }
    }
    if !top && rule.get("Next").is_some() {
        return Err(rule.err("Next", "only top-level Choice rules may have Next"));
    }
    rule.string("Comment")?;
    let [name] = operators.as_slice() else {
        return Err(rule.err(
            "",
            "a Choice rule must have exactly one comparison operator, And, Or or Not",
        ));
    };
    match name.as_str() {
        combinator @ ("And" | "Or" | "Not") => {
            if rule.get("Variable").is_some() {
                return Err(rule.err("Variable", format!("is not allowed with {combinator}")));
            }
            if combinator == "Not" {
                let inner = rule.child("Not", rule.get("Not").unwrap_or(&Value::Null))?;
                return Ok(Condition::Not(Box::new(parse_condition(&inner, false)?)));
            }
            let items = rule.array(combinator)?;
            if items.is_empty() {
                return Err(rule.err(combinator, "must be a non-empty array"));
            }
            let conditions = items
                .iter()
                .enumerate()
                .map(|(index, value)| {
                    parse_condition(
                        &rule.child(&format!("{combinator}[{index}]"), value)?,
                        false,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if combinator == "And" {
                Condition::And(conditions)
            } else {
                Condition::Or(conditions)
            })
        }
        name => {
            let variable = rule.required_string("Variable")?;
            rule.check_path("Variable", variable, PathKind::Path)?;
            let value = rule.get(name).unwrap_or(&Value::Null);
            let test = parse_test(rule, name, value)?;
            Ok(Condition::Test {
                variable: variable.to_owned(),
                test,
            })
        }
    }
}

/// What a comparison operator's name means.
enum Operator {
    Compare(ValueKind, Relation, bool),
    StringMatches,
    Is(TypeCheck),
}

/// Decodes an operator name such as `NumericLessThanEqualsPath`.
fn operator(name: &str) -> Option<Operator> {
    let is = |check| Some(Operator::Is(check));
    match name {
        "StringMatches" => return Some(Operator::StringMatches),
        "IsNull" => return is(TypeCheck::Null),
        "IsPresent" => return is(TypeCheck::Present),
        "IsNumeric" => return is(TypeCheck::Numeric),
        "IsString" => return is(TypeCheck::String),
        "IsBoolean" => return is(TypeCheck::Boolean),
        "IsTimestamp" => return is(TypeCheck::Timestamp),
        _ => {}
    }
    let (base, path) = match name.strip_suffix("Path") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let (kind, relation) = [
        ("String", ValueKind::String),
        ("Numeric", ValueKind::Numeric),
        ("Boolean", ValueKind::Boolean),
        ("Timestamp", ValueKind::Timestamp),
    ]
    .into_iter()
    .find_map(|(prefix, kind)| Some((kind, base.strip_prefix(prefix)?)))?;
    let relation = match relation {
        "Equals" => Relation::Equals,
        "LessThan" => Relation::LessThan,
        "GreaterThan" => Relation::GreaterThan,
        "LessThanEquals" => Relation::LessThanEquals,
        "GreaterThanEquals" => Relation::GreaterThanEquals,
        _ => return None,
    };
    if kind == ValueKind::Boolean && relation != Relation::Equals {
        return None;
    }
    Some(Operator::Compare(kind, relation, path))
}

fn parse_test(rule: &Obj<'_>, name: &str, value: &Value) -> Result<Test, LoadError> {
    let Some(operator) = operator(name) else {
        return Err(rule.err(name, "is not a Choice rule field"));
    };
    Ok(match operator {
        Operator::StringMatches => match value {
            Value::String(pattern) => Test::StringMatches(pattern.clone()),
            _ => return Err(rule.err(name, "must be a string")),
        },
        Operator::Is(check) => match value {
            Value::Bool(expected) => Test::Is {
                check,
                expected: *expected,
            },
            _ => return Err(rule.err(name, "must be a boolean")),
        },
        Operator::Compare(kind, relation, true) => {
            let Value::String(path) = value else {
                return Err(rule.err(name, "must be a string (a path)"));
            };
            rule.check_path(name, path, PathKind::Path)?;
            Test::Compare {
                kind,
                relation,
                operand: Operand::Path(path.clone()),
            }
        }
        Operator::Compare(kind, relation, false) => {
            let valid = match kind {
                ValueKind::String => value.is_string(),
                ValueKind::Numeric => value.is_number(),
                ValueKind::Boolean => value.is_boolean(),
                ValueKind::Timestamp => value.as_str().and_then(timestamp::parse).is_some(),
            };
            if !valid {
                let expected = match kind {
                    ValueKind::String => "a string",
                    ValueKind::Numeric => "a number",
                    ValueKind::Boolean => "a boolean",
                    ValueKind::Timestamp => "a timestamp string such as 2016-03-14T01:59:00Z",
                };
                return Err(rule.err(name, format!("must be {expected}")));
            }
            Test::Compare {
                kind,
                relation,
                operand: Operand::Literal(value.clone()),
            }
        }
    })
}

fn parse_wait(obj: &Obj<'_>) -> Result<WaitFor, LoadError> {
    let given: Vec<&str> = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"]
        .into_iter()
        .filter(|field| obj.get(field).is_some())
        .collect();
    let [field] = given.as_slice() else {
        return Err(obj.err(
            "Seconds",
            "a Wait state must have exactly one of Seconds, Timestamp, SecondsPath, TimestampPath",
        ));
    };
    Ok(match *field {
        "Seconds" => WaitFor::Seconds(obj.integer("Seconds", 0, MAX_INT)?.unwrap_or_default()),
        "Timestamp" => {
            let text = obj.required_string("Timestamp")?;
            WaitFor::Timestamp(timestamp::parse(text).ok_or_else(|| {
                obj.err(
                    "Timestamp",
                    "must be a timestamp such as 2016-03-14T01:59:00Z",
                )
            })?)
        }
        path_field => {
            let path = obj.required_string(path_field)?;
            obj.check_path(path_field, path, PathKind::Reference)?;
            if path_field == "SecondsPath" {
                WaitFor::SecondsPath(path.to_owned())
            } else {
                WaitFor::TimestampPath(path.to_owned())
            }
        }
    })
}

/// Which path syntax a field takes.
#[derive(Clone, Copy)]
enum PathKind {
    Path,
    Reference,
}

/// An object of the document being read, with where it is (for error messages).
struct Obj<'a> {
    state: Option<&'a str>,
    /// The field path of this object inside its state (or the top level); empty at the root.
    at: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    fn root(document: &'a Value) -> Result<Self, LoadError> {
        match document {
            Value::Object(map) => Ok(Obj {
                state: None,
                at: String::new(),
                map,
            }),
            _ => Err(LoadError::new(
                None,
                "",
                "a definition must be a JSON object",
            )),
        }
    }

    /// The object `value` found at `field` of this one.
    fn child(&self, field: &str, value: &'a Value) -> Result<Obj<'a>, LoadError> {
        match value {
            Value::Object(map) => Ok(Obj {
                state: self.state,
                at: self.field(field),
                map,
            }),
            _ => Err(self.err(field, "must be an object")),
        }
    }

    fn field(&self, name: &str) -> String {
        match (self.at.is_empty(), name.is_empty()) {
            (true, _) => name.to_owned(),
            (false, true) => self.at.clone(),
            (false, false) => format!("{}.{name}", self.at),
        }
    }

    fn err(&self, field: &str, message: impl Into<String>) -> LoadError {
        LoadError::new(self.state, self.field(field), message)
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name)
    }

    /// Refuses fields outside `allowed`, naming unsupported ones as such.
    fn check_fields(&self, allowed: &[&str]) -> Result<(), LoadError> {
        match self.map.keys().find(|key| !allowed.contains(&key.as_str())) {
            None => Ok(()),
            Some(key) if UNSUPPORTED.contains(&key.as_str()) => {
                Err(self.err(key, "is not supported by the local engine"))
            }
            Some(key) => Err(self.err(key, "is not a valid field here")),
        }
    }

    /// `QueryLanguage`, if present, must be JSONPath: JSONata is not run.
    fn query_language(&self) -> Result<(), LoadError> {
        match self.string("QueryLanguage")? {
            None | Some("JSONPath") => Ok(()),
            Some("JSONata") => Err(self.err(
                "QueryLanguage",
                "JSONata is not supported by the local engine (JSONPath only)",
            )),
            Some(_) => Err(self.err("QueryLanguage", "must be JSONPath or JSONata")),
        }
    }

    fn string(&self, name: &str) -> Result<Option<&'a str>, LoadError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(self.err(name, "must be a string")),
        }
    }

    fn required_string(&self, name: &str) -> Result<&'a str, LoadError> {
        self.string(name)?
            .ok_or_else(|| self.err(name, "is required"))
    }

    fn array(&self, name: &str) -> Result<&'a [Value], LoadError> {
        match self.get(name) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(self.err(name, "must be an array")),
        }
    }

    /// An integer field within `[min, max]`.
    fn integer(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, LoadError> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => match value.as_u64() {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(self.err(name, format!("must be an integer from {min} to {max}"))),
            },
        }
    }

    fn check_path(&self, name: &str, text: &str, kind: PathKind) -> Result<(), LoadError> {
        let checked = match kind {
            PathKind::Path => path::validate_path(text),
            PathKind::Reference if text.starts_with("$$") => {
                Err("a reference path here cannot select from the context object".to_owned())
            }
            PathKind::Reference => path::validate_reference_path(text),
        };
        checked.map_err(|message| self.err(name, format!("invalid path \"{text}\": {message}")))
    }

    /// A path field that may be `null`; absent means `$`.
    fn path_or_null(&self, name: &str, kind: PathKind) -> Result<Option<String>, LoadError> {
        match self.get(name) {
            None => Ok(Some("$".to_owned())),
            Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => {
                self.check_path(name, text, kind)?;
                Ok(Some(text.clone()))
            }
            Some(_) => Err(self.err(name, "must be a path string or null")),
        }
    }

    /// A payload template (`Parameters`, `ResultSelector`): an object whose `.$` fields hold
    /// valid paths or intrinsic calls.
    fn template(&self, name: &str) -> Result<Option<Value>, LoadError> {
        match self.get(name) {
            None => Ok(None),
            Some(value @ Value::Object(_)) => {
                check_template(self, &self.field(name), value)?;
                Ok(Some(value.clone()))
            }
            Some(_) => Err(self.err(name, "must be an object")),
        }
    }

    /// `Next` or `End: true`, exactly one.
    fn transition(&self) -> Result<Transition, LoadError> {
        let end = match self.get("End") {
            None => false,
            Some(Value::Bool(end)) => *end,
            Some(_) => return Err(self.err("End", "must be a boolean")),
        };
        match (self.string("Next")?, end) {
            (Some(_), true) => Err(self.err("End", "a state cannot have both Next and End")),
            (Some(next), false) => Ok(Transition::Next(next.to_owned())),
            (None, true) => Ok(Transition::End),
            (None, false) => Err(self.err("Next", "a state must have Next or End: true")),
        }
    }

    /// A Fail state's literal field or its `…Path` counterpart (a reference path or intrinsic).
    fn text(&self, literal: &str, path_field: &str) -> Result<Option<Text>, LoadError> {
        match (self.string(literal)?, self.string(path_field)?) {
            (Some(_), Some(_)) => Err(self.err(
                path_field,
                format!("{literal} and {path_field} are mutually exclusive"),
            )),
            (Some(text), None) => Ok(Some(Text::Literal(text.to_owned()))),
            (None, Some(expression)) => {
                if intrinsics::is_intrinsic(expression) {
                    intrinsics::validate(expression)
                        .map_err(|message| self.err(path_field, message))?;
                } else {
                    self.check_path(path_field, expression, PathKind::Reference)?;
                }
                Ok(Some(Text::Path(expression.to_owned())))
            }
            (None, None) => Ok(None),
        }
    }

    /// A retrier's or catcher's `ErrorEquals`.
    fn error_equals(&self) -> Result<Vec<String>, LoadError> {
        let items = match self.get("ErrorEquals") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(_) => return Err(self.err("ErrorEquals", "must be a non-empty array of strings")),
            None => return Err(self.err("ErrorEquals", "is required")),
        };
        let names = items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.err("ErrorEquals", "must be a non-empty array of strings"))?;
        if names.len() > 1 && names.iter().any(|name| name == crate::retry::STATES_ALL) {
            return Err(self.err("ErrorEquals", "States.ALL must appear alone"));
        }
        Ok(names)
    }
}

/// Checks the `.$` fields of a payload template, recursively.
fn check_template(obj: &Obj<'_>, at: &str, value: &Value) -> Result<(), LoadError> {
    let err = |field: String, message: String| LoadError::new(obj.state, field, message);
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                let field = format!("{at}.{key}");
                if key.ends_with(".$") {
                    let Value::String(expression) = item else {
                        return Err(err(field, "a field ending in .$ must be a string (a path or an intrinsic function)".to_owned()));
                    };
                    let checked = if intrinsics::is_intrinsic(expression) {
                        intrinsics::validate(expression)
                    } else {
                        path::validate_path(expression)
                            .map_err(|message| format!("invalid path \"{expression}\": {message}"))
                    };
                    checked.map_err(|message| err(field, message))?;
                } else {
                    check_template(obj, &field, item)?;
                }
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(index, item)| check_template(obj, &format!("{at}[{index}]"), item)),
        _ => Ok(()),
    }
}
