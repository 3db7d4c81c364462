//! Building the copy from its parts: `ComposeObject` takes at most 32 sources, so larger
//! part lists are composed in a tree of intermediate objects (next to the parts); the
//! last call writes the destination with its generation precondition and attributes.
//! The result's CRC32C must equal the parts' CRC32Cs combined; then the temporary objects
//! are removed.

use google_cloud_storage::model::Object;

use crate::conditional::Conditional;
use crate::gcs::{DestinationBucket, GcsError};
use crate::parts::layout::{Layout, Part};

/// Sources per `ComposeObject` call.
const MAX_SOURCES: usize = 32;

/// A component ready to compose: an object name, the generation read, length and CRC32C.
#[derive(Clone, Debug)]
struct Component {
    name: String,
    generation: i64,
    len: u64,
    crc32c: u32,
}

/// CRC32C of `a` followed by `b` (`b_len` bytes).
pub fn combine(a: u32, b: u32, b_len: u64) -> u32 {
    crc32c::crc32c_combine(a, b, b_len as usize)
}

/// Composes `parts` (in order) into `target` (the copy's name, attributes and metadata) if
/// its generation is still `if_generation_match` (0: must not exist). Removes the parts and
/// intermediates afterwards.
pub async fn compose(
    destination: &DestinationBucket,
    layout: &Layout,
    parts: &[Part],
    target: Object,
    if_generation_match: i64,
) -> Result<Conditional<Object>, GcsError> {
    let name = target.name.clone();
    let mut level: Vec<Component> = parts
        .iter()
        .enumerate()
        .map(|(n, p)| Component {
            name: layout.part_name(n),
            generation: p.generation,
            len: p.len,
            crc32c: p.crc32c,
        })
        .collect();
    let mut temporary: Vec<(String, i64)> = level
        .iter()
        .map(|c| (c.name.clone(), c.generation))
        .collect();
    let mut depth = 0;
    while level.len() > MAX_SOURCES {
        depth += 1;
        // The intermediates of one level are independent: composed at once.
        let mut calls = tokio::task::JoinSet::new();
        for (i, group) in level.chunks(MAX_SOURCES).enumerate() {
            let intermediate = Object::new()
                .set_name(layout.intermediate_name(depth, i))
                .set_content_type("application/octet-stream");
            let (destination, group) = (destination.clone(), group.to_vec());
            calls.spawn(async move {
                let object = match destination
                    .compose(&sources(&group), intermediate, None)
                    .await?
                {
                    Conditional::Done(object) => object,
                    Conditional::LookAgain(changed) => return Ok(Err(changed)),
                };
                let component = checked(&group, &object).map_err(|detail| {
                    destination.corrupt(&object.name, detail, KEPT_WITH_THE_PARTS)
                })?;
                Ok::<_, GcsError>(Ok((i, component)))
            });
        }
        let mut next: Vec<Option<Component>> = vec![None; level.len().div_ceil(MAX_SOURCES)];
        while let Some(done) = calls.join_next().await {
            let done = done.map_err(|e| {
                destination.corrupt(
                    layout.dir(),
                    format!("a compose task failed: {e}"),
                    KEPT_WITH_THE_PARTS,
                )
            })??;
            let (i, component) = match done {
                Ok(done) => done,
                Err(changed) => return Ok(Conditional::LookAgain(changed)),
            };
            temporary.push((component.name.clone(), component.generation));
            next[i] = Some(component);
        }
        level = next.into_iter().flatten().collect();
    }
    let result = match destination
        .compose(&sources(&level), target, Some(if_generation_match))
        .await?
    {
        Conditional::Done(object) => object,
        Conditional::LookAgain(changed) => return Ok(Conditional::LookAgain(changed)),
    };
    if let Err(detail) = checked(&level, &result) {
        let cleanup = match destination.delete(&name, result.generation).await {
            Ok(_) => "deleted",
            Err(_) => "NOT deleted",
        };
        return Err(destination.corrupt(&name, detail, cleanup));
    }
    remove_temporary(destination, temporary).await;
    Ok(Conditional::Done(result))
}

/// What becomes of a bad intermediate: it stays until the parts are removed.
const KEPT_WITH_THE_PARTS: &str = "kept (temporary object, removed with the parts)";

fn sources(components: &[Component]) -> Vec<(String, i64)> {
    components
        .iter()
        .map(|c| (c.name.clone(), c.generation))
        .collect()
}

/// Removes temporary objects (`(name, generation)`), best effort: a leftover costs storage
/// only (see the README's lifecycle rule).
pub async fn remove_temporary(destination: &DestinationBucket, objects: Vec<(String, i64)>) {
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in objects.chunks(objects.len().div_ceil(8).max(1)) {
        let (destination, chunk) = (destination.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for (name, generation) in chunk {
                if let Err(e) = destination.delete(&name, generation).await {
                    tracing::warn!(object = %name, error = %e, "could not remove a temporary part");
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// The composed object as a component, if its size and CRC32C are those of `sources`
/// combined.
fn checked(sources: &[Component], object: &Object) -> Result<Component, String> {
    let len: u64 = sources.iter().map(|c| c.len).sum();
    let crc = sources
        .iter()
        .fold(None, |acc: Option<u32>, c| {
            Some(acc.map_or(c.crc32c, |a| combine(a, c.crc32c, c.len)))
        })
        .unwrap_or(0);
    let stored = object.checksums.as_ref().and_then(|c| c.crc32c);
    if object.size as u64 != len {
        return Err(format!(
            "composed object has {} bytes, its parts {len}",
            object.size
        ));
    }
    if stored != Some(crc) {
        return Err(format!(
            "composed object's CRC32C {stored:08x?} differs from its parts' combined {crc:08x}"
        ));
    }
    Ok(Component {
        name: object.name.clone(),
        generation: object.generation,
        len,
        crc32c: crc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_storage::model::ObjectChecksums;

    #[test]
    fn crc32c_combines() {
        let whole = crc32c::crc32c(b"hello world");
        let a = crc32c::crc32c(b"hello ");
        let b = crc32c::crc32c(b"world");
        assert_eq!(combine(a, b, 5), whole);
    }

    #[test]
    fn composed_objects_are_checked() {
        let parts = [b"hello ".as_slice(), b"wor", b"ld"];
        let sources: Vec<Component> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| Component {
                name: format!("p{i}"),
                generation: 1,
                len: p.len() as u64,
                crc32c: crc32c::crc32c(p),
            })
            .collect();
        let good = Object::new()
            .set_name("x")
            .set_generation(5)
            .set_size(11)
            .set_checksums(ObjectChecksums::new().set_crc32c(crc32c::crc32c(b"hello world")));
        let c = checked(&sources, &good).unwrap();
        assert_eq!((c.len, c.generation), (11, 5));
        let bad = good
            .clone()
            .set_checksums(ObjectChecksums::new().set_crc32c(1u32));
        assert!(checked(&sources, &bad).unwrap_err().contains("CRC32C"));
        let short = good.clone().set_size(10);
        assert!(checked(&sources, &short).unwrap_err().contains("bytes"));
        let none = good.set_checksums(ObjectChecksums::new());
        assert!(checked(&sources, &none).is_err());
    }
}
