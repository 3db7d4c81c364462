//! One large object (300 MiB, multipart in S3) through the real binary, in one streamed
//! request (the default below `SYNC_PART_THRESHOLD_BYTES`) and in parts: never held in
//! memory (peak RSS of the function process checked), verified byte for byte.

mod common;

use common::large::{How, copy_large_object};

const SIZE: u64 = 300 * 1024 * 1024;

#[tokio::test]
async fn streams_a_300_mib_object_in_one_request_with_bounded_memory() {
    copy_large_object(SIZE, How::OneStream).await;
}

#[tokio::test]
async fn copies_a_300_mib_object_in_parts_with_bounded_memory() {
    copy_large_object(SIZE, How::Parts).await;
}
