//! The intrinsic functions (`States.Format`, `States.Array`, …) usable in `.$` fields.
//!
//! Semantics follow the AWS Step Functions developer guide, "Intrinsic functions for JSONPath
//! states in Step Functions":
//!
//! - Arguments are single-quoted strings (escapes `\'`, `\{`, `\}`, `\\`; any other backslash is
//!   an error), JSON numbers, `true`, `false`, `null`, paths (`$…`, `$$…`) and nested calls, up
//!   to 10 calls deep, separated by commas with optional whitespace around them.
//! - Arguments that the guide says are integers are rounded to the nearest integer
//!   (`States.MathAdd`, `States.MathRandom`, `States.ArrayRange`, the chunk size of
//!   `States.ArrayPartition`); `States.ArrayGetItem` needs an integral index.
//! - `States.MathRandom(start, end[, seed])` returns an integer in `[start, end)`; with a seed the
//!   result depends only on the seed and the bounds (not AWS's generator, so not AWS's numbers).
//! - `States.StringSplit` splits at every character of its second argument and drops empty
//!   pieces, as Step Functions does (`'a,,b'` by `','` is `["a", "b"]`).
//! - `States.Format` takes strings, numbers, booleans and null as values: strings are inserted as
//!   they are, the others as their JSON text.
//! - `States.ArrayContains` and `States.ArrayUnique` compare numbers by value (`1` equals `1.0`).
//! - `States.UUID` builds a version 4 UUID from the caller's random numbers.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::cursor::Cursor;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Number, Value};
use sha2::Digest as _;

use crate::path::{self, ContextObject};

/// How deeply intrinsic calls may nest inside one another.
const MAX_NESTING: usize = 10;
/// The longest string `States.Base64Encode`, `States.Base64Decode` and `States.Hash` accept.
const MAX_INPUT_CHARS: usize = 10_000;
/// The most elements `States.ArrayRange` may produce.
const MAX_RANGE_ITEMS: i128 = 1000;
/// The most characters of a value an error message quotes.
const MAX_QUOTED_CHARS: usize = 256;
/// The algorithms `States.Hash` knows.
const HASH_ALGORITHMS: [&str; 5] = ["MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512"];

/// An intrinsic that failed at run time: the state fails with `States.IntrinsicFailure`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{cause}")]
pub struct IntrinsicError {
    /// What failed, as the `Cause` of the `States.IntrinsicFailure` error.
    pub cause: String,
}

/// Whether a `.$` field's value is an intrinsic function call rather than a path.
///
/// That is: the text starts with `States.`, then an ASCII letter followed by ASCII letters and
/// digits, then optional whitespace and `(`. Nothing may precede `States.`. Whether the call is
/// well formed (a known function, balanced parentheses, valid arguments) is for [`validate`].
pub fn is_intrinsic(expression: &str) -> bool {
    let Some(rest) = expression.strip_prefix("States.") else {
        return false;
    };
    let name_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    rest.starts_with(|c: char| c.is_ascii_alphabetic())
        && rest[name_len..].trim_start().starts_with('(')
}

/// Checks an intrinsic call's syntax, function name and argument count at load time.
///
/// Also checks what can be known before running: the type of literal arguments, the number of
/// `{}` in a literal `States.Format` template, a literal `States.Hash` algorithm, and the `false`
/// `States.JsonMerge` requires; path arguments must be valid paths.
pub fn validate(expression: &str) -> Result<(), String> {
    parse(expression).map(drop).map_err(|problem| {
        format!("'{expression}' is not a valid intrinsic function call: {problem}")
    })
}

/// Evaluates an intrinsic call; path arguments select from `input` (`$`) or `context` (`$$`).
/// `random` yields uniform numbers in [0, 1) for `States.MathRandom` and `States.UUID`.
pub fn evaluate(
    expression: &str,
    input: &Value,
    context: &dyn ContextObject,
    random: &mut dyn FnMut() -> f64,
) -> Result<Value, IntrinsicError> {
    let fail = |problem: String| IntrinsicError {
        cause: format!("The intrinsic function '{expression}' failed: {problem}"),
    };
    let call = parse(expression).map_err(fail)?;
    let mut evaluator = Evaluator {
        input,
        context,
        random,
    };
    evaluator.call(&call).map_err(fail)
}

/// The intrinsic functions Step Functions defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Array,
    ArrayContains,
    ArrayGetItem,
    ArrayLength,
    ArrayPartition,
    ArrayRange,
    ArrayUnique,
    Base64Decode,
    Base64Encode,
    Format,
    Hash,
    JsonMerge,
    JsonToString,
    MathAdd,
    MathRandom,
    StringSplit,
    StringToJson,
    Uuid,
}

impl Function {
    const ALL: [Self; 18] = [
        Self::Array,
        Self::ArrayContains,
        Self::ArrayGetItem,
        Self::ArrayLength,
        Self::ArrayPartition,
        Self::ArrayRange,
        Self::ArrayUnique,
        Self::Base64Decode,
        Self::Base64Encode,
        Self::Format,
        Self::Hash,
        Self::JsonMerge,
        Self::JsonToString,
        Self::MathAdd,
        Self::MathRandom,
        Self::StringSplit,
        Self::StringToJson,
        Self::Uuid,
    ];

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|function| function.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Array => "States.Array",
            Self::ArrayContains => "States.ArrayContains",
            Self::ArrayGetItem => "States.ArrayGetItem",
            Self::ArrayLength => "States.ArrayLength",
            Self::ArrayPartition => "States.ArrayPartition",
            Self::ArrayRange => "States.ArrayRange",
            Self::ArrayUnique => "States.ArrayUnique",
            Self::Base64Decode => "States.Base64Decode",
            Self::Base64Encode => "States.Base64Encode",
            Self::Format => "States.Format",
            Self::Hash => "States.Hash",
            Self::JsonMerge => "States.JsonMerge",
            Self::JsonToString => "States.JsonToString",
            Self::MathAdd => "States.MathAdd",
            Self::MathRandom => "States.MathRandom",
            Self::StringSplit => "States.StringSplit",
            Self::StringToJson => "States.StringToJson",
            Self::Uuid => "States.UUID",
        }
    }

    /// The kinds of the positional parameters; `variadic` is the kind of any further ones.
    fn parameters(self) -> (&'static [Kind], Option<Kind>) {
        match self {
            Self::Array => (&[], Some(Kind::Any)),
            Self::ArrayContains => (&[Kind::Array, Kind::Any], None),
            Self::ArrayGetItem | Self::ArrayPartition => (&[Kind::Array, Kind::Number], None),
            Self::ArrayLength | Self::ArrayUnique => (&[Kind::Array], None),
            Self::ArrayRange => (&[Kind::Number, Kind::Number, Kind::Number], None),
            Self::Base64Decode | Self::Base64Encode | Self::StringToJson => (&[Kind::String], None),
            Self::Format => (&[Kind::String], Some(Kind::Primitive)),
            Self::Hash | Self::StringSplit => (&[Kind::String, Kind::String], None),
            Self::JsonMerge => (&[Kind::Object, Kind::Object, Kind::False], None),
            Self::JsonToString => (&[Kind::Any], None),
            Self::MathAdd => (&[Kind::Number, Kind::Number], None),
            Self::MathRandom => (&[Kind::Number, Kind::Number, Kind::Number], None),
            Self::Uuid => (&[], None),
        }
    }

    /// How many of the positional parameters may be left out.
    fn optional_parameters(self) -> usize {
        usize::from(self == Self::MathRandom)
    }

    /// The kind of the argument at `index`, `None` when there is no such parameter.
    fn parameter(self, index: usize) -> Option<Kind> {
        let (positional, variadic) = self.parameters();
        positional.get(index).copied().or(variadic)
    }

    /// Checks the number of arguments.
    fn check_arity(self, count: usize) -> Result<(), String> {
        let (positional, variadic) = self.parameters();
        let max = positional.len();
        let min = max.saturating_sub(self.optional_parameters());
        let expected = match (variadic, min == max) {
            (Some(_), _) if count >= max => return Ok(()),
            (None, _) if (min..=max).contains(&count) => return Ok(()),
            (Some(_), _) => format!("at least {max}"),
            (None, true) => max.to_string(),
            (None, false) => format!("{min} to {max}"),
        };
        let plural = if max == 1 { "" } else { "s" };
        Err(format!(
            "{} takes {expected} argument{plural} but was given {count}",
            self.name()
        ))
    }
}

