//! DataSHIELD and project resource permissions (OPAL-WIRE §8, §10).

use reqwest::StatusCode;
use serde_json::json;

use crate::Env;

const DS: &str = "/system/permissions/datashield";

#[tokio::test]
async fn datashield_use_for_a_group() {
    let env = Env::start().await;
    let empty = env.get(&format!("{DS}?type=GROUP")).await;
    assert_eq!(
        (empty.status, empty.json.clone()),
        (StatusCode::OK, json!([]))
    );
    let reply = env
        .post_empty(&format!(
            "{DS}?type=GROUP&permission=DATASHIELD_USE&principal=Pr004_group"
        ))
        .await;
    assert_eq!((reply.status, reply.text.as_str()), (StatusCode::OK, ""));
    let acl = json!([{
        "subject": {"principal": "Pr004_group", "type": "GROUP"},
        "resource": "/datashield",
        "actions": ["DATASHIELD_USE"],
        "domain": "opal",
    }]);
    assert_eq!(env.get(&format!("{DS}?type=GROUP")).await.json, acl);
    // Without `type`: every subject; with USER: none. Undeclared parameters are ignored.
    assert_eq!(env.get(DS).await.json, acl);
    assert_eq!(env.get(&format!("{DS}?type=USER")).await.json, json!([]));
    assert_eq!(
        env.get(&format!(
            "{DS}?type=GROUP&permission=RESOURCES_VIEW&principal=x"
        ))
        .await
        .json,
        acl
    );
    assert_eq!(
        env.emu.state().datashield_group_actions("Pr004_group"),
        vec!["DATASHIELD_USE"]
    );
}

#[tokio::test]
async fn a_permission_replaces_the_subjects_others() {
    let env = Env::start().await;
    env.post_empty(&format!(
        "{DS}?type=GROUP&permission=DATASHIELD_ALL&principal=g&principal=h"
    ))
    .await;
    env.post_empty(&format!(
        "{DS}?type=GROUP&permission=DATASHIELD_USE&principal=g"
    ))
    .await;
    let state = env.emu.state();
    assert_eq!(state.datashield_group_actions("g"), vec!["DATASHIELD_USE"]);
    assert_eq!(state.datashield_group_actions("h"), vec!["DATASHIELD_ALL"]);
    // `type` defaults to USER on a POST.
    env.post_empty(&format!("{DS}?permission=DATASHIELD_USE&principal=alice"))
        .await;
    let users = env.get(&format!("{DS}?type=USER")).await.json;
    assert_eq!(
        users[0]["subject"],
        json!({"principal": "alice", "type": "USER"})
    );
}

#[tokio::test]
async fn datashield_parameter_errors() {
    let env = Env::start().await;
    // JAX-RS converts enum query parameters with valueOf: a wrong one is a 404.
    for path in [
        format!("{DS}?type=group"),
        format!("{DS}?type=GROUP&permission=use&principal=g"),
    ] {
        let reply = env.post_empty(&path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(reply.text.starts_with("RESTEASY003870"), "{}", reply.text);
    }
    assert_eq!(
        env.get(&format!("{DS}?type=group")).await.status,
        StatusCode::NOT_FOUND
    );
    env.post_empty(&format!("{DS}?type=GROUP&principal=g"))
        .await
        .assert_error(
            500,
            "UnhandledException",
            &[
                "NullPointerException",
                "Cannot invoke \"org.obiba.opal.core.security.DataShieldPermissionConverter$Permission.name()\" because \"permission\" is null",
            ],
        );
    env.post_empty(&format!("{DS}?type=GROUP&permission=DATASHIELD_USE"))
        .await
        .assert_error(400, "A principal is required.", &[]);
    assert!(env.emu.state().datashield_permissions.is_empty());
}

#[tokio::test]
async fn resources_view_for_a_group() {
    let env = Env::start().await;
    let path = "/project/Pr004/permissions/resources";
    env.get(path)
        .await
        .assert_error(404, "NoSuchProject", &["Pr004"]);
    env.post_empty(&format!(
        "{path}?type=GROUP&permission=RESOURCES_VIEW&principal=g"
    ))
    .await
    .assert_error(404, "NoSuchProject", &["Pr004"]);
    env.create_project("Pr004").await;
    assert_eq!(env.get(path).await.json, json!([]));
    let reply = env
        .post_empty(&format!(
            "{path}?type=GROUP&permission=RESOURCES_VIEW&principal=Pr004_group"
        ))
        .await;
    assert_eq!((reply.status, reply.text.as_str()), (StatusCode::OK, ""));
    let acl = json!([{
        "subject": {"principal": "Pr004_group", "type": "GROUP"},
        "resource": "/project/Pr004/resources",
        "actions": ["RESOURCES_VIEW"],
        "domain": "opal",
    }]);
    assert_eq!(env.get(path).await.json, acl);
    assert_eq!(env.get(&format!("{path}?type=GROUP")).await.json, acl);
    assert_eq!(
        env.emu
            .state()
            .resource_group_actions("Pr004", "Pr004_group"),
        vec!["RESOURCES_VIEW"]
    );
    // This GET declares `permission` too, so a wrong value is a 404 here.
    assert_eq!(
        env.get(&format!("{path}?permission=DATASHIELD_USE"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    env.post_empty(&format!("{path}?type=GROUP&principal=g"))
        .await
        .assert_error(
            500,
            "UnhandledException",
            &[
                "NullPointerException",
                "Cannot invoke \"org.obiba.opal.core.security.ProjectResourceReferencesPermissionConverter$Permission.name()\" because \"permission\" is null",
            ],
        );
}
