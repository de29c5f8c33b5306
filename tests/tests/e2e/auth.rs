//! Authentication end to end: setup, login, logout, profile, password change, throttling, audit
//! rows, and the promise that no secret leaves the server.

use anyhow::{Result, ensure};
use serde_json::json;
use std::time::{Duration, Instant};
use stowage_shared::api::{
    AuthPayload, LoggedOut, PasswordChanged, Role, SetupStatus, UserOutput, routes,
};
use stowage_tests::{Reply, Server, ServerOptions};

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "staple battery horse correct";

#[tokio::test]
async fn setup_creates_one_admin_and_then_closes() -> Result<()> {
    let server = Server::start().await?;
    let status: SetupStatus = server
        .get(routes::AUTH_SETUP_STATUS, None)
        .await?
        .expect_ok()?;
    assert!(!status.initialized);

    let reply = server
        .post(
            routes::AUTH_SETUP,
            None,
            &json!({"username": "Ada", "password": PASSWORD, "displayName": " Ada Lovelace "}),
        )
        .await?;
    assert_eq!(reply.status, 201);
    let payload: AuthPayload = reply.expect_ok()?;
    assert_eq!(payload.user.username, "Ada");
    assert_eq!(payload.user.display_name, "Ada Lovelace");
    assert_eq!(payload.user.role, Role::Admin);
    assert!(!reply.raw.contains(PASSWORD) && !reply.raw.contains("argon2"));

    let status: SetupStatus = server
        .get(routes::AUTH_SETUP_STATUS, None)
        .await?
        .expect_ok()?;
    assert!(status.initialized);
    server
        .setup("mallory", PASSWORD)
        .await?
        .expect_error(409, "AUTH_SETUP_DISABLED")?;

    // The setup token works at once.
    let me: UserOutput = server
        .get(routes::AUTH_PROFILE, Some(payload.token.expose()))
        .await?
        .expect_ok()?;
    assert_eq!(me, payload.user);
    Ok(())
}

#[tokio::test]
async fn concurrent_setups_make_exactly_one_admin() -> Result<()> {
    let server = Server::start().await?;
    let attempts = (0..8).map(|i| {
        let server = &server;
        async move { server.setup(&format!("admin{i}"), PASSWORD).await }
    });
    let replies: Vec<Reply> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let winners: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(winners.len(), 1, "exactly one setup wins: {replies:#?}");
    for loser in replies.iter().filter(|r| r.status != 201) {
        loser.expect_error(409, "AUTH_SETUP_DISABLED")?;
    }
    let users = server.query("SELECT username, role FROM users")?;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["role"], "admin");
    let winner: AuthPayload = winners[0].expect_ok()?;
    assert_eq!(users[0]["username"], winner.user.username.as_str());
    Ok(())
}

#[tokio::test]
async fn login_profile_and_logout_revokes_the_token_at_once() -> Result<()> {
    let server = Server::start().await?;
    server.admin("admin", PASSWORD).await?;

    // Usernames are matched without regard to case; the answer is the same for both failures.
    let payload: AuthPayload = server.login("ADMIN", PASSWORD).await?.expect_ok()?;
    let token = payload.token.expose().to_owned();
    let wrong_password = server.login("admin", "not the password").await?;
    wrong_password.expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    let unknown_user = server.login("nobody", PASSWORD).await?;
    unknown_user.expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    assert_eq!(
        wrong_password.envelope.message,
        unknown_user.envelope.message
    );

    let me: UserOutput = server
        .get(routes::AUTH_PROFILE, Some(&token))
        .await?
        .expect_ok()?;
    assert_eq!(me.username, "admin");
    server
        .get(routes::AUTH_PROFILE, None)
        .await?
        .expect_error(401, "AUTH_REQUIRED")?;

    let out: LoggedOut = server
        .post(routes::AUTH_LOGOUT, Some(&token), &json!({}))
        .await?
        .expect_ok()?;
    assert!(out.logged_out);
    server
        .get(routes::AUTH_PROFILE, Some(&token))
        .await?
        .expect_error(401, "AUTH_INVALID_TOKEN")?;
    server
        .post(routes::AUTH_LOGOUT, Some(&token), &json!({}))
        .await?
        .expect_error(401, "AUTH_INVALID_TOKEN")?;
    server
        .post(routes::AUTH_LOGOUT, None, &json!({}))
        .await?
        .expect_error(401, "AUTH_REQUIRED")?;
    Ok(())
}

