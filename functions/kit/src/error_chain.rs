//! Errors as text with their whole source chain (`outer: cause: root cause`).

use std::error::Error;

/// `error` and every source below it, joined by `: `; a cause whose text is already shown
/// (errors that print their cause themselves) is not repeated. Same as
/// `crossfed::ErrorChain`, as a `String`.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    crossfed::ErrorChain(error).to_string()
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
