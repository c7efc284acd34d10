//! Package then publish end to end with both volumes of a destination on the blob-volume rig
//! (issue 9): Azure Blob containers through FUSE, as CR8TOR mounts them. The answers' digests
//! must equal the bytes the blob store holds, a retried publish must answer the same manifest,
//! and no temporary object may remain in production.

use std::collections::BTreeMap;

use publish_storage::test_rig::{Rig, unique_project};
use serde_json::{Value, json};

use crate::package::setup;
use crate::support::{API_KEY, Server, post};

#[tokio::test]
async fn package_then_publish_with_both_volumes_on_blob_storage() {
    let Some(rig) = Rig::get() else { return };
    let (mut d, emulator) = setup().await;
    d.extra_env.push((
        "TARGET_STORAGE_ACCOUNT_BLOB_SDE_MNT_PATH".into(),
        rig.mount().to_string_lossy().into_owned(),
    ));
    let server = Server::start(&d);
    for format in ["duckdb", "csv"] {
        let project = unique_project(&format!("server-{format}"));
        let mut body = crate::support::fixture("package-shape-b.json");
        body["source"]["host_url"] = json!(emulator.url());
        body["project_name"] = json!(project);
        body["destination"] = json!({"name": "blob", "type": "filestore", "format": format});
        let (status, answer) =
            post(&server.url, "/data-publish/package", Some(API_KEY), &body).await;
        assert_eq!(status, 200, "{format}: {answer}");

        let publish = json!({"project_name": project, "project_start_time": body["project_start_time"],
                             "destination": body["destination"]});
        let (status, first) = post(
            &server.url,
            "/data-publish/publish",
            Some(API_KEY),
            &publish,
        )
        .await;
        assert_eq!(status, 200, "{format}: {first}");
        let (status, again) = post(
            &server.url,
            "/data-publish/publish",
            Some(API_KEY),
            &publish,
        )
        .await;
        assert_eq!(status, 200, "{format}: {again}");
        assert_eq!(
            again, first,
            "{format}: a retried publish answers the same manifest"
        );

        let start = body["project_start_time"].as_str().unwrap();
        let files = first["payload"]["data_published"].as_array().unwrap();
        assert!(!files.is_empty());
        let mut expected: BTreeMap<String, u64> = files
            .iter()
            .map(|f: &Value| {
                (
                    format!("{project}/{start}/{}", f["file_path"].as_str().unwrap()),
                    f["total_bytes"].as_u64().unwrap(),
                )
            })
            .collect();
        let sidecar = format!("{project}/.{start}.manifest.json");
        let len = std::fs::metadata(rig.mount().join("production").join(&sidecar))
            .unwrap()
            .len();
        expected.insert(sidecar, len);
        expected.extend(rig.bag_tag_objects(&project, start));
        rig.wait_for("production", &format!("{project}/"), &expected);
        rig.wait_for(
            "production",
            &format!(".publish-service/work/{project}/"),
            &BTreeMap::new(),
        );
        for f in files {
            let object = format!("{project}/{start}/{}", f["file_path"].as_str().unwrap());
            assert_eq!(
                json!(rig.sha512("production", &object)),
                f["hash_value"],
                "{object}"
            );
        }
    }
    server.stop();
    emulator.shutdown().await;
}