#[tokio::test]
async fn password_change_keeps_this_session_and_revokes_every_other() -> Result<()> {
    let server = Server::start().await?;
    let setup_token = server.admin("admin", PASSWORD).await?;
    let here: AuthPayload = server.login("admin", PASSWORD).await?.expect_ok()?;
    let elsewhere: AuthPayload = server.login("admin", PASSWORD).await?.expect_ok()?;
    let here = here.token.expose();

    let body = |old: &str, new: &str| json!({"oldPassword": old, "newPassword": new});
    server
        .put(routes::AUTH_PASSWORD, None, &body(PASSWORD, NEW_PASSWORD))
        .await?
        .expect_error(401, "AUTH_REQUIRED")?;
    server
        .put(
            routes::AUTH_PASSWORD,
            Some(here),
            &body("wrong old password", NEW_PASSWORD),
        )
        .await?
        .expect_error(400, "AUTH_WRONG_PASSWORD")?;
    server
        .put(routes::AUTH_PASSWORD, Some(here), &body(PASSWORD, "short"))
        .await?
        .expect_error(400, "AUTH_PASSWORD_INVALID")?;
    server
        .put(routes::AUTH_PASSWORD, Some(here), &body(PASSWORD, PASSWORD))
        .await?
        .expect_error(400, "AUTH_PASSWORD_INVALID")?;
    server
        .put(
            routes::AUTH_PASSWORD,
            Some(here),
            &json!({"oldPassword": PASSWORD}),
        )
        .await?
        .expect_error(400, "AUTH_PASSWORD_INVALID")?;

    let changed: PasswordChanged = server
        .put(
            routes::AUTH_PASSWORD,
            Some(here),
            &body(PASSWORD, NEW_PASSWORD),
        )
        .await?
        .expect_ok()?;
    assert!(changed.changed);
    assert_eq!(
        changed.revoked_sessions, 2,
        "the setup session and the other login"
    );

    server
        .get(routes::AUTH_PROFILE, Some(here))
        .await?
        .expect_ok::<UserOutput>()?;
    for dead in [setup_token.as_str(), elsewhere.token.expose()] {
        server
            .get(routes::AUTH_PROFILE, Some(dead))
            .await?
            .expect_error(401, "AUTH_INVALID_TOKEN")?;
    }
    server
        .login("admin", PASSWORD)
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    server
        .login("admin", NEW_PASSWORD)
        .await?
        .expect_ok::<AuthPayload>()?;
    Ok(())
}

