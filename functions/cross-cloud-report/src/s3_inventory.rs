//! S3 listings: `ListObjectsV2` pages (up to 1000 keys each), one object at a time.

use aws_sdk_s3::operation::list_objects_v2::{ListObjectsV2Error, ListObjectsV2Output};
use aws_sdk_s3::types::Object;
use aws_smithy_async::future::pagination_stream::PaginationStream;

use crate::listing::{BoxError, ListedObject, Listing, relative};
use crate::settings::Location;

type PageResult = Result<
    ListObjectsV2Output,
    aws_sdk_s3::error::SdkError<ListObjectsV2Error, aws_sdk_s3::config::http::HttpResponse>,
>;

/// Streams the objects under `location` in key order.
pub struct S3Listing {
    pages: PaginationStream<PageResult>,
    page: std::vec::IntoIter<Object>,
    prefix: String,
}

impl S3Listing {
    /// `page_size` keys per `ListObjectsV2` call (S3 caps it at 1000).
    pub fn new(client: &aws_sdk_s3::Client, location: &Location, page_size: i32) -> Self {
        let mut request = client.list_objects_v2().bucket(&location.bucket);
        if !location.prefix.is_empty() {
            request = request.prefix(&location.prefix);
        }
        S3Listing {
            pages: request.into_paginator().page_size(page_size).send(),
            page: Vec::new().into_iter(),
            prefix: location.prefix.clone(),
        }
    }
}

impl Listing for S3Listing {
    async fn next(&mut self) -> Result<Option<ListedObject>, BoxError> {
        loop {
            if let Some(object) = self.page.next() {
                return Ok(Some(listed(object, &self.prefix)));
            }
            match self.pages.next().await {
                None => return Ok(None),
                Some(page) => {
                    let page = page.map_err(|e| {
                        BoxError::from(format!(
                            "S3 ListObjectsV2 failed: {}",
                            aws_sdk_s3::error::DisplayErrorContext(e)
                        ))
                    })?;
                    self.page = page.contents.unwrap_or_default().into_iter();
                }
            }
        }
    }
}

fn listed(object: Object, prefix: &str) -> ListedObject {
    // An S3 listing omits the class of STANDARD objects.
    let storage_class = object
        .storage_class()
        .map_or("STANDARD", |c| c.as_str())
        .to_string();
    ListedObject {
        md5: object.e_tag().and_then(crossfed_kit::etag::md5),
        size: object.size.unwrap_or_default().max(0) as u64,
        key: relative(object.key.unwrap_or_default(), prefix),
        storage_class,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_conversion() {
        let o = Object::builder()
            .key("data/a.txt")
            .size(42)
            .e_tag("\"d41d8cd98f00b204e9800998ecf8427e\"")
            .storage_class(aws_sdk_s3::types::ObjectStorageClass::Glacier)
            .build();
        let l = listed(o, "data/");
        assert_eq!(l.key, "a.txt");
        assert_eq!(l.size, 42);
        assert_eq!(l.storage_class, "GLACIER");
        assert!(l.md5.is_some());
        let l = listed(Object::builder().key("k").build(), "");
        assert_eq!(
            (l.size, l.storage_class.as_str(), l.md5),
            (0, "STANDARD", None)
        );
    }
}
