//! SCIM 2.0 (RFC 7643/7644), the protocol only: filters into the directory's criteria, users and
//! groups into SCIM resources and back, PATCH operations, paging and projection, the discovery
//! documents, and SCIM's error shape. Knows nothing of HTTP framing (`web/scim.rs`), of who may
//! do what (`flow/provision.rs` asks the enforcement point) or of SQL (`store/directory.rs`).
//!
//! ```text
//!  request ─► web/scim.rs ─► flow/provision.rs ─► enforce::require(client, Provision(kind))
//!                 │                  │
//!                 └─ scim/: parse ───┴─ store/directory.rs (criteria, pages, profile)
//!                    filter, body,      store/access.rs (groups, members)
//!                    patch, render
//! ```
//!
//! A PATCH is applied to the resource as SCIM renders it (a JSON document), and the result is
//! read back like a PUT: one way to validate a resource, however it arrives.

pub mod filter;
pub mod patch;
pub mod resource;

use serde_json::{json, Value};

pub const SCHEMA_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const SCHEMA_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const SCHEMA_LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SCHEMA_ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SCHEMA_PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SCHEMA_SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const SCHEMA_SPC: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const SCHEMA_RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The scope a provisioning client's token must carry.
pub const SCOPE: &str = "scim";
/// The most resources one page returns (`count` above it is lowered to it).
pub const MAX_RESULTS: i64 = 200;
/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 1 << 20;

/// An error as SCIM answers it (RFC 7644 §3.12): a status, an optional `scimType`, a detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

macro_rules! scim_errors {
    ($($fn_name:ident => $status:expr, $ty:expr;)*) => {
        impl ScimError {
            $(
                pub fn $fn_name(detail: impl Into<String>) -> Self {
                    ScimError { status: $status, scim_type: $ty, detail: detail.into() }
                }
            )*
        }
    };
}

scim_errors! {
    invalid_filter => 400, Some("invalidFilter");
    invalid_syntax => 400, Some("invalidSyntax");
    invalid_value => 400, Some("invalidValue");
    invalid_path => 400, Some("invalidPath");
    no_target => 400, Some("noTarget");
    mutability => 400, Some("mutability");
    uniqueness => 409, Some("uniqueness");
    unauthorized => 401, None;
    forbidden => 403, None;
    not_found => 404, None;
    method_not_allowed => 405, None;
    payload_too_large => 413, None;
    unsupported_media => 415, None;
    not_implemented => 501, None;
    unavailable => 503, None;
    internal => 500, None;
}

impl ScimError {
    /// The error body (`application/scim+json`).
    pub fn body(&self) -> Value {
        let mut v = json!({
            "schemas": [SCHEMA_ERROR],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(m)) = (self.scim_type, v.as_object_mut()) {
            m.insert("scimType".into(), json!(t));
        }
        v
    }
}

/// `startIndex` and `count` (RFC 7644 §3.4.2.4), made safe: 1-based, at most [`MAX_RESULTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub start_index: i64,
    pub count: i64,
}

impl Paging {
    /// A start index below 1 counts as 1; a negative count as 0 (RFC 7644 §3.4.2.4).
    pub fn new(start_index: Option<i64>, count: Option<i64>) -> Self {
        Paging {
            start_index: start_index.unwrap_or(1).max(1),
            count: count.unwrap_or(MAX_RESULTS).clamp(0, MAX_RESULTS),
        }
    }
    pub fn offset(&self) -> i64 {
        self.start_index - 1
    }
}

/// A list response around rendered resources.
pub fn list_response(total: i64, paging: Paging, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [SCHEMA_LIST],
        "totalResults": total,
        "startIndex": paging.start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// Which attributes a response carries (RFC 7644 §3.4.2.5): `attributes` or
/// `excludedAttributes`, comma-separated, with or without the schema URN, case-insensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    only: Vec<(String, Option<String>)>,
    except: Vec<(String, Option<String>)>,
}

fn attr_names(raw: Option<&str>) -> Vec<(String, Option<String>)> {
    raw.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let s = [SCHEMA_USER, SCHEMA_GROUP]
                .iter()
                .find_map(|u| s.strip_prefix(u).and_then(|r| r.strip_prefix(':')))
                .unwrap_or(s)
                .to_ascii_lowercase();
            match s.split_once('.') {
                Some((a, b)) => (a.to_owned(), Some(b.to_owned())),
                None => (s, None),
            }
        })
        .collect()
}

