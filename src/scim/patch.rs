//! PATCH (RFC 7644 §3.5.2) on a resource's JSON document: `add`, `replace` and `remove`, with
//! an attribute path (`name.givenName`), a value path (`members[value eq "…"]`, with or without
//! a sub-attribute) or, for add and replace, no path and an object of attributes. The caller
//! reads the patched document back like a PUT body, so a PATCH can never store what a PUT
//! could not. Also accepted, because the provisioning agents people use send them: operation
//! names in any case, `remove` of listed members (`path: "members"` with a `value`), and
//! path-shaped keys in a path-less `replace` (`{"name.givenName": "Ann"}`).

use scim_v2::filter::{AttrPath, PatchPath, ValFilter};
use serde_json::{Map, Value};

use super::filter::matches;
use super::{get, ScimError, SCHEMA_PATCH};

/// The most operations one PATCH may carry.
const MAX_OPERATIONS: usize = 1000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Add,
    Replace,
    Remove,
}

/// The existing key matching `name` case-insensitively, or `name` itself.
fn key_of(obj: &Map<String, Value>, name: &str) -> String {
    obj.keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_owned())
}

fn check_uri(p: &AttrPath, schema: &str) -> Result<(), ScimError> {
    match &p.uri {
        Some(u) if !u.eq_ignore_ascii_case(schema) => {
            Err(ScimError::invalid_path(format!("unknown schema `{u}`")))
        }
        _ => Ok(()),
    }
}

/// Apply a PatchOp body to `doc` (a rendered resource of `schema`).
pub fn apply(doc: &mut Value, body: &Value, schema: &str) -> Result<(), ScimError> {
    let body = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the body must be a JSON object"))?;
    match get(body, "schemas") {
        Some(Value::Array(s)) if s.iter().any(|u| u.as_str() == Some(SCHEMA_PATCH)) => {}
        _ => {
            return Err(ScimError::invalid_syntax(format!(
                "`schemas` must list {SCHEMA_PATCH}"
            )))
        }
    }
    let ops = match get(body, "Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        _ => {
            return Err(ScimError::invalid_syntax(
                "`Operations` must be a non-empty list",
            ))
        }
    };
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_syntax(format!(
            "at most {MAX_OPERATIONS} operations per request"
        )));
    }
    let doc = doc
        .as_object_mut()
        .ok_or_else(|| ScimError::internal("the resource is not an object"))?;
    for op in ops {
        let op = op
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("each operation must be an object"))?;
        let kind = match get(op, "op").and_then(Value::as_str) {
            Some(s) if s.eq_ignore_ascii_case("add") => Kind::Add,
            Some(s) if s.eq_ignore_ascii_case("replace") => Kind::Replace,
            Some(s) if s.eq_ignore_ascii_case("remove") => Kind::Remove,
            _ => {
                return Err(ScimError::invalid_syntax(
                    "`op` must be add, replace or remove",
                ))
            }
        };
        let value = get(op, "value").cloned();
        match get(op, "path") {
            None | Some(Value::Null) => {
                if kind == Kind::Remove {
                    return Err(ScimError::no_target("remove needs a path"));
                }
                let Some(Value::Object(attrs)) = value else {
                    return Err(ScimError::invalid_value(
                        "without a path, the value must be an object of attributes",
                    ));
                };
                for (k, v) in attrs {
                    // A path-shaped key (`name.givenName`, `emails[...].value`) is a path.
                    if k.contains('.') || k.contains('[') {
                        let path = parse_path(&k)?;
                        at_path(doc, kind, &path, Some(v), schema)?;
                    } else {
                        let k = key_of(doc, &k);
                        set(doc, kind, k, v);
                    }
                }
            }
            Some(Value::String(p)) => {
                let path = parse_path(p)?;
                if kind != Kind::Remove && value.is_none() {
                    return Err(ScimError::invalid_value(format!("`{p}` needs a value")));
                }
                at_path(doc, kind, &path, value, schema)?;
            }
            Some(_) => return Err(ScimError::invalid_path("`path` must be a string")),
        }
    }
    Ok(())
}

