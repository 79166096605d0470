//! Users and groups as SCIM resources (RFC 7643 §4), and SCIM bodies read back into what
//! vigil stores. Read-only attributes in a body (`id`, `meta`, `groups`) are ignored, as
//! RFC 7644 §3.5.1 says; a value of the wrong type is `invalidValue`, never a panic.

use secrecy::SecretString;
use serde_json::{json, Map, Value};

use super::{get, ScimError, SCHEMA_GROUP, SCHEMA_USER};
use crate::store::directory::{DirectoryGroup, DirectoryUser};

fn time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn meta(kind: &str, location: String, created: i64, modified: i64) -> Value {
    json!({
        "resourceType": kind,
        "created": time(created),
        "lastModified": time(modified),
        "location": location,
    })
}

/// A user as SCIM shows them; `groups` are (group id, name).
pub fn user(base: &str, u: &DirectoryUser, groups: &[(String, String)]) -> Value {
    let mut v = Map::new();
    v.insert("schemas".into(), json!([SCHEMA_USER]));
    v.insert("id".into(), json!(u.id));
    if let Some(x) = &u.external_id {
        v.insert("externalId".into(), json!(x));
    }
    v.insert("userName".into(), json!(u.username));
    if !u.name.is_empty() {
        v.insert("displayName".into(), json!(u.name));
    }
    let mut name = Map::new();
    if let Some(g) = &u.given_name {
        name.insert("givenName".into(), json!(g));
    }
    if let Some(f) = &u.family_name {
        name.insert("familyName".into(), json!(f));
    }
    if !name.is_empty() {
        v.insert("name".into(), Value::Object(name));
    }
    if !u.email.is_empty() {
        v.insert("emails".into(), json!([{ "value": u.email }]));
    }
    v.insert("active".into(), json!(!u.disabled));
    if !groups.is_empty() {
        let gs: Vec<Value> = groups
            .iter()
            .map(|(id, name)| {
                json!({ "value": id, "$ref": format!("{base}/Groups/{id}"), "display": name })
            })
            .collect();
        v.insert("groups".into(), Value::Array(gs));
    }
    v.insert(
        "meta".into(),
        meta(
            "User",
            format!("{base}/Users/{}", u.id),
            u.created_at,
            u.updated_at,
        ),
    );
    Value::Object(v)
}

/// A group as SCIM shows it; `members` are (user id, username), `None` when not asked for.
pub fn group(base: &str, g: &DirectoryGroup, members: Option<&[(String, String)]>) -> Value {
    let mut v = Map::new();
    v.insert("schemas".into(), json!([SCHEMA_GROUP]));
    v.insert("id".into(), json!(g.id));
    if let Some(x) = &g.external_id {
        v.insert("externalId".into(), json!(x));
    }
    v.insert("displayName".into(), json!(g.name));
    if let Some(ms) = members {
        let ms: Vec<Value> = ms
            .iter()
            .map(|(id, username)| {
                json!({
                    "value": id, "$ref": format!("{base}/Users/{id}"),
                    "display": username, "type": "User",
                })
            })
            .collect();
        v.insert("members".into(), Value::Array(ms));
    }
    v.insert(
        "meta".into(),
        meta(
            "Group",
            format!("{base}/Groups/{}", g.id),
            g.created_at,
            g.updated_at,
        ),
    );
    Value::Object(v)
}

/// A user as a SCIM body describes them (POST, PUT, or a patched document).
#[derive(Debug)]
pub struct UserInput {
    pub username: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// The primary e-mail address, or the first.
    pub email: Option<String>,
    /// Absent: a new account is active; a replaced one keeps its state.
    pub active: Option<bool>,
    pub password: Option<SecretString>,
}

/// A group as a SCIM body describes it.
#[derive(Debug)]
pub struct GroupInput {
    pub display_name: String,
    pub external_id: Option<String>,
    /// Member user ids, without repeats.
    pub members: Vec<String>,
}

fn object(body: &Value) -> Result<&Map<String, Value>, ScimError> {
    body.as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the body must be a JSON object"))
}

fn check_schemas(obj: &Map<String, Value>, core: &str) -> Result<(), ScimError> {
    match get(obj, "schemas") {
        None => Ok(()),
        Some(Value::Array(s)) if s.iter().any(|u| u.as_str() == Some(core)) => Ok(()),
        Some(_) => Err(ScimError::invalid_syntax(format!(
            "`schemas` must list {core}"
        ))),
    }
}

/// An optional string attribute; `null` or absent is `None`, an empty string too.
fn string(obj: &Map<String, Value>, name: &str, max: usize) -> Result<Option<String>, ScimError> {
    match get(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() > max => Err(ScimError::invalid_value(
            format!("`{name}` has at most {max} characters"),
        )),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(ScimError::invalid_value(format!(
            "`{name}` must be a string"
        ))),
    }
}

/// A boolean, also as the strings "True"/"False" that some provisioning agents send.
pub fn boolean(v: &Value, name: &str) -> Result<bool, ScimError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::invalid_value(format!(
            "`{name}` must be true or false"
        ))),
    }
}

