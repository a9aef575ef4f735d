//! The reading position of the hand-written parsers (paths, intrinsic calls): a byte offset on
//! a char boundary of the source text, and the small moves every recursive-descent parser makes.

/// A position in `source`, which is a `noun` (`path`, `expression`) in error messages.
pub(crate) struct Cursor<'a> {
    pub(crate) source: &'a str,
    pub(crate) position: usize,
    noun: &'static str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(source: &'a str, noun: &'static str) -> Self {
        Self {
            source,
            position: 0,
            noun,
        }
    }

    pub(crate) fn rest(&self) -> &str {
        &self.source[self.position..]
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.position += c.len_utf8();
        Some(c)
    }

    pub(crate) fn eat(&mut self, expected: char) -> bool {
        self.eat_str(expected.encode_utf8(&mut [0; 4]))
    }

    pub(crate) fn eat_str(&mut self, expected: &str) -> bool {
        let found = self.rest().starts_with(expected);
        if found {
            self.position += expected.len();
        }
        found
    }

    pub(crate) fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    pub(crate) fn expect(&mut self, expected: char) -> Result<(), String> {
        if self.eat(expected) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{expected}'")))
        }
    }

    /// The message for finding something other than `expected` here.
    pub(crate) fn unexpected(&self, expected: &str) -> String {
        match self.peek() {
            Some(c) => format!(
                "expected {expected} at position {} but found '{c}'",
                self.position
            ),
            None => format!("expected {expected} but the {} ends", self.noun),
        }
    }
}