impl Projection {
    pub fn new(attributes: Option<&str>, excluded: Option<&str>) -> Self {
        Projection {
            only: attr_names(attributes),
            except: attr_names(excluded),
        }
    }

    /// Whether the member list must be read at all (large groups: Entra asks without it).
    pub fn wants(&self, attr: &str) -> bool {
        let a = attr.to_ascii_lowercase();
        if !self.only.is_empty() {
            return self.only.iter().any(|(n, _)| *n == a);
        }
        !self.except.iter().any(|(n, sub)| *n == a && sub.is_none())
    }

    /// Apply to a rendered resource; `id`, `schemas` and `meta` always stay.
    pub fn apply(&self, mut v: Value) -> Value {
        let Some(obj) = v.as_object_mut() else {
            return v;
        };
        let keep_always = |k: &str| matches!(k, "id" | "schemas" | "meta");
        if !self.only.is_empty() {
            obj.retain(|k, _| {
                keep_always(k) || self.only.iter().any(|(n, _)| *n == k.to_ascii_lowercase())
            });
            for (k, val) in obj.iter_mut() {
                let key = k.to_ascii_lowercase();
                let whole = self.only.iter().any(|(n, s)| *n == key && s.is_none());
                if keep_always(k) || whole {
                    continue;
                }
                let subs: Vec<&str> = self
                    .only
                    .iter()
                    .filter(|(n, _)| *n == key)
                    .filter_map(|(_, s)| s.as_deref())
                    .collect();
                retain_subs(val, |s| subs.contains(&s.as_str()));
            }
        }
        for (name, sub) in &self.except {
            match sub {
                None => obj.retain(|k, _| keep_always(k) || k.to_ascii_lowercase() != *name),
                Some(sub) => {
                    for (k, val) in obj.iter_mut() {
                        if k.to_ascii_lowercase() == *name {
                            retain_subs(val, |s| s != *sub);
                        }
                    }
                }
            }
        }
        v
    }
}

fn retain_subs(v: &mut Value, keep: impl Fn(String) -> bool) {
    match v {
        Value::Object(m) => m.retain(|k, _| keep(k.to_ascii_lowercase())),
        Value::Array(items) => {
            for i in items {
                if let Value::Object(m) = i {
                    m.retain(|k, _| keep(k.to_ascii_lowercase()));
                }
            }
        }
        _ => {}
    }
}

/// Look up a key case-insensitively (RFC 7643 §2.1: attribute names are case-insensitive).
pub fn get<'a>(obj: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// `/ServiceProviderConfig` (RFC 7643 §5).
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SPC],
        "documentationUri": "https://github.com/vigil-idp/vigil#provisioning-scim",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": true},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "An access token from the token endpoint's client_credentials grant with scope `scim`, for a client registered with --provisioning.",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}

/// `/ResourceTypes` (RFC 7643 §6).
pub fn resource_types(base: &str) -> Vec<Value> {
    [
        ("User", "/Users", "User Account", SCHEMA_USER),
        ("Group", "/Groups", "Group", SCHEMA_GROUP),
    ]
    .into_iter()
    .map(|(name, endpoint, description, schema)| {
        json!({
            "schemas": [SCHEMA_RESOURCE_TYPE],
            "id": name,
            "name": name,
            "endpoint": endpoint,
            "description": description,
            "schema": schema,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{name}")},
        })
    })
    .collect()
}

fn attribute(name: &str, ty: &str, multi: bool, required: bool, mutability: &str) -> Value {
    let returned = if mutability == "writeOnly" {
        "never"
    } else {
        "default"
    };
    json!({
        "name": name, "type": ty, "multiValued": multi, "required": required,
        "caseExact": false, "mutability": mutability, "returned": returned,
        "uniqueness": "none", "description": name,
    })
}

fn with(mut a: Value, key: &str, v: Value) -> Value {
    if let Some(m) = a.as_object_mut() {
        m.insert(key.into(), v);
    }
    a
}

