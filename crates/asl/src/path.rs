//! JSONPath as ASL uses it: paths (`InputPath`, `OutputPath`, `.$` fields) and reference paths
//! (`ResultPath`, the `…Path` Choice operands). `$$` selects from the context object.
//!
//! Step Functions evaluates paths with Jayway JsonPath; this module implements the part of that
//! dialect state machines use, with Jayway's results:
//!
//! - `$` (the input) or `$$` (the context object), then any number of segments:
//!   `.name`, `['name']` / `["name"]`, `[0]`, `[-1]` (from the end), `.*` / `[*]`, `[1:3]`,
//!   `[:2]`, `[-2:]` (slices without a step), unions `[0,1]` and `['a','b']`, the deep scan
//!   `..name` / `..*` / `..[0]` / `..[?(…)]`, and filters `[?(@.x == 1)]`, `[?(@.x)]`,
//!   combined with `&&`, `||`, `!` and parentheses; filter operands are `@…` and `$…` paths,
//!   numbers, quoted strings, `true`, `false` and `null`.
//! - A *definite* path (names and indexes only) selects one node; a path that can match several
//!   (wildcard, slice, union, filter, deep scan) yields a JSON array of every match, in document
//!   order, which is empty when nothing matches.
//! - `.['name']` is read as `['name']`, as the Step Functions guide writes `$.abc.['def ghi']`.
//! - A filter keeps the elements of an array that pass it, or an object itself when it passes;
//!   after `..` it keeps every object, at any depth, that passes (Jayway's deep-scan filter).
//! - A union of names at the end of a path (`$['a','b']`) yields, per matched object, one object
//!   holding those of the properties that exist, as Jayway merges them.
//! - Numbers compare by numeric value (`1 == 1.0`); values of different JSON types are never
//!   equal or ordered; a comparison with an operand that selects nothing is false.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::cursor::Cursor;
use serde_json::{Map, Number, Value};

/// The most characters of a document an error message quotes.
const MAX_QUOTED_CHARS: usize = 256;
/// How deeply filters, parentheses and `!` may nest inside one path.
const MAX_NESTING: usize = 32;

/// A path that could not be applied to its document.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PathError {
    /// The path selects nothing in the document.
    #[error("the JSONPath '{path}' could not be found in the input '{}'", excerpt(.input))]
    NotFound { path: String, input: String },
    /// `set` was asked to write into something that is not an object.
    #[error("unable to apply ResultPath '{path}' to input '{}'", excerpt(.input))]
    NotAnObject { path: String, input: String },
}

/// Checks the syntax of a path (may use filters, wildcards, slices). The message says what is wrong.
pub fn validate_path(path: &str) -> Result<(), String> {
    parse(path)
        .map(drop)
        .map_err(|problem| format!("'{path}' is not a valid JSONPath: {problem}"))
}

/// Checks the syntax of a reference path (single node: no wildcards, filters or slices).
pub fn validate_reference_path(path: &str) -> Result<(), String> {
    let parsed = parse(path)
        .map_err(|problem| format!("'{path}' is not a valid reference path: {problem}"))?;
    match parsed.segments.iter().find_map(Segment::multi_node_feature) {
        Some(feature) => Err(format!(
            "'{path}' is not a valid reference path: {feature} are not allowed, a reference path \
             must identify a single node"
        )),
        None => Ok(()),
    }
}

/// The context object that `$$` paths select from: a document, or one built on first use
/// (most paths never look at it, and it holds the whole execution input).
pub trait ContextObject {
    fn document(&self) -> &Value;
}

impl ContextObject for Value {
    fn document(&self) -> &Value {
        self
    }
}

/// Applies `path` to `input`, or to `context` when the path starts with `$$`.
///
/// A definite path that selects nothing, or a string that is not a path at all, is
/// [`PathError::NotFound`]; a path that can match several nodes yields an array of the matches.
pub fn select(path: &str, input: &Value, context: &dyn ContextObject) -> Result<Value, PathError> {
    let Ok(parsed) = parse(path) else {
        return Err(not_found(path, input));
    };
    let document = match parsed.root {
        Root::Input => input,
        Root::Context => context.document(),
    };
    let mut matches = parsed.matches(document);
    if !parsed.is_definite() {
        return Ok(Value::Array(matches));
    }
    matches.pop().ok_or_else(|| not_found(path, document))
}

/// Writes `value` at the reference path `path` inside `target` (`$` replaces it whole),
/// creating intermediate objects, as ResultPath does.
///
/// Writing through something that is not an object, to an array element that does not exist,
/// with a path that is not a reference path, or into the context object (`$$`) is
/// [`PathError::NotAnObject`]; `target` is then left as it was.
pub fn set(path: &str, target: Value, value: Value) -> Result<Value, PathError> {
    set_or_keep(path, target, value).map_err(|target| PathError::NotAnObject {
        path: path.to_owned(),
        input: quote(&target),
    })
}

/// [`set`], answering `target` as it was when the path cannot be applied.
pub(crate) fn set_or_keep(path: &str, target: Value, value: Value) -> Result<Value, Value> {
    let segments = parse(path)
        .ok()
        .filter(|parsed| parsed.root == Root::Input)
        .map(|parsed| parsed.segments);
    let mut target = target;
    match segments.map(|segments| write(&mut target, &segments, value)) {
        Some(Ok(())) => Ok(target),
        _ => Err(target),
    }
}

/// Whether `left` and `right` are the same JSON value, numbers compared by numeric value.
pub(crate) fn json_eq(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(l), Value::Number(r)) => compare_numbers(l, r) == Some(Ordering::Equal),
        (Value::Array(l), Value::Array(r)) => {
            l.len() == r.len() && l.iter().zip(r).all(|(l, r)| json_eq(l, r))
        }
        (Value::Object(l), Value::Object(r)) => {
            l.len() == r.len()
                && l.iter()
                    .all(|(key, l)| r.get(key).is_some_and(|r| json_eq(l, r)))
        }
        _ => left == right,
    }
}

