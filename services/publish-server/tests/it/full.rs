//! A full volume (issue 9): package or publish that runs out of space answers 507 naming the
//! volume, leaves staging and production as they were, and the service keeps working.

use serde_json::json;

use crate::package::setup;
use crate::support::{API_KEY, Server, SmallTmpfs, post};

#[tokio::test]
async fn a_full_staging_or_production_volume_is_507_and_changes_nothing() {
    let (d, emulator) = setup().await;
    // Staging of NW on a tiny tmpfs: the fixture tables' database does not fit.
    let Some(_staging) = SmallTmpfs::mount(&d.mount("nw").join("staging"), 96 * 1024) else {
        return;
    };
    let server = Server::start(&d);
    let mut body = crate::support::fixture("package-shape-b.json");
    body["source"]["host_url"] = json!(emulator.url());
    body["destination"]["name"] = json!("nw");
    let before = d.snapshot();
    let (status, answer) = post(&server.url, "/data-publish/package", Some(API_KEY), &body).await;
    assert_eq!(status, 507, "{answer}");
    let detail = answer["payload"]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("the staging volume of destination NW is full"),
        "{detail}"
    );
    assert_eq!(d.snapshot(), before, "nothing was left in staging");

    // The service still works: the same package to LSC (plenty of room) succeeds.
    body["destination"]["name"] = json!("lsc");
    let (status, answer) = post(&server.url, "/data-publish/package", Some(API_KEY), &body).await;
    assert_eq!(status, 200, "{answer}");

    // Production of LSC on a tiny tmpfs: the publish does not fit.
    let Some(_production) = SmallTmpfs::mount(&d.mount("lsc").join("production"), 96 * 1024) else {
        return;
    };
    let before = d.snapshot();
    let publish = crate::support::fixture("publish-shape-b.json");
    let (status, answer) = post(
        &server.url,
        "/data-publish/publish",
        Some(API_KEY),
        &publish,
    )
    .await;
    assert_eq!(status, 507, "{answer}");
    assert!(
        answer["payload"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("the production volume of destination LSC is full"),
        "{answer}"
    );
    assert_eq!(
        d.snapshot(),
        before,
        "staging and production are as they were"
    );
    server.stop();
    emulator.shutdown().await;
}
