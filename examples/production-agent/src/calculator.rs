//! Arithmetic for the calculator tool: `+ - * / ^`, parentheses, unary minus and decimals, by recursive
//! descent, with errors that say where the expression went wrong.

/// Evaluates `expression`.
pub(crate) fn evaluate(expression: &str) -> Result<f64, String> {
    let mut parser = Parser { bytes: expression.as_bytes(), at: 0, depth: 0 };
    let value = parser.sum()?;
    parser.skip_spaces();
    if parser.at < parser.bytes.len() {
        return Err(format!("unexpected `{}` at {}", char::from(parser.bytes[parser.at]), parser.at + 1));
    }
    if value.is_finite() { Ok(value) } else { Err("the result is not a finite number".to_owned()) }
}

/// Nesting beyond this is refused, so that no expression can exhaust the stack.
const MAX_DEPTH: u32 = 64;

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    depth: u32,
}

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_spaces();
        self.bytes.get(self.at).copied()
    }

    fn sum(&mut self) -> Result<f64, String> {
        let mut value = self.product()?;
        while let Some(operator @ (b'+' | b'-')) = self.peek() {
            self.at += 1;
            let right = self.product()?;
            value = if operator == b'+' { value + right } else { value - right };
        }
        Ok(value)
    }

    fn product(&mut self) -> Result<f64, String> {
        let mut value = self.power()?;
        while let Some(operator @ (b'*' | b'/')) = self.peek() {
            self.at += 1;
            let right = self.power()?;
            if operator == b'/' && right == 0.0 {
                return Err("division by zero".to_owned());
            }
            value = if operator == b'*' { value * right } else { value / right };
        }
        Ok(value)
    }

    fn power(&mut self) -> Result<f64, String> {
        let base = self.unary()?;
        if self.peek() == Some(b'^') {
            self.at += 1;
            // Right-associative: 2^3^2 is 2^9.
            let exponent = self.power()?;
            return Ok(base.powf(exponent));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<f64, String> {
        if self.peek() == Some(b'-') {
            self.at += 1;
            return self.nested(Parser::unary).map(|value| -value);
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some(b'(') => {
                self.at += 1;
                let value = self.nested(Parser::sum)?;
                if self.peek() != Some(b')') {
                    return Err(format!("missing `)` at {}", self.at + 1));
                }
                self.at += 1;
                Ok(value)
            }
            Some(byte) if byte.is_ascii_digit() || byte == b'.' => {
                let start = self.at;
                while self.bytes.get(self.at).is_some_and(|byte| byte.is_ascii_digit() || *byte == b'.') {
                    self.at += 1;
                }
                let number = std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or_default();
                number.parse().map_err(|_| format!("`{number}` at {} is not a number", start + 1))
            }
            Some(byte) => Err(format!("unexpected `{}` at {}", char::from(byte), self.at + 1)),
            None => Err("the expression ends too early".to_owned()),
        }
    }

    fn nested(&mut self, inner: impl FnOnce(&mut Self) -> Result<f64, String>) -> Result<f64, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        let value = inner(self);
        self.depth -= 1;
        value
    }
}

#[cfg(test)]
mod tests {
    use super::evaluate;

    #[test]
    fn precedence_associativity_and_parentheses() {
        assert_eq!(evaluate("2 + 3 * 4"), Ok(14.0));
        assert_eq!(evaluate("(2 + 3) * 4"), Ok(20.0));
        assert_eq!(evaluate("10 - 4 - 3"), Ok(3.0));
        assert_eq!(evaluate("2 ^ 3 ^ 2"), Ok(512.0));
        assert_eq!(evaluate("-2 * -(1.5)"), Ok(3.0));
        assert_eq!(evaluate("7 / 2"), Ok(3.5));
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(evaluate("1 / 0"), Err("division by zero".to_owned()));
        assert_eq!(evaluate("2 +"), Err("the expression ends too early".to_owned()));
        assert_eq!(evaluate("(1 + 2"), Err("missing `)` at 7".to_owned()));
        assert_eq!(evaluate("1 $ 2"), Err("unexpected `$` at 3".to_owned()));
        assert_eq!(evaluate("1.2.3"), Err("`1.2.3` at 1 is not a number".to_owned()));
        assert!(evaluate(&"(".repeat(100)).is_err_and(|error| error.contains("nested deeper")));
        assert_eq!(evaluate("10 ^ 400"), Err("the result is not a finite number".to_owned()));
    }
}