fn not_found(path: &str, document: &Value) -> PathError {
    PathError::NotFound {
        path: path.to_owned(),
        input: quote(document),
    }
}

/// The JSON text of `document`, cut down to what an error message shows.
fn quote(document: &Value) -> String {
    excerpt(&document.to_string()).into_owned()
}

/// `text`, or its first [`MAX_QUOTED_CHARS`] characters followed by `...` when it is longer.
fn excerpt(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => Cow::Owned(format!("{}...", &text[..cut])),
        None => Cow::Borrowed(text),
    }
}

fn compare_numbers(left: &Number, right: &Number) -> Option<Ordering> {
    if let (Some(l), Some(r)) = (left.as_i64(), right.as_i64()) {
        return Some(l.cmp(&r));
    }
    if let (Some(l), Some(r)) = (left.as_u64(), right.as_u64()) {
        return Some(l.cmp(&r));
    }
    left.as_f64()?.partial_cmp(&right.as_f64()?)
}

/// The document a path starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    /// `$`: the state's input.
    Input,
    /// `$$`: the context object.
    Context,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
struct Path {
    root: Root,
    segments: Vec<Segment>,
}

impl Path {
    fn is_definite(&self) -> bool {
        self.segments.iter().all(Segment::is_definite)
    }

    /// Every node the path selects in `document`, in document order.
    fn matches(&self, document: &Value) -> Vec<Value> {
        match self.segments.split_last() {
            Some((Segment::Names(names), init)) => apply(init, document, document)
                .into_iter()
                .filter_map(|node| merge_properties(node, names))
                .collect(),
            _ => apply(&self.segments, document, document)
                .into_iter()
                .cloned()
                .collect(),
        }
    }
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    /// `.name`, `['name']`.
    Name(String),
    /// `['a','b']`.
    Names(Vec<String>),
    /// `[0]`, `[-1]`.
    Index(i64),
    /// `[0,1]`.
    Indices(Vec<i64>),
    /// `.*`, `[*]`.
    Wildcard,
    /// `[start:end]`, either bound optional.
    Slice {
        start: Option<i64>,
        end: Option<i64>,
    },
    /// `[?(…)]`.
    Filter(Box<Expr>),
    /// `..` followed by another segment: applies it to a node and all its descendants.
    Descendants(Box<Segment>),
}

impl Segment {
    fn is_definite(&self) -> bool {
        self.multi_node_feature().is_none()
    }

    /// What makes this segment able to match several nodes, in the words of an error message.
    fn multi_node_feature(&self) -> Option<&'static str> {
        match self {
            Self::Name(_) | Self::Index(_) => None,
            Self::Names(_) | Self::Indices(_) => Some("unions"),
            Self::Wildcard => Some("wildcards"),
            Self::Slice { .. } => Some("array slices"),
            Self::Filter(_) => Some("filters"),
            Self::Descendants(_) => Some("deep scans ('..')"),
        }
    }

    /// Adds the nodes this segment selects from `node` to `out`.
    fn apply<'v>(&self, node: &'v Value, root: &'v Value, out: &mut Vec<&'v Value>) {
        match self {
            Self::Name(name) => out.extend(property(node, name)),
            Self::Names(names) => out.extend(names.iter().filter_map(|name| property(node, name))),
            Self::Index(index) => out.extend(element(node, *index)),
            Self::Indices(indexes) => {
                out.extend(indexes.iter().filter_map(|index| element(node, *index)));
            }
            Self::Wildcard => match node {
                Value::Object(map) => out.extend(map.values()),
                Value::Array(items) => out.extend(items),
                _ => {}
            },
            Self::Slice { start, end } => {
                if let Value::Array(items) = node {
                    out.extend(&items[slice_bounds(items.len(), *start, *end)]);
                }
            }
            Self::Filter(expr) => match node {
                Value::Array(items) => {
                    out.extend(items.iter().filter(|item| expr.test(item, root)))
                }
                Value::Object(_) if expr.test(node, root) => out.push(node),
                _ => {}
            },
            Self::Descendants(inner) => match &**inner {
                Self::Filter(expr) => out.extend(
                    preorder(node)
                        .into_iter()
                        .filter(|descendant| descendant.is_object() && expr.test(descendant, root)),
                ),
                inner => {
                    for descendant in preorder(node) {
                        inner.apply(descendant, root, out);
                    }
                }
            },
        }
    }
}

/// Applies `segments` one after the other, starting from `node`.
fn apply<'v>(segments: &[Segment], node: &'v Value, root: &'v Value) -> Vec<&'v Value> {
    segments.iter().fold(vec![node], |current, segment| {
        let mut next = Vec::new();
        for node in current {
            segment.apply(node, root, &mut next);
        }
        next
    })
}

fn property<'v>(node: &'v Value, name: &str) -> Option<&'v Value> {
    node.as_object()?.get(name)
}

fn element(node: &Value, index: i64) -> Option<&Value> {
    let items = node.as_array()?;
    items.get(resolve_index(items.len(), index)?)
}

fn element_mut(node: &mut Value, index: i64) -> Option<&mut Value> {
    let items = node.as_array_mut()?;
    let position = resolve_index(items.len(), index)?;
    items.get_mut(position)
}

/// The position `index` designates in an array of `len` elements (negative counts from the end).
fn resolve_index(len: usize, index: i64) -> Option<usize> {
    if index >= 0 {
        return usize::try_from(index).ok();
    }
    len.checked_sub(usize::try_from(index.unsigned_abs()).ok()?)
}

