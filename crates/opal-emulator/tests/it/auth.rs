//! Signing in: Basic credentials, the 401 body, sessions, the login ban, non-administrators,
//! and the recent sign-in demanded before creating or changing a user (OPAL-WIRE §2).

use std::time::Duration;

use opal_emulator::{LoginBan, SeedUser};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{ADMIN, ADMIN_PASSWORD, Env, Reply};

const PROFILE: &str = "/system/subject-profile/_current";

async fn sign_in(env: &Env, user: &str, password: &str) -> Reply {
    Reply::read(
        env.http
            .get(env.url(PROFILE))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn no_or_wrong_credentials_are_401_without_www_authenticate() {
    let env = Env::start().await;
    let anonymous = Reply::read(env.http.get(env.url(PROFILE)).send().await.unwrap()).await;
    let wrong = sign_in(&env, ADMIN, "nope").await;
    let unknown = sign_in(&env, "nobody", ADMIN_PASSWORD).await;
    let bearer = Reply::read(
        env.http
            .get(env.url("/project/p"))
            .bearer_auth("token")
            .send()
            .await
            .unwrap(),
    )
    .await;
    for reply in [&anonymous, &wrong, &unknown, &bearer] {
        reply.assert_error(
            401,
            "Unauthorized",
            &["org.apache.shiro.authz.UnauthorizedException"],
        );
        // Opal sends WWW-Authenticate only for a two-factor challenge (OPAL-WIRE §2.2).
        assert_eq!(reply.header("www-authenticate"), None);
        assert_eq!(reply.header("set-cookie"), None);
    }
    let journal = env.emu.journal();
    assert_eq!(journal.len(), 4);
    assert!(journal.iter().all(|e| e.status == 401 && e.user.is_none()));
}

#[tokio::test]
async fn administrator_profile_and_session_cookie() {
    let env = Env::start().await;
    let reply = sign_in(&env, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["principal"], ADMIN);
    assert_eq!(reply.json["realm"], "opal-ini-realm");
    assert_eq!(reply.json["otpEnabled"], false);
    let created = reply.json["created"].as_str().unwrap();
    assert_eq!(
        created.len(),
        "2025-06-01T10:11:12.345+0000".len(),
        "{created}"
    );
    assert!(created.ends_with("+0000"), "{created}");
    let cookie = reply.header("set-cookie").unwrap();
    assert!(cookie.starts_with("opalsid="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // The session alone authenticates, and wins over a wrong Authorization header.
    let session = cookie.split(';').next().unwrap().to_owned();
    for request in [
        env.http.get(env.url(PROFILE)),
        env.http
            .get(env.url(PROFILE))
            .basic_auth(ADMIN, Some("wrong")),
    ] {
        let reply = Reply::read(request.header("Cookie", &session).send().await.unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.json["principal"], ADMIN);
    }
    // An unknown session id is no session.
    let reply = Reply::read(
        env.http
            .get(env.url(PROFILE))
            .header("Cookie", "opalsid=00000000-0000-0000-0000-000000000000")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn basic_credentials_without_a_colon_are_400() {
    let env = Env::start().await;
    let reply = Reply::read(
        env.http
            .get(env.url(PROFILE))
            .header("Authorization", "Basic YWRtaW5pc3RyYXRvcg==") // "administrator"
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.text, "");
}

#[tokio::test]
async fn three_failures_ban_the_name() {
    let env = Env::start_with(|c| {
        c.login_ban = Some(LoginBan {
            max_try: 3,
            trial_time: Duration::from_secs(60),
            ban_time: Duration::from_millis(600),
        });
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            sign_in(&env, ADMIN, "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Two failures: the right password still works, and resets the count.
    assert_eq!(
        sign_in(&env, ADMIN, ADMIN_PASSWORD).await.status,
        StatusCode::OK
    );
    for _ in 0..3 {
        assert_eq!(
            sign_in(&env, ADMIN, "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Banned: the right password is refused too, until the ban ends.
    sign_in(&env, ADMIN, ADMIN_PASSWORD).await.assert_error(
        401,
        "Unauthorized",
        &["org.apache.shiro.authz.UnauthorizedException"],
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        sign_in(&env, ADMIN, ADMIN_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn without_a_ban_failures_are_harmless() {
    let env = Env::start_with(|c| c.login_ban = None).await;
    for _ in 0..5 {
        assert_eq!(
            sign_in(&env, ADMIN, "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        sign_in(&env, ADMIN, ADMIN_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_non_administrator_signs_in_but_gets_403_elsewhere() {
    let env = Env::start_with(|c| {
        c.users = vec![SeedUser {
            name: "researcher".into(),
            password: "Res3archer!".into(),
            groups: vec!["Pr004_group".into()],
        }];
    })
    .await;
    env.create_project("Pr004").await;
    let profile = sign_in(&env, "researcher", "Res3archer!").await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.text);
    assert_eq!(profile.json["realm"], "opal-user-realm");
    assert_eq!(profile.json["groups"], json!(["Pr004_group"]));
    let calls: [(Method, &str); 8] = [
        (Method::GET, "/project/Pr004"),
        (Method::GET, "/project/missing"),
        (Method::POST, "/projects"),
        (Method::GET, "/system/group/Pr004_group"),
        (Method::GET, "/system/subject-credential/researcher"),
        (Method::GET, "/system/permissions/datashield?type=GROUP"),
        (Method::GET, "/project/Pr004/resources"),
        (
            Method::POST,
            "/project/Pr004/permissions/resources?type=GROUP&permission=RESOURCES_VIEW&principal=g",
        ),
    ];
    for (method, path) in calls {
        let reply = Reply::read(
            env.http
                .request(method.clone(), env.url(path))
                .basic_auth("researcher", Some("Res3archer!"))
                .json(&json!({"name": "x", "title": "x"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {path}");
        reply.assert_error(403, "Forbidden", &["HTTP 403 Forbidden"]);
    }
    assert_eq!(env.emu.state().projects.len(), 1, "nothing was created");
}

#[tokio::test]
async fn group_admin_is_an_administrator_and_disabled_users_cannot_sign_in() {
    let env = Env::start().await;
    env.emu.add_user("ops", "0ps-Admin!", &["admin"]).unwrap();
    let reply = Reply::read(
        env.http
            .get(env.url("/project/none"))
            .basic_auth("ops", Some("0ps-Admin!"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply.assert_error(404, "NoSuchProject", &["none"]);
    // Disable it through the API: it can no longer sign in.
    let reply = env
        .put(
            "/system/subject-credential/ops",
            json!({"name": "ops", "authenticationType": "PASSWORD", "groups": ["admin"], "enabled": false}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        sign_in(&env, "ops", "0ps-Admin!").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        env.emu.password_ok("ops", "0ps-Admin!"),
        "the password was kept"
    );
}

#[tokio::test]
async fn changing_users_needs_a_recent_sign_in() {
    let env = Env::start_with(|c| c.reauth_timeout = Some(Duration::from_millis(300))).await;
    env.emu.add_user("u1", "Us3r-one!", &[]).unwrap();
    let first = sign_in(&env, ADMIN, ADMIN_PASSWORD).await;
    let session = first
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let body = json!({"name": "u1", "authenticationType": "PASSWORD", "groups": ["g"]});
    let old_session = Reply::read(
        env.http
            .put(env.url("/system/subject-credential/u1"))
            .header("Cookie", &session)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    old_session.assert_error(401, "Unauthorized", &["reauthentication_required"]);
    // Reading still works on the old session; a fresh sign-in (no cookie) may change users.
    let read = Reply::read(
        env.http
            .get(env.url("/system/subject-credential/u1"))
            .header("Cookie", &session)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(read.status, StatusCode::OK);
    let fresh = env.put("/system/subject-credential/u1", body).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
    assert_eq!(env.emu.state().subject("u1").unwrap().groups, vec!["g"]);
}
