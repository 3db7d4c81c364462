use super::*;

#[test]
fn routing_params() {
    assert_eq!(
        routing_param("project=projects%2Fmy-project", "project").as_deref(),
        Some("projects/my-project")
    );
    assert_eq!(
        routing_param("a=b&project=p", "project").as_deref(),
        Some("p")
    );
    assert_eq!(routing_param("bucket=x", "project"), None);
}

#[test]
fn page_tokens() {
    assert_eq!(parse_page_token(""), Some(0));
    assert_eq!(parse_page_token("fake-page-7"), Some(7));
    assert_eq!(parse_page_token("garbage"), None);
    assert_eq!(parse_page_token("fake-page--1"), None);
}

/// The real `StorageControl` client against the fake, with paging.
mod client {
    use super::super::*;
    use crate::google::static_credentials::StaticBearerCredentials;
    use crate::google::token_registry::TokenIssuer;
    use google_cloud_gax::paginator::ItemPaginator as _;
    use google_cloud_storage::client::StorageControl;
    use std::time::Duration;

    const SA: &str = "serviceAccount:crossfed@my-project.iam.gserviceaccount.com";

    async fn fake(tokens: &TokenRegistry) -> FakeStorage {
        let config = FakeStorageConfig {
            buckets: ["b-3", "b-1", "a-0", "b-2", "b-4"]
                .map(String::from)
                .to_vec(),
            allowed_principals: Some(vec![SA.into()]),
            ..Default::default()
        };
        FakeStorage::start(config, tokens.clone()).await
    }

    async fn client(storage: &FakeStorage, token: &str) -> StorageControl {
        StorageControl::builder()
            .with_endpoint(storage.endpoint())
            .with_credentials(StaticBearerCredentials::credentials(token))
            .build()
            .await
            .expect("build StorageControl")
    }

    fn token(tokens: &TokenRegistry, principal: &str, scope: &str) -> String {
        let scopes = vec![scope.to_string()];
        tokens
            .issue(
                TokenIssuer::Test,
                principal,
                vec![],
                scopes,
                Duration::from_secs(600),
            )
            .0
    }

    async fn list(
        client: &StorageControl,
        parent: &str,
        page_size: i32,
    ) -> Result<Vec<String>, google_cloud_storage::Error> {
        let mut items = client
            .list_buckets()
            .set_parent(parent)
            .set_page_size(page_size)
            .by_item();
        let mut names = Vec::new();
        while let Some(bucket) = items.next().await {
            names.push(bucket?.name);
        }
        Ok(names)
    }

    fn code(err: &google_cloud_storage::Error) -> Option<google_cloud_gax::error::rpc::Code> {
        err.status().map(|s| s.code)
    }

    #[tokio::test]
    async fn lists_buckets_with_paging() {
        let tokens = TokenRegistry::new();
        let storage = fake(&tokens).await;
        let client = client(
            &storage,
            &token(&tokens, SA, crate::google::scopes::CLOUD_PLATFORM_SCOPE),
        )
        .await;
        let names = list(&client, "projects/my-project", 2).await.unwrap();
        let want: Vec<String> = ["a-0", "b-1", "b-2", "b-3", "b-4"]
            .iter()
            .map(|b| format!("projects/_/buckets/{b}"))
            .collect();
        assert_eq!(names, want);
        assert_eq!(storage.calls(), 3, "5 buckets in pages of 2");
        let last = storage.last_request().unwrap();
        assert_eq!(last.page_token.as_deref(), Some("fake-page-4"));
        assert_eq!(
            last.x_goog_request_params.as_deref(),
            Some("project=projects%2Fmy-project")
        );
        assert!(last.x_goog_api_client.unwrap().starts_with("gl-rust/"));
        assert_eq!(last.caller.as_deref(), Some(SA));

        // By project number, one page.
        assert_eq!(list(&client, "projects/123456", 0).await.unwrap().len(), 5);
        assert_eq!(storage.calls(), 4);
    }

