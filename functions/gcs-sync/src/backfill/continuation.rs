//! How a backfill run continues past one invocation: the function invokes itself
//! asynchronously with `{"backfill": {"run": "<run>"}}` (not through the sync queue).

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

/// What [`Continuation::invoke`] returns.
pub type InvokeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Starts the next invocation of a run.
pub trait Continuation: Send + Sync {
    fn invoke(&self, payload: Value) -> InvokeFuture<'_>;
}

/// `lambda:InvokeFunction` (`InvocationType=Event`) on the function itself.
#[derive(Clone, Debug)]
pub struct LambdaContinuation {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaContinuation {
    /// `function`: a name or ARN (`AWS_LAMBDA_FUNCTION_NAME` in Lambda).
    pub fn new(client: aws_sdk_lambda::Client, function: String) -> Self {
        LambdaContinuation { client, function }
    }
}

impl Continuation for LambdaContinuation {
    fn invoke(&self, payload: Value) -> InvokeFuture<'_> {
        Box::pin(async move {
            self.client
                .invoke()
                .function_name(&self.function)
                .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "lambda:InvokeFunction {} failed: {}",
                        self.function,
                        aws_sdk_lambda::error::DisplayErrorContext(&e)
                    )
                })
        })
    }
}
