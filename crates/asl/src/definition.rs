//! The parsed model of a definition: states, their fields, retriers, catchers, Choice rules.

use serde_json::Value;

/// The validated definition: where to start, the states (in document order), the execution
/// timeout.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Definition {
    pub start_at: String,
    pub states: Vec<State>,
    pub timeout_seconds: Option<u64>,
}

impl Definition {
    /// The state named `name`.
    pub fn state(&self, name: &str) -> Option<&State> {
        self.states.iter().find(|state| state.name == name)
    }
}

/// One state with its type-specific fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct State {
    pub name: String,
    /// `InputPath`: `None` is JSON `null` (the state sees `{}`); defaults to `$`.
    pub input_path: Option<String>,
    /// `OutputPath`: `None` is JSON `null` (the state outputs `{}`); defaults to `$`.
    pub output_path: Option<String>,
    pub kind: Kind,
}

/// Where a state goes when it completes normally.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Transition {
    Next(String),
    End,
}

/// The type-specific part of a state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Task(Task),
    Pass {
        result: Option<Value>,
        parameters: Option<Value>,
        result_path: Option<String>,
        transition: Transition,
    },
    Choice {
        choices: Vec<ChoiceRule>,
        default: Option<String>,
    },
    Wait {
        wait: WaitFor,
        transition: Transition,
    },
    Succeed,
    Fail {
        error: Option<Text>,
        cause: Option<Text>,
    },
}

/// A Task state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Task {
    pub resource: Resource,
    pub parameters: Option<Value>,
    pub result_selector: Option<Value>,
    /// `ResultPath`: `None` is JSON `null` (discard the result); defaults to `$`.
    pub result_path: Option<String>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    pub timeout_seconds: Option<u64>,
    pub transition: Transition,
}

/// What a Task runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Resource {
    /// `arn:aws:states:::lambda:invoke`: the service integration (result wrapped in `Payload`).
    LambdaInvoke,
    /// A function ARN: the function's output is the result.
    LambdaFunction(String),
}

impl Resource {
    /// The resource ARN as written (after substitution).
    pub fn arn(&self) -> &str {
        match self {
            Resource::LambdaInvoke => crate::lambda::LAMBDA_INVOKE,
            Resource::LambdaFunction(arn) => arn,
        }
    }
}

/// A retrier of a Task's `Retry`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: u64,
    pub max_attempts: u64,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
    pub full_jitter: bool,
}

/// A catcher of a Task's `Catch`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    /// `ResultPath`: `None` is JSON `null`; defaults to `$`.
    pub result_path: Option<String>,
}

/// How long a Wait state waits.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WaitFor {
    Seconds(u64),
    Timestamp(chrono::DateTime<chrono::Utc>),
    SecondsPath(String),
    TimestampPath(String),
}

/// A Fail state's `Error`/`Cause` (literal) or `ErrorPath`/`CausePath` (path or intrinsic).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Text {
    Literal(String),
    Path(String),
}

/// A top-level Choice rule: a condition and where it leads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChoiceRule {
    pub condition: Condition,
    pub next: String,
}

/// A Boolean expression of a Choice rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Test { variable: String, test: Test },
}

/// The comparison a data-test expression applies to its `Variable`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    Compare {
        kind: ValueKind,
        relation: Relation,
        operand: Operand,
    },
    StringMatches(String),
    Is {
        check: TypeCheck,
        expected: bool,
    },
}

/// The value type a comparison operator works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    String,
    Numeric,
    Boolean,
    Timestamp,
}

/// The relation a comparison operator tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relation {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

/// The right-hand side of a comparison: a literal or (`…Path` operators) a path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Literal(Value),
    Path(String),
}

/// The `Is…` type-test operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeCheck {
    Null,
    Present,
    Numeric,
    String,
    Boolean,
    Timestamp,
}
