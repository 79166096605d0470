//! Registered OIDC clients (relying parties).

use diesel::prelude::*;

use super::revocations;
use super::schema::clients;
use super::{from_json, to_json, DbConn, StoreError, StoreResult};

#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = clients)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub public: bool,
    pub first_party: bool,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub grant_types: String,
    pub require_pkce: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub backchannel_logout_uri: Option<String>,
    pub id_token_alg: String,
    pub min_acr: Option<String>,
    pub risk_threshold_medium: Option<i64>,
    pub risk_threshold_high: Option<i64>,
    pub access_token_alg: String,
    pub require_role: bool,
    pub privileged_max_age_secs: Option<i64>,
    pub provisioning: bool,
}

/// A client as the rest of vigil sees it: lists decoded, secret digest kept opaque.
#[derive(Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub public: bool,
    pub first_party: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub require_pkce: bool,
    pub created_at: i64,
    pub backchannel_logout_uri: Option<String>,
    /// RS256 (the default, required by OIDC), ES256 or EdDSA.
    pub id_token_alg: String,
    /// The access tokens' algorithm (RFC 9068 leaves it to the deployment): RS256 (the default),
    /// or ES256 / EdDSA, which sign several times faster.
    pub access_token_alg: String,
    /// The least assurance this client accepts, whatever the request or the risk score says.
    pub min_acr: Option<String>,
    /// This client's own score thresholds for medium and high (None: the global ones).
    pub risk_thresholds: Option<(i64, i64)>,
    /// Only users who hold at least one of this client's roles may sign in to it.
    pub require_role: bool,
    /// How old a sign-in may be for a token that carries one of this client's privileged
    /// roles (None: `access::PRIVILEGED_MAX_AGE_SECS`).
    pub privileged_max_age_secs: Option<i64>,
    /// May obtain the `scim` scope with `client_credentials` and provision accounts and
    /// groups through `/scim/v2`.
    pub provisioning: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("public", &self.public)
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> StoreResult<Self> {
        Ok(Client {
            redirect_uris: from_json(&r.redirect_uris)?,
            post_logout_redirect_uris: from_json(&r.post_logout_redirect_uris)?,
            grant_types: from_json(&r.grant_types)?,
            id: r.id,
            name: r.name,
            secret_hash: r.secret_hash,
            public: r.public,
            first_party: r.first_party,
            require_pkce: r.require_pkce,
            created_at: r.created_at,
            backchannel_logout_uri: r.backchannel_logout_uri,
            id_token_alg: r.id_token_alg,
            access_token_alg: r.access_token_alg,
            min_acr: r.min_acr,
            risk_thresholds: r.risk_threshold_medium.zip(r.risk_threshold_high),
            require_role: r.require_role,
            privileged_max_age_secs: r.privileged_max_age_secs,
            provisioning: r.provisioning,
        })
    }
}

impl Client {
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    pub fn to_row(&self, now: i64) -> ClientRow {
        ClientRow {
            id: self.id.clone(),
            name: self.name.clone(),
            secret_hash: self.secret_hash.clone(),
            public: self.public,
            first_party: self.first_party,
            redirect_uris: to_json(&self.redirect_uris),
            post_logout_redirect_uris: to_json(&self.post_logout_redirect_uris),
            grant_types: to_json(&self.grant_types),
            require_pkce: self.require_pkce,
            created_at: self.created_at,
            updated_at: now,
            backchannel_logout_uri: self.backchannel_logout_uri.clone(),
            id_token_alg: self.id_token_alg.clone(),
            access_token_alg: self.access_token_alg.clone(),
            min_acr: self.min_acr.clone(),
            risk_threshold_medium: self.risk_thresholds.map(|t| t.0),
            risk_threshold_high: self.risk_thresholds.map(|t| t.1),
            require_role: self.require_role,
            privileged_max_age_secs: self.privileged_max_age_secs,
            provisioning: self.provisioning,
        }
    }
}

// Every change below also tells the other nodes (`revocations::note_client_change`): they
// cache clients and drop their copy when they read it.

pub fn insert(conn: &mut DbConn, client: &Client, now: i64) -> StoreResult<()> {
    diesel::insert_into(clients::table)
        .values(client.to_row(now))
        .execute(conn)
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("client `{}` already exists", client.id))
            }
            other => other,
        })?;
    revocations::note_client_change(conn, &client.id, now)
}

pub fn find(conn: &mut DbConn, id: &str) -> StoreResult<Option<Client>> {
    clients::table
        .find(id)
        .select(ClientRow::as_select())
        .first(conn)
        .optional()?
        .map(Client::try_from)
        .transpose()
}

pub fn list(conn: &mut DbConn) -> StoreResult<Vec<Client>> {
    clients::table
        .order(clients::id.asc())
        .select(ClientRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Client::try_from)
        .collect()
}

/// Remove a client; `NotFound` when there was none.
pub fn delete(conn: &mut DbConn, id: &str, now: i64) -> StoreResult<()> {
    let n = diesel::delete(clients::table.find(id)).execute(conn)?;
    if n == 1 {
        super::usage::forget_client(conn, id)?;
        revocations::note_client_change(conn, id, now)
    } else {
        Err(StoreError::NotFound)
    }
}

/// Store everything about a client but its id, creation time and secret (the admin's edit).
/// `NotFound` when there is no such client.
pub fn update(conn: &mut DbConn, client: &Client, now: i64) -> StoreResult<()> {
    let r = client.to_row(now);
    let n = diesel::update(clients::table.find(&client.id))
        .set((
            clients::name.eq(r.name),
            clients::public.eq(r.public),
            clients::first_party.eq(r.first_party),
            clients::redirect_uris.eq(r.redirect_uris),
            clients::post_logout_redirect_uris.eq(r.post_logout_redirect_uris),
            clients::grant_types.eq(r.grant_types),
            clients::require_pkce.eq(r.require_pkce),
            clients::updated_at.eq(now),
            clients::backchannel_logout_uri.eq(r.backchannel_logout_uri),
            clients::id_token_alg.eq(r.id_token_alg),
            clients::access_token_alg.eq(r.access_token_alg),
            clients::min_acr.eq(r.min_acr),
            clients::risk_threshold_medium.eq(r.risk_threshold_medium),
            clients::risk_threshold_high.eq(r.risk_threshold_high),
            clients::require_role.eq(r.require_role),
            clients::privileged_max_age_secs.eq(r.privileged_max_age_secs),
        ))
        .execute(conn)?;
    if n == 1 {
        revocations::note_client_change(conn, &client.id, now)
    } else {
        Err(StoreError::NotFound)
    }
}

/// Replace (or clear, for a public client) the secret digest; the old secret stops working
/// with this write.
pub fn set_secret_hash(
    conn: &mut DbConn,
    id: &str,
    secret_hash: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    let n = diesel::update(clients::table.find(id))
        .set((
            clients::secret_hash.eq(secret_hash),
            clients::updated_at.eq(now),
        ))
        .execute(conn)?;
    if n == 1 {
        revocations::note_client_change(conn, id, now)
    } else {
        Err(StoreError::NotFound)
    }
}