/// What an argument must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Any,
    /// A string, number, boolean or null.
    Primitive,
    String,
    Number,
    Array,
    Object,
    /// The boolean `false` (`States.JsonMerge` supports only shallow merging).
    False,
}

impl Kind {
    fn accepts(self, value: &Value) -> bool {
        match self {
            Self::Any => true,
            Self::Primitive => !value.is_array() && !value.is_object(),
            Self::String => value.is_string(),
            Self::Number => value.is_number(),
            Self::Array => value.is_array(),
            Self::Object => value.is_object(),
            Self::False => *value == Value::Bool(false),
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::Any => "any value",
            Self::Primitive => "a string, number, boolean or null",
            Self::String => "a string",
            Self::Number => "a number",
            Self::Array => "an array",
            Self::Object => "a JSON object",
            Self::False => "false (only shallow merging is supported)",
        }
    }
}

/// A parsed call.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    function: Function,
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// A quoted string.
    Text(Text),
    /// A number, `true`, `false` or `null`.
    Literal(Value),
    /// `$…` or `$$…`.
    Path(String),
    Call(Call),
}

impl Arg {
    /// The argument's value when it is known before running.
    fn literal(&self) -> Option<Value> {
        match self {
            Self::Text(text) => Some(Value::String(text.value.clone())),
            Self::Literal(value) => Some(value.clone()),
            Self::Path(_) | Self::Call(_) => None,
        }
    }
}

/// A quoted string, escapes resolved.
#[derive(Debug, Clone, PartialEq)]
struct Text {
    value: String,
    /// Byte offsets in `value` of the `{}` written unescaped: the `States.Format` placeholders.
    placeholders: Vec<usize>,
}

/// Parses a whole call, or says what is wrong with it.
fn parse(expression: &str) -> Result<Call, String> {
    let mut parser = Parser {
        cursor: Cursor::new(expression, "expression"),
    };
    let call = parser.call(1)?;
    match parser.peek() {
        Some(c) => Err(format!(
            "unexpected '{c}' at position {} after the call",
            parser.position
        )),
        None => Ok(call),
    }
}

/// A recursive-descent parser over an intrinsic call's text.
struct Parser<'a> {
    cursor: Cursor<'a>,
}

impl<'a> std::ops::Deref for Parser<'a> {
    type Target = Cursor<'a>;

    fn deref(&self) -> &Cursor<'a> {
        &self.cursor
    }
}

impl std::ops::DerefMut for Parser<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.cursor
    }
}

impl Parser<'_> {
    /// A call at nesting level `depth` (the outermost call is level 1).
    fn call(&mut self, depth: usize) -> Result<Call, String> {
        if depth > MAX_NESTING {
            return Err(format!(
                "intrinsic functions nest more than {MAX_NESTING} deep at position {}",
                self.position
            ));
        }
        let start = self.position;
        let name_len = self
            .rest()
            .find(|c: char| c != '.' && !c.is_ascii_alphanumeric())
            .unwrap_or(self.rest().len());
        let source = self.source;
        let name = &source[start..start + name_len];
        if !name.starts_with("States.") {
            return Err(self.unexpected("an intrinsic function ('States.…')"));
        }
        let function = Function::from_name(name)
            .ok_or_else(|| format!("unknown intrinsic function '{name}' at position {start}"))?;
        self.position += name_len;
        self.skip_whitespace();
        if !self.eat('(') {
            return Err(self.unexpected(&format!("'(' after {name}")));
        }
        let args = self.args(depth)?;
        function.check_arity(args.len())?;
        check_literals(function, &args)?;
        Ok(Call { function, args })
    }

    /// The arguments of a call up to and including its `)`.
    fn args(&mut self, depth: usize) -> Result<Vec<Arg>, String> {
        let mut args = Vec::new();
        self.skip_whitespace();
        if self.eat(')') {
            return Ok(args);
        }
        loop {
            self.skip_whitespace();
            args.push(self.arg(depth)?);
            self.skip_whitespace();
            if self.eat(')') {
                return Ok(args);
            }
            if !self.eat(',') {
                return Err(self.unexpected("',' or ')'"));
            }
        }
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, String> {
        match self.peek() {
            Some('\'') => self.text().map(Arg::Text),
            Some('$') => self.path(),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            _ if self.rest().starts_with("States.") => self.call(depth + 1).map(Arg::Call),
            _ => self.keyword(),
        }
    }

    /// Whether the argument just read ends here (at whitespace, `,`, `)` or the end).
    fn at_arg_end(&self) -> bool {
        self.peek()
            .is_none_or(|c| c.is_whitespace() || c == ',' || c == ')')
    }

    fn keyword(&mut self) -> Result<Arg, String> {
        let start = self.position;
        for (word, value) in [
            ("true", Value::Bool(true)),
            ("false", Value::Bool(false)),
            ("null", Value::Null),
        ] {
            if self.rest().starts_with(word) {
                self.position += word.len();
                if self.at_arg_end() {
                    return Ok(Arg::Literal(value));
                }
                self.position = start;
            }
        }
        Err(self.unexpected(
            "an argument (a quoted string, a number, true, false, null, a path or an intrinsic \
             function)",
        ))
    }

    fn number(&mut self) -> Result<Arg, String> {
        let start = self.position;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        {
            self.bump();
        }
        let text = &self.source[start..self.position];
        match serde_json::from_str::<Number>(text) {
            Ok(number) if self.at_arg_end() => Ok(Arg::Literal(Value::Number(number))),
            _ => Err(format!("invalid number '{text}' at position {start}")),
        }
    }

    /// A path argument: everything up to a `,`, `)` or whitespace outside brackets.
    fn path(&mut self) -> Result<Arg, String> {
        let start = self.position;
        let mut brackets = 0_usize;
        let mut quote = None;
        while let Some(c) = self.peek() {
            match quote {
                Some(_) if c == '\\' => {
                    self.bump();
                }
                Some(open) if c == open => quote = None,
                Some(_) => {}
                None if brackets > 0 && (c == '\'' || c == '"') => quote = Some(c),
                None if c == '[' => brackets += 1,
                None if c == ']' => brackets = brackets.saturating_sub(1),
                None if brackets == 0 && (c == ',' || c == ')' || c.is_whitespace()) => break,
                None => {}
            }
            self.bump();
        }
        let text = &self.source[start..self.position];
        path::validate_path(text)?;
        Ok(Arg::Path(text.to_owned()))
    }

    /// A single-quoted string, the opening quote not yet read.
    fn text(&mut self) -> Result<Text, String> {
        let start = self.position;
        self.bump();
        let mut value = String::new();
        let mut placeholders = Vec::new();
        loop {
            match self.bump() {
                None => return Err(format!("unterminated string starting at position {start}")),
                Some('\'') => {
                    return Ok(Text {
                        value,
                        placeholders,
                    });
                }
                Some('\\') => {
                    let at = self.position - 1;
                    match self.bump() {
                        Some(c @ ('\'' | '{' | '}' | '\\')) => value.push(c),
                        _ => {
                            return Err(format!(
                                "invalid escape sequence at position {at} (only \\', \\{{, \\}} \
                                 and \\\\ are allowed)"
                            ));
                        }
                    }
                }
                Some('{') if self.eat('}') => {
                    placeholders.push(value.len());
                    value.push_str("{}");
                }
                Some(c) => value.push(c),
            }
        }
    }
}

