//! Recursive-descent evaluation of the token list.
//!
//! ```text
//! expr    := term (('+' | '-') term)*
//! term    := unary (('*' | '/' | '%') unary)*
//! unary   := ('-' | '+') unary | power
//! power   := primary ('^' unary)?          right-associative; binds tighter than unary minus
//! primary := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
//! ```

use crate::CalcError;
use crate::functions;
use crate::lexer::Token;

/// How deeply parentheses, unary signs and powers may nest.
pub(crate) const MAX_DEPTH: usize = 64;

/// Evaluates `tokens`; `len` is the input's length in characters, for errors at the end.
pub(crate) fn evaluate(tokens: &[(Token, usize)], len: usize) -> Result<f64, CalcError> {
    let mut parser = Parser {
        tokens,
        index: 0,
        depth: 0,
        end: len + 1,
    };
    if tokens.is_empty() {
        return Err(CalcError::at(1, "empty expression"));
    }
    let value = parser.expr()?;
    if let Some((token, pos)) = parser.peek() {
        return Err(CalcError::at(
            pos,
            format!("unexpected {}", describe(token)),
        ));
    }
    Ok(value)
}

struct Parser<'a> {
    tokens: &'a [(Token, usize)],
    index: usize,
    depth: usize,
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<(&Token, usize)> {
        self.tokens.get(self.index).map(|(t, p)| (t, *p))
    }

    fn next(&mut self) -> Option<(&Token, usize)> {
        let token = self.tokens.get(self.index).map(|(t, p)| (t, *p));
        self.index += 1;
        token
    }

    fn position(&self) -> usize {
        self.peek().map_or(self.end, |(_, p)| p)
    }

    fn enter(&mut self) -> Result<(), CalcError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CalcError::at(
                self.position(),
                format!("expression nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<f64, CalcError> {
        let mut value = self.term()?;
        while let Some((Token::Op(op @ ('+' | '-')), _)) = self.peek() {
            let op = *op;
            self.index += 1;
            let rhs = self.term()?;
            value = if op == '+' { value + rhs } else { value - rhs };
        }
        Ok(value)
    }

    fn term(&mut self) -> Result<f64, CalcError> {
        let mut value = self.unary()?;
        while let Some((Token::Op(op @ ('*' | '/' | '%')), pos)) = self.peek() {
            let op = *op;
            self.index += 1;
            let rhs = self.unary()?;
            value = match op {
                '*' => value * rhs,
                _ if rhs == 0.0 => return Err(CalcError::at(pos, "division by zero")),
                '/' => value / rhs,
                _ => value % rhs,
            };
        }
        Ok(value)
    }

    fn unary(&mut self) -> Result<f64, CalcError> {
        match self.peek() {
            Some((Token::Op(op @ ('-' | '+')), _)) => {
                let negate = *op == '-';
                self.index += 1;
                self.enter()?;
                let value = self.unary()?;
                self.depth -= 1;
                Ok(if negate { -value } else { value })
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<f64, CalcError> {
        let base = self.primary()?;
        if let Some((Token::Op('^'), _)) = self.peek() {
            self.index += 1;
            self.enter()?;
            let exponent = self.unary()?;
            self.depth -= 1;
            return Ok(base.powf(exponent));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<f64, CalcError> {
        let end = self.end;
        match self.next() {
            Some((Token::Number(n), _)) => Ok(*n),
            Some((Token::LParen, _)) => {
                self.enter()?;
                let value = self.expr()?;
                self.expect_close()?;
                self.depth -= 1;
                Ok(value)
            }
            Some((Token::Ident(name), pos)) => {
                let name = name.clone();
                if let Some((Token::LParen, _)) = self.peek() {
                    self.index += 1;
                    self.enter()?;
                    let args = self.arguments()?;
                    self.depth -= 1;
                    functions::call(&name, &args).map_err(|message| CalcError::at(pos, message))
                } else {
                    functions::constant(&name)
                        .ok_or_else(|| CalcError::at(pos, unknown_name(&name)))
                }
            }
            Some((token, pos)) => Err(CalcError::at(
                pos,
                format!("unexpected {}", describe(token)),
            )),
            None => Err(CalcError::at(end, "unexpected end of expression")),
        }
    }

    /// `expr (',' expr)* ')'` after a function's `(`.
    fn arguments(&mut self) -> Result<Vec<f64>, CalcError> {
        let mut args = vec![self.expr()?];
        while let Some((Token::Comma, _)) = self.peek() {
            self.index += 1;
            args.push(self.expr()?);
        }
        self.expect_close()?;
        Ok(args)
    }

    fn expect_close(&mut self) -> Result<(), CalcError> {
        let end = self.end;
        match self.next() {
            Some((Token::RParen, _)) => Ok(()),
            Some((token, pos)) => Err(CalcError::at(
                pos,
                format!("expected `)` but found {}", describe(token)),
            )),
            None => Err(CalcError::at(end, "missing `)`")),
        }
    }
}

fn unknown_name(name: &str) -> String {
    if functions::is_function(name) {
        format!("`{name}` is a function: call it as `{name}(...)`")
    } else {
        format!("unknown name `{name}`")
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Number(n) => format!("number `{n}`"),
        Token::Ident(name) => format!("name `{name}`"),
        Token::Op(op) => format!("`{op}`"),
        Token::LParen => "`(`".into(),
        Token::RParen => "`)`".into(),
        Token::Comma => "`,`".into(),
    }
}
