//! The risk policy in force across the server: a client's own thresholds level the sign-ins
//! into that client, and the policy an admin saved (in the database) beats the configuration.

use reqwest::StatusCode;

use crate::helpers::{spawn_app, Backend};
use crate::oidc::{add_client, location, password_at_login, rp, ClientSpec};
use crate::on_both_backends;

async fn client_thresholds_level_its_sign_ins(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.add_user("ann", false).await;
    add_client(&app, ClientSpec::default()).await;
    add_client(
        &app,
        ClientSpec {
            id: "bank",
            ..Default::default()
        },
    )
    .await;
    // The bank treats any score from 1 as medium risk: a step-up, which ann (no factor) cannot
    // answer, so her sign-in into the bank is refused…
    app.svc
        .db
        .run(|c| {
            use diesel::prelude::*;
            use vigil::store::schema::clients;
            diesel::update(clients::table.find("bank"))
                .set((
                    clients::risk_threshold_medium.eq(Some(1i64)),
                    clients::risk_threshold_high.eq(Some(100i64)),
                ))
                .execute(c)
                .map(|_| ())
                .map_err(vigil::store::StoreError::from)
        })
        .await
        .unwrap();
    let bank = rp(&app, "bank", false).await;
    let r = password_at_login(&app, &bank.start(&["openid"], &[]).url, "ann").await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "levelled medium by the bank"
    );
    let row = app
        .svc
        .db
        .run(|c| {
            let ann = vigil::store::users::find_by_username(c, "ann")?
                .ok_or(vigil::store::StoreError::NotFound)?;
            vigil::store::signins::recent_for_user(c, &ann.id, 1)
        })
        .await
        .unwrap();
    assert_eq!(row[0].level.as_deref(), Some("medium"));

    // …while the same sign-in into an ordinary client is frictionless.
    let plain = rp(&app, "rp", false).await;
    let r = password_at_login(&app, &plain.start(&["openid"], &[]).url, "ann").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&r).starts_with(crate::oidc::REDIRECT),
        "{}",
        location(&r)
    );
}
on_both_backends!(
    client_thresholds,
    super::client_thresholds_level_its_sign_ins
);
