// The one diesel schema, shared by both backends (see migrations/sqlite and migrations/postgres,
// which must keep the same table and column names and compatible types).

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        disabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        must_change_password -> Bool,
        risk_state -> Text,
        risk_state_at -> Nullable<BigInt>,
        external_id -> Nullable<Text>,
        given_name -> Nullable<Text>,
        family_name -> Nullable<Text>,
        last_signin_at -> Nullable<BigInt>,
        email_verified -> Bool,
        registration -> Nullable<Text>,
    }
}

diesel::table! {
    email_links (digest) {
        digest -> Text,
        user_id -> Text,
        purpose -> Text,
        email -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        device_id -> Nullable<Text>,
        subject -> Nullable<Text>,
    }
}

diesel::table! {
    email_requests (id) {
        id -> Text,
        kind -> Text,
        address_key -> Text,
        ip_key -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Text,
        kind -> Text,
        to_addr -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        created_at -> BigInt,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        sent_at -> Nullable<BigInt>,
        failed_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        token_hash -> Text,
        user_id -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        idle_expires_at -> BigInt,
        expires_at -> BigInt,
        auth_time -> BigInt,
        acr -> Text,
        amr -> Text,
        device_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        revoked_at -> Nullable<BigInt>,
        risk -> Nullable<Text>,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        public -> Bool,
        first_party -> Bool,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        grant_types -> Text,
        require_pkce -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        backchannel_logout_uri -> Nullable<Text>,
        id_token_alg -> Text,
        min_acr -> Nullable<Text>,
        risk_threshold_medium -> Nullable<BigInt>,
        risk_threshold_high -> Nullable<BigInt>,
        access_token_alg -> Text,
        require_role -> Bool,
        privileged_max_age_secs -> Nullable<BigInt>,
        provisioning -> Bool,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Text,
        at -> BigInt,
        account -> Text,
        ip -> Text,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        at -> BigInt,
        actor -> Nullable<Text>,
        action -> Text,
        target -> Nullable<Text>,
        ip -> Nullable<Text>,
        ip_digest -> Nullable<Text>,
        details -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    server_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    signing_keys (id) {
        id -> Text,
        alg -> Text,
        private_enc -> Text,
        public_jwk -> Text,
        created_at -> BigInt,
        rotated_at -> Nullable<BigInt>,
        publish_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    authz_requests (id) {
        id -> Text,
        client_id -> Text,
        redirect_uri -> Text,
        scope -> Text,
        state -> Nullable<Text>,
        nonce -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        response_mode -> Text,
        prompt -> Text,
        max_age -> Nullable<BigInt>,
        acr_values -> Nullable<Text>,
        login_hint -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        device_id -> Nullable<Text>,
        assessed_session -> Nullable<Text>,
    }
}

diesel::table! {
    auth_codes (id) {
        id -> Text,
        code_hash -> Text,
        client_id -> Text,
        user_id -> Text,
        session_id -> Text,
        redirect_uri -> Text,
        scope -> Text,
        nonce -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        auth_time -> BigInt,
        acr -> Text,
        amr -> Text,
        risk -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    access_tokens (jti) {
        jti -> Text,
        client_id -> Text,
        user_id -> Nullable<Text>,
        code_id -> Nullable<Text>,
        family_id -> Nullable<Text>,
        expires_at -> BigInt,
        issued_at -> BigInt,
        grant_type -> Text,
    }
}

diesel::table! {
    revocations (seq) {
        seq -> BigInt,
        kind -> Text,
        value -> Text,
        revoked_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        token_hash -> Text,
        family_id -> Text,
        client_id -> Text,
        user_id -> Text,
        session_id -> Nullable<Text>,
        code_id -> Nullable<Text>,
        scope -> Text,
        auth_time -> BigInt,
        acr -> Text,
        amr -> Text,
        risk -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        family_expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        granted_at -> BigInt,
    }
}

diesel::table! {
    totp_credentials (id) {
        id -> Text,
        user_id -> Text,
        secret_enc -> Text,
        last_used_step -> Nullable<BigInt>,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        suspended_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webauthn_credentials (id) {
        id -> Text,
        user_id -> Text,
        cred_id -> Text,
        name -> Text,
        passkey -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        suspended_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> Text,
        user_id -> Text,
        code_hash -> Text,
        created_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    mfa_flows (id) {
        id -> Text,
        purpose -> Text,
        user_id -> Nullable<Text>,
        data -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    signins (id) {
        id -> Text,
        at -> BigInt,
        user_id -> Nullable<Text>,
        method -> Text,
        outcome -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        device_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        session_id -> Nullable<Text>,
        acr -> Nullable<Text>,
        amr -> Nullable<Text>,
        features -> Nullable<Text>,
        score -> Nullable<BigInt>,
        level -> Nullable<Text>,
        decision -> Nullable<Text>,
        reasons -> Nullable<Text>,
        assessment -> Nullable<Text>,
        model -> Nullable<Text>,
        geoip_build -> Nullable<BigInt>,
        candidate_decision -> Nullable<Text>,
        shadow -> Nullable<Text>,
    }
}

diesel::table! {
    risk_profiles (user_id) {
        user_id -> Text,
        profile -> Text,
        updated_at -> BigInt,
    }
}

diesel::table! {
    risk_state (name) {
        name -> Text,
        value -> Text,
        updated_at -> BigInt,
    }
}

diesel::table! {
    reviews (id) {
        id -> Text,
        signin_id -> Text,
        user_id -> Nullable<Text>,
        kind -> Text,
        recommended -> Text,
        status -> Text,
        created_at -> BigInt,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<BigInt>,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    groups (id) {
        id -> Text,
        name -> Text,
        description -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        external_id -> Nullable<Text>,
    }
}

diesel::table! {
    group_members (group_id, user_id) {
        group_id -> Text,
        user_id -> Text,
        added_at -> BigInt,
    }
}

diesel::table! {
    roles (id) {
        id -> Text,
        client_id -> Text,
        name -> Text,
        description -> Text,
        privileged -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    role_grants (id) {
        id -> Text,
        role_id -> Text,
        user_id -> Nullable<Text>,
        group_id -> Nullable<Text>,
        granted_at -> BigInt,
    }
}

diesel::table! {
    client_usage (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        last_used_at -> BigInt,
    }
}

diesel::table! {
    role_usage (user_id, client_id, role) {
        user_id -> Text,
        client_id -> Text,
        role -> Text,
        last_used_at -> BigInt,
    }
}

diesel::table! {
    access_campaigns (id) {
        id -> Text,
        name -> Text,
        scope -> Text,
        scope_target -> Nullable<Text>,
        reviewers -> Text,
        deadline -> BigInt,
        undecided -> Text,
        created_by -> Text,
        created_at -> BigInt,
        closed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    access_review_items (id) {
        id -> Text,
        campaign_id -> Text,
        user_id -> Text,
        username -> Text,
        client_id -> Nullable<Text>,
        role -> Nullable<Text>,
        group_name -> Nullable<Text>,
        privileged -> Bool,
        recommendation -> Text,
        evidence -> Text,
        decision -> Nullable<Text>,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<BigInt>,
        followed -> Nullable<Bool>,
        applied -> Bool,
    }
}

diesel::joinable!(access_review_items -> access_campaigns (campaign_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(group_members -> groups (group_id));
diesel::joinable!(group_members -> users (user_id));
diesel::joinable!(roles -> clients (client_id));
diesel::joinable!(role_grants -> roles (role_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    clients,
    login_failures,
    audit_head,
    audit_log,
    server_secrets,
    signing_keys,
    authz_requests,
    auth_codes,
    access_tokens,
    revocations,
    refresh_tokens,
    consents,
    totp_credentials,
    webauthn_credentials,
    recovery_codes,
    mfa_flows,
    signins,
    risk_profiles,
    risk_state,
    reviews,
    groups,
    group_members,
    roles,
    role_grants,
    client_usage,
    role_usage,
    access_campaigns,
    access_review_items,
    email_links,
    email_requests,
    mail_outbox,
);