/// The range `[start:end]` covers in an array of `len` elements, as Jayway clamps it.
fn slice_bounds(len: usize, start: Option<i64>, end: Option<i64>) -> std::ops::Range<usize> {
    let clamp = |bound: i64| {
        if bound < 0 {
            len.saturating_sub(usize::try_from(bound.unsigned_abs()).unwrap_or(usize::MAX))
        } else {
            usize::try_from(bound).unwrap_or(usize::MAX).min(len)
        }
    };
    let start = start.map_or(0, clamp);
    let end = end.map_or(len, clamp);
    start..end.max(start)
}

/// `node` followed by all its descendants, depth first, in document order.
fn preorder(node: &Value) -> Vec<&Value> {
    let mut visited = Vec::new();
    let mut pending = vec![node];
    while let Some(current) = pending.pop() {
        visited.push(current);
        match current {
            Value::Object(map) => pending.extend(map.values().rev()),
            Value::Array(items) => pending.extend(items.iter().rev()),
            _ => {}
        }
    }
    visited
}

/// The object of those `names` that `node` has, as Jayway answers a trailing `['a','b']`.
fn merge_properties(node: &Value, names: &[String]) -> Option<Value> {
    let map = node.as_object()?;
    let merged = names
        .iter()
        .filter_map(|name| Some((name.clone(), map.get(name)?.clone())))
        .collect::<Map<_, _>>();
    Some(Value::Object(merged))
}

/// `set` could not write where the path points.
struct Unwritable;

/// Writes `value` at `segments` below `target`, changing nothing when that fails.
fn write(target: &mut Value, segments: &[Segment], value: Value) -> Result<(), Unwritable> {
    let mut node = target;
    for (at, segment) in segments.iter().enumerate() {
        node = match segment {
            Segment::Name(name) => {
                let Value::Object(map) = node else {
                    return Err(Unwritable);
                };
                if !map.contains_key(name) {
                    map.insert(name.clone(), nest(&segments[at + 1..], value)?);
                    return Ok(());
                }
                map.get_mut(name).ok_or(Unwritable)?
            }
            Segment::Index(index) => element_mut(node, *index).ok_or(Unwritable)?,
            _ => return Err(Unwritable),
        };
    }
    *node = value;
    Ok(())
}

/// `value` wrapped in one new object per name in `segments` (`{"a": {"b": value}}` for `.a.b`).
fn nest(segments: &[Segment], value: Value) -> Result<Value, Unwritable> {
    segments
        .iter()
        .rev()
        .try_fold(value, |inner, segment| match segment {
            Segment::Name(name) => Ok(Value::Object(Map::from_iter([(name.clone(), inner)]))),
            _ => Err(Unwritable),
        })
}

/// A filter's condition.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// At least one holds (kept flat so that long chains do not nest).
    Or(Vec<Expr>),
    /// All hold.
    And(Vec<Expr>),
    Not(Box<Expr>),
    /// `@.x`: the operand selects something.
    Exists(Operand),
    Compare(Operand, Comparison, Operand),
}

impl Expr {
    /// Whether `item` (the `@` of the filter) passes; `root` is the document `$` refers to.
    fn test(&self, item: &Value, root: &Value) -> bool {
        match self {
            Self::Or(alternatives) => alternatives.iter().any(|expr| expr.test(item, root)),
            Self::And(conditions) => conditions.iter().all(|expr| expr.test(item, root)),
            Self::Not(inner) => !inner.test(item, root),
            Self::Exists(operand) => operand.resolve(item, root).is_some(),
            Self::Compare(left, comparison, right) => {
                match (left.resolve(item, root), right.resolve(item, root)) {
                    (Some(left), Some(right)) => comparison.holds(&left, &right),
                    _ => false,
                }
            }
        }
    }
}

/// A value in a filter.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `@…`: a path from the element being tested.
    Relative(Vec<Segment>),
    /// `$…`: a path from the document's root.
    Absolute(Vec<Segment>),
    Literal(Value),
}

impl Operand {
    /// The operand's value, `None` when its definite path selects nothing.
    fn resolve<'v>(&'v self, item: &'v Value, root: &'v Value) -> Option<Cow<'v, Value>> {
        let (segments, start) = match self {
            Self::Literal(value) => return Some(Cow::Borrowed(value)),
            Self::Relative(segments) => (segments, item),
            Self::Absolute(segments) => (segments, root),
        };
        let mut matches = apply(segments, start, root);
        if segments.iter().all(Segment::is_definite) {
            return matches.pop().map(Cow::Borrowed);
        }
        Some(Cow::Owned(Value::Array(
            matches.into_iter().cloned().collect(),
        )))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    /// The operators, longest first so that `<=` is not read as `<`.
    const OPERATORS: [(&'static str, Self); 6] = [
        ("==", Self::Equal),
        ("!=", Self::NotEqual),
        ("<=", Self::LessOrEqual),
        (">=", Self::GreaterOrEqual),
        ("<", Self::Less),
        (">", Self::Greater),
    ];

    fn holds(self, left: &Value, right: &Value) -> bool {
        let order = || match (left, right) {
            (Value::Number(l), Value::Number(r)) => compare_numbers(l, r),
            (Value::String(l), Value::String(r)) => Some(l.cmp(r)),
            _ => None,
        };
        match self {
            Self::Equal => json_eq(left, right),
            Self::NotEqual => !json_eq(left, right),
            Self::Less => order() == Some(Ordering::Less),
            Self::LessOrEqual => matches!(order(), Some(Ordering::Less | Ordering::Equal)),
            Self::Greater => order() == Some(Ordering::Greater),
            Self::GreaterOrEqual => matches!(order(), Some(Ordering::Greater | Ordering::Equal)),
        }
    }
}

/// Parses a whole path, or says what is wrong with it.
fn parse(source: &str) -> Result<Path, String> {
    let mut parser = Parser {
        cursor: Cursor::new(source, "path"),
        depth: 0,
    };
    let path = parser.path()?;
    match parser.peek() {
        Some(c) => Err(format!("unexpected '{c}' at position {}", parser.position)),
        None => Ok(path),
    }
}