/// Checks what can be checked before running: literal argument types and values.
fn check_literals(function: Function, args: &[Arg]) -> Result<(), String> {
    for (index, arg) in args.iter().enumerate() {
        let (Some(kind), Some(value)) = (function.parameter(index), arg.literal()) else {
            continue;
        };
        check_kind(function, index, kind, &value)?;
    }
    match (function, args) {
        (Function::Format, [Arg::Text(template), values @ ..]) => {
            check_placeholders(template.placeholders.len(), values.len())
        }
        (Function::Hash, [_, Arg::Text(algorithm)]) => check_algorithm(&algorithm.value),
        _ => Ok(()),
    }
}

fn check_kind(function: Function, index: usize, kind: Kind, value: &Value) -> Result<(), String> {
    if kind.accepts(value) {
        return Ok(());
    }
    Err(format!(
        "argument {} of {} must be {}, but is {}",
        index + 1,
        function.name(),
        kind.description(),
        quote(value)
    ))
}

fn check_placeholders(placeholders: usize, values: usize) -> Result<(), String> {
    if placeholders == values {
        return Ok(());
    }
    Err(format!(
        "the States.Format template has {placeholders} '{{}}' placeholder(s) but {values} \
         value(s) follow it"
    ))
}

fn check_algorithm(algorithm: &str) -> Result<(), String> {
    if HASH_ALGORITHMS.contains(&algorithm) {
        return Ok(());
    }
    Err(format!(
        "'{algorithm}' is not a States.Hash algorithm; use one of {}",
        HASH_ALGORITHMS.join(", ")
    ))
}

fn check_length(function: Function, text: &str) -> Result<(), String> {
    if text.chars().count() <= MAX_INPUT_CHARS {
        return Ok(());
    }
    Err(format!(
        "the input of {} must not exceed {MAX_INPUT_CHARS} characters",
        function.name()
    ))
}

/// The JSON text of `value`, cut down to what an error message shows.
fn quote(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// Runs parsed calls against one document and context object.
struct Evaluator<'a> {
    input: &'a Value,
    context: &'a dyn ContextObject,
    random: &'a mut dyn FnMut() -> f64,
}

impl Evaluator<'_> {
    fn call(&mut self, call: &Call) -> Result<Value, String> {
        let values = call
            .args
            .iter()
            .map(|arg| self.arg(arg))
            .collect::<Result<Vec<_>, _>>()?;
        for (index, value) in values.iter().enumerate() {
            if let Some(kind) = call.function.parameter(index) {
                check_kind(call.function, index, kind, value)?;
            }
        }
        self.apply(call, values)
    }

    fn arg(&mut self, arg: &Arg) -> Result<Value, String> {
        match arg {
            Arg::Text(text) => Ok(Value::String(text.value.clone())),
            Arg::Literal(value) => Ok(value.clone()),
            Arg::Path(path) => {
                path::select(path, self.input, self.context).map_err(|error| error.to_string())
            }
            Arg::Call(call) => self.call(call),
        }
    }

    /// Applies `call`'s function to its evaluated arguments, of the right kinds and number.
    fn apply(&mut self, call: &Call, values: Vec<Value>) -> Result<Value, String> {
        let mut args = values.into_iter();
        let args = &mut args;
        match call.function {
            Function::Array => Ok(Value::Array(args.collect())),
            Function::ArrayContains => {
                let (array, wanted) = (next(args), next(args));
                let found = items(&array)
                    .iter()
                    .any(|item| path::json_eq(item, &wanted));
                Ok(Value::Bool(found))
            }
            Function::ArrayGetItem => array_get_item(&next(args), &next(args)),
            Function::ArrayLength => Ok(Value::from(items(&next(args)).len())),
            Function::ArrayPartition => array_partition(&next(args), &next(args)),
            Function::ArrayRange => array_range(&next(args), &next(args), &next(args)),
            Function::ArrayUnique => Ok(array_unique(next(args))),
            Function::Base64Decode => base64_decode(&next(args)),
            Function::Base64Encode => base64_encode(&next(args)),
            Function::Format => format(call.args.first(), &next(args), args.as_slice()),
            Function::Hash => hash(&next(args), &next(args)),
            Function::JsonMerge => Ok(json_merge(next(args), next(args))),
            Function::JsonToString => Ok(Value::String(next(args).to_string())),
            Function::MathAdd => math_add(&next(args), &next(args)),
            Function::MathRandom => {
                let (start, end, seed) = (next(args), next(args), args.next());
                math_random(&start, &end, seed.as_ref(), &mut *self.random)
            }
            Function::StringSplit => Ok(string_split(&next(args), &next(args))),
            Function::StringToJson => string_to_json(&next(args)),
            Function::Uuid => Ok(Value::String(uuid_v4(&mut *self.random))),
        }
    }
}

/// The next argument; arity was checked, so `null` only stands in for the impossible.
fn next(args: &mut std::vec::IntoIter<Value>) -> Value {
    args.next().unwrap_or(Value::Null)
}

fn items(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// `value` as an integer when it is integral.
fn integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        let float = value.as_f64()?;
        (float.fract() == 0.0).then(|| to_i64(float)).flatten()
    })
}

/// `value` rounded to the nearest integer, as Step Functions treats integer arguments.
fn rounded(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| to_i64(value.as_f64()?.round()))
}