    #[tokio::test]
    async fn rejects_bad_tokens_principals_and_projects() {
        use google_cloud_gax::error::rpc::Code;
        let tokens = TokenRegistry::new();
        let storage = fake(&tokens).await;

        let err = list(
            &client(&storage, "ya29.not-issued").await,
            "projects/my-project",
            0,
        )
        .await
        .unwrap_err();
        assert_eq!(code(&err), Some(Code::Unauthenticated), "{err:?}");

        let expired = token(&tokens, SA, crate::google::scopes::CLOUD_PLATFORM_SCOPE);
        tokens.expire(&expired);
        let err = list(&client(&storage, &expired).await, "projects/my-project", 0)
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(Code::Unauthenticated), "{err:?}");

        let federated = token(
            &tokens,
            "principal://iam.googleapis.com/x/subject/y",
            crate::google::scopes::CLOUD_PLATFORM_SCOPE,
        );
        let err = list(
            &client(&storage, &federated).await,
            "projects/my-project",
            0,
        )
        .await
        .unwrap_err();
        assert_eq!(code(&err), Some(Code::PermissionDenied), "{err:?}");

        let iam_only = token(&tokens, SA, crate::google::scopes::IAM_SCOPE);
        let err = list(&client(&storage, &iam_only).await, "projects/my-project", 0)
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(Code::PermissionDenied), "{err:?}");

        let good = client(
            &storage,
            &token(&tokens, SA, crate::google::scopes::CLOUD_PLATFORM_SCOPE),
        )
        .await;
        let err = list(&good, "projects/other-project", 0).await.unwrap_err();
        assert_eq!(code(&err), Some(Code::NotFound), "{err:?}");

        storage.inject_faults([Fault::Status(403)]);
        let err = list(&good, "projects/my-project", 0).await.unwrap_err();
        assert_eq!(code(&err), Some(Code::PermissionDenied), "{err:?}");
        assert_eq!(
            list(&good, "projects/my-project", 0).await.unwrap().len(),
            5
        );
    }
}

/// The real `StorageControl` (gRPC, this fake) and `Storage` (HTTP,
/// fake-gcs-server) clients on the same objects.
mod backed {
    use super::super::*;
    use crate::google::storage_test_support::*;
    use google_cloud_gax::error::rpc::Code;
    use google_cloud_gax::paginator::ItemPaginator as _;
    use google_cloud_storage::client::StorageControl;

    async fn control(storage: &FakeStorage, token: &str) -> StorageControl {
        StorageControl::builder()
            .with_endpoint(storage.endpoint())
            .with_credentials(crate::StaticBearerCredentials::credentials(token))
            .build()
            .await
            .expect("build StorageControl")
    }

    fn code(err: &google_cloud_storage::Error) -> Option<Code> {
        err.status().map(|s| s.code)
    }

    #[tokio::test]
    async fn objects_written_over_http_are_listed_read_and_deleted_over_grpc() {
        let backend = backend();
        let bucket = create_bucket(&backend, "grpc-backed").await;
        let parent = format!("projects/_/buckets/{bucket}");
        let tokens = TokenRegistry::new();
        let good = token(&tokens, crate::google::scopes::CLOUD_PLATFORM_SCOPE);
        let config = FakeStorageConfig {
            allowed_principals: Some(vec![SA.into()]),
            ..Default::default()
        };
        let fake = FakeStorage::start_backed(config, tokens.clone(), &backend).await;
        assert_eq!(fake.backend(), Some(backend.as_str()));
        let http = storage(&backend, &good).await;
        let grpc = control(&fake, &good).await;

        let payload = data(70_000, 3);
        let written = http
            .write_object(&parent, "dir/a.bin", payload.clone())
            .set_metadata([("source-etag", "abc"), ("k", "v")])
            .set_if_generation_match(0)
            .send_buffered()
            .await
            .unwrap();
        for name in ["dir/b.txt", "dir/sub/c.txt", "top.txt"] {
            http.write_object(&parent, name, "x")
                .send_buffered()
                .await
                .unwrap();
        }

        // ListObjects, paged.
        let mut items = grpc
            .list_objects()
            .set_parent(&parent)
            .set_page_size(2)
            .by_item();
        let mut names = Vec::new();
        while let Some(object) = items.next().await {
            let object = object.unwrap();
            assert_eq!(object.bucket, parent);
            names.push(object.name);
        }
        assert_eq!(
            names,
            ["dir/a.bin", "dir/b.txt", "dir/sub/c.txt", "top.txt"]
        );
        let pages = fake
            .requests()
            .iter()
            .filter(|r| r.path == LIST_OBJECTS)
            .count();
        assert_eq!(pages, 2);
        let last = fake.last_request().unwrap();
        assert_eq!(
            last.x_goog_request_params.as_deref(),
            Some(format!("bucket=projects%2F_%2Fbuckets%2F{bucket}").as_str())
        );

        // Prefix and delimiter.
        let page = grpc
            .list_objects()
            .set_parent(&parent)
            .set_prefix("dir/")
            .set_delimiter("/")
            .send()
            .await
            .unwrap();
        let names: Vec<_> = page.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["dir/a.bin", "dir/b.txt"]);
        assert_eq!(page.prefixes, ["dir/sub/"]);
        let a = &page.objects[0];
        assert_eq!(a.size, payload.len() as i64);
        assert_eq!(a.generation, written.generation);
        assert_eq!(
            a.metadata.get("source-etag").map(String::as_str),
            Some("abc")
        );
        let checksums = a.checksums.clone().unwrap();
        assert_eq!(checksums.crc32c, Some(crc32c::crc32c(&payload)));
        assert_eq!(checksums.md5_hash.len(), 16);
        assert!(a.create_time.is_some() && a.update_time.is_some());
        assert_eq!(a.storage_class, "STANDARD");

