//! `calculator`: evaluates an arithmetic expression with a hand-written
//! recursive-descent parser. No code runs: the grammar is numbers, named
//! variables, `+ - * / % ^` (also `**`), parentheses, unary minus and the
//! functions `sqrt abs min max round floor ceil`.
//!
//! ```text
//! expr    = term (("+" | "-") term)*
//! term    = unary (("*" | "/" | "%") unary)*
//! unary   = ("-" | "+") unary | power
//! power   = primary (("^" | "**") unary)?      right-associative; -2^2 = -4
//! primary = number | name | name "(" expr ("," expr)* ")" | "(" expr ")"
//! ```
//!
//! Every cost is bounded: the expression is at most [`MAX_EXPRESSION_LEN`]
//! bytes, nesting at most [`MAX_DEPTH`], evaluation at most [`MAX_STEPS`]
//! steps, and each step is O(1) floating-point work, so `9**9**8` (62 s in the
//! ancestor) fails at once: a non-finite intermediate result is an error, as is
//! division by zero.
//!
//! Input `{"expression": "...", "precision"?: 0..=15, "variables"?: {name: number}}`,
//! output `{"result": number}` rounded to `precision` decimals (default 10).

use std::collections::BTreeMap;
use std::process::ExitCode;

use atr_example_tools::{ToolError, number, parse, run};
use serde::Deserialize;
use serde_json::{Value, json};

/// Longest expression, in bytes (the ancestor's limit, kept).
const MAX_EXPRESSION_LEN: usize = 1000;
/// Deepest nesting of parentheses, function calls, unary signs and exponents
/// (each counts one level); bounds the parser's recursion and so its stack use.
const MAX_DEPTH: usize = 64;
/// Evaluation budget: one step per number, name, operator or call. An
/// expression of [`MAX_EXPRESSION_LEN`] bytes needs far fewer; the budget is a
/// second, explicit bound.
const MAX_STEPS: u32 = 10_000;
/// Most variables in one input.
const MAX_VARIABLES: usize = 32;
/// Longest variable name.
const MAX_NAME_LEN: usize = 32;
/// Most decimals in the result: an `f64` carries about 15-17 significant digits.
const MAX_PRECISION: u32 = 15;
/// Decimals when `precision` is not given; hides binary noise such as
/// `0.1 + 0.2 = 0.30000000000000004`.
const DEFAULT_PRECISION: u32 = 10;
/// Names that are not variables: the functions and constants.
const RESERVED: &[&str] = &["sqrt", "abs", "min", "max", "round", "floor", "ceil", "pi", "e"];

fn main() -> ExitCode {
    run(calculate)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    expression: String,
    #[serde(default)]
    precision: Option<u32>,
    #[serde(default)]
    variables: BTreeMap<String, f64>,
}

fn calculate(input: Value) -> Result<Value, ToolError> {
    let input: Input = parse(input)?;
    let precision = input.precision.unwrap_or(DEFAULT_PRECISION);
    if precision > MAX_PRECISION {
        return Err(bad(
            "invalid_input",
            format!("precision {precision} is over the maximum of {MAX_PRECISION}"),
        ));
    }
    check_variables(&input.variables)?;
    let value = evaluate(&input.expression, &input.variables)?;
    Ok(json!({ "result": number(round_to(value, precision))? }))
}

fn bad(code: &'static str, message: impl Into<String>) -> ToolError {
    ToolError::bad_input(code, message)
}

fn check_variables(vars: &BTreeMap<String, f64>) -> Result<(), ToolError> {
    if vars.len() > MAX_VARIABLES {
        return Err(bad(
            "invalid_variable",
            format!(
                "{} variables is more than the {MAX_VARIABLES} allowed",
                vars.len()
            ),
        ));
    }
    for name in vars.keys() {
        let mut chars = name.chars();
        let ok = name.len() <= MAX_NAME_LEN
            && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(bad(
                "invalid_variable",
                format!(
                    "variable name `{}` must be 1-{MAX_NAME_LEN} ASCII letters, digits or `_`, not starting with a digit",
                    name.chars().take(40).collect::<String>()
                ),
            ));
        }
        if RESERVED.contains(&name.as_str()) {
            return Err(bad(
                "invalid_variable",
                format!("`{name}` is a function or constant name and cannot be a variable"),
            ));
        }
    }
    Ok(())
}