/// Sends a login from a given client address (wrangler dev passes `CF-Connecting-IP` through, as
/// Cloudflare's edge sets it in production).
async fn login_from(server: &Server, ip: &str, username: &str, password: &str) -> Result<Reply> {
    let resp = server
        .http()
        .post(server.url(routes::AUTH_LOGIN))
        .header("CF-Connecting-IP", ip)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?;
    Reply::read(resp).await
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_retry_after_then_unlock() -> Result<()> {
    let lockout_secs = 3;
    let server = Server::start_with(
        ServerOptions::default()
            .var("LOGIN_MAX_FAILURES", 3)
            .var("LOGIN_LOCKOUT_SECS", lockout_secs),
    )
    .await?;
    server.admin("admin", PASSWORD).await?;

    // Failures from three different addresses still add up on the account.
    for ip in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        login_from(&server, ip, "admin", "wrong password")
            .await?
            .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    }
    // Locked: even the right password is refused, from a fresh address too.
    let reply = login_from(&server, "198.51.100.4", "admin", PASSWORD).await?;
    reply.expect_error(429, "AUTH_RATE_LIMITED")?;
    let retry_after: u64 = reply.header("retry-after").unwrap_or("0").parse()?;
    ensure!(
        (1..=lockout_secs).contains(&retry_after),
        "Retry-After {retry_after}"
    );

    // Another account is not affected.
    login_from(&server, "198.51.100.4", "someone-else", PASSWORD)
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;

    // The lock lifts when Retry-After says; poll for it rather than sleep a guessed time.
    let deadline = Instant::now() + Duration::from_secs(retry_after + 10);
    loop {
        let reply = login_from(&server, "198.51.100.5", "admin", PASSWORD).await?;
        if reply.status == 200 {
            break;
        }
        reply.expect_error(429, "AUTH_RATE_LIMITED")?;
        ensure!(Instant::now() < deadline, "the lock never lifted");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Success cleared the account counter: two more failures do not lock it again.
    for _ in 0..2 {
        login_from(&server, "198.51.100.6", "admin", "wrong password")
            .await?
            .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    }
    login_from(&server, "198.51.100.7", "admin", PASSWORD)
        .await?
        .expect_ok::<AuthPayload>()?;
    Ok(())
}

#[tokio::test]
async fn one_address_guessing_many_accounts_is_locked_out() -> Result<()> {
    let server = Server::start_with(ServerOptions::default().var("LOGIN_MAX_FAILURES", 3)).await?;
    server.admin("admin", PASSWORD).await?;
    for user in ["alice", "bob", "carol"] {
        login_from(&server, "203.0.113.7", user, "guess guess")
            .await?
            .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    }
    let reply = login_from(&server, "203.0.113.7", "admin", PASSWORD).await?;
    reply.expect_error(429, "AUTH_RATE_LIMITED")?;
    assert!(reply.header("retry-after").is_some());
    // The real admin, from its own address, still gets in.
    login_from(&server, "203.0.113.8", "admin", PASSWORD)
        .await?
        .expect_ok::<AuthPayload>()?;
    Ok(())
}

#[tokio::test]
async fn unknown_user_costs_about_as_much_as_a_wrong_password() -> Result<()> {
    let server =
        Server::start_with(ServerOptions::default().var("LOGIN_MAX_FAILURES", 1000)).await?;
    server.admin("admin", PASSWORD).await?;
    async fn median(server: &Server, user: &str) -> Result<Duration> {
        let mut times = Vec::new();
        for i in 0..7 {
            let started = Instant::now();
            login_from(server, &format!("192.0.2.{i}"), user, "wrong password")
                .await?
                .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
            times.push(started.elapsed());
        }
        times.sort();
        Ok(times[times.len() / 2])
    }
    // Warm the isolate first so neither side pays for start-up.
    median(&server, "admin").await?;
    let known = median(&server, "admin").await?;
    let unknown = median(&server, "nobody-here").await?;
    // Without the equalising hash an unknown user answers ~10x faster (no argon2 at all); the bound
    // is loose because the machine is shared.
    ensure!(
        unknown * 2 >= known,
        "unknown user {unknown:?} vs wrong password {known:?}: timing tells which usernames exist"
    );
    Ok(())
}

#[tokio::test]
async fn auth_events_are_audited_with_actor_address_and_result() -> Result<()> {
    let server = Server::start().await?;
    let token = server.admin("admin", PASSWORD).await?;
    login_from(&server, "198.51.100.20", "admin", "wrong password")
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    login_from(&server, "198.51.100.21", "ghost", "wrong password")
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    let other: AuthPayload = login_from(&server, "198.51.100.22", "admin", PASSWORD)
        .await?
        .expect_ok()?;
    server
        .put(
            routes::AUTH_PASSWORD,
            Some(other.token.expose()),
            &json!({"oldPassword": PASSWORD, "newPassword": NEW_PASSWORD}),
        )
        .await?
        .expect_ok::<PasswordChanged>()?;
    // Setup after setup, again and again: counted in one row, not written each time.
    for _ in 0..3 {
        server
            .setup("late", PASSWORD)
            .await?
            .expect_error(409, "AUTH_SETUP_DISABLED")?;
    }
    let _ = token;
    server
        .post(routes::AUTH_LOGOUT, Some(other.token.expose()), &json!({}))
        .await?
        .expect_ok::<LoggedOut>()?;

    let rows = server.query(
        "SELECT action, result, actor, actor_user_id, client_ip, user_agent, detail FROM audit_logs ORDER BY id",
    )?;
    let summary: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r["action"].as_str().unwrap_or(""),
                r["result"].as_str().unwrap_or(""),
                r["actor"].as_str().unwrap_or(""),
                r["client_ip"].as_str().unwrap_or(""),
                r["detail"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "auth.setup success admin 127.0.0.1 ",
            "auth.login failure admin 198.51.100.20 invalid_credentials",
            "auth.login failure ghost 198.51.100.21 invalid_credentials",
            "auth.login success admin 198.51.100.22 ",
            "auth.password_change success admin 127.0.0.1 ",
            "auth.setup failure late 127.0.0.1 setup_disabled (3 refused)",
            "auth.logout success admin 127.0.0.1 ",
        ],
        "{rows:#?}"
    );
    assert!(
        rows.iter()
            .all(|r| r["user_agent"].as_str().is_some_and(|ua| !ua.is_empty()))
    );
    assert_eq!(rows[0]["actor_user_id"], 1);
    Ok(())
}