fn primary_email(obj: &Map<String, Value>) -> Result<Option<String>, ScimError> {
    let items = match get(obj, "emails") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ScimError::invalid_value("`emails` must be a list")),
    };
    let mut first = None;
    for item in items {
        let e = item
            .as_object()
            .ok_or_else(|| ScimError::invalid_value("each of `emails` must be an object"))?;
        let value = string(e, "value", 254)?;
        let primary = match get(e, "primary") {
            None | Some(Value::Null) => false,
            Some(p) => boolean(p, "emails.primary")?,
        };
        if primary && value.is_some() {
            return Ok(value);
        }
        if first.is_none() {
            first = value;
        }
    }
    Ok(first)
}

/// Read a user body. `userName` is required.
pub fn user_input(body: &Value) -> Result<UserInput, ScimError> {
    let obj = object(body)?;
    check_schemas(obj, SCHEMA_USER)?;
    let username = string(obj, "userName", 64)?
        .ok_or_else(|| ScimError::invalid_value("`userName` is required"))?;
    let (given_name, family_name) = match get(obj, "name") {
        None | Some(Value::Null) => (None, None),
        Some(Value::Object(n)) => (string(n, "givenName", 200)?, string(n, "familyName", 200)?),
        Some(_) => return Err(ScimError::invalid_value("`name` must be an object")),
    };
    let active = match get(obj, "active") {
        None | Some(Value::Null) => None,
        Some(v) => Some(boolean(v, "active")?),
    };
    let password = match get(obj, "password") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(SecretString::from(s.clone())),
        Some(_) => return Err(ScimError::invalid_value("`password` must be a string")),
    };
    Ok(UserInput {
        username,
        external_id: string(obj, "externalId", 255)?,
        display_name: string(obj, "displayName", 200)?,
        given_name,
        family_name,
        email: primary_email(obj)?,
        active,
        password,
    })
}

/// Read a patched user document: as [`user_input`], but `active` cannot have been removed (an
/// account is always active or not; "unassigned" would mean neither).
pub fn patched_user_input(doc: &Value) -> Result<UserInput, ScimError> {
    let u = user_input(doc)?;
    if u.active.is_none() {
        return Err(ScimError::mutability(
            "`active` cannot be removed; replace it with true or false",
        ));
    }
    Ok(u)
}

/// Read a group body. `displayName` is required; members must be users.
pub fn group_input(body: &Value) -> Result<GroupInput, ScimError> {
    let obj = object(body)?;
    check_schemas(obj, SCHEMA_GROUP)?;
    let display_name = string(obj, "displayName", 128)?
        .ok_or_else(|| ScimError::invalid_value("`displayName` is required"))?;
    let mut members: Vec<String> = Vec::new();
    match get(obj, "members") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let m = item.as_object().ok_or_else(|| {
                    ScimError::invalid_value("each of `members` must be an object")
                })?;
                if let Some(t) = string(m, "type", 16)? {
                    if !t.eq_ignore_ascii_case("User") {
                        return Err(ScimError::invalid_value(
                            "vigil's groups hold users, not other groups",
                        ));
                    }
                }
                let id = string(m, "value", 64)?.ok_or_else(|| {
                    ScimError::invalid_value("each member needs a `value` (a user id)")
                })?;
                if !members.contains(&id) {
                    members.push(id);
                }
            }
        }
        Some(_) => return Err(ScimError::invalid_value("`members` must be a list")),
    }
    Ok(GroupInput {
        display_name,
        external_id: string(obj, "externalId", 255)?,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_user_body_reads_what_vigil_keeps() {
        let u = user_input(&json!({
            "schemas": [SCHEMA_USER],
            "UserName": "Ann",
            "name": {"givenName": "Ann", "familyName": "Lee", "formatted": "ignored"},
            "emails": [{"value": "x@example.com"}, {"value": "ann@example.com", "primary": "True"}],
            "active": "False",
            "password": "a long enough password",
            "id": "ignored", "groups": [{"value": "ignored"}],
        }))
        .unwrap();
        assert_eq!(u.username, "Ann");
        assert_eq!(u.email.as_deref(), Some("ann@example.com"));
        assert_eq!(u.given_name.as_deref(), Some("Ann"));
        assert_eq!(u.active, Some(false));
        assert_eq!(
            u.password.unwrap().expose_secret(),
            "a long enough password"
        );
    }

    #[test]
    fn bad_bodies_are_scim_errors() {
        for (body, ty) in [
            (json!([]), "invalidSyntax"),
            (json!({"emails": []}), "invalidValue"),
            (json!({"userName": 5}), "invalidValue"),
            (json!({"userName": "a", "active": "maybe"}), "invalidValue"),
            (json!({"userName": "a", "emails": "x"}), "invalidValue"),
            (json!({"userName": "a", "name": []}), "invalidValue"),
            (
                json!({"userName": "a", "schemas": ["urn:other"]}),
                "invalidSyntax",
            ),
        ] {
            assert_eq!(user_input(&body).unwrap_err().scim_type, Some(ty), "{body}");
        }
        for body in [
            json!({"members": []}),
            json!({"displayName": "g", "members": [{"value": "x", "type": "Group"}]}),
            json!({"displayName": "g", "members": [{"display": "no value"}]}),
        ] {
            assert_eq!(group_input(&body).unwrap_err().status, 400, "{body}");
        }
    }
}