/// Rounds to `digits` decimals through the shortest decimal representation,
/// which rounds exactly (`(x * 10^d).round()` overflows for large `x`).
fn round_to(x: f64, digits: u32) -> f64 {
    let d = digits as usize;
    format!("{x:.d$}").parse().unwrap_or(x)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Op(char),
    Pow,
    LParen,
    RParen,
    Comma,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Num(n) => format!("number {n}"),
            Tok::Name(s) => format!("`{s}`"),
            Tok::Op(c) => format!("`{c}`"),
            Tok::Pow => "`^`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::End => "the end of the expression".into(),
        }
    }
}

/// Splits the expression into tokens, each with its byte offset.
fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ToolError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'0'..=b'9' | b'.' => {
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                    i += 1;
                }
                if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                    let mut j = i + 1;
                    if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                        j += 1;
                    }
                    if j < bytes.len() && bytes[j].is_ascii_digit() {
                        while j < bytes.len() && bytes[j].is_ascii_digit() {
                            j += 1;
                        }
                        i = j;
                    }
                }
                let text = &src[start..i];
                let n: f64 = text.parse().map_err(|_| {
                    bad(
                        "syntax_error",
                        format!("`{text}` at position {start} is not a number"),
                    )
                })?;
                if !n.is_finite() {
                    return Err(bad(
                        "overflow",
                        format!("the number `{text}` at position {start} is too large"),
                    ));
                }
                Tok::Num(n)
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                Tok::Name(src[start..i].to_owned())
            }
            b'*' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                Tok::Pow
            }
            b'^' => {
                i += 1;
                Tok::Pow
            }
            b'+' | b'-' | b'*' | b'/' | b'%' => {
                i += 1;
                Tok::Op(c as char)
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            _ => {
                let ch = src[start..].chars().next().unwrap_or('?');
                return Err(bad(
                    "syntax_error",
                    format!("unexpected character `{ch}` at position {start}"),
                ));
            }
        };
        out.push((tok, start));
    }
    out.push((Tok::End, src.len()));
    Ok(out)
}

/// Parses and evaluates `src` in one pass.
fn evaluate(src: &str, vars: &BTreeMap<String, f64>) -> Result<f64, ToolError> {
    if src.len() > MAX_EXPRESSION_LEN {
        return Err(bad(
            "expression_too_long",
            format!(
                "the expression is {} bytes, over the {MAX_EXPRESSION_LEN}-byte limit",
                src.len()
            ),
        ));
    }
    if src.trim().is_empty() {
        return Err(bad("syntax_error", "the expression is empty"));
    }
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
        depth: 0,
        steps: 0,
        vars,
    };
    let v = p.expr()?;
    match p.peek() {
        (Tok::End, _) => Ok(v),
        (t, at) => Err(bad(
            "syntax_error",
            format!("unexpected {} at position {at}", t.describe()),
        )),
    }
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
    steps: u32,
    vars: &'a BTreeMap<String, f64>,
}

