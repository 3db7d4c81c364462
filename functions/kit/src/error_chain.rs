//! Errors as text with their whole source chain (`outer: cause: root cause`).

use std::error::Error;

/// `error` and every source below it, joined by `: `. A source whose text the message so far
/// already contains (errors that print their cause themselves) is not repeated.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn whole_chain_without_repeats() {
        let e = Layer(
            "sending failed",
            Some(Box::new(Layer(
                "connect: refused",
                Some(Box::new(Layer("refused", None))),
            ))),
        );
        assert_eq!(chain(&e), "sending failed: connect: refused");
        assert_eq!(chain(&Layer("alone", None)), "alone");
    }
}