/// `float`, already integral, as an `i64` when it is in range.
fn to_i64(float: f64) -> Option<i64> {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (float.is_finite() && (-LIMIT..LIMIT).contains(&float)).then_some(float as i64)
}

/// `value` rounded to an integer that is a 32-bit signed integer, as `States.MathAdd` requires.
fn int32(function: Function, index: usize, value: &Value) -> Result<i64, String> {
    rounded(value)
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or_else(|| {
            format!(
                "argument {} of {} must be an integer between {} and {}, but is {}",
                index + 1,
                function.name(),
                i32::MIN,
                i32::MAX,
                quote(value)
            )
        })
}

/// `States.Format`: `template` is the call's first argument, `values` fill its placeholders.
fn format(template: Option<&Arg>, text: &Value, values: &[Value]) -> Result<Value, String> {
    let text = self::text(text);
    let placeholders = match template {
        Some(Arg::Text(literal)) => literal.placeholders.clone(),
        _ => text.match_indices("{}").map(|(at, _)| at).collect(),
    };
    check_placeholders(placeholders.len(), values.len())?;
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (at, value) in placeholders.into_iter().zip(values) {
        out.push_str(text.get(copied..at).unwrap_or_default());
        match value {
            Value::String(inserted) => out.push_str(inserted),
            other => out.push_str(&other.to_string()),
        }
        copied = at + 2;
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    Ok(Value::String(out))
}

fn array_get_item(array: &Value, index: &Value) -> Result<Value, String> {
    let items = items(array);
    let position = integer(index).ok_or_else(|| {
        format!(
            "the index of States.ArrayGetItem must be an integer, but is {}",
            quote(index)
        )
    })?;
    usize::try_from(position)
        .ok()
        .and_then(|at| items.get(at))
        .cloned()
        .ok_or_else(|| {
            format!(
                "the index {position} is out of range for States.ArrayGetItem on an array of {} \
                 element(s)",
                items.len()
            )
        })
}

fn array_partition(array: &Value, size: &Value) -> Result<Value, String> {
    let size = rounded(size)
        .and_then(|size| usize::try_from(size).ok())
        .filter(|size| *size > 0)
        .ok_or_else(|| {
            format!(
                "the chunk size of States.ArrayPartition must be a positive integer, but is {}",
                quote(size)
            )
        })?;
    let chunks = items(array)
        .chunks(size)
        .map(|chunk| Value::Array(chunk.to_vec()))
        .collect();
    Ok(Value::Array(chunks))
}

fn array_range(start: &Value, end: &Value, step: &Value) -> Result<Value, String> {
    let integer_argument = |index: usize, value: &Value| {
        rounded(value).ok_or_else(|| {
            format!(
                "argument {index} of States.ArrayRange must be an integer, but is {}",
                quote(value)
            )
        })
    };
    let (first, last, step) = (
        integer_argument(1, start)?,
        integer_argument(2, end)?,
        integer_argument(3, step)?,
    );
    if step == 0 {
        return Err("the step of States.ArrayRange must not be 0".to_owned());
    }
    let span = i128::from(last) - i128::from(first);
    let count = if span == 0 || (span > 0) == (step > 0) {
        span / i128::from(step) + 1
    } else {
        0
    };
    if count > MAX_RANGE_ITEMS {
        return Err(format!(
            "States.ArrayRange would produce {count} elements, more than the {MAX_RANGE_ITEMS} allowed"
        ));
    }
    let elements = (0..count)
        .map(|n| i128::from(first) + n * i128::from(step))
        .filter_map(|n| i64::try_from(n).ok())
        .map(Value::from)
        .collect();
    Ok(Value::Array(elements))
}

fn array_unique(array: Value) -> Value {
    let Value::Array(items) = array else {
        return Value::Array(Vec::new());
    };
    let mut seen = HashSet::new();
    let unique = items
        .into_iter()
        .filter(|item| seen.insert(canonical(item)))
        .collect();
    Value::Array(unique)
}

/// A text equal for values [`path::json_eq`] finds equal: numbers by value, keys sorted.
fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Number(number) => match (number.as_i64(), number.as_u64(), number.as_f64()) {
            (Some(n), _, _) => out.push_str(&n.to_string()),
            (None, Some(n), _) => out.push_str(&n.to_string()),
            (None, None, Some(float)) => match to_i64(float).filter(|_| float.fract() == 0.0) {
                Some(n) => out.push_str(&n.to_string()),
                None => {
                    let _ = write!(out, "{float:?}");
                }
            },
            (None, None, None) => out.push_str(&number.to_string()),
        },
        Value::Array(items) => {
            out.push('[');
            for item in items {
                write_canonical(item, out);
                out.push(',');
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries = map.iter().collect::<Vec<_>>();
            entries.sort_by_key(|(key, _)| *key);
            out.push('{');
            for (key, item) in entries {
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
                out.push(',');
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Standard Base64, padding optional when decoding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn base64_encode(data: &Value) -> Result<Value, String> {
    let data = text(data);
    check_length(Function::Base64Encode, data)?;
    Ok(Value::String(BASE64.encode(data)))
}

fn base64_decode(data: &Value) -> Result<Value, String> {
    let data = text(data);
    check_length(Function::Base64Decode, data)?;
    let bytes = BASE64.decode(data).map_err(|error| {
        format!("the input of States.Base64Decode is not valid Base64: {error}")
    })?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| "the data States.Base64Decode decoded is not valid UTF-8 text".to_owned())
}

fn hash(data: &Value, algorithm: &Value) -> Result<Value, String> {
    let (data, algorithm) = (text(data), text(algorithm));
    check_length(Function::Hash, data)?;
    check_algorithm(algorithm)?;
    let digest = match algorithm {
        "MD5" => md5::Md5::digest(data).to_vec(),
        "SHA-1" => sha1::Sha1::digest(data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data).to_vec(),
        _ => sha2::Sha512::digest(data).to_vec(),
    };
    Ok(Value::String(hex(&digest)))
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// The shallow merge: `right`'s keys replace `left`'s.
fn json_merge(left: Value, right: Value) -> Value {
    let mut merged = match left {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if let Value::Object(right) = right {
        merged.extend(right);
    }
    Value::Object(merged)
}

fn math_add(left: &Value, right: &Value) -> Result<Value, String> {
    let sum = int32(Function::MathAdd, 0, left)? + int32(Function::MathAdd, 1, right)?;
    i32::try_from(sum).map(Value::from).map_err(|_| {
        format!(
            "the sum {sum} of States.MathAdd is outside the range {} to {}",
            i32::MIN,
            i32::MAX
        )
    })
}

fn math_random(
    start: &Value,
    end: &Value,
    seed: Option<&Value>,
    random: &mut dyn FnMut() -> f64,
) -> Result<Value, String> {
    let bound = |index: usize, value: &Value| {
        rounded(value).ok_or_else(|| {
            format!(
                "argument {index} of States.MathRandom must be an integer, but is {}",
                quote(value)
            )
        })
    };
    let (start, end) = (bound(1, start)?, bound(2, end)?);
    if end <= start {
        return Err(format!(
            "the end ({end}) of States.MathRandom must be greater than its start ({start})"
        ));
    }
    let unit = match seed {
        Some(seed) => seeded_unit(bound(3, seed)?),
        None => random(),
    };
    let span = i128::from(end) - i128::from(start);
    let offset = ((unit * span as f64).floor() as i128).clamp(0, span - 1);
    Ok(i64::try_from(i128::from(start) + offset).map_or(Value::from(start), Value::from))
}

/// A number in [0, 1) that depends only on `seed` (one SplitMix64 step).
fn seeded_unit(seed: i64) -> f64 {
    let mut z = seed.cast_unsigned().wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1_u64 << 53) as f64
}

fn string_split(text: &Value, delimiters: &Value) -> Value {
    let delimiters = self::text(delimiters);
    let pieces = self::text(text)
        .split(|c: char| delimiters.contains(c))
        .filter(|piece| !piece.is_empty())
        .map(|piece| Value::String(piece.to_owned()))
        .collect();
    Value::Array(pieces)
}

fn string_to_json(text: &Value) -> Result<Value, String> {
    serde_json::from_str(self::text(text))
        .map_err(|error| format!("the input of States.StringToJson is not valid JSON: {error}"))
}

/// A version 4 UUID, lowercase and hyphenated, from four draws of `random`.
fn uuid_v4(random: &mut dyn FnMut() -> f64) -> String {
    let mut bytes = [0_u8; 16];
    for chunk in bytes.chunks_mut(4) {
        let word = (random() * 4_294_967_296.0) as u32;
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let digits = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &digits[..8],
        &digits[8..12],
        &digits[12..16],
        &digits[16..20],
        &digits[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn run(expression: &str, input: &Value) -> Result<Value, IntrinsicError> {
        evaluate(
            expression,
            input,
            &json!({"Execution": {"Id": "exec-1"}}),
            &mut || 0.5,
        )
    }

    fn ok(expression: &str, input: &Value) -> Value {
        run(expression, input).unwrap_or_else(|error| panic!("{expression}: {error}"))
    }

    fn cause(expression: &str, input: &Value) -> String {
        match run(expression, input) {
            Ok(value) => panic!("{expression} should fail but gave {value}"),
            Err(error) => error.cause,
        }
    }

    fn invalid(expression: &str) -> String {
        validate(expression).expect_err(expression)
    }

    #[test]
    fn recognises_intrinsic_calls() {
        for expression in [
            "States.Format('x')",
            "States.UUID()",
            "States.Array ($.a)",
            "States.Nope(",
            "States.A1(",
        ] {
            assert!(is_intrinsic(expression), "{expression}");
        }
        for expression in [
            "$.States.Format('x')",
            " States.Format('x')",
            "States.Format",
            "States.(x)",
            "States.1a()",
            "States.Format.x()",
            "states.Format('x')",
            "$",
            "",
        ] {
            assert!(!is_intrinsic(expression), "{expression}");
        }
    }

    #[test]
    fn validates_well_formed_calls() {
        for expression in [
            "States.Format('Hello, my name is {}.', $.name)",
            "States.Format($.template, $.name)",
            "States.Format('no placeholders')",
            "States.Format('{} and {}', 1, -2.5e3)",
            "States.Format('escaped \\{\\} and {}', $.name)",
            "States.Array()",
            "States.Array( 1 , 'two' , true , false , null , $ , $$.Execution.Id )",
            "States.Array($.a[?(@.x == 1)], $['a b'], $.a[0,1])",
            "States.ArrayPartition($.inputArray,4)",
            "States.ArrayContains($.inputArray, $.lookingFor)",
            "States.ArrayRange(1, 9, 2)",
            "States.ArrayGetItem($.inputArray, $.index)",
            "States.ArrayLength($.inputArray)",
            "States.ArrayUnique($.inputArray)",
            "States.Base64Encode($.input)",
            "States.Base64Decode('RGF0YQ==')",
            "States.Hash($.Data, 'SHA-256')",
            "States.JsonMerge($.json1, $.json2, false)",
            "States.StringToJson($.escapedJsonString)",
            "States.JsonToString($.unescapedJson)",
            "States.MathRandom($.start, $.end)",
            "States.MathRandom(1, 999, 42)",
            "States.MathAdd($.value1, $.step)",
            "States.StringSplit($.inputString, $.splitter)",
            "States.UUID()",
            "States.Format('{}.{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(\
             States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(\
             States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), \
             '.'), 1), 'x')",
        ] {
            assert_eq!(validate(expression), Ok(()), "{expression}");
        }
    }

    #[test]
    fn refuses_malformed_calls_saying_why() {
        for (expression, problem) in [
            ("States.Nope()", "unknown intrinsic function 'States.Nope'"),
            (
                "States.format('x')",
                "unknown intrinsic function 'States.format'",
            ),
            (
                "States.UUID",
                "expected '(' after States.UUID but the expression ends",
            ),
            (
                "States.Array(1",
                "expected ',' or ')' but the expression ends",
            ),
            (
                "States.Array(1 2)",
                "expected ',' or ')' at position 15 but found '2'",
            ),
            ("States.Array(1,)", "expected an argument"),
            ("States.Array(,1)", "expected an argument"),
            (
                "States.Array(1) ",
                "unexpected ' ' at position 15 after the call",
            ),
            ("States.Array(1)x", "unexpected 'x'"),
            ("States.Array('abc)", "unterminated string"),
            (
                "States.Array('a\\nb')",
                "invalid escape sequence at position 15 (only",
            ),
            ("States.Array('a\\')", "unterminated string"),
            ("States.Array(truex)", "expected an argument"),
            ("States.Array(1.2.3)", "invalid number '1.2.3'"),
            ("States.Array(1x)", "invalid number"),
            ("States.Array(x)", "expected an argument"),
            ("States.Array($.a[)", "is not a valid JSONPath"),
            ("States.Array($a)", "is not a valid JSONPath"),
            (
                "States.UUID(1)",
                "States.UUID takes 0 arguments but was given 1",
            ),
            (
                "States.ArrayLength()",
                "States.ArrayLength takes 1 argument but was given 0",
            ),
            (
                "States.MathRandom(1)",
                "States.MathRandom takes 2 to 3 arguments but was given 1",
            ),
            (
                "States.MathRandom(1, 2, 3, 4)",
                "2 to 3 arguments but was given 4",
            ),
            (
                "States.Format()",
                "States.Format takes at least 1 argument but was given 0",
            ),
            (
                "States.JsonMerge($.a, $.b)",
                "takes 3 arguments but was given 2",
            ),
            (
                "States.MathAdd('1', 2)",
                "argument 1 of States.MathAdd must be a number, but is \"1\"",
            ),
            ("States.ArrayLength('abc')", "must be an array"),
            (
                "States.JsonMerge($.a, 1, false)",
                "argument 2 of States.JsonMerge must be a JSON object",
            ),
            (
                "States.JsonMerge($.a, $.b, true)",
                "must be false (only shallow merging is supported)",
            ),
            (
                "States.Format(1)",
                "argument 1 of States.Format must be a string",
            ),
            (
                "States.Format('{}')",
                "template has 1 '{}' placeholder(s) but 0 value(s)",
            ),
            (
                "States.Format('x', 1)",
                "template has 0 '{}' placeholder(s) but 1 value(s)",
            ),
            (
                "States.Format('\\{}', 1)",
                "template has 0 '{}' placeholder(s) but 1 value(s)",
            ),
            (
                "States.Hash($.a, 'SHA-2')",
                "'SHA-2' is not a States.Hash algorithm",
            ),
            (
                "States.StringSplit($.a, 1)",
                "argument 2 of States.StringSplit must be a string",
            ),
            (
                "States.Array(States.Nope())",
                "unknown intrinsic function 'States.Nope'",
            ),
            (
                "States.ArrayLength(States.Array(1), 2)",
                "takes 1 argument but was given 2",
            ),
        ] {
            let message = invalid(expression);
            assert!(message.contains(problem), "{expression}: {message}");
            assert!(
                message.starts_with(&format!(
                    "'{expression}' is not a valid intrinsic function call: "
                )),
                "{message}"
            );
        }
    }

    #[test]
    fn allows_ten_nested_calls_and_no_more() {
        let nested =
            |depth: usize| format!("{}1{}", "States.Array(".repeat(depth), ")".repeat(depth));
        assert_eq!(validate(&nested(10)), Ok(()));
        assert!(invalid(&nested(11)).contains("nest more than 10 deep"));
        assert!(invalid(&nested(5000)).contains("nest more than 10 deep"));
    }

    #[test]
    fn format_fills_placeholders() {
        let input: Value = serde_json::from_str(
            r#"{"name": "Arnav", "template": "Hello, my name is {}.", "n": 1.50, "o": {"a": 1}}"#,
        )
        .unwrap();
        assert_eq!(
            ok("States.Format('Hello, my name is {}.', $.name)", &input),
            json!("Hello, my name is Arnav.")
        );
        assert_eq!(
            ok("States.Format($.template, $.name)", &input),
            json!("Hello, my name is Arnav.")
        );
        assert_eq!(
            ok(
                "States.Format('{} {} {} {} {}', 'a', $.n, true, null, -7)",
                &input
            ),
            json!("a 1.50 true null -7")
        );
        assert_eq!(
            ok(
                "States.Format('escaped \\{\\} and {}: \\'q\\' \\\\', $.name)",
                &input
            ),
            json!("escaped {} and Arnav: 'q' \\")
        );
        assert_eq!(
            ok("States.Format('{ } {x} {}', 1)", &input),
            json!("{ } {x} 1")
        );
        assert_eq!(ok("States.Format('é{}ü', 'ß')", &input), json!("éßü"));
        assert!(
            cause("States.Format($.template)", &input)
                .contains("1 '{}' placeholder(s) but 0 value(s)")
        );
        assert!(
            cause("States.Format('{}', $.o)", &input)
                .contains("argument 2 of States.Format must be a string, number, boolean or null, but is {\"a\":1}")
        );
        assert!(
            cause("States.Format($.n)", &input)
                .contains("argument 1 of States.Format must be a string")
        );
    }

    #[test]
    fn json_string_conversions() {
        let input = json!({"escapedJsonString": "{\"foo\": \"bar\"}", "unescapedJson": {"foo": "bar", "n": [1, 2.0]}, "bad": "{"});
        assert_eq!(
            ok("States.StringToJson($.escapedJsonString)", &input),
            json!({"foo": "bar"})
        );
        assert_eq!(
            ok("States.StringToJson('[1, true]')", &input),
            json!([1, true])
        );
        assert_eq!(
            ok("States.JsonToString($.unescapedJson)", &input),
            json!("{\"foo\":\"bar\",\"n\":[1,2.0]}")
        );
        assert_eq!(ok("States.JsonToString('s')", &input), json!("\"s\""));
        assert!(cause("States.StringToJson($.bad)", &input).contains("is not valid JSON"));
        assert!(cause("States.StringToJson($.unescapedJson)", &input).contains("must be a string"));
    }

    #[test]
    fn array_functions() {
        let input = json!({"Id": 123456, "inputArray": [1,2,3,4,5,6,7,8,9], "lookingFor": 5, "index": 5,
                           "dupes": [1,2,3,3,3,3,3,3,4], "mixed": [{"a": 1}, {"a": 1.0}, "x", 1, "x", [1], 1.0, [1]]});
        assert_eq!(ok("States.Array($.Id)", &input), json!([123456]));
        assert_eq!(ok("States.Array()", &input), json!([]));
        assert_eq!(
            ok(
                "States.Array(1, 'a', States.Array($$.Execution.Id))",
                &input
            ),
            json!([1, "a", ["exec-1"]])
        );
        assert_eq!(
            ok("States.ArrayPartition($.inputArray,4)", &input),
            json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]])
        );
        assert_eq!(
            ok("States.ArrayPartition($.inputArray, 4.4)", &input),
            json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]])
        );
        assert_eq!(
            ok("States.ArrayPartition(States.Array(), 3)", &input),
            json!([])
        );
        assert!(
            cause("States.ArrayPartition($.inputArray, 0)", &input)
                .contains("must be a positive integer")
        );
        assert!(
            cause("States.ArrayPartition($.inputArray, -2)", &input)
                .contains("must be a positive integer")
        );
        assert_eq!(
            ok("States.ArrayContains($.inputArray, $.lookingFor)", &input),
            json!(true)
        );
        assert_eq!(
            ok("States.ArrayContains($.inputArray, 5.0)", &input),
            json!(true)
        );
        assert_eq!(
            ok("States.ArrayContains($.inputArray, '5')", &input),
            json!(false)
        );
        assert_eq!(
            ok("States.ArrayContains($.mixed, States.Array(1))", &input),
            json!(true)
        );
        assert_eq!(
            ok("States.ArrayGetItem($.inputArray, $.index)", &input),
            json!(6)
        );
        assert_eq!(ok("States.ArrayGetItem($.inputArray, 0)", &input), json!(1));
        assert_eq!(
            ok("States.ArrayGetItem($.inputArray, 8.0)", &input),
            json!(9)
        );
        assert!(cause("States.ArrayGetItem($.inputArray, 9)", &input).contains("out of range"));
        assert!(cause("States.ArrayGetItem($.inputArray, -1)", &input).contains("out of range"));
        assert!(
            cause("States.ArrayGetItem($.inputArray, 1.5)", &input).contains("must be an integer")
        );
        assert_eq!(ok("States.ArrayLength($.inputArray)", &input), json!(9));
        assert_eq!(
            ok("States.ArrayUnique($.dupes)", &input),
            json!([1, 2, 3, 4])
        );
        assert_eq!(
            ok("States.ArrayUnique($.mixed)", &input),
            json!([{"a": 1}, "x", 1, [1]])
        );
        assert!(
            cause("States.ArrayLength($.Id)", &input)
                .contains("argument 1 of States.ArrayLength must be an array, but is 123456")
        );
    }

    #[test]
    fn array_range() {
        let input = json!({});
        assert_eq!(
            ok("States.ArrayRange(1, 9, 2)", &input),
            json!([1, 3, 5, 7, 9])
        );
        assert_eq!(
            ok("States.ArrayRange(1, 10, 2)", &input),
            json!([1, 3, 5, 7, 9])
        );
        assert_eq!(
            ok("States.ArrayRange(9, 1, -2)", &input),
            json!([9, 7, 5, 3, 1])
        );
        assert_eq!(ok("States.ArrayRange(3, 3, -1)", &input), json!([3]));
        assert_eq!(ok("States.ArrayRange(1, 9, -1)", &input), json!([]));
        assert_eq!(
            ok("States.ArrayRange(1.6, 3.4, 0.6)", &input),
            json!([2, 3])
        );
        assert_eq!(
            ok("States.ArrayRange(0, 999, 1)", &input)
                .as_array()
                .map(Vec::len),
            Some(1000)
        );
        assert!(
            cause("States.ArrayRange(0, 1000, 1)", &input).contains("would produce 1001 elements")
        );
        assert!(
            cause(
                "States.ArrayRange(-9223372036854775808, 9223372036854775807, 1)",
                &input
            )
            .contains("more than the 1000 allowed")
        );
        assert!(cause("States.ArrayRange(1, 9, 0)", &input).contains("must not be 0"));
        assert!(cause("States.ArrayRange(1, 9, 0.4)", &input).contains("must not be 0"));
        assert!(cause("States.ArrayRange(1, 1e400, 1)", &input).contains("must be an integer"));
    }

    #[test]
    fn base64() {
        let input = json!({"input": "Data to encode", "base64": "RGF0YSB0byBlbmNvZGU=", "long": "a".repeat(10_001),
                           "limit": "é".repeat(10_000)});
        assert_eq!(
            ok("States.Base64Encode($.input)", &input),
            json!("RGF0YSB0byBlbmNvZGU=")
        );
        assert_eq!(
            ok("States.Base64Decode($.base64)", &input),
            json!("Data to encode")
        );
        assert_eq!(
            ok("States.Base64Encode('héllo ✓')", &input),
            json!("aMOpbGxvIOKckw==")
        );
        assert_eq!(
            ok("States.Base64Decode('aMOpbGxvIOKckw')", &input),
            json!("héllo ✓")
        );
        assert!(
            cause("States.Base64Decode(States.Base64Encode($.limit))", &input)
                .contains("must not exceed 10000 characters"),
            "10,000 two-byte characters encode to more than 10,000 Base64 characters"
        );
        assert!(ok("States.Base64Encode($.limit)", &input).is_string());
        assert!(
            cause("States.Base64Encode($.long)", &input)
                .contains("must not exceed 10000 characters")
        );
        assert!(
            cause("States.Base64Decode($.long)", &input)
                .contains("must not exceed 10000 characters")
        );
        assert!(cause("States.Base64Decode('%%%')", &input).contains("is not valid Base64"));
        assert!(cause("States.Base64Decode('/w==')", &input).contains("not valid UTF-8"));
    }

    #[test]
    fn hash() {
        let input = json!({"Data": "input data", "Algorithm": "SHA-1", "long": "a".repeat(10_001)});
        assert_eq!(
            ok("States.Hash($.Data, $.Algorithm)", &input),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
        );
        for (algorithm, digest) in [
            ("MD5", "812f45842bc6d66ee14572ce20db8e86"),
            (
                "SHA-256",
                "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3",
            ),
            (
                "SHA-384",
                "d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562",
            ),
            (
                "SHA-512",
                "6ce4adb348546d4f449c4d25aad9a7c9cb711d9e91982d3f0b29ca2f3f47d4ce2deba23bf2954f0f1d593fc50283731a533d30d425402d4f91316d871303aac4",
            ),
        ] {
            assert_eq!(
                ok(&format!("States.Hash($.Data, '{algorithm}')"), &input),
                json!(digest)
            );
        }
        assert!(
            cause("States.Hash($.Data, $.Data)", &input)
                .contains("'input data' is not a States.Hash algorithm")
        );
        assert!(
            cause("States.Hash($.long, 'MD5')", &input)
                .contains("must not exceed 10000 characters")
        );
        assert!(cause("States.Hash(States.Array(), 'MD5')", &input).contains("must be a string"));
    }

    #[test]
    fn json_merge_is_shallow() {
        let input = json!({"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}, "deep": true});
        let merged = ok("States.JsonMerge($.json1, $.json2, false)", &input);
        assert_eq!(merged, json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}));
        assert_eq!(
            merged.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert!(
            cause("States.JsonMerge($.json1, $.json2, $.deep)", &input)
                .contains("only shallow merging")
        );
        assert!(
            cause("States.JsonMerge($.json1, $.deep, false)", &input)
                .contains("must be a JSON object")
        );
    }

    #[test]
    fn math_add() {
        let input = json!({"value1": 111, "step": -1});
        assert_eq!(ok("States.MathAdd($.value1, $.step)", &input), json!(110));
        assert_eq!(ok("States.MathAdd(1.5, 1.4)", &input), json!(3));
        assert_eq!(
            ok("States.MathAdd(-2147483648, 2147483647)", &input),
            json!(-1)
        );
        assert!(
            cause("States.MathAdd(2147483647, 1)", &input)
                .contains("the sum 2147483648 of States.MathAdd is outside")
        );
        assert!(cause("States.MathAdd(2147483648, 0)", &input).contains(
            "argument 1 of States.MathAdd must be an integer between -2147483648 and 2147483647"
        ));
    }

    #[test]
    fn math_random_stays_in_start_inclusive_end_exclusive() {
        let input = json!({"start": 1, "end": 999});
        let draw =
            |expression: &str, unit: f64| evaluate(expression, &input, &Value::Null, &mut || unit);
        assert_eq!(
            draw("States.MathRandom($.start, $.end)", 0.5).unwrap(),
            json!(500)
        );
        assert_eq!(
            draw("States.MathRandom($.start, $.end)", 0.0).unwrap(),
            json!(1)
        );
        assert_eq!(
            draw("States.MathRandom($.start, $.end)", 0.999_999_999).unwrap(),
            json!(998)
        );
        assert_eq!(
            draw("States.MathRandom($.start, $.end)", 1.0).unwrap(),
            json!(998)
        );
        assert_eq!(
            draw("States.MathRandom($.start, $.end)", f64::NAN).unwrap(),
            json!(1)
        );
        assert_eq!(draw("States.MathRandom(-5, -4)", 0.7).unwrap(), json!(-5));
        assert_eq!(draw("States.MathRandom(0.6, 2.4)", 0.99).unwrap(), json!(1));
        assert_eq!(
            draw(
                "States.MathRandom(-9223372036854775808, 9223372036854775807)",
                0.0
            )
            .unwrap(),
            json!(i64::MIN)
        );
        assert!(
            draw("States.MathRandom(5, 5)", 0.5)
                .unwrap_err()
                .cause
                .contains("the end (5) of States.MathRandom must be greater than its start (5)")
        );
    }

    #[test]
    fn seeded_math_random_depends_only_on_the_seed() {
        let input = json!({});
        let draw = |seed: i64, unit: f64| {
            evaluate(
                &format!("States.MathRandom(1, 999, {seed})"),
                &input,
                &Value::Null,
                &mut || unit,
            )
            .unwrap()
        };
        assert_eq!(draw(42, 0.1), draw(42, 0.9));
        let values = (0..50)
            .map(|seed| draw(seed, 0.5).as_i64().unwrap_or(0))
            .collect::<HashSet<i64>>();
        assert!(values.len() > 40, "seeds spread over the range: {values:?}");
        assert!(values.iter().all(|value| (1..999).contains(value)));
    }

    #[test]
    fn string_split_splits_at_each_delimiter_character() {
        let input = json!({"inputString": "1,2,3,4,5", "splitter": ",", "multi": "This.is+a,test=string", "chars": ".+,="});
        assert_eq!(
            ok("States.StringSplit($.inputString, $.splitter)", &input),
            json!(["1", "2", "3", "4", "5"])
        );
        assert_eq!(
            ok("States.StringSplit($.multi, $.chars)", &input),
            json!(["This", "is", "a", "test", "string"])
        );
        assert_eq!(ok("States.StringSplit(',,,,', ',')", &input), json!([]));
        assert_eq!(
            ok("States.StringSplit(' , ', ',')", &input),
            json!([" ", " "])
        );
        assert_eq!(
            ok("States.StringSplit('a--b', '-')", &input),
            json!(["a", "b"])
        );
        assert_eq!(ok("States.StringSplit('abc', '')", &input), json!(["abc"]));
        assert_eq!(ok("States.StringSplit('', ',')", &input), json!([]));
        assert_eq!(
            ok("States.StringSplit('aéb', 'é')", &input),
            json!(["a", "b"])
        );
    }

    #[test]
    fn uuid_is_a_lowercase_version_4_uuid_built_from_random() {
        let input = json!({});
        let mut draws = [0.0, 0.25, 0.5, 0.999_999_999_9].into_iter().cycle();
        let uuid = evaluate("States.UUID()", &input, &Value::Null, &mut || {
            draws.next().unwrap_or(0.0)
        })
        .unwrap();
        assert_eq!(uuid, json!("00000000-4000-4000-8000-0000ffffffff"));
        let other = evaluate("States.UUID()", &input, &Value::Null, &mut || 0.123_456).unwrap();
        let text = other.as_str().unwrap();
        assert_eq!(text.len(), 36);
        assert!(
            text.chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(text.as_bytes()[14], b'4');
        assert!(matches!(text.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn nested_calls_from_the_aws_guide() {
        let input = json!({"ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:123:image-recipe/my.recipe.name/1.0.0"}});
        let expression = "States.Format('{}.{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(\
             States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(\
             States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), \
             '.'), 1), 'x')";
        assert_eq!(ok(expression, &input), json!("1.0.x"));
    }

    #[test]
    fn runtime_failures_name_the_expression_and_the_problem() {
        let input = json!({"a": "text"});
        assert_eq!(
            cause("States.ArrayLength($.missing)", &input),
            "The intrinsic function 'States.ArrayLength($.missing)' failed: the JSONPath '$.missing' \
             could not be found in the input '{\"a\":\"text\"}'"
        );
        assert!(
            cause("States.Array($$.Nope)", &input)
                .contains("could not be found in the input '{\"Execution\"")
        );
        assert!(
            cause("States.Nope()", &input).contains("unknown intrinsic function 'States.Nope'")
        );
        assert!(
            cause("States.MathAdd($.a, 1)", &input).contains("must be a number, but is \"text\"")
        );
        let huge = json!({"big": "y".repeat(5000)});
        assert!(
            cause("States.MathAdd($.big, 1)", &huge).len() < 400,
            "long values are cut"
        );
    }

    #[test]
    fn indefinite_path_arguments_give_arrays() {
        let input = json!({"items": [{"id": "a"}, {"id": "b"}]});
        assert_eq!(
            ok("States.Array($.items[*].id)", &input),
            json!([["a", "b"]])
        );
        assert_eq!(
            ok("States.ArrayLength($.items[?(@.id == 'b')])", &input),
            json!(1)
        );
        assert_eq!(
            ok("States.JsonToString($['items'][0])", &input),
            json!("{\"id\":\"a\"}")
        );
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,60}") {
            let _ = is_intrinsic(&text);
            let _ = validate(&text);
            let _ = evaluate(&text, &json!({"a": [1, "x"]}), &Value::Null, &mut || 0.5);
        }

        #[test]
        fn call_like_text_never_panics(
            name in prop::sample::select(Function::ALL.map(Function::name).to_vec()),
            args in "[$.a-c0-9'\\\\{}(),\\[\\]*?@= -]{0,30}",
            unit in 0.0..1.0_f64,
        ) {
            let expression = format!("{name}({args})");
            prop_assert!(is_intrinsic(&expression));
            let _ = validate(&expression);
            let input = json!({"a": [1, 2], "b": "x,y", "c": {"d": 1}});
            let _ = evaluate(&expression, &input, &input, &mut || unit);
        }

        #[test]
        fn valid_calls_evaluate_or_fail_cleanly(
            function in prop::sample::select(Function::ALL.to_vec()),
            args in prop::collection::vec(prop_oneof![
                Just("$.a"), Just("$.b"), Just("$.c"), Just("$.n"), Just("1"), Just("-2.5"),
                Just("'x,y'"), Just("'{}'"), Just("true"), Just("false"), Just("null"), Just("'MD5'"),
            ], 0..4),
        ) {
            let expression = format!("{}({})", function.name(), args.join(", "));
            let input = json!({"a": [1, 2, 2], "b": "x,y", "c": {"d": 1}, "n": 3});
            if validate(&expression).is_ok() {
                let _ = evaluate(&expression, &input, &input, &mut || 0.25);
            }
        }

        #[test]
        fn format_inserts_strings_verbatim(values in prop::collection::vec("[^'\\\\{}]{0,8}", 0..5)) {
            let template = vec!["{}"; values.len()].join("|");
            let args = values.iter().map(|value| format!(", '{value}'")).collect::<String>();
            let expression = format!("States.Format('{template}'{args})");
            prop_assert_eq!(ok(&expression, &json!({})), json!(values.join("|")));
        }

        #[test]
        fn math_random_is_within_bounds(start in -1000_i64..1000, width in 1_i64..1000, unit in 0.0..1.0_f64) {
            let end = start + width;
            let value = evaluate(&format!("States.MathRandom({start}, {end})"), &json!({}), &Value::Null, &mut || unit).unwrap();
            let value = value.as_i64().unwrap();
            prop_assert!((start..end).contains(&value));
        }
    }
}
