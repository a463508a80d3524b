//! Authentication: login, refresh rotation, throttling, deactivation, users, devices.

mod common;

use common::{assert_problem, test_config, TestApp};
use inventory_api::cache::Cache;
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test]
async fn login_returns_a_token_pair_that_reaches_me(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let user = app.create_user("clerk").await;
    // Email matching ignores case.
    let resp = app.login(&user.email.to_uppercase(), &user.password).await;
    assert_eq!(resp.status(), 200);
    let pair: Value = resp.json().await.unwrap();
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert!(pair["refresh_token"].as_str().unwrap().starts_with("invr_"));
    let me: Value = app
        .get_ok("/api/v1/auth/me", pair["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me["email"], user.email);
    assert_eq!(me["role"], "clerk");
    assert!(me.get("password_hash").is_none());
}

#[sqlx::test]
async fn wrong_password_and_unknown_email_get_the_same_401(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let user = app.create_user("viewer").await;
    let wrong = assert_problem(
        app.login(&user.email, "not the password!").await,
        401,
        "invalid-credentials",
    )
    .await;
    let unknown = assert_problem(
        app.login("nobody@example.com", "not the password!").await,
        401,
        "invalid-credentials",
    )
    .await;
    assert_eq!(wrong, unknown);
}

#[sqlx::test]
async fn malformed_login_bodies_are_problem_400(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400, "bad-request").await;
    let resp = app
        .post_json("/api/v1/auth/login", &json!({"email": 5}))
        .await;
    assert_problem(resp, 400, "bad-request").await;
}

async fn pair(app: &TestApp) -> Value {
    let user = app.create_user("clerk").await;
    app.login(&user.email, &user.password)
        .await
        .json()
        .await
        .unwrap()
}

#[sqlx::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_family(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let first = pair(&app).await;
    let resp = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": first["refresh_token"]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let second: Value = resp.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(
        app.get_as("/api/v1/auth/me", second["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // The first token again: theft. Refused, and the family dies with it.
    let resp = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": first["refresh_token"]}),
        )
        .await;
    assert_problem(resp, 401, "unauthorized").await;
    let resp = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": second["refresh_token"]}),
        )
        .await;
    assert_problem(resp, 401, "unauthorized").await;
}

#[sqlx::test]
async fn concurrent_refreshes_with_one_token_succeed_once(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let first = pair(&app).await;
    let body = json!({"refresh_token": first["refresh_token"]});
    let (a, b) = tokio::join!(
        app.post_json("/api/v1/auth/refresh", &body),
        app.post_json("/api/v1/auth/refresh", &body)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 401]);
}

#[sqlx::test]
async fn logout_revokes_the_refresh_family(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let p = pair(&app).await;
    let access = p["access_token"].as_str().unwrap();
    let resp = app
        .post_as(
            "/api/v1/auth/logout",
            access,
            &json!({"refresh_token": p["refresh_token"]}),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let resp = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": p["refresh_token"]}),
        )
        .await;
    assert_problem(resp, 401, "unauthorized").await;
}

async fn assert_throttled_after_five_failures(app: &TestApp) {
    let user = app.create_user("clerk").await;
    for _ in 0..5 {
        assert_eq!(
            app.login(&user.email, "wrong password!!").await.status(),
            401
        );
    }
    // Even the right password is refused now, with a Retry-After.
    let resp = app.login(&user.email, &user.password).await;
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 900, "{retry_after}");
    assert_problem(resp, 429, "too-many-requests").await;
    // Another email from the same address is not blocked yet (address limit is 20).
    let other = app.create_user("clerk").await;
    assert_eq!(app.login(&other.email, &other.password).await.status(), 200);
}

#[sqlx::test]
async fn login_is_throttled_per_email_with_redis(db: PgPool) {
    let app = TestApp::spawn(db).await;
    assert_throttled_after_five_failures(&app).await;
}

#[sqlx::test]
async fn login_is_throttled_in_process_when_redis_is_down(db: PgPool) {
    let down = Cache::connect("redis://127.0.0.1:1", "test:down:").unwrap();
    let app = TestApp::spawn_with(db, down, test_config(&[])).await;
    assert_throttled_after_five_failures(&app).await;
}

