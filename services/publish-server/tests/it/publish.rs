//! Publish end to end over real HTTP against the real binary on 127.0.0.1:0.

use std::time::Duration;

use serde_json::json;

use crate::support::{API_KEY, Deployment, Server, fixture, post, sha512sum};

/// Deterministic bytes that are not all alike.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn brief_publish_returns_sha512_and_size_and_is_idempotent() {
    let d = Deployment::new();
    let bytes = content(3 * 1024 * 1024 + 17, 1);
    let staged = d.stage_file("lsc", "Pr004", "20250205_010101", "database.duckdb", &bytes);
    let expected = sha512sum(&staged);
    let server = Server::start(&d);

    // Refusals first: none of them may touch the disk.
    let before = d.snapshot();
    let (status, _) = post(
        &server.url,
        "/data-publish/publish",
        Some("wrong"),
        &fixture("publish-shape-a.json"),
    )
    .await;
    assert_eq!(status, 403);
    let mut traversal = fixture("publish-shape-a.json");
    traversal["project_name"] = json!("../x");
    let (status, body) = post(
        &server.url,
        "/data-publish/publish",
        Some(API_KEY),
        &traversal,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(d.snapshot(), before);

    let (status, first) = post(
        &server.url,
        "/data-publish/publish",
        Some(API_KEY),
        &fixture("publish-shape-a.json"),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        first,
        json!({"status": "success", "payload": {"data_published": [
            {"file_path": "data/outputs/database.duckdb", "hash_value": expected, "total_bytes": bytes.len()}
        ]}})
    );
    let published = d
        .mount("lsc")
        .join("production/Pr004/20250205_010101/data/outputs/database.duckdb");
    assert_eq!(std::fs::read(&published).unwrap(), bytes);
    assert!(
        !d.mount("lsc")
            .join("staging/Pr004/20250205_010101")
            .exists(),
        "staging removed"
    );

    // A retry (either shape) returns the identical manifest.
    let (status, again) = post(
        &server.url,
        "/data-publish/publish",
        Some(API_KEY),
        &fixture("publish-shape-b.json"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again, first);

    let logs = server.stop();
    assert!(!logs.contains(API_KEY), "the API key leaked into the logs");
    assert!(logs.contains("published"), "{logs}");
}

#[tokio::test]
async fn shape_b_publish_of_several_files_across_filesystems() {
    let d = Deployment::new();
    // Staging on a different filesystem (tmpfs), as in production where staging and production
    // are separate volumes: publish must copy, hash while copying, and rename into place.
    let shm =
        tempfile::tempdir_in("/dev/shm").expect("/dev/shm is needed for the cross-filesystem case");
    let staging = d.mount("nw").join("staging");
    std::fs::remove_dir(&staging).unwrap();
    std::os::unix::fs::symlink(shm.path(), &staging).unwrap();
    assert_ne!(
        dev_of(shm.path()),
        dev_of(&d.mount("nw").join("production")),
        "not two filesystems"
    );

    let a = content(100_000, 2);
    let b = content(5, 3);
    let pa = d.stage_file(
        "nw",
        "proj.B-1",
        "20240229_235959",
        "example_schema_name/address.csv",
        &a,
    );
    let pb = d.stage_file(
        "nw",
        "proj.B-1",
        "20240229_235959",
        "example_schema_name/person.csv",
        &b,
    );
    let (ha, hb) = (sha512sum(&pa), sha512sum(&pb));
    let server = Server::start(&d);
    let body = json!({"project_name": "proj.B-1", "project_start_time": "20240229_235959",
                      "destination": {"name": "nw", "type": "FileStore", "format": "csv"}, "extra": true});
    let (status, json) = post(&server.url, "/data-publish/publish", Some(API_KEY), &body).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["payload"]["data_published"],
        json!([
            {"file_path": "data/outputs/example_schema_name/address.csv", "hash_value": ha, "total_bytes": a.len()},
            {"file_path": "data/outputs/example_schema_name/person.csv", "hash_value": hb, "total_bytes": b.len()},
        ])
    );
    let prod = d
        .mount("nw")
        .join("production/proj.B-1/20240229_235959/data/outputs/example_schema_name");
    assert_eq!(std::fs::read(prod.join("address.csv")).unwrap(), a);
    assert_eq!(std::fs::read(prod.join("person.csv")).unwrap(), b);
    // No temporary names left on the production volume.
    let leftovers: Vec<_> = std::fs::read_dir(d.mount("nw").join("production/proj.B-1"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "20240229_235959" && !n.ends_with(".manifest.json"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let (status, again) = post(&server.url, "/data-publish/publish", Some(API_KEY), &body).await;
    assert_eq!((status.as_u16(), &again), (200, &json));
    server.stop();
}

fn dev_of(p: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().dev()
}

/// Issue 9: `kill -9` in the middle of a publish's copy leaves no partial file in any project
/// folder (the copy is in the service's work folder), and after a restart the start-up sweep
/// removes it and the publish can be run again.
#[tokio::test]
async fn kill_9_mid_publish_leaves_no_partial_file_in_any_project_folder() {
    let d = Deployment::new();
    let shm =
        tempfile::tempdir_in("/dev/shm").expect("/dev/shm is needed to copy across filesystems");
    let staging = d.mount("nw").join("staging");
    std::fs::remove_dir(&staging).unwrap();
    std::os::unix::fs::symlink(shm.path(), &staging).unwrap();
    let (project, start) = ("Pr004", "20250205_010101");
    let bytes = content(96 << 20, 9);
    let staged = d.stage_file("nw", project, start, "database.duckdb", &bytes);
    let digest = sha512sum(&staged);
    let production = d.mount("nw").join("production");
    let work = production
        .join(".publish-service/work")
        .join(project)
        .join(start);
    let body =
        json!({"project_name": project, "project_start_time": start, "destination_type": "NW"});

    let server = Server::start(&d);
    let url = server.url.clone();
    let request = {
        let body = body.clone();
        tokio::spawn(async move { post(&url, "/data-publish/publish", Some(API_KEY), &body).await })
    };
    // Wait until the copy is under way, then kill the server without warning.
    let began = std::time::Instant::now();
    let partial = loop {
        let found = std::fs::read_dir(&work).ok().and_then(|entries| {
            entries
                .flatten()
                .find(|e| e.file_name().to_string_lossy().starts_with("tmp-"))
                .map(|e| e.path().join("data/outputs/database.duckdb"))
        });
        if let Some(file) = found.filter(|f| f.metadata().is_ok_and(|m| m.len() > 0)) {
            break file;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the publish never started copying"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let _ = request.await;
    let copied = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    assert!(
        copied < bytes.len() as u64 || production.join(project).join(start).exists(),
        "killed mid-copy"
    );
    // No project folder holds anything partial: production has no result (or a complete one).
    let result = production
        .join(project)
        .join(start)
        .join("data/outputs/database.duckdb");
    if result.exists() {
        assert_eq!(sha512sum(&result), digest);
    }
    for entry in std::fs::read_dir(&production).unwrap().flatten() {
        if entry.file_name() != ".publish-service" && entry.file_name() != project {
            panic!("unexpected {:?} in production", entry.path());
        }
    }

    // The restart sweeps the partial copy away; the publish then succeeds.
    let server = Server::start(&d);
    assert!(
        !partial.exists(),
        "the start-up sweep removed the partial copy"
    );
    let (status, json) = post(&server.url, "/data-publish/publish", Some(API_KEY), &body).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["payload"]["data_published"][0]["hash_value"],
        json!(digest)
    );
    assert_eq!(sha512sum(&result), digest);
    server.stop();
}
