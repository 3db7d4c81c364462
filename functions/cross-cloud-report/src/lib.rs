//! `cross-cloud-report`: a scheduled report over Google Cloud Storage and Amazon S3 —
//! inventory (objects, bytes, storage classes, largest objects), S3 → GCS sync drift, and a
//! Gemini summary on Vertex AI — written as JSON and Markdown to S3 and/or GCS.
//!
//! Google access uses the function's own IAM role, federated by `crossfed`: no Google keys.

pub mod drift;
pub mod gcs_inventory;
pub mod handler;
pub mod listing;
pub mod output;
pub mod render;
pub mod report;
pub mod s3_inventory;
pub mod settings;
pub mod stats;
pub mod vertex;
