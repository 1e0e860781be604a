//! Arithmetic for the calculator tool: `+ - * / ^`, parentheses, unary minus and decimals, by recursive
//! descent, with errors that say where the expression went wrong.
//!
//! The parser takes outside input, so no input may exhaust its stack or its time: operator chains (`^`,
//! unary `-`, `+`, `*`) are parsed by loops, and the one recursive path, a parenthesis, is depth-checked.
//! Every step consumes a byte, so the time is linear in the length.

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

/// Parentheses nested beyond this are refused, so that no expression can exhaust the stack.
pub(crate) const MAX_DEPTH: u32 = 64;

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

    /// `a ^ b ^ c`, right-associative (2^3^2 is 2^9): the operands are read by a loop and folded from the
    /// right, so a chain of any length takes no stack.
    fn power(&mut self) -> Result<f64, String> {
        let first = self.unary()?;
        if self.peek() != Some(b'^') {
            return Ok(first);
        }
        let mut operands = vec![first];
        while self.peek() == Some(b'^') {
            self.at += 1;
            operands.push(self.unary()?);
        }
        Ok(operands.into_iter().rev().reduce(|exponent, base| base.powf(exponent)).unwrap_or(first))
    }

    /// Any number of unary minus signs, counted by a loop, then an atom.
    fn unary(&mut self) -> Result<f64, String> {
        let mut negative = false;
        while self.peek() == Some(b'-') {
            self.at += 1;
            negative = !negative;
        }
        let value = self.atom()?;
        Ok(if negative { -value } else { value })
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
                number.parse().map_err(|_| format!("`{}` at {} is not a number", excerpt(number), start + 1))
            }
            Some(byte) => Err(format!("unexpected `{}` at {}", char::from(byte), self.at + 1)),
            None => Err("the expression ends too early".to_owned()),
        }
    }

    /// The only recursive path of the parser: `inner` one level deeper, refused past [`MAX_DEPTH`].
    fn nested(&mut self, inner: impl FnOnce(&mut Self) -> Result<f64, String>) -> Result<f64, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("parentheses nested deeper than {MAX_DEPTH} at {}", self.at));
        }
        self.depth += 1;
        let value = inner(self);
        self.depth -= 1;
        value
    }
}

/// The start of a long token, so that an error message stays short whatever the input.
fn excerpt(token: &str) -> String {
    const SHOWN: usize = 32;
    if token.len() <= SHOWN { token.to_owned() } else { format!("{}...", &token[..SHOWN]) }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{MAX_DEPTH, evaluate};

    #[test]
    fn precedence_associativity_and_parentheses() {
        assert_eq!(evaluate("2 + 3 * 4"), Ok(14.0));
        assert_eq!(evaluate("(2 + 3) * 4"), Ok(20.0));
        assert_eq!(evaluate("10 - 4 - 3"), Ok(3.0));
        assert_eq!(evaluate("2 ^ 3 ^ 2"), Ok(512.0));
        assert_eq!(evaluate("2 ^ -1"), Ok(0.5));
        assert_eq!(evaluate("-2 ^ 2"), Ok(4.0), "unary minus binds tighter than `^`");
        assert_eq!(evaluate("-2 * -(1.5)"), Ok(3.0));
        assert_eq!(evaluate("--2"), Ok(2.0));
        assert_eq!(evaluate("---2"), Ok(-2.0));
        assert_eq!(evaluate("7 / 2"), Ok(3.5));
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(evaluate("1 / 0"), Err("division by zero".to_owned()));
        assert_eq!(evaluate("2 +"), Err("the expression ends too early".to_owned()));
        assert_eq!(evaluate("2 ^"), Err("the expression ends too early".to_owned()));
        assert_eq!(evaluate("(1 + 2"), Err("missing `)` at 7".to_owned()));
        assert_eq!(evaluate("1 $ 2"), Err("unexpected `$` at 3".to_owned()));
        assert_eq!(evaluate("1.2.3"), Err("`1.2.3` at 1 is not a number".to_owned()));
        assert_eq!(evaluate("(".repeat(100).as_str()), Err("parentheses nested deeper than 64 at 65".to_owned()));
        assert_eq!(evaluate("10 ^ 400"), Err("the result is not a finite number".to_owned()));
        let long = "1.".repeat(1_000);
        assert_eq!(evaluate(&long), Err(format!("`{}...` at 1 is not a number", &long[..32])));
    }

    /// The attack of the security review: one `^` per recursion overflowed the stack and aborted the
    /// process. A test thread's stack is as small as a worker's.
    #[test]
    fn a_tower_of_30000_powers_takes_no_stack() {
        let mut tower = "1^".repeat(30_000);
        tower.push('1');
        assert_eq!(evaluate(&tower), Ok(1.0));
        assert_eq!(evaluate(&format!("{}1", "-".repeat(100_000))), Ok(1.0));
        assert_eq!(evaluate(&format!("{}2^", "2^".repeat(30_000))), Err("the expression ends too early".to_owned()));
    }

    #[test]
    fn parentheses_up_to_the_limit_are_evaluated() {
        let depth = usize::try_from(MAX_DEPTH).expect("small");
        let deepest = format!("{}7{}", "(".repeat(depth), ")".repeat(depth));
        assert_eq!(evaluate(&deepest), Ok(7.0));
        let deeper = format!("({deepest})");
        assert!(evaluate(&deeper).is_err_and(|error| error.starts_with("parentheses nested deeper than 64")));
    }

    /// An expression nested `depth` levels through parentheses, unary minus and powers, as an attacker
    /// would build one.
    fn nested_expression() -> impl Strategy<Value = (String, usize)> {
        let layer = prop_oneof![Just(("(", ")")), Just(("-(", ")")), Just(("2^(", ")")), Just(("(1+", ")*1"))];
        (prop::collection::vec(layer, 0..200), "[0-9]{1,4}").prop_map(|(layers, core)| {
            let mut expression = String::new();
            for (open, _) in &layers {
                expression.push_str(open);
            }
            expression.push_str(&core);
            for (_, close) in layers.iter().rev() {
                expression.push_str(close);
            }
            (expression, layers.len())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_text_is_evaluated_or_refused_without_a_panic(text in ".{0,400}") {
            let _ = evaluate(&text);
        }

        #[test]
        fn any_arrangement_of_the_grammar_is_evaluated_or_refused(text in "[-+*/^() .0-9]{0,400}") {
            if let Err(error) = evaluate(&text) {
                prop_assert!(!error.is_empty() && error.len() < 200, "{}", error);
            }
        }

        #[test]
        fn nesting_is_refused_past_the_limit_and_only_there((expression, depth) in nested_expression()) {
            let result = evaluate(&expression);
            let refused = result.as_ref().is_err_and(|error| error.starts_with("parentheses nested deeper than"));
            prop_assert_eq!(refused, depth > MAX_DEPTH as usize, "{:?}", result);
        }
    }

    proptest! {
        // Long inputs, so fewer cases: each is a chain of up to 20,000 operators.
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn long_chains_of_operators_take_no_stack(operators in prop::collection::vec(0..5_usize, 1..20_000)) {
            let mut expression = String::from("1");
            for operator in operators {
                expression.push_str(["^", "+", "*", "-", "^-"][operator]);
                expression.push('1');
            }
            prop_assert!(evaluate(&expression).is_ok());
        }
    }
}
