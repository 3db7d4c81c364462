//! Fault injection: a FIFO of faults, one consumed per request before normal
//! handling.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A fault applied to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fail with this HTTP status (gRPC: the matching status code) and a
    /// generic error body in the service's format.
    Status(u16),
    /// Wait this long, then handle the request normally (a long delay
    /// simulates a hung server for client timeouts).
    Delay(Duration),
    /// Fail with a specific error in the service's format. For STS `error`
    /// is the OAuth code (`invalid_grant`), for IAM the status name
    /// (`PERMISSION_DENIED`).
    GoogleError {
        status: u16,
        error: String,
        description: String,
    },
    /// Flip one byte of the next upload body in flight (only
    /// [`crate::google::gcs_fault_proxy::GcsFaultProxy`] acts on it: it stays queued until an upload
    /// request carrying object data arrives). Every other fake ignores it.
    CorruptUpload,
}

/// Thread-safe FIFO of pending faults.
#[derive(Clone, Debug, Default)]
pub(crate) struct FaultQueue {
    queue: Arc<Mutex<VecDeque<Fault>>>,
}

impl FaultQueue {
    pub(crate) fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().extend(faults);
    }

    pub(crate) fn next(&self) -> Option<Fault> {
        self.lock().pop_front()
    }

    /// Pops the next fault only if `take` accepts it.
    pub(crate) fn next_if(&self, take: impl FnOnce(&Fault) -> bool) -> Option<Fault> {
        let mut queue = self.lock();
        if take(queue.front()?) {
            queue.pop_front()
        } else {
            None
        }
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    pub(crate) fn pending(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Fault>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Standard reason phrase for the generic error bodies.
pub(crate) fn status_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        502 | 503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// gRPC code for an HTTP status (as Google maps them).
pub(crate) fn grpc_code(status: u16) -> tonic::Code {
    match status {
        400 => tonic::Code::InvalidArgument,
        401 => tonic::Code::Unauthenticated,
        403 => tonic::Code::PermissionDenied,
        404 => tonic::Code::NotFound,
        409 => tonic::Code::Aborted,
        429 => tonic::Code::ResourceExhausted,
        499 => tonic::Code::Cancelled,
        501 => tonic::Code::Unimplemented,
        502 | 503 => tonic::Code::Unavailable,
        504 => tonic::Code::DeadlineExceeded,
        _ => tonic::Code::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo() {
        let q = FaultQueue::default();
        q.push([Fault::Status(503), Fault::Status(429)]);
        assert_eq!(q.pending(), 2);
        assert_eq!(q.next(), Some(Fault::Status(503)));
        assert_eq!(q.next(), Some(Fault::Status(429)));
        assert_eq!(q.next(), None);
    }
}
