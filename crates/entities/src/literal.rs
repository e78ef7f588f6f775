//! A small reader of JSON and Python literals — `[1, 2]`, `(1, 2)`, `{'a': 1}`, `True`, `None`,
//! `'text'` — into JSON values, for metadata values and configuration text.
//!
//! JSON is tried first (serde_json). Otherwise the Python literal grammar is read: lists and
//! tuples become arrays (`(x)` without a comma is just `x`, as in Python), dicts become objects
//! (non-string keys are written as Python's `str()` would), strings take single or double quotes
//! with Python escapes and an optional `u`/`r` prefix, numbers allow `_`, `0x`/`0o`/`0b`.
//! Nesting is limited to [`MAX_DEPTH`] so hostile input cannot exhaust the stack.

use std::fmt;

use serde_json::{Map, Number, Value};

/// How deep brackets may nest (serde_json's own limit).
pub(crate) const MAX_DEPTH: usize = 128;

/// Why a text is not a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiteralError {
    /// Byte offset of the problem.
    pub(crate) at: usize,
    /// What is wrong.
    pub(crate) message: String,
}

impl fmt::Display for LiteralError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.at)
    }
}

/// Reads `text` as one JSON value or Python literal (surrounding whitespace allowed).
pub(crate) fn parse(text: &str) -> Result<Value, LiteralError> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Ok(value);
    }
    let mut parser = Parser {
        src: text,
        pos: 0,
        depth: 0,
    };
    parser.skip_ws();
    let value = parser.value()?;
    parser.skip_ws();
    if parser.pos != text.len() {
        return Err(parser.error("unexpected characters after the value"));
    }
    Ok(value)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> LiteralError {
        LiteralError {
            at: self.pos,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn value(&mut self) -> Result<Value, LiteralError> {
        match self.peek() {
            None => Err(self.error("expected a value")),
            Some('[') => {
                self.bump();
                self.nested(|p| p.sequence(']'))
                    .map(|(items, _)| Value::Array(items))
            }
            Some('(') => {
                self.bump();
                let (mut items, comma) = self.nested(|p| p.sequence(')'))?;
                // `(x)` is a parenthesized value, not a tuple.
                match items.pop() {
                    Some(only) if items.is_empty() && !comma => Ok(only),
                    Some(last) => {
                        items.push(last);
                        Ok(Value::Array(items))
                    }
                    None => Ok(Value::Array(items)),
                }
            }
            Some('{') => {
                self.bump();
                self.nested(Self::dict).map(Value::Object)
            }
            Some(q @ ('\'' | '"')) => {
                self.bump();
                self.string(q, false).map(Value::String)
            }
            Some(c) if c.is_ascii_digit() || matches!(c, '-' | '+' | '.') => self.number(),
            Some(c) if c.is_alphabetic() || c == '_' => self.word(),
            Some(c) => Err(self.error(format!("unexpected {c:?}"))),
        }
    }

    fn nested<T>(
        &mut self,
        inner: impl FnOnce(&mut Self) -> Result<T, LiteralError>,
    ) -> Result<T, LiteralError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH}")));
        }
        self.depth += 1;
        let out = inner(self);
        self.depth -= 1;
        out
    }

    /// Items up to `close`; also says whether a comma was seen (to tell `(x,)` from `(x)`).
    fn sequence(&mut self, close: char) -> Result<(Vec<Value>, bool), LiteralError> {
        let mut items = Vec::new();
        let mut comma = false;
        loop {
            self.skip_ws();
            if self.eat(close) {
                return Ok((items, comma));
            }
            items.push(self.value()?);
            self.skip_ws();
            if self.eat(',') {
                comma = true;
            } else if self.eat(close) {
                return Ok((items, comma));
            } else {
                return Err(self.error(format!("expected ',' or '{close}'")));
            }
        }
    }

    fn dict(&mut self) -> Result<Map<String, Value>, LiteralError> {
        let mut map = Map::new();
        loop {
            self.skip_ws();
            if self.eat('}') {
                return Ok(map);
            }
            let key_at = self.pos;
            let key = match self.value()? {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(true) => "True".to_owned(),
                Value::Bool(false) => "False".to_owned(),
                Value::Null => "None".to_owned(),
                Value::Array(_) | Value::Object(_) => {
                    return Err(LiteralError {
                        at: key_at,
                        message: "unhashable dict key".into(),
                    });
                }
            };
            self.skip_ws();
            if !self.eat(':') {
                return Err(self.error("expected ':'"));
            }
            self.skip_ws();
            let value = self.value()?;
            map.insert(key, value);
            self.skip_ws();
            if self.eat(',') {
                continue;
            }
            if self.eat('}') {
                return Ok(map);
            }
            return Err(self.error("expected ',' or '}'"));
        }
    }

    fn hex_escape(&mut self, digits: usize) -> Result<u32, LiteralError> {
        let start = self.pos;
        let text = self
            .src
            .get(start..start + digits)
            .filter(|t| t.chars().all(|c| c.is_ascii_hexdigit()));
        let Some(text) = text else {
            return Err(self.error(format!("expected {digits} hex digits")));
        };
        self.pos += digits;
        u32::from_str_radix(text, 16).map_err(|e| self.error(e.to_string()))
    }

    /// The rest of a string opened by `quote`.
    fn string(&mut self, quote: char, raw: bool) -> Result<String, LiteralError> {
        let mut out = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(self.error("unterminated string"));
            };
            match c {
                c if c == quote => return Ok(out),
                '\n' => return Err(self.error("newline in string")),
                '\\' if raw => {
                    out.push('\\');
                    if let Some(next) = self.bump() {
                        out.push(next);
                    }
                }
                '\\' => self.escape(&mut out)?,
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), LiteralError> {
        let Some(c) = self.bump() else {
            return Err(self.error("unterminated string"));
        };
        let code = match c {
            '\n' => return Ok(()),
            'n' => '\n' as u32,
            't' => '\t' as u32,
            'r' => '\r' as u32,
            'b' => 0x08,
            'f' => 0x0c,
            'v' => 0x0b,
            'a' => 0x07,
            '\\' | '\'' | '"' | '/' => c as u32,
            'x' => self.hex_escape(2)?,
            'u' => {
                let high = self.hex_escape(4)?;
                if (0xd800..0xdc00).contains(&high) && self.src[self.pos..].starts_with("\\u") {
                    self.pos += 2;
                    let low = self.hex_escape(4)?;
                    if !(0xdc00..0xe000).contains(&low) {
                        return Err(self.error("unpaired surrogate"));
                    }
                    0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                } else {
                    high
                }
            }
            'U' => self.hex_escape(8)?,
            '0'..='7' => {
                let mut code = c as u32 - '0' as u32;
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ '0'..='7') => {
                            self.bump();
                            code = code * 8 + (d as u32 - '0' as u32);
                        }
                        _ => break,
                    }
                }
                code
            }
            other => {
                // Python keeps unknown escapes as written.
                out.push('\\');
                out.push(other);
                return Ok(());
            }
        };
        let ch = char::from_u32(code)
            .ok_or_else(|| self.error(format!("invalid code point {code:#x}")))?;
        out.push(ch);
        Ok(())
    }

    fn number(&mut self) -> Result<Value, LiteralError> {
        let start = self.pos;
        let mut prev = None;
        while let Some(c) = self.peek() {
            let exponent_sign = matches!(c, '+' | '-') && matches!(prev, Some('e' | 'E'));
            let leading_sign = matches!(c, '+' | '-') && self.pos == start;
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') || exponent_sign || leading_sign
            {
                self.bump();
                prev = Some(c);
            } else {
                break;
            }
        }
        let text = &self.src[start..self.pos];
        let invalid = || LiteralError {
            at: start,
            message: format!("invalid number {text:?}"),
        };
        let cleaned: String = text.chars().filter(|&c| c != '_').collect();
        let (negative, unsigned) = match cleaned.as_bytes().first() {
            Some(b'-') => (true, &cleaned[1..]),
            Some(b'+') => (false, &cleaned[1..]),
            _ => (false, cleaned.as_str()),
        };
        let radix = match unsigned.get(..2).map(str::to_ascii_lowercase).as_deref() {
            Some("0x") => Some(16),
            Some("0o") => Some(8),
            Some("0b") => Some(2),
            _ => None,
        };
        if let Some(radix) = radix {
            let magnitude = i64::from_str_radix(&unsigned[2..], radix).map_err(|_| invalid())?;
            return Ok(Value::from(if negative { -magnitude } else { magnitude }));
        }
        if unsigned.is_empty() || !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return Err(invalid());
        }
        if !unsigned.contains(['.', 'e', 'E']) {
            if !unsigned.chars().all(|c| c.is_ascii_digit()) {
                return Err(invalid());
            }
            if let Ok(int) = cleaned.parse::<i64>() {
                return Ok(Value::from(int));
            }
            if let Ok(int) = cleaned.parse::<u64>() {
                return Ok(Value::from(int));
            }
            return Err(LiteralError {
                at: start,
                message: format!("integer {text} out of range"),
            });
        }
        let float = cleaned.parse::<f64>().map_err(|_| invalid())?;
        Number::from_f64(float)
            .map(Value::Number)
            .ok_or_else(invalid)
    }

    fn word(&mut self) -> Result<Value, LiteralError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.bump();
        }
        let word = &self.src[start..self.pos];
        match word {
            "True" | "true" => Ok(Value::Bool(true)),
            "False" | "false" => Ok(Value::Bool(false)),
            "None" | "null" => Ok(Value::Null),
            "u" | "U" | "r" | "R" => match self.peek() {
                Some(q @ ('\'' | '"')) => {
                    self.bump();
                    self.string(q, word.eq_ignore_ascii_case("r"))
                        .map(Value::String)
                }
                _ => Err(LiteralError {
                    at: start,
                    message: format!("unknown name {word:?}"),
                }),
            },
            _ => Err(LiteralError {
                at: start,
                message: format!("unknown name {word:?}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(text: &str, expect: Option<Value>) {
        let got = parse(text);
        match expect {
            Some(value) => assert_eq!(got, Ok(value), "{text:?}"),
            None => assert!(got.is_err(), "{text:?} parsed as {got:?}"),
        }
    }

    #[test]
    fn reads_json_and_python_literals() {
        check("[1, 2]", Some(json!([1, 2])));
        check("(1, 2)", Some(json!([1, 2])));
        check("(1,)", Some(json!([1])));
        check("(1)", Some(json!(1)));
        check("()", Some(json!([])));
        check("[1, 2,]", Some(json!([1, 2])));
        check(
            "{'a': 1, \"b\": [True, False, None]}",
            Some(json!({"a": 1, "b": [true, false, null]})),
        );
        check(
            "{1: 'x', True: 'y', None: 'z', 2.5: 'w'}",
            Some(json!({"1": "x", "True": "y", "None": "z", "2.5": "w"})),
        );
        check(
            "{'a': (1, 2), 'b': {'c': ()}}",
            Some(json!({"a": [1, 2], "b": {"c": []}})),
        );
        check(" 'it\\'s' ", Some(json!("it's")));
        check("'\\x41\\u00e9\\U0001F600\\n\\101'", Some(json!("Aé😀\nA")));
        check("\"\\ud83d\\ude00\"", Some(json!("😀")));
        check("r'a\\nb'", Some(json!("a\\nb")));
        check("u'abc'", Some(json!("abc")));
        check("'\\q'", Some(json!("\\q")));
        check("1_000", Some(json!(1000)));
        check("+5", Some(json!(5)));
        check("-0x1f", Some(json!(-31)));
        check("0b101", Some(json!(5)));
        check("0o17", Some(json!(15)));
        check("1.5e-3", Some(json!(0.0015)));
        check("1.", Some(json!(1.0)));
        check(".5", Some(json!(0.5)));
        check("18446744073709551615", Some(json!(u64::MAX)));
        check("-9_223_372_036_854_775_808", Some(json!(i64::MIN)));
        check("(1 , 2 ,)", Some(json!([1, 2])));
        check("true", Some(json!(true)));
        check("[[[]]]", Some(json!([[[]]])));
    }

    #[test]
    fn rejects_what_is_not_a_literal() {
        for text in [
            "",
            "[",
            "[1 2]",
            "[,]",
            "[1,,2]",
            "{1, 2}",
            "{'a' 1}",
            "{[1]: 2}",
            "'abc",
            "'a\nb'",
            "abc",
            "u",
            "1e999",
            "1abc",
            "1.2.3",
            "-",
            "+",
            "0xg",
            "[1] 2",
            "@",
            "'\\x4'",
            "'\\ud800\\u0041'",
            "'\\U00110000'",
        ] {
            check(text, None);
        }
    }

    #[test]
    fn limits_depth() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        check(&deep, None);
        let tuples = "(".repeat(10_000);
        check(&tuples, None);
        let ok = "(".repeat(MAX_DEPTH) + "1," + &")".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }
}
