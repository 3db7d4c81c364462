//! The subset of CEL (Common Expression Language) that workload identity pool providers use
//! in attribute mappings and conditions: string/bool/list literals, field selection,
//! `.extract('…{x}…')`, `.contains`, `.startsWith`, `.endsWith`, `size`, `==`, `!=`,
//! `in`, `&&`, `||`, `!`, `? :` and `+`.
//!
//! A small hand-written evaluator: the maintained CEL crate (`cel` 0.15) has no `extract`
//! (a Google extension) and pulls an ANTLR runtime, too heavy for this subset.

use std::collections::BTreeMap;
use std::fmt;

/// A CEL value of the subset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
    Null,
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Null => "null",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "'{s}'"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Null => f.write_str("null"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => write!(f, "{{{} keys}}", m.len()),
        }
    }
}

/// A parse or evaluation error, with the byte offset of the problem when parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CelError {
    pub message: String,
}

impl fmt::Display for CelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, CelError> {
    Err(CelError {
        message: message.into(),
    })
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Sym(&'static str),
}

const SYMBOLS: &[&str] = &[
    "&&", "||", "==", "!=", "<=", ">=", "(", ")", "[", "]", ",", ".", "?", ":", "!", "+", "<", ">",
];

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, CelError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'\'' || c == b'"' {
            let start = i;
            i += 1;
            let mut s = String::new();
            loop {
                let Some(ch) = src[i..].chars().next() else {
                    return err(format!("unterminated string starting at offset {start}"));
                };
                i += ch.len_utf8();
                match ch {
                    _ if ch as u32 == c as u32 => break,
                    '\\' => {
                        let Some(esc) = src[i..].chars().next() else {
                            return err(format!("unterminated string starting at offset {start}"));
                        };
                        i += esc.len_utf8();
                        s.push(match esc {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '\\' | '\'' | '"' | '`' | '?' => esc,
                            other => {
                                return err(format!(
                                    "unsupported escape `\\{other}` in the string at offset {start}"
                                ));
                            }
                        });
                    }
                    _ => s.push(ch),
                }
            }
            out.push((start, Tok::Str(s)));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let n = src[start..i]
                .parse()
                .or_else(|_| err(format!("integer too large at offset {start}")))?;
            out.push((start, Tok::Int(n)));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((start, Tok::Ident(src[start..i].to_string())));
        } else if let Some(sym) = SYMBOLS.iter().find(|s| src[i..].starts_with(**s)) {
            out.push((i, Tok::Sym(sym)));
            i += sym.len();
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return err(format!("unexpected character `{ch}` at offset {i}"));
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    Lit(Value),
    List(Vec<Expr>),
    Ident(String),
    Select(Box<Expr>, String),
    Call(Box<Expr>, Method, Vec<Expr>),
    Size(Box<Expr>),
    Not(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// The receiver-style functions of the subset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Extract,
    Contains,
    StartsWith,
    EndsWith,
    Size,
}

impl Method {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "extract" => Method::Extract,
            "contains" => Method::Contains,
            "startsWith" => Method::StartsWith,
            "endsWith" => Method::EndsWith,
            "size" => Method::Size,
            _ => return None,
        })
    }

    fn arity(self) -> usize {
        if self == Method::Size { 0 } else { 1 }
    }
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(usize, Tok)>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.toks
            .get(self.pos)
            .map_or(self.src.len(), |(offset, _)| *offset)
    }

    fn eat(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, sym: &str) -> Result<(), CelError> {
        if self.eat(sym) {
            Ok(())
        } else {
            let found = self.describe_next();
            err(format!(
                "expected `{sym}` at offset {}, found {found}",
                self.offset()
            ))
        }
    }

    fn describe_next(&self) -> String {
        match self.peek() {
            None => "the end of the expression".into(),
            Some(Tok::Ident(s)) => format!("`{s}`"),
            Some(Tok::Str(s)) => format!("the string '{s}'"),
            Some(Tok::Int(i)) => format!("`{i}`"),
            Some(Tok::Sym(s)) => format!("`{s}`"),
        }
    }

    fn expr(&mut self) -> Result<Expr, CelError> {
        let cond = self.or()?;
        if self.eat("?") {
            let then = self.expr()?;
            self.expect(":")?;
            let otherwise = self.expr()?;
            return Ok(Expr::Cond(
                Box::new(cond),
                Box::new(then),
                Box::new(otherwise),
            ));
        }
        Ok(cond)
    }

    fn or(&mut self) -> Result<Expr, CelError> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Expr::Bin(BinOp::Or, Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, CelError> {
        let mut left = self.relation()?;
        while self.eat("&&") {
            left = Expr::Bin(BinOp::And, Box::new(left), Box::new(self.relation()?));
        }
        Ok(left)
    }

    fn relation(&mut self) -> Result<Expr, CelError> {
        let mut left = self.addition()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Sym("==")) => BinOp::Eq,
                Some(Tok::Sym("!=")) => BinOp::Ne,
                Some(Tok::Sym("<")) => BinOp::Lt,
                Some(Tok::Sym("<=")) => BinOp::Le,
                Some(Tok::Sym(">")) => BinOp::Gt,
                Some(Tok::Sym(">=")) => BinOp::Ge,
                Some(Tok::Ident(s)) if s == "in" => BinOp::In,
                _ => return Ok(left),
            };
            self.pos += 1;
            left = Expr::Bin(op, Box::new(left), Box::new(self.addition()?));
        }
    }

    fn addition(&mut self) -> Result<Expr, CelError> {
        let mut left = self.unary()?;
        while self.eat("+") {
            left = Expr::Bin(BinOp::Add, Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, CelError> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.member()
    }

    fn member(&mut self) -> Result<Expr, CelError> {
        let mut e = self.primary()?;
        while self.eat(".") {
            let at = self.offset();
            let Some(Tok::Ident(name)) = self.peek().cloned() else {
                return err(format!(
                    "expected a field or function name after `.` at offset {at}, found {}",
                    self.describe_next()
                ));
            };
            self.pos += 1;
            if self.eat("(") {
                let method = Method::parse(&name).ok_or_else(|| CelError {
                    message: format!(
                        "unsupported function `{name}` at offset {at}: the providers' CEL subset has extract, contains, startsWith, endsWith and size"
                    ),
                })?;
                let args = self.args(")")?;
                if args.len() != method.arity() {
                    return err(format!(
                        "`{name}` at offset {at} takes {} argument(s), got {}",
                        method.arity(),
                        args.len()
                    ));
                }
                e = Expr::Call(Box::new(e), method, args);
            } else {
                e = Expr::Select(Box::new(e), name);
            }
        }
        Ok(e)
    }

    fn args(&mut self, close: &str) -> Result<Vec<Expr>, CelError> {
        let mut args = Vec::new();
        if self.eat(close) {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat(close) {
                return Ok(args);
            }
            self.expect(",")?;
            if self.eat(close) {
                return Ok(args);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, CelError> {
        let at = self.offset();
        let tok = self.peek().cloned();
        self.pos += 1;
        Ok(match tok {
            Some(Tok::Str(s)) => Expr::Lit(Value::Str(s)),
            Some(Tok::Int(i)) => Expr::Lit(Value::Int(i)),
            Some(Tok::Ident(name)) => match name.as_str() {
                "true" => Expr::Lit(Value::Bool(true)),
                "false" => Expr::Lit(Value::Bool(false)),
                "null" => Expr::Lit(Value::Null),
                "size" if self.eat("(") => {
                    let mut args = self.args(")")?;
                    if args.len() != 1 {
                        return err(format!("`size` at offset {at} takes one argument"));
                    }
                    Expr::Size(Box::new(args.remove(0)))
                }
                "in" => return err(format!("unexpected `in` at offset {at}")),
                _ => Expr::Ident(name),
            },
            Some(Tok::Sym("(")) => {
                let e = self.expr()?;
                self.expect(")")?;
                e
            }
            Some(Tok::Sym("[")) => Expr::List(self.args("]")?),
            _ => {
                self.pos -= 1;
                return err(format!(
                    "expected a value at offset {at}, found {}",
                    self.describe_next()
                ));
            }
        })
    }
}

/// Parses one expression.
pub(crate) fn parse(src: &str) -> Result<Expr, CelError> {
    let mut p = Parser {
        src,
        toks: lex(src)?,
        pos: 0,
    };
    if p.toks.is_empty() {
        return err("the expression is empty");
    }
    let e = p.expr()?;
    if p.pos < p.toks.len() {
        return err(format!(
            "unexpected {} at offset {}",
            p.describe_next(),
            p.offset()
        ));
    }
    Ok(e)
}

/// Google's `extract`: the text matched by the `{name}` placeholder of `template` in `s`,
/// or the empty string if the template does not occur.
pub(crate) fn extract(s: &str, template: &str) -> Result<String, CelError> {
    let (Some(open), Some(close)) = (template.find('{'), template.find('}')) else {
        return err(format!(
            "extract template '{template}' needs one {{placeholder}}"
        ));
    };
    if close < open || template[close + 1..].contains(['{', '}']) {
        return err(format!(
            "extract template '{template}' needs exactly one {{placeholder}}"
        ));
    }
    let (prefix, suffix) = (&template[..open], &template[close + 1..]);
    let Some(start) = s.find(prefix).map(|i| i + prefix.len()) else {
        return Ok(String::new());
    };
    let rest = &s[start..];
    if suffix.is_empty() {
        return Ok(rest.to_string());
    }
    Ok(rest
        .find(suffix)
        .map(|end| rest[..end].to_string())
        .unwrap_or_default())
}

/// Evaluates `e` with the given top-level variables (`assertion`, `google`, `attribute`).
pub(crate) fn eval(e: &Expr, vars: &BTreeMap<String, Value>) -> Result<Value, CelError> {
    match e {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::List(items) => items
            .iter()
            .map(|i| eval(i, vars))
            .collect::<Result<_, _>>()
            .map(Value::List),
        Expr::Ident(name) => vars.get(name).cloned().ok_or_else(|| CelError {
            message: format!("undeclared reference to `{name}`"),
        }),
        Expr::Select(target, field) => match eval(target, vars)? {
            Value::Map(mut m) => m.remove(field).ok_or_else(|| CelError {
                message: format!("no such key: {}", describe_path(e)),
            }),
            other => err(format!(
                "cannot select `{field}` from a {}",
                other.type_name()
            )),
        },
        Expr::Call(target, method, args) => {
            let recv = eval(target, vars)?;
            let arg = args.first().map(|a| eval(a, vars)).transpose()?;
            match (method, recv, arg) {
                (Method::Size, Value::Str(s), None) => Ok(Value::Int(s.chars().count() as i64)),
                (Method::Size, Value::List(l), None) => Ok(Value::Int(l.len() as i64)),
                (m, Value::Str(s), Some(Value::Str(a))) => Ok(match m {
                    Method::Extract => Value::Str(extract(&s, &a)?),
                    Method::Contains => Value::Bool(s.contains(&a)),
                    Method::StartsWith => Value::Bool(s.starts_with(&a)),
                    Method::EndsWith => Value::Bool(s.ends_with(&a)),
                    Method::Size => unreachable!("size takes no argument"),
                }),
                (m, recv, arg) => err(format!(
                    "no matching overload for {m:?} on a {} with {}",
                    recv.type_name(),
                    arg.map_or("no argument", |a| a.type_name())
                )),
            }
        }
        Expr::Size(inner) => match eval(inner, vars)? {
            Value::Str(s) => Ok(Value::Int(s.chars().count() as i64)),
            Value::List(l) => Ok(Value::Int(l.len() as i64)),
            other => err(format!("no size of a {}", other.type_name())),
        },
        Expr::Not(inner) => match eval(inner, vars)? {
            Value::Bool(b) => Ok(Value::Bool(!b)),
            other => err(format!("`!` needs a bool, got a {}", other.type_name())),
        },
        Expr::Cond(c, then, otherwise) => match eval(c, vars)? {
            Value::Bool(true) => eval(then, vars),
            Value::Bool(false) => eval(otherwise, vars),
            other => err(format!(
                "the condition of `? :` must be a bool, got a {}",
                other.type_name()
            )),
        },
        Expr::Bin(op @ (BinOp::And | BinOp::Or), l, r) => {
            // CEL's && and || are commutative over errors: false && error == false.
            let short = *op == BinOp::Or;
            let left = eval(l, vars).and_then(|v| bool_operand(op, v));
            if left == Ok(short) {
                return Ok(Value::Bool(short));
            }
            let right = eval(r, vars).and_then(|v| bool_operand(op, v));
            match (left, right) {
                (_, Ok(b)) if b == short => Ok(Value::Bool(short)),
                (Ok(_), Ok(b)) => Ok(Value::Bool(b)),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        Expr::Bin(op, l, r) => {
            let (l, r) = (eval(l, vars)?, eval(r, vars)?);
            match (op, l, r) {
                (BinOp::Eq, l, r) => Ok(Value::Bool(l == r)),
                (BinOp::Ne, l, r) => Ok(Value::Bool(l != r)),
                (BinOp::In, l, Value::List(items)) => Ok(Value::Bool(items.contains(&l))),
                (BinOp::In, Value::Str(k), Value::Map(m)) => Ok(Value::Bool(m.contains_key(&k))),
                (BinOp::Add, Value::Str(a), Value::Str(b)) => Ok(Value::Str(a + &b)),
                (BinOp::Add, Value::Int(a), Value::Int(b)) => {
                    a.checked_add(b).map(Value::Int).ok_or_else(|| CelError {
                        message: "integer overflow".into(),
                    })
                }
                (BinOp::Add, Value::List(mut a), Value::List(b)) => {
                    a.extend(b);
                    Ok(Value::List(a))
                }
                (op @ (BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge), l, r) => {
                    let ord = match (&l, &r) {
                        (Value::Int(a), Value::Int(b)) => a.cmp(b),
                        (Value::Str(a), Value::Str(b)) => a.cmp(b),
                        _ => {
                            return err(format!(
                                "cannot compare a {} with a {}",
                                l.type_name(),
                                r.type_name()
                            ));
                        }
                    };
                    Ok(Value::Bool(match op {
                        BinOp::Lt => ord.is_lt(),
                        BinOp::Le => ord.is_le(),
                        BinOp::Gt => ord.is_gt(),
                        _ => ord.is_ge(),
                    }))
                }
                (op, l, r) => err(format!(
                    "no matching overload for {op:?} on a {} and a {}",
                    l.type_name(),
                    r.type_name()
                )),
            }
        }
    }
}

fn bool_operand(op: &BinOp, v: Value) -> Result<bool, CelError> {
    match v {
        Value::Bool(b) => Ok(b),
        other => err(format!(
            "{} needs bool operands, got a {}",
            if *op == BinOp::And { "&&" } else { "||" },
            other.type_name()
        )),
    }
}

fn describe_path(e: &Expr) -> String {
    match e {
        Expr::Ident(n) => n.clone(),
        Expr::Select(t, f) => format!("{}.{f}", describe_path(t)),
        _ => "(expression)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> Result<Value, CelError> {
        let mut assertion = BTreeMap::new();
        assertion.insert(
            "arn".to_string(),
            Value::Str("arn:aws:sts::111122223333:assumed-role/my-role/my-session".into()),
        );
        assertion.insert("account".to_string(), Value::Str("111122223333".into()));
        let vars = BTreeMap::from([("assertion".to_string(), Value::Map(assertion))]);
        eval(&parse(src)?, &vars)
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    #[test]
    fn expressions() {
        let cases: &[(&str, Value)] = &[
            ("'a' + \"b\"", s("ab")),
            ("assertion.account", s("111122223333")),
            (
                "assertion.arn.extract('assumed-role/{role}/')",
                s("my-role"),
            ),
            (
                "assertion.arn.extract('{account_arn}assumed-role/')",
                s("arn:aws:sts::111122223333:"),
            ),
            (
                "assertion.arn.extract('/{session}')",
                s("my-role/my-session"),
            ),
            ("assertion.arn.extract('user/{name}/')", s("")),
            ("assertion.arn.contains('assumed-role')", Value::Bool(true)),
            (
                "assertion.arn.startsWith('arn:aws:iam::')",
                Value::Bool(false),
            ),
            ("assertion.arn.endsWith('/my-session')", Value::Bool(true)),
            ("'b' in ['a', 'b',]", Value::Bool(true)),
            ("'c' in ['a', 'b']", Value::Bool(false)),
            ("!('c' in [])", Value::Bool(true)),
            ("true || false && false", Value::Bool(true)),
            ("(true || false) && false", Value::Bool(false)),
            ("false ? 'x' : true ? 'y' : 'z'", s("y")),
            ("'a' == 'a' && 'a' != 'b'", Value::Bool(true)),
            ("'x' == true", Value::Bool(false)),
            ("size(assertion.account) == 12", Value::Bool(true)),
            ("assertion.account.size() > 11", Value::Bool(true)),
            ("'it\\'s'", s("it's")),
            // Errors on the right do not matter when the left decides.
            ("true || assertion.nope == 'x'", Value::Bool(true)),
            ("assertion.nope == 'x' && false", Value::Bool(false)),
            ("'account' in assertion", Value::Bool(true)),
        ];
        for (src, want) in cases {
            assert_eq!(run(src).as_ref(), Ok(want), "{src}");
        }
    }

    #[test]
    fn errors_say_where() {
        let cases = [
            ("", "empty"),
            ("'abc", "unterminated"),
            ("a.", "after `.` at offset 2"),
            (
                "assertion.arn.matches('x')",
                "unsupported function `matches`",
            ),
            ("assertion.arn.extract()", "takes 1 argument"),
            ("(true", "expected `)`"),
            ("true false", "unexpected `false` at offset 5"),
            ("a # b", "unexpected character `#`"),
            ("x == 'y'", "undeclared reference to `x`"),
            ("assertion.userid == 'y'", "no such key: assertion.userid"),
            ("'a' + true", "no matching overload"),
            ("'a' ? 'b' : 'c'", "must be a bool"),
            ("assertion.arn.extract('no placeholder')", "placeholder"),
            ("!'a'", "needs a bool"),
        ];
        for (src, want) in cases {
            let e = run(src).expect_err(src);
            assert!(e.message.contains(want), "{src}: {e}");
        }
    }

    #[test]
    fn extract_matches_google_examples() {
        // From Google's attribute-mapping documentation.
        assert_eq!(
            extract(
                "arn:aws:sts::123456789012:assumed-role/role-name/session",
                "assumed-role/{role_name}/"
            )
            .unwrap(),
            "role-name"
        );
        assert_eq!(
            extract("projects/p/zones/z", "projects/{project}/").unwrap(),
            "p"
        );
        assert_eq!(extract("abc", "{all}").unwrap(), "abc");
        assert_eq!(extract("abc", "x{y}").unwrap(), "");
    }
}