        // GetObject and its preconditions.
        let get = |generation: Option<i64>, metagen: Option<i64>| {
            let mut builder = grpc
                .get_object()
                .set_bucket(&parent)
                .set_object("dir/a.bin");
            if let Some(g) = generation {
                builder = builder.set_if_generation_match(g);
            }
            if let Some(m) = metagen {
                builder = builder.set_if_metageneration_match(m);
            }
            builder.send()
        };
        let got = get(Some(written.generation), Some(1)).await.unwrap();
        assert_eq!(got.metadata.get("k").map(String::as_str), Some("v"));
        let err = get(Some(written.generation + 1), None).await.unwrap_err();
        assert_eq!(code(&err), Some(Code::FailedPrecondition), "{err:?}");
        let err = get(None, Some(7)).await.unwrap_err();
        assert_eq!(code(&err), Some(Code::FailedPrecondition), "{err:?}");
        let err = get(Some(0), None).await.unwrap_err();
        assert_eq!(code(&err), Some(Code::FailedPrecondition), "{err:?}");
        let err = grpc
            .get_object()
            .set_bucket(&parent)
            .set_object("missing")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(Code::NotFound), "{err:?}");
        let err = grpc
            .get_object()
            .set_bucket(&parent)
            .set_object("dir/a.bin")
            .set_generation(written.generation + 1)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(Code::NotFound), "{err:?}");

        // DeleteObject: fake-gcs-server ignores ifGenerationMatch, the fake does not.
        let err = grpc
            .delete_object()
            .set_bucket(&parent)
            .set_object("dir/a.bin")
            .set_if_generation_match(written.generation + 1)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(Code::FailedPrecondition), "{err:?}");
        assert_eq!(backend_status(&backend, &bucket, "dir/a.bin").await, 200);
        let err = grpc
            .delete_object()
            .set_bucket(&parent)
            .set_object("dir/a.bin")
            .set_if_generation_not_match(written.generation)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(Code::FailedPrecondition), "{err:?}");

        // Read-only scope cannot delete.
        let reader = control(
            &fake,
            &token(
                &tokens,
                "https://www.googleapis.com/auth/devstorage.read_only",
            ),
        )
        .await;
        let err = reader
            .delete_object()
            .set_bucket(&parent)
            .set_object("dir/a.bin")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(Code::PermissionDenied), "{err:?}");

        grpc.delete_object()
            .set_bucket(&parent)
            .set_object("dir/a.bin")
            .set_if_generation_match(written.generation)
            .set_if_metageneration_match(1)
            .send()
            .await
            .unwrap();
        assert_eq!(backend_status(&backend, &bucket, "dir/a.bin").await, 404);
        let err = grpc
            .delete_object()
            .set_bucket(&parent)
            .set_object("dir/a.bin")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(Code::NotFound), "{err:?}");
        let last = fake.last_request().unwrap();
        assert_eq!(last.object.as_deref(), Some("dir/a.bin"));
        assert_eq!(last.code, Code::NotFound as i32);

        // ListBuckets comes from the backend.
        let mut buckets = grpc
            .list_buckets()
            .set_parent("projects/my-project")
            .by_item();
        let mut found = false;
        while let Some(b) = buckets.next().await {
            found |= b.unwrap().name == parent;
        }
        assert!(found);

        // Faults, a missing bucket, a bad bucket name, an unknown token.
        fake.inject_faults([Fault::Status(403)]);
        let err = grpc
            .get_object()
            .set_bucket(&parent)
            .set_object("top.txt")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(Code::PermissionDenied), "{err:?}");
        let err = grpc
            .list_objects()
            .set_parent("projects/_/buckets/no-such-bucket-crossfed")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(Code::NotFound), "{err:?}");
        let err = grpc
            .get_object()
            .set_bucket(&bucket)
            .set_object("top.txt")
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(code(&err), Some(Code::InvalidArgument)) || err.is_binding(),
            "{err:?}"
        );
        let err = control(&fake, "ya29.not-issued")
            .await
            .get_object()
            .set_bucket(&parent)
            .set_object("top.txt")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(Code::Unauthenticated), "{err:?}");
        delete_bucket(&backend, &bucket).await;
    }

    /// Like Cloud Storage: an object written from bytes has the MD5 of those bytes, a
    /// composed one has a component count and no MD5 (in every answer: compose, get, list),
    /// and both have the CRC32C of their bytes.
    #[tokio::test]
    async fn composed_objects_have_no_md5() {
        use google_cloud_storage::model::Object;
        use google_cloud_storage::model::compose_object_request::SourceObject;
        let backend = backend();
        let bucket = create_bucket(&backend, "grpc-compose").await;
        let parent = format!("projects/_/buckets/{bucket}");
        let tokens = TokenRegistry::new();
        let good = token(&tokens, crate::google::scopes::CLOUD_PLATFORM_SCOPE);
        let fake =
            FakeStorage::start_backed(FakeStorageConfig::default(), tokens.clone(), &backend).await;
        let http = storage(&backend, &good).await;
        let grpc = control(&fake, &good).await;
        let written = http
            .write_object(&parent, "part", "hello ")
            .send_buffered()
            .await
            .unwrap();
        let md5 = |o: &Object| o.checksums.clone().unwrap().md5_hash.len();
        let part = grpc
            .get_object()
            .set_bucket(&parent)
            .set_object("part")
            .send()
            .await
            .unwrap();
        assert_eq!((md5(&part), part.component_count), (16, 0));
        let composed = grpc
            .compose_object()
            .set_destination(Object::new().set_bucket(&parent).set_name("whole"))
            .set_source_objects([
                SourceObject::new()
                    .set_name("part")
                    .set_generation(written.generation),
                SourceObject::new()
                    .set_name("part")
                    .set_generation(written.generation),
            ])
            .send()
            .await
            .unwrap();
        let got = grpc
            .get_object()
            .set_bucket(&parent)
            .set_object("whole")
            .send()
            .await
            .unwrap();
        let listed = grpc
            .list_objects()
            .set_parent(&parent)
            .set_prefix("whole")
            .send()
            .await
            .unwrap()
            .objects
            .remove(0);
        for o in [&composed, &got, &listed] {
            assert_eq!((md5(o), o.component_count), (0, 2), "{o:?}");
            assert_eq!(
                o.checksums.clone().unwrap().crc32c,
                Some(crc32c::crc32c(b"hello hello "))
            );
        }
        delete_bucket(&backend, &bucket).await;
    }

    #[tokio::test]
    async fn object_rpcs_need_a_backend() {
        let tokens = TokenRegistry::new();
        let fake = FakeStorage::start(FakeStorageConfig::default(), tokens.clone()).await;
        let grpc = control(
            &fake,
            &token(&tokens, crate::google::scopes::CLOUD_PLATFORM_SCOPE),
        )
        .await;
        let err = grpc
            .get_object()
            .set_bucket("projects/_/buckets/b")
            .set_object("o")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(Code::Unimplemented), "{err:?}");
    }
}