fn parse_path(p: &str) -> Result<PatchPath, ScimError> {
    p.parse::<PatchPath>()
        .map_err(|e| ScimError::invalid_path(format!("`{p}` is not a SCIM path: {e}")))
}

/// `add` appends to a list (skipping values already there) and merges into an object;
/// `replace` sets.
fn set(doc: &mut Map<String, Value>, kind: Kind, key: String, v: Value) {
    match (kind, doc.get_mut(&key), v) {
        (Kind::Add, Some(Value::Array(have)), v) => {
            let items = match v {
                Value::Array(items) => items,
                one => vec![one],
            };
            for i in items {
                if !have.iter().any(|h| same_item(h, &i)) {
                    have.push(i);
                }
            }
        }
        (Kind::Add, Some(Value::Object(have)), Value::Object(new)) => {
            for (k, v) in new {
                let k = key_of(have, &k);
                have.insert(k, v);
            }
        }
        (_, _, v) => {
            doc.insert(key, v);
        }
    }
}

/// Two values of a multi-valued attribute are the same when their `value`s are.
fn same_item(a: &Value, b: &Value) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => match (get(a, "value"), get(b, "value")) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        _ => a == b,
    }
}

fn at_path(
    doc: &mut Map<String, Value>,
    kind: Kind,
    path: &PatchPath,
    value: Option<Value>,
    schema: &str,
) -> Result<(), ScimError> {
    match path {
        PatchPath::Attr(a) => {
            check_uri(a, schema)?;
            let key = key_of(doc, &a.name);
            match (&a.sub_attr, kind) {
                (None, Kind::Remove) => {
                    match (doc.get_mut(&key), value) {
                        // `remove` of listed values (Entra's way of removing members).
                        (Some(Value::Array(have)), Some(v)) => {
                            let gone = match v {
                                Value::Array(items) => items,
                                one => vec![one],
                            };
                            have.retain(|h| !gone.iter().any(|g| same_item(h, g)));
                        }
                        _ => {
                            doc.remove(&key);
                        }
                    }
                    Ok(())
                }
                (None, _) => {
                    set(doc, kind, key, value.unwrap_or(Value::Null));
                    Ok(())
                }
                (Some(sub), _) => {
                    let parent = doc
                        .entry(key.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    let Value::Object(parent) = parent else {
                        return Err(ScimError::invalid_path(format!(
                            "`{}` has no sub-attributes",
                            a.name
                        )));
                    };
                    let sub = key_of(parent, sub);
                    match value {
                        Some(v) if kind != Kind::Remove => {
                            parent.insert(sub, v);
                        }
                        _ => {
                            parent.remove(&sub);
                        }
                    }
                    Ok(())
                }
            }
        }
        PatchPath::Value(vp) => {
            check_uri(&vp.attr, schema)?;
            if vp.attr.sub_attr.is_some() {
                return Err(ScimError::invalid_path("a value path filters an attribute"));
            }
            let key = key_of(doc, &vp.attr.name);
            let items = match doc.get_mut(&key) {
                Some(Value::Array(items)) => items,
                _ if kind == Kind::Add => {
                    return Err(ScimError::invalid_path(
                        "add with a value filter needs existing values",
                    ))
                }
                _ => return Err(ScimError::no_target(format!("no value matches `{key}[…]`"))),
            };
            filtered(items, &vp.filter, vp.sub_attr.as_deref(), kind, value, &key)
        }
    }
}

fn filtered(
    items: &mut Vec<Value>,
    f: &ValFilter,
    sub: Option<&str>,
    kind: Kind,
    value: Option<Value>,
    key: &str,
) -> Result<(), ScimError> {
    let hit: Vec<usize> = (0..items.len())
        .filter(|i| matches(f, &items[*i]))
        .collect();
    if hit.is_empty() {
        return Err(ScimError::no_target(format!("no value matches `{key}[…]`")));
    }
    match (sub, kind) {
        (None, Kind::Remove) => {
            let mut i = 0;
            items.retain(|_| {
                let keep = !hit.contains(&i);
                i += 1;
                keep
            });
        }
        (None, _) => {
            let Some(Value::Object(new)) = value else {
                return Err(ScimError::invalid_value(format!(
                    "`{key}[…]` takes an object"
                )));
            };
            for i in hit {
                if let Some(Value::Object(o)) = items.get_mut(i) {
                    if kind == Kind::Replace {
                        o.clear();
                    }
                    for (k, v) in new.clone() {
                        let k = key_of(o, &k);
                        o.insert(k, v);
                    }
                }
            }
        }
        (Some(sub), _) => {
            for i in hit {
                if let Some(Value::Object(o)) = items.get_mut(i) {
                    let k = key_of(o, sub);
                    match (&value, kind) {
                        (Some(v), Kind::Add | Kind::Replace) => {
                            o.insert(k, v.clone());
                        }
                        _ => {
                            o.remove(&k);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::SCHEMA_GROUP;
    use serde_json::json;

    fn patch(ops: Value) -> Value {
        json!({"schemas": [SCHEMA_PATCH], "Operations": ops})
    }

    #[test]
    fn members_are_added_and_removed_by_value() {
        let mut g = json!({"displayName": "Sales", "members": [{"value": "a"}]});
        apply(
            &mut g,
            &patch(json!([
                {"op": "add", "path": "members", "value": [{"value": "b"}, {"value": "a"}]},
                {"op": "Remove", "path": "members[value eq \"a\"]"},
            ])),
            SCHEMA_GROUP,
        )
        .unwrap();
        assert_eq!(g["members"], json!([{"value": "b"}]));
        apply(
            &mut g,
            &patch(json!([{"op": "remove", "path": "members", "value": [{"value": "b"}]}])),
            SCHEMA_GROUP,
        )
        .unwrap();
        assert_eq!(g["members"], json!([]));
        apply(
            &mut g,
            &patch(json!([{"op": "replace", "value": {"displayName": "EMEA", "externalId": "x"}}])),
            SCHEMA_GROUP,
        )
        .unwrap();
        assert_eq!(g["displayName"], "EMEA");
        assert_eq!(g["externalId"], "x");
    }

    #[test]
    fn attribute_and_sub_attribute_paths() {
        let mut u = json!({"userName": "a", "name": {"givenName": "A"}, "emails": [{"value": "a@x.io", "primary": true}]});
        let s = crate::scim::SCHEMA_USER;
        apply(
            &mut u,
            &patch(json!([
                {"op": "replace", "path": "name.familyName", "value": "B"},
                {"op": "replace", "path": "emails[primary eq true].value", "value": "b@x.io"},
                {"op": "replace", "value": {"name.givenName": "C", "active": false}},
                {"op": "remove", "path": "urn:ietf:params:scim:schemas:core:2.0:User:displayName"},
            ])),
            s,
        )
        .unwrap();
        assert_eq!(u["name"], json!({"givenName": "C", "familyName": "B"}));
        assert_eq!(u["emails"][0]["value"], "b@x.io");
        assert_eq!(u["active"], false);
    }

    #[test]
    fn what_cannot_apply_is_a_scim_error() {
        let s = crate::scim::SCHEMA_USER;
        for (ops, ty) in [
            (json!([{"op": "remove"}]), "noTarget"),
            (json!([{"op": "jump", "path": "x"}]), "invalidSyntax"),
            (
                json!([{"op": "replace", "path": "emails[value eq \"none\"].value", "value": "x"}]),
                "noTarget",
            ),
            (
                json!([{"op": "replace", "path": "[[", "value": 1}]),
                "invalidPath",
            ),
            (
                json!([{"op": "add", "value": "not an object"}]),
                "invalidValue",
            ),
            (
                json!([{"op": "replace", "path": "userName"}]),
                "invalidValue",
            ),
            (json!([]), "invalidSyntax"),
        ] {
            let mut u = json!({"userName": "a", "emails": [{"value": "a@x.io"}]});
            let e = apply(&mut u, &patch(ops.clone()), s).unwrap_err();
            assert_eq!(e.scim_type, Some(ty), "{ops}");
        }
        let mut u = json!({});
        assert_eq!(
            apply(&mut u, &json!({"Operations": []}), s)
                .unwrap_err()
                .scim_type,
            Some("invalidSyntax")
        );
    }
}