#[tokio::test]
async fn no_password_hash_or_token_reaches_a_response_the_log_or_d1_in_the_clear() -> Result<()> {
    let server = Server::start().await?;
    let setup = server.setup("admin", PASSWORD).await?;
    let token: AuthPayload = setup.expect_ok()?;
    let login = server.login("admin", PASSWORD).await?;
    let profile = server
        .get(routes::AUTH_PROFILE, Some(token.token.expose()))
        .await?;
    let change = server
        .put(
            routes::AUTH_PASSWORD,
            Some(token.token.expose()),
            &json!({"oldPassword": PASSWORD, "newPassword": NEW_PASSWORD}),
        )
        .await?;
    let bad = server.login("admin", PASSWORD).await?;

    let rows = server.query("SELECT password_hash FROM users")?;
    let hash = rows[0]["password_hash"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(NEW_PASSWORD));

    for reply in [&setup, &login, &profile, &change, &bad] {
        for secret in [PASSWORD, NEW_PASSWORD, hash.as_str(), "$argon2"] {
            assert!(
                !reply.raw.contains(secret),
                "response leaks {secret}: {}",
                reply.raw
            );
        }
    }
    let log = server.log();
    for secret in [PASSWORD, NEW_PASSWORD, hash.as_str(), token.token.expose()] {
        assert!(!log.contains(secret), "the server log leaks a secret");
    }
    if let Some(secret) = server.jwt_secret() {
        assert!(!log.contains(secret), "the server log leaks the JWT secret");
    }
    Ok(())
}

#[tokio::test]
async fn a_guessing_address_waits_longer_each_time_and_its_refusals_are_counted_not_logged_each()
-> Result<()> {
    let server = Server::start_with(
        ServerOptions::default()
            .var("LOGIN_MAX_FAILURES", 2)
            .var("LOGIN_IP_LOCKOUT_SECS", 2)
            .var("LOGIN_LOCKOUT_SECS", 1),
    )
    .await?;
    server.admin("admin", PASSWORD).await?;
    let guesser = "198.51.100.66";
    let lock = |accounts: &'static [&'static str]| {
        let server = &server;
        async move {
            for user in accounts {
                login_from(server, guesser, user, "guess")
                    .await?
                    .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
            }
            let reply = login_from(server, guesser, "admin", PASSWORD).await?;
            reply.expect_error(429, "AUTH_RATE_LIMITED")?;
            Ok::<u64, anyhow::Error>(reply.header("retry-after").unwrap_or("0").parse()?)
        }
    };
    let first = lock(&["alice", "bob"]).await?;
    ensure!((1..=2).contains(&first), "first lock {first} s");
    // Refused again and again while locked: one audit row that counts them.
    for _ in 0..4 {
        login_from(&server, guesser, "carol", "guess")
            .await?
            .expect_error(429, "AUTH_RATE_LIMITED")?;
    }
    let rows = server.query(&format!(
        "SELECT detail FROM audit_logs WHERE action = 'auth.login' AND client_ip = '{guesser}'
           AND detail LIKE 'rate_limited%'"
    ))?;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["detail"], "rate_limited (5 refused)");
    // Once it lifts, the next lockout of the same address is twice as long.
    let deadline = Instant::now() + Duration::from_secs(first + 10);
    loop {
        let reply = login_from(&server, guesser, "dave", "guess").await?;
        if reply.status == 401 {
            break;
        }
        reply.expect_error(429, "AUTH_RATE_LIMITED")?;
        ensure!(Instant::now() < deadline, "the address lock never lifted");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // "dave" above was the first failure of the new window; one more locks it again.
    let second = lock(&["erin"]).await?;
    ensure!(
        (3..=4).contains(&second),
        "second lock {second} s (doubled from 2)"
    );
    // Meanwhile the real admin, from its own address, was never kept out by the guesses.
    login_from(&server, "198.51.100.67", "admin", PASSWORD)
        .await?
        .expect_ok::<AuthPayload>()?;
    Ok(())
}