/// Whether `c` may appear in a dot-notation property name.
fn is_name_char(c: char) -> bool {
    !c.is_whitespace() && !".[]()'\",=!<>&|@$*".contains(c)
}

/// A recursive-descent parser over a path's text.
struct Parser<'a> {
    cursor: Cursor<'a>,
    depth: usize,
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
    /// Runs `parse` one nesting level deeper, refusing to nest beyond [`MAX_NESTING`].
    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<T, String> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "filters nest more than {MAX_NESTING} levels deep at position {}",
                self.position
            ));
        }
        self.depth += 1;
        let parsed = parse(self);
        self.depth -= 1;
        parsed
    }

    fn path(&mut self) -> Result<Path, String> {
        if !self.eat('$') {
            return Err(self.unexpected("'$' (a path begins with '$' or '$$')"));
        }
        let root = if self.eat('$') {
            Root::Context
        } else {
            Root::Input
        };
        let segments = self.segments()?;
        Ok(Path { root, segments })
    }

    /// Segments up to the first character that cannot start one.
    fn segments(&mut self) -> Result<Vec<Segment>, String> {
        let mut segments = Vec::new();
        loop {
            let segment = if self.eat_str("..") {
                Segment::Descendants(Box::new(self.after_dot()?))
            } else if self.eat('.') {
                self.after_dot()?
            } else if self.eat('[') {
                self.bracket()?
            } else {
                return Ok(segments);
            };
            segments.push(segment);
        }
    }

    /// What follows a single `.`: a name, `*`, or a bracket (`$.a.['b c']`, as Jayway allows).
    fn after_dot(&mut self) -> Result<Segment, String> {
        if self.eat('*') {
            return Ok(Segment::Wildcard);
        }
        if self.eat('[') {
            return self.bracket();
        }
        let start = self.position;
        while self.peek().is_some_and(is_name_char) {
            self.bump();
        }
        if start == self.position {
            return Err(self.unexpected("a property name or '*' after '.'"));
        }
        Ok(Segment::Name(self.source[start..self.position].to_owned()))
    }

    /// What follows a `[`, up to and including the `]`.
    fn bracket(&mut self) -> Result<Segment, String> {
        self.skip_whitespace();
        let segment = match self.peek() {
            Some('*') => {
                self.bump();
                Segment::Wildcard
            }
            Some('\'' | '"') => self.names()?,
            Some('?') => {
                self.bump();
                self.filter()?
            }
            Some(c) if c == '-' || c == ':' || c.is_ascii_digit() => self.indexes_or_slice()?,
            _ => {
                return Err(
                    self.unexpected("a quoted name, an index, a slice, '*' or '?(' after '['")
                );
            }
        };
        self.skip_whitespace();
        self.expect(']')?;
        Ok(segment)
    }

    /// A `,` between union members, with the whitespace around it.
    fn comma(&mut self) -> bool {
        self.skip_whitespace();
        let found = self.eat(',');
        self.skip_whitespace();
        found
    }

    fn names(&mut self) -> Result<Segment, String> {
        let mut names = vec![self.quoted()?];
        while self.comma() {
            names.push(self.quoted()?);
        }
        Ok(match <[String; 1]>::try_from(names) {
            Ok([name]) => Segment::Name(name),
            Err(names) => Segment::Names(names),
        })
    }

    fn indexes_or_slice(&mut self) -> Result<Segment, String> {
        let start = self.optional_integer()?;
        self.skip_whitespace();
        if self.eat(':') {
            self.skip_whitespace();
            let end = self.optional_integer()?;
            self.skip_whitespace();
            if self.peek() == Some(':') {
                return Err(format!(
                    "slice steps are not supported (position {})",
                    self.position
                ));
            }
            return Ok(Segment::Slice { start, end });
        }
        let Some(first) = start else {
            return Err(self.unexpected("an array index"));
        };
        let mut indexes = vec![first];
        while self.comma() {
            indexes.push(self.integer()?);
        }
        Ok(match <[i64; 1]>::try_from(indexes) {
            Ok([index]) => Segment::Index(index),
            Err(indexes) => Segment::Indices(indexes),
        })
    }

    fn optional_integer(&mut self) -> Result<Option<i64>, String> {
        if self.peek().is_some_and(|c| c == '-' || c.is_ascii_digit()) {
            self.integer().map(Some)
        } else {
            Ok(None)
        }
    }

    fn integer(&mut self) -> Result<i64, String> {
        let start = self.position;
        self.eat('-');
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let text = &self.source[start..self.position];
        text.parse()
            .map_err(|_| format!("invalid array index '{text}' at position {start}"))
    }

    /// A string in single or double quotes, with JSON-style backslash escapes.
    fn quoted(&mut self) -> Result<String, String> {
        let start = self.position;
        let Some(quote @ ('\'' | '"')) = self.bump() else {
            self.position = start;
            return Err(self.unexpected("a quoted string"));
        };
        let mut text = String::new();
        loop {
            match self.bump() {
                None => return Err(format!("unterminated string starting at position {start}")),
                Some('\\') => text.push(self.escape()?),
                Some(c) if c == quote => return Ok(text),
                Some(c) => text.push(c),
            }
        }
    }

    /// The character an escape sequence stands for, the backslash already read.
    fn escape(&mut self) -> Result<char, String> {
        let start = self.position;
        let escaped = match self.bump() {
            Some(c @ ('\\' | '\'' | '"' | '/')) => Some(c),
            Some('b') => Some('\u{8}'),
            Some('f') => Some('\u{c}'),
            Some('n') => Some('\n'),
            Some('r') => Some('\r'),
            Some('t') => Some('\t'),
            Some('u') => self.unicode_escape(),
            _ => None,
        };
        escaped.ok_or_else(|| format!("invalid escape sequence at position {}", start - 1))
    }

    fn unicode_escape(&mut self) -> Option<char> {
        let digits = self.rest().get(..4)?;
        if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let c = char::from_u32(u32::from_str_radix(digits, 16).ok()?)?;
        self.position += 4;
        Some(c)
    }

    /// `(…)]` of a `[?(…)]`, the `[?` already read.
    fn filter(&mut self) -> Result<Segment, String> {
        self.skip_whitespace();
        self.expect('(')?;
        let expr = self.nested(Self::or_expr)?;
        self.skip_whitespace();
        self.expect(')')?;
        Ok(Segment::Filter(Box::new(expr)))
    }

    fn or_expr(&mut self) -> Result<Expr, String> {
        self.chain("||", Self::and_expr, Expr::Or)
    }

    fn and_expr(&mut self) -> Result<Expr, String> {
        self.chain("&&", Self::unary, Expr::And)
    }

    /// `operand (operator operand)*`, combined by `combine` when there are several.
    fn chain(
        &mut self,
        operator: &str,
        mut operand: impl FnMut(&mut Self) -> Result<Expr, String>,
        combine: fn(Vec<Expr>) -> Expr,
    ) -> Result<Expr, String> {
        let mut operands = vec![operand(self)?];
        loop {
            self.skip_whitespace();
            if !self.eat_str(operator) {
                break;
            }
            operands.push(operand(self)?);
        }
        Ok(match <[Expr; 1]>::try_from(operands) {
            Ok([single]) => single,
            Err(operands) => combine(operands),
        })
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.skip_whitespace();
        if self.eat('!') {
            return Ok(Expr::Not(Box::new(self.nested(Self::unary)?)));
        }
        if self.eat('(') {
            let inner = self.nested(Self::or_expr)?;
            self.skip_whitespace();
            self.expect(')')?;
            return Ok(inner);
        }
        let left = self.operand()?;
        self.skip_whitespace();
        let comparison = Comparison::OPERATORS
            .into_iter()
            .find_map(|(text, comparison)| self.eat_str(text).then_some(comparison));
        match (comparison, left) {
            (Some(comparison), left) => {
                self.skip_whitespace();
                Ok(Expr::Compare(left, comparison, self.operand()?))
            }
            (None, Operand::Literal(_)) => Err(self.unexpected("a comparison operator")),
            (None, path) => Ok(Expr::Exists(path)),
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.peek() {
            Some('@') => {
                self.bump();
                Ok(Operand::Relative(self.segments()?))
            }
            Some('$') => {
                let start = self.position;
                let path = self.path()?;
                if path.root == Root::Context {
                    return Err(format!(
                        "context object paths are not supported in filters (position {start})"
                    ));
                }
                Ok(Operand::Absolute(path.segments))
            }
            Some('\'' | '"') => Ok(Operand::Literal(Value::String(self.quoted()?))),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            _ => [
                ("true", Value::Bool(true)),
                ("false", Value::Bool(false)),
                ("null", Value::Null),
            ]
            .into_iter()
            .find_map(|(text, value)| self.eat_str(text).then_some(Operand::Literal(value)))
            .ok_or_else(|| self.unexpected("'@', '$', a number, a string, true, false or null")),
        }
    }

    fn number(&mut self) -> Result<Operand, String> {
        let start = self.position;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        {
            self.bump();
        }
        let text = &self.source[start..self.position];
        serde_json::from_str::<Number>(text)
            .map(|number| Operand::Literal(Value::Number(number)))
            .map_err(|_| format!("invalid number '{text}' at position {start}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn store() -> Value {
        json!({
            "store": {
                "book": [
                    {"category": "reference", "author": "Nigel Rees", "title": "Sayings", "price": 8.95},
                    {"category": "fiction", "author": "Evelyn Waugh", "title": "Sword", "price": 12.99},
                    {"category": "fiction", "author": "Herman Melville", "title": "Moby Dick", "isbn": "0-553", "price": 8.99},
                    {"category": "fiction", "author": "J. R. R. Tolkien", "title": "LOTR", "isbn": "0-395", "price": 22.99}
                ],
                "bicycle": {"color": "red", "price": 19.95}
            },
            "expensive": 10,
            "odd key": {"a b": 1},
            "items": [0, 1, 2, 3, 4]
        })
    }

    fn get(path: &str) -> Value {
        select(path, &store(), &Value::Null).unwrap()
    }

    #[test]
    fn accepts_the_paths_asl_uses() {
        for path in [
            "$",
            "$$",
            "$.a",
            "$.a.b_c-d",
            "$['a b']",
            "$[\"a b\"]",
            "$.a[0]",
            "$.a[-1]",
            "$.a[*]",
            "$.*",
            "$..a",
            "$..*",
            "$..[0]",
            "$.a[1:3]",
            "$.a[:2]",
            "$.a[-2:]",
            "$.a[:]",
            "$.a[0,1]",
            "$['a','b']",
            "$.a[?(@.x == 1)]",
            "$.a[?(@.x)]",
            "$.a[?(!@.x)]",
            "$.a[?(@.x < 2 && @.y != 'z' || (@.w >= -1.5e2))]",
            "$.a[?(@.x == $.y)]",
            "$.a[?(@['x y'] == \"v\")]",
            "$.a[?(@.x == true || @.x == null)]",
            "$.abc.['def ghi']",
            "$$.Execution.Id",
            "$$.Map.Item.Value",
            "$[ 'a' , 'b' ]",
            "$.a['\\u00e9\\'\\n']",
            "$.héllo",
        ] {
            assert_eq!(validate_path(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn refuses_malformed_paths_saying_why() {
        for (path, problem) in [
            ("", "expected '$'"),
            ("a.b", "expected '$'"),
            (
                "$.",
                "expected a property name or '*' after '.' but the path ends",
            ),
            ("$a", "unexpected 'a' at position 1"),
            ("$.a[", "expected a quoted name"),
            ("$.a[0", "expected ']' but the path ends"),
            ("$.a['b]", "unterminated string"),
            ("$.a[1:2:3]", "slice steps are not supported"),
            ("$.a[x]", "expected a quoted name"),
            ("$.a[?(@.x ==)]", "expected '@', '$'"),
            ("$.a[?(1)]", "expected a comparison operator"),
            ("$.a[?(@.x == 1]", "expected ')'"),
            ("$.a[?($$.x)]", "context object paths are not supported"),
            ("$.a['\\q']", "invalid escape sequence"),
            ("$.a[99999999999999999999]", "invalid array index"),
            ("$.a ", "unexpected ' '"),
            ("$...a", "expected a property name"),
        ] {
            let message = validate_path(path).unwrap_err();
            assert!(
                message.contains(problem),
                "{path}: {message} should mention {problem}"
            );
            assert!(message.starts_with(&format!("'{path}' is not a valid JSONPath")));
        }
    }

    #[test]
    fn refuses_filters_nested_too_deep() {
        let path = format!("$[?({}@.a{})]", "(".repeat(40), ")".repeat(40));
        assert!(
            validate_path(&path)
                .unwrap_err()
                .contains("nest more than 32")
        );
        let ok = format!("$[?({}@.a{})]", "(".repeat(20), ")".repeat(20));
        assert_eq!(validate_path(&ok), Ok(()));
    }

    #[test]
    fn reference_paths_identify_single_nodes() {
        for path in [
            "$",
            "$.a.b",
            "$['a']",
            "$.a[0]",
            "$.a[-1]",
            "$$.Execution.Input",
            "$.a.['b c']",
        ] {
            assert_eq!(validate_reference_path(path), Ok(()), "{path}");
        }
        for (path, feature) in [
            ("$.a[*]", "wildcards"),
            ("$.*", "wildcards"),
            ("$..a", "deep scans"),
            ("$.a[1:2]", "array slices"),
            ("$.a[?(@.x)]", "filters"),
            ("$.a[0,1]", "unions"),
            ("$['a','b']", "unions"),
        ] {
            let message = validate_reference_path(path).unwrap_err();
            assert!(message.contains(feature), "{path}: {message}");
            assert!(message.contains("must identify a single node"), "{message}");
        }
        assert!(
            validate_reference_path("$.a[")
                .unwrap_err()
                .starts_with("'$.a[' is not a valid reference path")
        );
    }

    #[test]
    fn definite_paths_select_one_node() {
        assert_eq!(get("$"), store());
        assert_eq!(get("$.expensive"), json!(10));
        assert_eq!(get("$.store.bicycle.color"), json!("red"));
        assert_eq!(get("$['store']['bicycle']['color']"), json!("red"));
        assert_eq!(get("$[\"odd key\"]['a b']"), json!(1));
        assert_eq!(get("$.store.book[0].title"), json!("Sayings"));
        assert_eq!(get("$.store.book[-1].title"), json!("LOTR"));
        assert_eq!(get("$.items[-5]"), json!(0));
        assert_eq!(get("$.store.['bicycle'].price"), json!(19.95));
    }

    #[test]
    fn missing_definite_paths_are_not_found() {
        for path in [
            "$.nope",
            "$.expensive.deeper",
            "$.items[5]",
            "$.items[-6]",
            "$.store[0]",
            "$.items.length",
            "not a path",
        ] {
            let error = select(path, &store(), &Value::Null).unwrap_err();
            assert!(matches!(error, PathError::NotFound { .. }), "{path}");
        }
        let error = select("$.x", &json!({"a": 1}), &Value::Null).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the JSONPath '$.x' could not be found in the input '{\"a\":1}'"
        );
    }

    #[test]
    fn wildcards_and_slices_select_arrays_of_matches() {
        assert_eq!(get("$.items[*]"), json!([0, 1, 2, 3, 4]));
        assert_eq!(get("$.store.bicycle.*"), json!(["red", 19.95]));
        assert_eq!(get("$.store.book[*].author").as_array().unwrap().len(), 4);
        assert_eq!(get("$.items[1:3]"), json!([1, 2]));
        assert_eq!(get("$.items[:2]"), json!([0, 1]));
        assert_eq!(get("$.items[-2:]"), json!([3, 4]));
        assert_eq!(get("$.items[3:1]"), json!([]));
        assert_eq!(get("$.items[2:99]"), json!([2, 3, 4]));
        assert_eq!(get("$.items[-99:1]"), json!([0]));
        assert_eq!(get("$.items[:]"), json!([0, 1, 2, 3, 4]));
        assert_eq!(get("$.items[0,4,9]"), json!([0, 4]));
        assert_eq!(get("$.expensive[*]"), json!([]));
        assert_eq!(get("$.nothing[*]"), json!([]));
        assert_eq!(get("$.nothing[*].x"), json!([]));
    }

    #[test]
    fn trailing_name_unions_merge_like_jayway() {
        assert_eq!(
            get("$.store.bicycle['color','price','nope']"),
            json!([{"color": "red", "price": 19.95}])
        );
        assert_eq!(
            get("$.store.book[*]['title','isbn']"),
            json!([
                {"title": "Sayings"},
                {"title": "Sword"},
                {"title": "Moby Dick", "isbn": "0-553"},
                {"title": "LOTR", "isbn": "0-395"}
            ])
        );
        assert_eq!(
            get("$['expensive','items'][0]"),
            json!([0]),
            "a union before the end selects each property"
        );
    }

    #[test]
    fn deep_scan_walks_in_document_order() {
        assert_eq!(get("$..price"), json!([8.95, 12.99, 8.99, 22.99, 19.95]));
        assert_eq!(get("$.store..color"), json!(["red"]));
        assert_eq!(get("$..book[2].title"), json!(["Moby Dick"]));
        assert_eq!(
            select("$..*", &json!({"a": {"b": 1}, "c": [2]}), &Value::Null).unwrap(),
            json!([{"b": 1}, [2], 1, 2])
        );
        assert_eq!(
            select(
                "$..[0]",
                &json!({"a": [1, [2]], "b": {"c": [3]}}),
                &Value::Null
            )
            .unwrap(),
            json!([1, 2, 3])
        );
    }

    #[test]
    fn deep_scan_filters_keep_each_passing_object_once() {
        assert_eq!(
            get("$..[?(@.price > 15)]"),
            json!([
                {"category": "fiction", "author": "J. R. R. Tolkien", "title": "LOTR", "isbn": "0-395", "price": 22.99},
                {"color": "red", "price": 19.95}
            ])
        );
        assert_eq!(get("$..book[?(@.price > 15)].title"), json!(["LOTR"]));
    }

    #[test]
    fn filters_keep_matching_elements() {
        let titles = |filter: &str| get(&format!("$.store.book[?({filter})].title"));
        assert_eq!(titles("@.isbn"), json!(["Moby Dick", "LOTR"]));
        assert_eq!(titles("!@.isbn"), json!(["Sayings", "Sword"]));
        assert_eq!(titles("@.price < 10"), json!(["Sayings", "Moby Dick"]));
        assert_eq!(titles("@.price <= 8.95"), json!(["Sayings"]));
        assert_eq!(titles("@.price > 20"), json!(["LOTR"]));
        assert_eq!(titles("@.price >= 22.99"), json!(["LOTR"]));
        assert_eq!(
            titles("@.price < $.expensive"),
            json!(["Sayings", "Moby Dick"])
        );
        assert_eq!(titles("@.category == 'reference'"), json!(["Sayings"]));
        assert_eq!(titles("@.category != \"fiction\""), json!(["Sayings"]));
        assert_eq!(
            titles("@.category == 'fiction' && @.price < 10"),
            json!(["Moby Dick"])
        );
        assert_eq!(
            titles("@.price > 20 || @.category == 'reference'"),
            json!(["Sayings", "LOTR"])
        );
        assert_eq!(
            titles("!(@.category == 'fiction' && @.isbn)"),
            json!(["Sayings", "Sword"])
        );
        assert_eq!(
            titles("@.title > 'M'"),
            json!(["Sayings", "Sword", "Moby Dick"])
        );
        assert_eq!(titles("@.missing == 1"), json!([]));
        assert_eq!(titles("@.missing != 1"), json!([]));
        assert_eq!(titles("@.price == '8.95'"), json!([]));
    }

    #[test]
    fn filters_compare_numbers_by_value_and_test_objects_themselves() {
        let doc = json!({"xs": [{"n": 1}, {"n": 1.0}, {"n": 2}, {"n": true}, {"n": null}], "o": {"n": 1}});
        let count = |path: &str| {
            select(path, &doc, &Value::Null)
                .unwrap()
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!(count("$.xs[?(@.n == 1)]"), 2);
        assert_eq!(count("$.xs[?(@.n == true)]"), 1);
        assert_eq!(count("$.xs[?(@.n == null)]"), 1);
        assert_eq!(count("$.xs[?(@.n)]"), 5);
        assert_eq!(count("$.o[?(@.n == 1)]"), 1);
        assert_eq!(count("$.o[?(@.n == 2)]"), 0);
        assert_eq!(count("$.xs[?(@ == 1)]"), 0);
        assert_eq!(
            select("$.xs[?(@.n > 1)]", &doc, &Value::Null).unwrap(),
            json!([{"n": 2}])
        );
    }

    #[test]
    fn filters_may_use_indefinite_sub_paths() {
        let doc = json!({"want": ["a"], "xs": [{"tags": ["a"]}, {"tags": []}, {}]});
        assert_eq!(
            select("$.xs[?(@.tags[*] == $.want)]", &doc, &Value::Null).unwrap(),
            json!([{"tags": ["a"]}])
        );
        assert_eq!(
            select("$.xs[?(@.tags[*])]", &doc, &Value::Null).unwrap(),
            json!([{"tags": ["a"]}, {"tags": []}, {}]),
            "an indefinite sub-path always exists, as a possibly empty list"
        );
    }

    #[test]
    fn double_dollar_selects_from_the_context_object() {
        let context = json!({"Execution": {"Id": "arn:exec", "Input": {"k": "v"}}, "Map": {"Item": {"Index": 3}}});
        let input = json!({"Execution": "not this"});
        assert_eq!(
            select("$$.Execution.Id", &input, &context).unwrap(),
            json!("arn:exec")
        );
        assert_eq!(
            select("$$.Map.Item.Index", &input, &context).unwrap(),
            json!(3)
        );
        assert_eq!(select("$$", &input, &context).unwrap(), context);
        assert_eq!(
            select("$.Execution", &input, &context).unwrap(),
            json!("not this")
        );
        let error = select("$$.Task.Token", &input, &context).unwrap_err();
        assert!(
            error.to_string().contains("arn:exec"),
            "quotes the context: {error}"
        );
    }

    #[test]
    fn error_messages_quote_at_most_256_characters_of_the_input() {
        let input = json!({"big": "x".repeat(10_000)});
        let message = select("$.nope", &input, &Value::Null)
            .unwrap_err()
            .to_string();
        let quoted = message
            .strip_prefix("the JSONPath '$.nope' could not be found in the input '")
            .and_then(|rest| rest.strip_suffix("...'"))
            .unwrap();
        assert_eq!(quoted.chars().count(), 256);
        let error = PathError::NotAnObject {
            path: "$.a".into(),
            input: "é".repeat(1000),
        };
        assert_eq!(
            error.to_string(),
            format!(
                "unable to apply ResultPath '$.a' to input '{}...'",
                "é".repeat(256)
            )
        );
    }

    #[test]
    fn set_replaces_the_whole_input_at_dollar() {
        assert_eq!(set("$", json!({"a": 1}), json!([1])).unwrap(), json!([1]));
        assert_eq!(set("$", json!("s"), json!(null)).unwrap(), json!(null));
    }

    #[test]
    fn set_writes_and_creates_objects_like_result_path() {
        let target = json!({"a": 1, "b": {"c": 2}});
        assert_eq!(
            set("$.r", target.clone(), json!("x")).unwrap(),
            json!({"a": 1, "b": {"c": 2}, "r": "x"})
        );
        assert_eq!(
            set("$.b.d", target.clone(), json!(3)).unwrap(),
            json!({"a": 1, "b": {"c": 2, "d": 3}})
        );
        assert_eq!(
            set("$.x.y['z z']", target.clone(), json!(true)).unwrap(),
            json!({"a": 1, "b": {"c": 2}, "x": {"y": {"z z": true}}})
        );
        assert_eq!(
            set("$.b", target.clone(), json!(0)).unwrap(),
            json!({"a": 1, "b": 0})
        );
        let keys = set("$.a", target, json!(9)).unwrap();
        assert_eq!(
            keys.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["a", "b"],
            "an overwritten key keeps its place"
        );
    }

    #[test]
    fn set_writes_into_existing_array_elements_only() {
        let target = json!({"xs": [{"v": 1}, 2]});
        assert_eq!(
            set("$.xs[0].v", target.clone(), json!(5)).unwrap(),
            json!({"xs": [{"v": 5}, 2]})
        );
        assert_eq!(
            set("$.xs[-1]", target.clone(), json!(7)).unwrap(),
            json!({"xs": [{"v": 1}, 7]})
        );
        assert_eq!(set("$[0]", json!([1]), json!(2)).unwrap(), json!([2]));
        for path in ["$.xs[2]", "$.xs[1].v", "$.ys[0]", "$.new.list[0]"] {
            let error = set(path, target.clone(), json!(0)).unwrap_err();
            assert_eq!(
                error,
                PathError::NotAnObject {
                    path: path.into(),
                    input: target.to_string()
                },
                "{path}: the target is quoted unchanged"
            );
        }
    }

    #[test]
    fn set_refuses_to_write_through_non_objects() {
        for (path, target) in [
            ("$.a", json!("text")),
            ("$.a", json!([1])),
            ("$.a.b", json!({"a": "text"})),
            ("$.a.b.c", json!({"a": {"b": 3}})),
            ("$.a[0]", json!({"a": {"0": 1}})),
        ] {
            let error = set(path, target.clone(), json!(1)).unwrap_err();
            assert!(matches!(error, PathError::NotAnObject { .. }), "{path}");
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("unable to apply ResultPath '{path}'"))
            );
        }
    }

    #[test]
    fn set_refuses_multi_node_context_and_malformed_paths() {
        for path in ["$.a[*]", "$..a", "$['a','b']", "$$.Execution", "$.", "a"] {
            let error = set(path, json!({"a": {}}), json!(1)).unwrap_err();
            assert!(matches!(error, PathError::NotAnObject { .. }), "{path}");
        }
    }

    #[test]
    fn long_chains_and_paths_stay_shallow() {
        let chain = vec!["@.a == 1"; 5000].join(" || ");
        let doc = json!({"xs": [{"a": 1}, {"a": 2}]});
        assert_eq!(
            select(&format!("$.xs[?({chain})]"), &doc, &Value::Null).unwrap(),
            json!([{"a": 1}])
        );
        let long = format!("${}", ".a".repeat(2000));
        let written = set(&long, json!({}), json!(1)).unwrap();
        assert_eq!(select(&long, &written, &Value::Null).unwrap(), json!(1));
    }

    #[test]
    fn json_eq_compares_numbers_by_value() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!({"a": [1, 2.50]}), &json!({"a": [1.0, 2.5]})));
        assert!(json_eq(&json!({"a": 1, "b": 2}), &json!({"b": 2, "a": 1})));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!json_eq(&json!([1]), &json!([1, 1])));
        assert!(!json_eq(&json!("1"), &json!(1)));
        assert!(json_eq(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!json_eq(&json!(-1), &json!(u64::MAX)));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,40}", input in json_value()) {
            let _ = validate_path(&text);
            let _ = validate_reference_path(&text);
            let _ = select(&text, &input, &input);
            let _ = set(&text, input.clone(), Value::Null);
        }

        #[test]
        fn path_like_text_never_panics(text in "\\$[.$\\[\\]*?()@'\",:0-9a-c=<>!&| -]{0,30}", input in json_value()) {
            let _ = validate_path(&text);
            let _ = validate_reference_path(&text);
            let _ = select(&text, &input, &input);
            let _ = set(&text, input.clone(), Value::Null);
        }

        #[test]
        fn set_then_select_round_trips(names in prop::collection::vec("[a-z ]{1,5}", 1..5), value in json_value()) {
            let path = names.iter().fold("$".to_owned(), |path, name| format!("{path}['{name}']"));
            prop_assert_eq!(validate_reference_path(&path), Ok(()));
            let target = set(&path, json!({"keep": 1}), value.clone()).unwrap();
            prop_assert_eq!(select(&path, &target, &Value::Null).unwrap(), value);
            prop_assert_eq!(select("$.keep", &target, &Value::Null).unwrap(), json!(1));
        }

        #[test]
        fn wildcard_selects_every_element(items in prop::collection::vec(json_value(), 0..8)) {
            let input = json!({"xs": items.clone()});
            prop_assert_eq!(select("$.xs[*]", &input, &Value::Null).unwrap(), Value::Array(items.clone()));
            prop_assert_eq!(select("$.xs[:]", &input, &Value::Null).unwrap(), Value::Array(items));
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            "[a-z]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }
}