#[sqlx::test]
async fn login_is_throttled_per_address(db: PgPool) {
    // The test client plays nginx: a trusted proxy naming the client.
    let app = spawn_with_config(db, &[("TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let addr = "203.0.113.7";
    for i in 0..20 {
        let resp = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", addr)
            .json(&json!({"email": format!("u{i}@example.com"), "password": "wrong password!!"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    let user = app.create_user("clerk").await;
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", addr)
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 429, "too-many-requests").await;
}

#[sqlx::test]
async fn deactivated_users_lose_access_at_once(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = app.token("admin").await;
    let user = app.create_user("clerk").await;
    let p: Value = app
        .login(&user.email, &user.password)
        .await
        .json()
        .await
        .unwrap();
    let token = p["access_token"].as_str().unwrap();
    assert_eq!(app.get_as("/api/v1/auth/me", token).await.status(), 200);

    let resp = app
        .delete_as(&format!("/api/v1/users/{}", user.id), &admin)
        .await;
    assert_eq!(resp.status(), 204);
    assert_problem(
        app.get_as("/api/v1/auth/me", token).await,
        401,
        "unauthorized",
    )
    .await;
    let resp = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": p["refresh_token"]}),
        )
        .await;
    assert_problem(resp, 401, "unauthorized").await;
    assert_problem(
        app.login(&user.email, &user.password).await,
        401,
        "invalid-credentials",
    )
    .await;
}

#[sqlx::test]
async fn the_last_active_admin_cannot_be_removed_or_demoted(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = app.create_user("admin").await;
    let p: Value = app
        .login(&admin.email, &admin.password)
        .await
        .json()
        .await
        .unwrap();
    let token = p["access_token"].as_str().unwrap();
    let path = format!("/api/v1/users/{}", admin.id);
    assert_problem(app.delete_as(&path, token).await, 409, "last-admin").await;
    assert_problem(
        app.patch_as(&path, token, &json!({"role": "manager"}))
            .await,
        409,
        "last-admin",
    )
    .await;
    // With a second admin, demotion works.
    app.create_user("admin").await;
    let resp = app
        .patch_as(&path, token, &json!({"role": "manager"}))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["role"], "manager");
    // And takes effect on the next request: no longer allowed to list users.
    assert_problem(app.get_as("/api/v1/users", token).await, 403, "forbidden").await;
}

#[sqlx::test]
async fn admins_create_users_with_validated_fields(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = app.token("admin").await;
    let resp = app
        .post_as(
            "/api/v1/users",
            &admin,
            &json!({"email": "not-an-email", "password": "short", "role": "clerk"}),
        )
        .await;
    let body = assert_problem(resp, 422, "validation").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password"]);

    let new = json!({"email": "Pat@Example.com", "password": "a long enough password", "role": "manager"});
    let resp = app.post_as("/api/v1/users", &admin, &new).await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["display_name"], "Pat");
    let dup =
        json!({"email": "pat@example.com", "password": "a long enough password", "role": "clerk"});
    assert_problem(
        app.post_as("/api/v1/users", &admin, &dup).await,
        409,
        "email-taken",
    )
    .await;
    assert_eq!(
        app.login("pat@example.com", "a long enough password")
            .await
            .status(),
        200
    );

    // The list pages through every user exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?limit=1&cursor={c}"),
            None => "/api/v1/users?limit=1".to_owned(),
        };
        let page: Value = app.get_ok(&path, &admin).await;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["email"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 2);
    assert!(seen.contains(&"Pat@Example.com".to_owned()));
}

#[sqlx::test]
async fn device_keys_are_shown_once_and_reach_only_scanner_endpoints(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let manager = app.token("manager").await;
    let wh = app.create_warehouse_sql("WH1").await;
    let (id, key) = app.create_device(&manager, &[wh]).await;
    assert!(key.starts_with("invd_"));

    let list: Value = app.get_ok("/api/v1/scanner/devices", &manager).await;
    assert_eq!(list["items"][0]["id"], id.to_string());
    assert!(list["items"][0].get("api_key").is_none());
    assert!(!list.to_string().contains(&key));

    // A device key is a principal, but not for user endpoints.
    assert_problem(app.get_as("/api/v1/auth/me", &key).await, 403, "forbidden").await;
    assert_problem(
        app.get_as("/api/v1/scanner/devices", &key).await,
        403,
        "forbidden",
    )
    .await;

    // Unknown warehouses are refused.
    let resp = app
        .post_as(
            "/api/v1/scanner/devices",
            &manager,
            &json!({"name": "x", "warehouse_ids": [uuid::Uuid::new_v4()]}),
        )
        .await;
    assert_problem(resp, 422, "validation").await;

    // Revoked keys stop working at once.
    assert_eq!(
        app.delete_as(&format!("/api/v1/scanner/devices/{id}"), &manager)
            .await
            .status(),
        204
    );
    assert_problem(
        app.get_as("/api/v1/auth/me", &key).await,
        401,
        "unauthorized",
    )
    .await;
}

#[sqlx::test]
async fn bootstrap_creates_the_first_admin_only_once(db: PgPool) {
    let hash = inventory_api::auth::password::hash("bootstrap password".into())
        .await
        .unwrap();
    assert!(
        inventory_api::auth::repo::bootstrap_admin(&db, "boss@example.com", &hash)
            .await
            .unwrap()
    );
    assert!(
        !inventory_api::auth::repo::bootstrap_admin(&db, "other@example.com", &hash)
            .await
            .unwrap()
    );
    let app = TestApp::spawn(db).await;
    assert_eq!(
        app.login("boss@example.com", "bootstrap password")
            .await
            .status(),
        200
    );
}

#[sqlx::test]
async fn the_create_user_command_makes_a_user_who_can_sign_in(db: PgPool) {
    use std::io::Write;
    let base = std::env::var("DATABASE_URL").unwrap();
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&db)
        .await
        .unwrap();
    let url = format!("{}/{}", base.rsplit_once('/').unwrap().0, name);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_inventory-api"))
        .args([
            "create-user",
            "--email",
            "cli@example.com",
            "--role",
            "manager",
        ])
        .env("DATABASE_URL", &url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"cli password 123\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = TestApp::spawn(db).await;
    let resp = app.login("cli@example.com", "cli password 123").await;
    assert_eq!(resp.status(), 200);
}

async fn spawn_with_config(db: PgPool, overrides: &[(&str, &str)]) -> TestApp {
    let plain = TestApp::spawn(db.clone()).await;
    TestApp::spawn_with(db, plain.cache.clone(), test_config(overrides)).await
}

#[sqlx::test]
async fn x_forwarded_for_from_an_untrusted_peer_cannot_pick_the_rate_limit_key(db: PgPool) {
    // No TRUSTED_PROXIES: each request claims another address, all are one peer.
    let app = TestApp::spawn(db).await;
    for i in 0..20 {
        let resp = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&json!({"email": format!("u{i}@example.com"), "password": "wrong password!!"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "198.51.100.250")
        .json(&json!({"email": "fresh@example.com", "password": "wrong password!!"}))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 429, "too-many-requests").await;
}

#[sqlx::test]
async fn concurrent_wrong_passwords_cannot_outrun_the_email_limit(db: PgPool) {
    let app = std::sync::Arc::new(TestApp::spawn(db).await);
    let user = app.create_user("clerk").await;
    let mut tasks = Vec::new();
    for _ in 0..31 {
        let (app, email) = (app.clone(), user.email.clone());
        tasks.push(tokio::spawn(async move {
            app.login(&email, "wrong password!!")
                .await
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked, 5, "exactly the limit is evaluated: {statuses:?}");
    assert_eq!(throttled, 26, "{statuses:?}");
}

#[sqlx::test]
async fn logins_past_the_hashing_queue_get_503_with_retry_after(db: PgPool) {
    let app = std::sync::Arc::new(
        spawn_with_config(
            db,
            &[
                ("PASSWORD_HASH_CONCURRENCY", "1"),
                ("PASSWORD_HASH_QUEUE_MS", "1"),
            ],
        )
        .await,
    );
    let mut tasks = Vec::new();
    for i in 0..12 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let resp = app
                .login(&format!("nobody{i}@example.com"), "wrong password!!")
                .await;
            let status = resp.status().as_u16();
            let retry = resp.headers().get("retry-after").is_some();
            (status, retry)
        }));
    }
    let mut busy = 0;
    for t in tasks {
        let (status, retry) = t.await.unwrap();
        assert!(status == 401 || status == 503, "answered {status}");
        if status == 503 {
            assert!(retry, "503 carries Retry-After");
            busy += 1;
        }
    }
    assert!(busy > 0, "one hashing slot cannot take 12 logins at once");
    // Refused-for-capacity attempts are not counted as failures.
    let user = app.create_user("clerk").await;
    assert_eq!(app.login(&user.email, &user.password).await.status(), 200);
}

#[sqlx::test]
async fn a_password_change_ends_existing_access_tokens_on_every_replica(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let other_replica = TestApp::spawn(db).await;
    let admin = app.token("admin").await;
    let user = app.create_user("clerk").await;
    let p: Value = app
        .login(&user.email, &user.password)
        .await
        .json()
        .await
        .unwrap();
    let token = p["access_token"].as_str().unwrap();
    assert_eq!(app.get_as("/api/v1/auth/me", token).await.status(), 200);

    let resp = app
        .patch_as(
            &format!("/api/v1/users/{}", user.id),
            &admin,
            &json!({"password": "a brand new password"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    for replica in [&app, &other_replica] {
        assert_problem(
            replica.get_as("/api/v1/auth/me", token).await,
            401,
            "unauthorized",
        )
        .await;
    }
    // Signing in again with the new password works, and so does its token.
    let p: Value = app
        .login(&user.email, "a brand new password")
        .await
        .json()
        .await
        .unwrap();
    let fresh = p["access_token"].as_str().unwrap();
    assert_eq!(
        other_replica
            .get_as("/api/v1/auth/me", fresh)
            .await
            .status(),
        200
    );
    // A rename does not sign anybody out.
    let resp = app
        .patch_as(
            &format!("/api/v1/users/{}", user.id),
            &admin,
            &json!({"display_name": "Renamed"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.get_as("/api/v1/auth/me", fresh).await.status(), 200);
}

#[sqlx::test]
async fn one_address_in_any_unicode_spelling_is_one_account_and_one_throttle_key(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = app.token("admin").await;
    // Full-width letters are the same address after NFKC.
    let resp = app
        .post_as(
            "/api/v1/users",
            &admin,
            &json!({"email": "Ａnn@Example.com", "display_name": "Ann", "role": "clerk",
                    "password": "correct horse battery staple"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let resp = app
        .post_as(
            "/api/v1/users",
            &admin,
            &json!({"email": "ann@example.COM", "display_name": "Ann 2", "role": "clerk",
                    "password": "correct horse battery staple"}),
        )
        .await;
    assert_problem(resp, 409, "email-taken").await;
    assert_eq!(
        app.login("ANN@example.com", "correct horse battery staple")
            .await
            .status(),
        200
    );
    // Failures under different spellings add up on one counter.
    for spelling in ["ann@example.com", "ＡＮＮ@example.com", "Ann@Ｅxample.com"]
        .iter()
        .cycle()
        .take(5)
    {
        assert_eq!(app.login(spelling, "wrong password!!").await.status(), 401);
    }
    assert_problem(
        app.login("ａｎｎ@example.com", "correct horse battery staple")
            .await,
        429,
        "too-many-requests",
    )
    .await;
}

#[sqlx::test]
async fn rows_written_without_the_normal_form_are_filled_and_found(db: PgPool) {
    let app = TestApp::spawn(db).await;
    // common::create_user inserts by SQL without email_normalized.
    let user = app.create_user("clerk").await;
    let upper = user.email.to_uppercase();
    assert_eq!(app.login(&upper, &user.password).await.status(), 200);
    sqlx::query("UPDATE users SET email_normalized = 'stale' WHERE id = $1")
        .bind(user.id)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET email = 'ＺＥＤ@example.com' WHERE id = $1")
        .bind(user.id)
        .execute(&app.db)
        .await
        .unwrap();
    inventory_api::auth::repo::renormalize_emails(&app.db)
        .await
        .unwrap();
    assert_eq!(
        app.login("zed@example.com", &user.password).await.status(),
        200
    );
}