impl Parser<'_> {
    fn peek(&self) -> (&Tok, usize) {
        // The token list always ends with `End`, which is never consumed.
        let (t, at) = &self.toks[self.pos.min(self.toks.len() - 1)];
        (t, *at)
    }

    fn advance(&mut self) {
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
    }

    fn step(&mut self) -> Result<(), ToolError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(bad(
                "too_many_steps",
                format!("the expression needs more than {MAX_STEPS} evaluation steps"),
            ));
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<(), ToolError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(bad(
                "too_deep",
                format!("the expression nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn finite(&self, x: f64, what: &str, at: usize) -> Result<f64, ToolError> {
        if x.is_nan() {
            Err(bad(
                "domain_error",
                format!("{what} at position {at} has no real result"),
            ))
        } else if x.is_infinite() {
            Err(bad(
                "overflow",
                format!("{what} at position {at} is too large (beyond ±1.8e308)"),
            ))
        } else {
            Ok(x)
        }
    }

    fn expr(&mut self) -> Result<f64, ToolError> {
        let mut acc = self.term()?;
        loop {
            let (op, at) = match self.peek() {
                (Tok::Op(c @ ('+' | '-')), at) => (*c, at),
                _ => return Ok(acc),
            };
            self.advance();
            self.step()?;
            let rhs = self.term()?;
            let v = if op == '+' { acc + rhs } else { acc - rhs };
            acc = self.finite(v, if op == '+' { "the sum" } else { "the difference" }, at)?;
        }
    }

    fn term(&mut self) -> Result<f64, ToolError> {
        let mut acc = self.unary()?;
        loop {
            let (op, at) = match self.peek() {
                (Tok::Op(c @ ('*' | '/' | '%')), at) => (*c, at),
                _ => return Ok(acc),
            };
            self.advance();
            self.step()?;
            let rhs = self.unary()?;
            if op != '*' && rhs == 0.0 {
                return Err(bad(
                    "division_by_zero",
                    format!("division by zero at position {at}"),
                ));
            }
            let (v, what) = match op {
                '*' => (acc * rhs, "the product"),
                '/' => (acc / rhs, "the quotient"),
                _ => (acc % rhs, "the remainder"),
            };
            acc = self.finite(v, what, at)?;
        }
    }

    fn unary(&mut self) -> Result<f64, ToolError> {
        let negate = match self.peek() {
            (Tok::Op('-'), _) => true,
            (Tok::Op('+'), _) => false,
            _ => return self.power(),
        };
        self.advance();
        self.step()?;
        self.enter()?;
        let v = self.unary()?;
        self.leave();
        Ok(if negate { -v } else { v })
    }

    fn power(&mut self) -> Result<f64, ToolError> {
        let base = self.primary()?;
        let (Tok::Pow, at) = self.peek() else {
            return Ok(base);
        };
        self.advance();
        self.step()?;
        self.enter()?;
        let exp = self.unary()?;
        self.leave();
        if base == 0.0 && exp < 0.0 {
            return Err(bad(
                "division_by_zero",
                format!("zero to a negative power at position {at}"),
            ));
        }
        // powf is O(1) whatever the exponent: 9^(9^8) is +inf at once.
        self.finite(base.powf(exp), "the power", at)
    }

    fn primary(&mut self) -> Result<f64, ToolError> {
        self.step()?;
        let (tok, at) = self.peek();
        let tok = tok.clone();
        self.advance();
        match tok {
            Tok::Num(n) => Ok(n),
            Tok::Name(name) => {
                if let (Tok::LParen, _) = self.peek() {
                    self.advance();
                    self.enter()?;
                    let args = self.args()?;
                    self.leave();
                    self.call(&name, &args, at)
                } else {
                    self.lookup(&name, at)
                }
            }
            Tok::LParen => {
                self.enter()?;
                let v = self.expr()?;
                self.expect_rparen(at)?;
                self.leave();
                Ok(v)
            }
            other => Err(bad(
                "syntax_error",
                format!(
                    "expected a number, a name or `(` at position {at}, found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn expect_rparen(&mut self, open: usize) -> Result<(), ToolError> {
        match self.peek() {
            (Tok::RParen, _) => {
                self.advance();
                Ok(())
            }
            (t, at) => Err(bad(
                "syntax_error",
                format!(
                    "expected `)` closing the `(` at position {open}, found {} at position {at}",
                    t.describe()
                ),
            )),
        }
    }

    /// Parses `expr ("," expr)* ")"` after a function's `(`.
    fn args(&mut self) -> Result<Vec<f64>, ToolError> {
        let open = self.peek().1;
        let mut args = vec![self.expr()?];
        while let (Tok::Comma, _) = self.peek() {
            self.advance();
            args.push(self.expr()?);
        }
        self.expect_rparen(open)?;
        Ok(args)
    }

    fn lookup(&self, name: &str, at: usize) -> Result<f64, ToolError> {
        match name {
            "pi" => Ok(std::f64::consts::PI),
            "e" => Ok(std::f64::consts::E),
            _ if RESERVED.contains(&name) => Err(bad(
                "syntax_error",
                format!("`{name}` at position {at} is a function: write `{name}(...)`"),
            )),
            _ => self.vars.get(name).copied().ok_or_else(|| {
                bad(
                    "unknown_name",
                    format!("unknown name `{name}` at position {at} (give it in `variables`)"),
                )
            }),
        }
    }

    fn call(&self, name: &str, args: &[f64], at: usize) -> Result<f64, ToolError> {
        let arity = |want: &str| {
            bad(
                "wrong_arity",
                format!(
                    "`{name}` at position {at} takes {want} argument(s), not {}",
                    args.len()
                ),
            )
        };
        let v = match (name, args) {
            ("sqrt", [x]) => x.sqrt(),
            ("abs", [x]) => x.abs(),
            ("floor", [x]) => x.floor(),
            ("ceil", [x]) => x.ceil(),
            ("round", [x]) => x.round(),
            ("round", [x, d]) => {
                if d.fract() != 0.0 || *d < 0.0 || *d > f64::from(MAX_PRECISION) {
                    return Err(bad(
                        "domain_error",
                        format!("`round` at position {at}: digits must be an integer in 0..={MAX_PRECISION}"),
                    ));
                }
                round_to(*x, *d as u32)
            }
            ("min", [_, ..]) => args.iter().copied().fold(f64::INFINITY, f64::min),
            ("max", [_, ..]) => args.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            ("sqrt" | "abs" | "floor" | "ceil", _) => return Err(arity("1")),
            ("round", _) => return Err(arity("1 or 2")),
            ("min" | "max", _) => return Err(arity("1 or more")),
            _ => {
                return Err(bad(
                    "unknown_function",
                    format!(
                        "unknown function `{name}` at position {at} (known: sqrt, abs, min, max, round, floor, ceil)"
                    ),
                ));
            }
        };
        self.finite(v, &format!("`{name}`"), at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn calc(expr: &str) -> Result<Value, ToolError> {
        calculate(json!({ "expression": expr }))
    }

    fn ok(expr: &str) -> Value {
        calc(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))["result"].clone()
    }

    fn code(expr: &str) -> String {
        calc(expr).unwrap_err().code().to_owned()
    }

    #[test]
    fn arithmetic_and_precedence() {
        assert_eq!(ok("2 * (3 + 4)"), json!(14));
        assert_eq!(ok("1 + 2 * 3"), json!(7));
        assert_eq!(ok("10 - 4 - 3"), json!(3));
        assert_eq!(ok("2 ^ 3 ^ 2"), json!(512));
        assert_eq!(ok("2 ** 10"), json!(1024));
        assert_eq!(ok("-2 ^ 2"), json!(-4));
        assert_eq!(ok("2 ^ -1"), json!(0.5));
        assert_eq!(ok("7 % 3"), json!(1));
        assert_eq!(ok("-7 % 3"), json!(-1));
        assert_eq!(ok("--3"), json!(3));
        assert_eq!(ok("+3"), json!(3));
        assert_eq!(ok("0.1 + 0.2"), json!(0.3));
        assert_eq!(ok("1.5e3 / .5"), json!(3000));
        assert_eq!(ok("1e-3"), json!(0.001));
    }

    #[test]
    #[allow(
        clippy::approx_constant,
        reason = "the expected values are the rounded constants"
    )]
    fn functions_and_constants() {
        assert_eq!(ok("sqrt(16) + abs(-2)"), json!(6));
        assert_eq!(ok("min(3, 1, 2) + max(3, 9)"), json!(10));
        assert_eq!(ok("round(2.5) + floor(1.9) + ceil(1.1)"), json!(6));
        assert_eq!(ok("round(3.14159, 2)"), json!(3.14));
        assert_eq!(ok("pi"), json!(3.1415926536));
        assert_eq!(ok("round(e, 3)"), json!(2.718));
    }

    #[test]
    fn precision_and_variables() {
        let out = calculate(json!({"expression": "sqrt(2)", "precision": 3})).unwrap();
        assert_eq!(out, json!({"result": 1.414}));
        let out = calculate(json!({"expression": "x ^ 2 + y", "variables": {"x": 3, "y": 0.5}})).unwrap();
        assert_eq!(out, json!({"result": 9.5}));
        let out = calculate(json!({"expression": "1/3", "precision": 0})).unwrap();
        assert_eq!(out, json!({"result": 0}));
        assert_eq!(
            calculate(json!({"expression": "1", "precision": 16}))
                .unwrap_err()
                .code(),
            "invalid_input"
        );
        for bad_name in ["sqrt", "pi", "1x", "a-b", ""] {
            let e = calculate(json!({"expression": "1", "variables": {bad_name: 1}})).unwrap_err();
            assert_eq!(e.code(), "invalid_variable", "{bad_name}");
        }
        assert_eq!(
            calculate(json!({"expression": "1", "extra": true}))
                .unwrap_err()
                .code(),
            "invalid_input"
        );
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(code("1 / 0"), "division_by_zero");
        assert_eq!(code("1 % (2 - 2)"), "division_by_zero");
        assert_eq!(code("0 ^ -1"), "division_by_zero");
        assert_eq!(code("sqrt(-1)"), "domain_error");
        assert_eq!(code("(-8) ^ (1/3)"), "domain_error");
        assert_eq!(code("x + 1"), "unknown_name");
        assert_eq!(code("factorial(5)"), "unknown_function");
        assert_eq!(code("sqrt(1, 2)"), "wrong_arity");
        assert_eq!(code("round(1, 0.5)"), "domain_error");
        for syntax in [
            "", "   ", "1 +", "(1", "1)", "2 3", "1 $ 2", "min(", "min()", "1..2", "sqrt 4", "é",
        ] {
            assert_eq!(code(syntax), "syntax_error", "{syntax:?}");
        }
    }

    #[test]
    fn hostile_expressions_fail_fast() {
        let start = Instant::now();
        assert_eq!(code("9**9**8"), "overflow");
        assert_eq!(code("9^9^9^9^9^9"), "overflow");
        assert_eq!(code("2 ^ 1024"), "overflow");
        assert_eq!(code("1e308 * 10"), "overflow");
        assert_eq!(code("1e400"), "overflow");
        assert_eq!(code("-1e308 - 1e308"), "overflow");
        assert_eq!(code(&"9".repeat(400)), "overflow");
        assert_eq!(
            code(&format!("{}1{}", "(".repeat(65), ")".repeat(65))),
            "too_deep"
        );
        assert_eq!(code(&format!("{}1", "-".repeat(200))), "too_deep");
        assert_eq!(code(&format!("{}1", "sqrt(".repeat(70))), "too_deep");
        assert_eq!(code(&"1+".repeat(500)), "syntax_error");
        assert_eq!(code(&"1".repeat(1001)), "expression_too_long");
        // The longest legal expressions stay far below the step budget and finish at once.
        assert_eq!(ok(&format!("{}1", "1+".repeat(499))), json!(500));
        assert_eq!(ok(&format!("{}1{}", "(".repeat(60), ")".repeat(60))), json!(1));
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
    }

    #[test]
    fn step_budget_is_enforced() {
        let vars = BTreeMap::new();
        let mut p = Parser {
            toks: lex("1+1").unwrap(),
            pos: 0,
            depth: 0,
            steps: MAX_STEPS - 1,
            vars: &vars,
        };
        assert_eq!(p.expr().unwrap_err().code(), "too_many_steps");
    }
}
