//! The answer of every call made on condition that S3 or the copy is still what was decided
//! on (`If-Match` on S3, a generation precondition on Cloud Storage): done, or look again —
//! read the copy and S3 afresh and decide again. Never a reason to skip.

/// What changed under a conditional call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changed {
    /// S3 no longer serves the object (404 `NoSuchKey`, or a delete marker).
    SourceDeleted,
    /// S3 serves another object (412: its ETag no longer matches).
    SourceOverwritten,
    /// The copy is no longer the generation decided on (Cloud Storage's precondition failed).
    Copy,
}

/// Result of a conditional call.
#[derive(Debug)]
pub enum Conditional<T> {
    Done(T),
    /// Something [`Changed`] meanwhile: look again.
    LookAgain(Changed),
}

impl<T> Conditional<T> {
    /// The result of `f` on what was done; the same change to look at again.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Conditional<U> {
        match self {
            Conditional::Done(t) => Conditional::Done(f(t)),
            Conditional::LookAgain(changed) => Conditional::LookAgain(changed),
        }
    }
}
