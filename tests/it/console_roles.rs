//! Delegated administration: the console's built-in roles. `helpdesk` and `auditor` see exactly
//! their part of the console — 403 elsewhere, for every page and every POST — a helpdesk
//! cannot act on another member of staff, and the last admin cannot be taken away.

use reqwest::StatusCode;
use vigil::auth::totp;
use vigil::flow::access::{self, Grantee};
use vigil::flow::accounts::Actor;

use crate::admin::admin_app;
use crate::helpers::{csrf_in, Backend, TestApp, PASSWORD};
use crate::mfa::{enrol_totp, sign_out, submit_code};
use crate::oidc::location;
use crate::on_both_backends;

/// Sign `username` in with password and TOTP in the app's browser.
pub async fn staff_sign_in(app: &TestApp, username: &str, secret: &[u8]) {
    app.clock.advance_secs(30);
    let html = app.get("/login?reauth=1").await.text().await.unwrap();
    let r = app
        .http
        .post(app.url("/login"))
        .form(&[
            ("username", username),
            ("password", PASSWORD),
            ("csrf_token", &csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/login/mfa", "staff with a factor use it");
    let code = totp::code_at(secret, app.svc.clock.now()).unwrap();
    let r = submit_code(app, "/login/mfa/totp", &code).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

/// A new account with a TOTP factor (signed in with its password in the app's browser).
async fn staff(app: &TestApp, username: &str) -> Vec<u8> {
    sign_out(app).await;
    app.add_user(username, false).await;
    app.login(username, PASSWORD).await;
    let (secret, _) = enrol_totp(app).await;
    secret
}

async fn user_id(app: &TestApp, username: &str) -> String {
    vigil::flow::accounts::find(&app.svc, username)
        .await
        .unwrap()
        .id
}

/// POST with a valid CSRF token (from the account page): a 403 here is the role's, not the
/// token's, and the page says so.
async fn post(app: &TestApp, action: &str) -> (StatusCode, String) {
    let token = csrf_in(&app.get("/account").await.text().await.unwrap());
    let r = app
        .http
        .post(app.url(action))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

async fn console_roles_see_exactly_their_part(b: Backend) {
    let Some((app, _root_secret)) = admin_app(b).await else {
        return;
    };
    let (cli, now) = (Actor::new("test"), app.svc.clock.now());
    app.add_user("ann", false).await;
    let ann = user_id(&app, "ann").await;
    let root = user_id(&app, "root").await;
    access::create_group(&app.svc, &cli, now, "auditors", "")
        .await
        .unwrap();
    access::set_grant(
        &app.svc,
        &cli,
        now,
        "vigil",
        "auditor",
        Grantee::Group("auditors".into()),
        true,
    )
    .await
    .unwrap();

    let user_page = format!("/admin/users/{ann}");
    let every_post: Vec<String> = [
        "/admin/users",
        "/admin/clients",
        "/admin/policy",
        "/admin/policy/denylist/reload",
        "/admin/keys/rotate",
        "/admin/clients/rp",
        "/admin/clients/rp/secret",
        "/admin/clients/rp/delete",
        "/admin/clients/rp/roles",
        "/admin/groups",
        "/admin/groups/any/members",
        "/admin/groups/any/roles",
        "/admin/groups/any/delete",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain(
        [
            "disable", "enable", "password", "factors", "unlock", "sessions", "promote", "demote",
            "delete",
        ]
        .iter()
        .map(|a| format!("{user_page}/{a}")),
    )
    .chain(std::iter::once("/admin/review".to_owned()))
    .collect();

    // helpdesk: users and the review queue; reads the reports; nothing else.
    let hana_secret = staff(&app, "hana").await;
    access::set_grant(
        &app.svc,
        &cli,
        now,
        "vigil",
        "helpdesk",
        Grantee::User("hana".into()),
        true,
    )
    .await
    .unwrap();
    let hana = user_id(&app, "hana").await;
    staff_sign_in(&app, "hana", &hana_secret).await;
    for page in [
        "/admin",
        "/admin/users",
        user_page.as_str(),
        "/admin/signins",
        "/admin/review",
        "/admin/fairness",
    ] {
        assert_eq!(
            app.get(page).await.status(),
            StatusCode::OK,
            "helpdesk {page}"
        );
    }
    let nav = app.get("/admin").await.text().await.unwrap();
    assert!(nav.contains("href=\"/admin/users\"") && !nav.contains("href=\"/admin/clients\""));
    for page in [
        "/admin/clients",
        "/admin/policy",
        "/admin/keys",
        "/admin/groups",
        "/admin/groups/any",
    ] {
        let r = app.get(page).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "helpdesk {page}");
    }
    let helpdesk_may =
        ["unlock", "sessions", "password", "factors"].map(|a| format!("{user_page}/{a}"));
    for action in &every_post {
        let (status, body) = post(&app, action).await;
        if helpdesk_may.contains(action) {
            // Past the gate: done, or the handler's own answer to an empty form (which factor?).
            assert!(
                status != StatusCode::FORBIDDEN && !status.is_server_error(),
                "helpdesk POST {action}: {status} {body}"
            );
        } else if action == "/admin/review" {
            // Its own area: an empty verdict form is a readable 400, not a refusal.
            assert_ne!(status, StatusCode::FORBIDDEN, "helpdesk POST {action}");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "helpdesk POST {action}");
            assert!(
                body.contains("console role does not cover"),
                "{action}: {body}"
            );
        }
    }
    // Never on another member of staff: an admin's password is not the helpdesk's to reset.
    for a in ["password", "factors", "sessions", "unlock"] {
        let (status, _) = post(&app, &format!("/admin/users/{root}/{a}")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "helpdesk on the admin: {a}");
    }

    // auditor (through a group): reads the reports, nothing else, changes nothing.
    let otto_secret = staff(&app, "otto").await;
    access::set_member(&app.svc, &cli, now, "auditors", "otto", true)
        .await
        .unwrap();
    staff_sign_in(&app, "otto", &otto_secret).await;
    for page in ["/admin", "/admin/signins", "/admin/fairness"] {
        assert_eq!(
            app.get(page).await.status(),
            StatusCode::OK,
            "auditor {page}"
        );
    }
    for page in [
        "/admin/users",
        user_page.as_str(),
        "/admin/review",
        "/admin/clients",
        "/admin/policy",
        "/admin/keys",
        "/admin/groups",
    ] {
        assert_eq!(
            app.get(page).await.status(),
            StatusCode::FORBIDDEN,
            "auditor {page}"
        );
    }
    for action in &every_post {
        let (status, _) = post(&app, action).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "auditor POST {action}");
    }
    // The account page links the console for staff; carl has no console role at all.
    assert!(app
        .get("/account")
        .await
        .text()
        .await
        .unwrap()
        .contains("href=\"/admin\""));
    sign_out(&app).await;
    app.add_user("carl", false).await;
    app.login("carl", PASSWORD).await;
    assert_eq!(app.get("/admin").await.status(), StatusCode::FORBIDDEN);

    // The console's roles are built in, and the last admin cannot be taken away.
    assert!(
        access::create_role(&app.svc, &cli, now, "vigil", "owner", true, "")
            .await
            .is_err()
    );
    assert!(
        access::remove_role(&app.svc, &cli, now, "vigil", "helpdesk")
            .await
            .is_err()
    );
    let revoke_root = access::set_grant(
        &app.svc,
        &cli,
        now,
        "vigil",
        "admin",
        Grantee::User("root".into()),
        false,
    )
    .await;
    assert!(revoke_root.is_err(), "root is the last admin");
    assert!(access::console(&app.svc, &root).await.unwrap().admin);
    // A group can hold the admin role; then root's own grant may go.
    access::create_group(&app.svc, &cli, now, "ops", "")
        .await
        .unwrap();
    access::set_member(&app.svc, &cli, now, "ops", "root", true)
        .await
        .unwrap();
    access::set_grant(
        &app.svc,
        &cli,
        now,
        "vigil",
        "admin",
        Grantee::Group("ops".into()),
        true,
    )
    .await
    .unwrap();
    access::set_grant(
        &app.svc,
        &cli,
        now,
        "vigil",
        "admin",
        Grantee::User("root".into()),
        false,
    )
    .await
    .unwrap();
    assert!(access::console(&app.svc, &root).await.unwrap().admin);
    assert!(
        access::set_member(&app.svc, &cli, now, "ops", "root", false)
            .await
            .is_err(),
        "leaving the group would leave no admin"
    );
    assert!(access::remove_group(&app.svc, &cli, now, "ops")
        .await
        .is_err());
    assert!(!access::console(&app.svc, &hana).await.unwrap().admin);
}
on_both_backends!(
    console_roles_see_exactly_their_part,
    super::console_roles_see_exactly_their_part
);

/// The console's group and client pages: a group made, a member added, a role created on the
/// client's page and granted to the group — and the application's next token says so.
async fn console_grants_reach_the_application(b: Backend) {
    use crate::admin::submit;
    use crate::oidc::{add_client, payload, rp, tokens_for, ClientSpec};
    let Some((app, _)) = admin_app(b).await else {
        return;
    };
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let r = submit(
        &app,
        "/admin/groups",
        "/admin/groups",
        &[("name", "Finance"), ("description", "The finance team")],
    )
    .await;
    let group_page = location(&r);
    assert!(group_page.starts_with("/admin/groups/"), "{group_page}");
    let group_page = group_page.split('?').next().unwrap().to_owned();
    let r = submit(
        &app,
        &group_page,
        &format!("{group_page}/members"),
        &[("op", "add"), ("username", "alice")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // A mistake is a message on the page, not an error page.
    let r = submit(
        &app,
        &group_page,
        &format!("{group_page}/members"),
        &[("op", "add"), ("username", "nobody-here")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("not found"));
    let r = submit(
        &app,
        "/admin/clients/rp",
        "/admin/clients/rp/roles",
        &[
            ("op", "create"),
            ("role", "approver"),
            ("description", "Approves"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = submit(
        &app,
        &group_page,
        &format!("{group_page}/roles"),
        &[("op", "grant"), ("client_id", "rp"), ("role", "approver")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let client = app.get("/admin/clients/rp").await.text().await.unwrap();
    assert!(
        client.contains("approver") && client.contains("group Finance"),
        "{client}"
    );
    let group = app.get(&group_page).await.text().await.unwrap();
    assert!(group.contains("alice") && group.contains("rp: approver"));
    let alice = user_id(&app, "alice").await;
    let page = app
        .get(&format!("/admin/users/{alice}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("group Finance"),
        "the user's page names the source"
    );

    sign_out(&app).await;
    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp, &["roles", "groups"]).await;
    let id = payload(t["id_token"].as_str().unwrap());
    assert_eq!(id["roles"], serde_json::json!(["approver"]));
    assert_eq!(id["groups"], serde_json::json!(["Finance"]));
    // Each change is in the audit log with the admin as actor.
    let root = user_id(&app, "root").await;
    let actions: Vec<(String, Option<String>)> = app
        .svc
        .db
        .run(|c| {
            use diesel::prelude::*;
            use vigil::store::schema::audit_log::dsl::*;
            Ok(audit_log
                .filter(action.like("group.%").or(action.like("role.%")))
                .select((action, actor))
                .load(c)?)
        })
        .await
        .unwrap();
    for a in [
        "group.created",
        "group.member_added",
        "role.created",
        "role.granted",
    ] {
        assert!(
            actions
                .iter()
                .any(|(x, who)| x == a && who.as_deref() == Some(root.as_str())),
            "{a} by root in {actions:?}"
        );
    }
}
on_both_backends!(
    console_grants_reach_the_application,
    super::console_grants_reach_the_application
);
