//! Splits an expression into tokens, each with its 1-based character position.

use crate::CalcError;

/// One token of an expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Number(f64),
    Ident(String),
    Op(char),
    LParen,
    RParen,
    Comma,
}

/// Tokens with the position (1-based, in characters) where each starts.
pub(crate) fn tokenize(input: &str) -> Result<Vec<(Token, usize)>, CalcError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let (number, next) = number(&chars, i)?;
            tokens.push((Token::Number(number), pos));
            i = next;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((Token::Ident(chars[start..i].iter().collect()), pos));
        } else {
            let token = match c {
                '+' | '-' | '*' | '/' | '%' | '^' => Token::Op(c),
                '(' => Token::LParen,
                ')' => Token::RParen,
                ',' => Token::Comma,
                _ => return Err(CalcError::at(pos, format!("unexpected character `{c}`"))),
            };
            tokens.push((token, pos));
            i += 1;
        }
    }
    Ok(tokens)
}

/// Reads `123`, `1.5`, `.5`, `2e10`, `1.5E-3` starting at `start`; returns the value and the next index.
fn number(chars: &[char], start: usize) -> Result<(f64, usize), CalcError> {
    let mut i = start;
    let digits = |i: &mut usize| {
        let from = *i;
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - from
    };
    let mut count = digits(&mut i);
    if i < chars.len() && chars[i] == '.' {
        i += 1;
        count += digits(&mut i);
    }
    if count == 0 {
        return Err(CalcError::at(start + 1, "expected a digit"));
    }
    if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
        let mut j = i + 1;
        if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
            j += 1;
        }
        if j < chars.len() && chars[j].is_ascii_digit() {
            i = j;
            digits(&mut i);
        }
    }
    let text: String = chars[start..i].iter().collect();
    text.parse::<f64>()
        .map(|n| (n, i))
        .map_err(|_| CalcError::at(start + 1, format!("invalid number `{text}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_names_and_operators_with_positions() {
        let tokens = tokenize("2.5 * sqrt(x_1) - .5e1").unwrap();
        assert_eq!(tokens[0], (Token::Number(2.5), 1));
        assert_eq!(tokens[1], (Token::Op('*'), 5));
        assert_eq!(tokens[2], (Token::Ident("sqrt".into()), 7));
        assert_eq!(tokens[4], (Token::Ident("x_1".into()), 12));
        assert_eq!(tokens[7], (Token::Number(5.0), 19));
    }

    #[test]
    fn a_trailing_e_is_not_an_exponent() {
        let tokens = tokenize("2e").unwrap();
        assert_eq!(
            tokens,
            vec![(Token::Number(2.0), 1), (Token::Ident("e".into()), 2)]
        );
    }

    #[test]
    fn rejects_unknown_characters_and_lone_dots() {
        assert_eq!(
            tokenize("1 $ 2").unwrap_err().to_string(),
            "unexpected character `$` at position 3"
        );
        assert_eq!(
            tokenize(".").unwrap_err().to_string(),
            "expected a digit at position 1"
        );
    }
}
