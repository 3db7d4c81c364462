//! GCS listings: StorageControl `ListObjects` (gRPC), paged by the client (`by_item()`),
//! one object at a time.

use google_cloud_gax::paginator::ItemPaginator;
use google_cloud_storage::client::StorageControl;
use google_cloud_storage::model::{ListObjectsResponse, Object};

use crate::listing::{BoxError, ListedObject, Listing, relative};
use crate::settings::Location;

/// Streams the objects under a location in name order.
pub struct GcsListing<P> {
    items: P,
    prefix: String,
}

/// Lists `location` with `control`, `page_size` objects per call.
pub fn list(
    control: &StorageControl,
    location: &Location,
    page_size: i32,
) -> GcsListing<impl ItemPaginator<ListObjectsResponse, google_cloud_storage::Error>> {
    let items = control
        .list_objects()
        .set_parent(format!("projects/_/buckets/{}", location.bucket))
        .set_prefix(location.prefix.clone())
        .set_page_size(page_size)
        .by_item();
    GcsListing {
        items,
        prefix: location.prefix.clone(),
    }
}

impl<P> Listing for GcsListing<P>
where
    P: ItemPaginator<ListObjectsResponse, google_cloud_storage::Error>,
{
    async fn next(&mut self) -> Result<Option<ListedObject>, BoxError> {
        match self.items.next().await {
            None => Ok(None),
            Some(Ok(object)) => Ok(Some(listed(object, &self.prefix))),
            Some(Err(e)) => Err(format!("GCS ListObjects failed: {e}").into()),
        }
    }
}

fn listed(object: Object, prefix: &str) -> ListedObject {
    let md5 = object
        .checksums
        .as_ref()
        .and_then(|c| <[u8; 16]>::try_from(c.md5_hash.as_ref()).ok());
    let storage_class = if object.storage_class.is_empty() {
        "STANDARD".to_string()
    } else {
        object.storage_class
    };
    ListedObject {
        key: relative(object.name, prefix),
        size: object.size.max(0) as u64,
        storage_class,
        md5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_storage::model::ObjectChecksums;

    #[test]
    fn object_conversion() {
        let o = Object::new()
            .set_name("logs/a")
            .set_size(7)
            .set_storage_class("NEARLINE")
            .set_checksums(ObjectChecksums::new().set_md5_hash(bytes_of(16)));
        let l = listed(o, "logs/");
        assert_eq!(l.key, "a");
        assert_eq!((l.size, l.storage_class.as_str()), (7, "NEARLINE"));
        assert_eq!(l.md5, Some([1; 16]));
        // no or malformed md5, default class
        let o = Object::new()
            .set_name("b")
            .set_checksums(ObjectChecksums::new().set_md5_hash(bytes_of(3)));
        let l = listed(o, "");
        assert_eq!((l.storage_class.as_str(), l.md5), ("STANDARD", None));
    }

    fn bytes_of(n: usize) -> Vec<u8> {
        vec![1; n]
    }
}