/// `/Schemas` (RFC 7643 §7): only the attributes vigil keeps, so a client that reads them
/// knows what will round-trip.
pub fn schemas(base: &str) -> Vec<Value> {
    let user_attrs = vec![
        with(
            with(
                attribute("userName", "string", false, true, "readWrite"),
                "uniqueness",
                json!("server"),
            ),
            "description",
            json!("Unique; vigil keeps it in lower case (a-z, 0-9, . _ - @ +)."),
        ),
        with(
            attribute("externalId", "string", false, false, "readWrite"),
            "caseExact",
            json!(true),
        ),
        attribute("displayName", "string", false, false, "readWrite"),
        with(
            attribute("name", "complex", false, false, "readWrite"),
            "subAttributes",
            json!([
                attribute("givenName", "string", false, false, "readWrite"),
                attribute("familyName", "string", false, false, "readWrite"),
            ]),
        ),
        with(
            attribute("emails", "complex", true, false, "readWrite"),
            "subAttributes",
            json!([
                attribute("value", "string", false, false, "readWrite"),
            ]),
        ),
        with(
            attribute("active", "boolean", false, true, "readWrite"),
            "description",
            json!("Always set: a new account without it is active; a replace without it keeps the account's state; it cannot be removed."),
        ),
        attribute("password", "string", false, false, "writeOnly"),
        with(
            attribute("groups", "complex", true, false, "readOnly"),
            "subAttributes",
            json!([
                attribute("value", "string", false, false, "readOnly"),
                with(
                    attribute("$ref", "reference", false, false, "readOnly"),
                    "referenceTypes",
                    json!(["Group"]),
                ),
                attribute("display", "string", false, false, "readOnly"),
            ]),
        ),
    ];
    let group_attrs = vec![
        with(
            attribute("displayName", "string", false, true, "readWrite"),
            "uniqueness",
            json!("server"),
        ),
        with(
            attribute("externalId", "string", false, false, "readWrite"),
            "caseExact",
            json!(true),
        ),
        with(
            attribute("members", "complex", true, false, "readWrite"),
            "subAttributes",
            json!([
                with(
                    attribute("value", "string", false, false, "immutable"),
                    "caseExact",
                    json!(true),
                ),
                with(
                    attribute("$ref", "reference", false, false, "immutable"),
                    "referenceTypes",
                    json!(["User"]),
                ),
                attribute("display", "string", false, false, "readOnly"),
                with(
                    attribute("type", "string", false, false, "immutable"),
                    "canonicalValues",
                    json!(["User"]),
                ),
            ]),
        ),
    ];
    vec![
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": SCHEMA_USER, "name": "User", "description": "User Account",
            "attributes": user_attrs,
            "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{SCHEMA_USER}")},
        }),
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": SCHEMA_GROUP, "name": "Group", "description": "Group",
            "attributes": group_attrs,
            "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{SCHEMA_GROUP}")},
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_is_clamped_as_the_rfc_says() {
        assert_eq!(
            Paging::new(Some(0), Some(-5)),
            Paging {
                start_index: 1,
                count: 0
            }
        );
        assert_eq!(Paging::new(None, Some(10_000)).count, MAX_RESULTS);
        assert_eq!(Paging::new(Some(21), Some(10)).offset(), 20);
    }

    #[test]
    fn projection_keeps_id_and_drops_excluded() {
        let v = json!({"id": "1", "schemas": [], "userName": "a", "emails": [{"value": "x", "primary": true}], "name": {"givenName": "A", "familyName": "B"}});
        let p = Projection::new(Some("userName,name.givenName"), None);
        assert_eq!(
            p.apply(v.clone()),
            json!({"id": "1", "schemas": [], "userName": "a", "name": {"givenName": "A"}})
        );
        let p = Projection::new(None, Some("emails"));
        assert!(p.apply(v).get("emails").is_none());
        assert!(!Projection::new(None, Some("members")).wants("members"));
        assert!(Projection::new(None, None).wants("members"));
    }

    #[test]
    fn errors_carry_their_scim_type() {
        let b = ScimError::invalid_filter("x").body();
        assert_eq!(b["scimType"], "invalidFilter");
        assert_eq!(b["status"], "400");
        assert!(ScimError::not_found("x").body().get("scimType").is_none());
    }
}
