//! SCIM filters (RFC 7644 §3.4.2.2), parsed by the `scim_v2` crate's grammar (depth and size
//! limited), into the directory's criteria. An attribute vigil does not keep, or an operator
//! that makes no sense for its type, is `invalidFilter` — never a silent "matches nothing".
//! Also the small evaluator PATCH needs for value paths such as `members[value eq "…"]`.

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter};
use serde_json::Value;

use super::{ScimError, SCHEMA_GROUP, SCHEMA_USER};
use crate::store::directory::{Criterion, GroupField, Op, Operand, UserField};

/// The most characters a filter may have.
pub const MAX_LEN: usize = 4096;

/// What a field holds, to type its operand.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Bool,
    Time,
}

fn op_of(op: &CompareOp) -> Op {
    match op {
        CompareOp::Eq => Op::Eq,
        CompareOp::Ne => Op::Ne,
        CompareOp::Co => Op::Contains,
        CompareOp::Sw => Op::StartsWith,
        CompareOp::Ew => Op::EndsWith,
        CompareOp::Gt => Op::Gt,
        CompareOp::Ge => Op::Ge,
        CompareOp::Lt => Op::Lt,
        CompareOp::Le => Op::Le,
    }
}

fn operand(kind: Kind, op: Op, v: &CompValue, path: &str) -> Result<Operand, ScimError> {
    let bad = |what: &str| ScimError::invalid_filter(format!("`{path}` {what}"));
    match (kind, v) {
        (Kind::Text, CompValue::Str(s)) => Ok(Operand::Text(s.clone())),
        (Kind::Bool, CompValue::True) if matches!(op, Op::Eq | Op::Ne) => Ok(Operand::Bool(true)),
        (Kind::Bool, CompValue::False) if matches!(op, Op::Eq | Op::Ne) => Ok(Operand::Bool(false)),
        (Kind::Bool, _) => Err(bad("compares only with eq or ne and true or false")),
        (Kind::Time, CompValue::Str(s))
            if !matches!(op, Op::Contains | Op::StartsWith | Op::EndsWith) =>
        {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| Operand::Micros(t.timestamp_micros()))
                .map_err(|_| bad("compares with an RFC 3339 date-time"))
        }
        (Kind::Time, _) => Err(bad(
            "compares with eq, ne, gt, ge, lt or le and a date-time",
        )),
        (Kind::Text, _) => Err(bad("compares with a string")),
    }
}

/// The attribute's name and sub-attribute in lower case, its schema URN checked.
fn names(p: &AttrPath, schema: &str) -> Result<(String, Option<String>), ScimError> {
    if let Some(uri) = &p.uri {
        if !uri.eq_ignore_ascii_case(schema) {
            return Err(ScimError::invalid_filter(format!("unknown schema `{uri}`")));
        }
    }
    Ok((
        p.name.to_ascii_lowercase(),
        p.sub_attr.as_ref().map(|s| s.to_ascii_lowercase()),
    ))
}

fn user_field(name: &str, sub: Option<&str>) -> Option<(UserField, Kind)> {
    Some(match (name, sub) {
        ("id", None) => (UserField::Id, Kind::Text),
        ("username", None) => (UserField::Username, Kind::Text),
        ("externalid", None) => (UserField::ExternalId, Kind::Text),
        ("displayname", None) => (UserField::DisplayName, Kind::Text),
        ("active", None) => (UserField::Active, Kind::Bool),
        ("emails", None | Some("value")) => (UserField::Email, Kind::Text),
        ("name", Some("givenname")) => (UserField::GivenName, Kind::Text),
        ("name", Some("familyname")) => (UserField::FamilyName, Kind::Text),
        ("meta", Some("created")) => (UserField::Created, Kind::Time),
        ("meta", Some("lastmodified")) => (UserField::Modified, Kind::Time),
        _ => return None,
    })
}

fn group_field(name: &str, sub: Option<&str>) -> Option<(GroupField, Kind)> {
    Some(match (name, sub) {
        ("id", None) => (GroupField::Id, Kind::Text),
        ("displayname", None) => (GroupField::DisplayName, Kind::Text),
        ("externalid", None) => (GroupField::ExternalId, Kind::Text),
        ("members", None | Some("value")) => (GroupField::Member, Kind::Text),
        ("meta", Some("created")) => (GroupField::Created, Kind::Time),
        ("meta", Some("lastmodified")) => (GroupField::Modified, Kind::Time),
        _ => return None,
    })
}

type FieldOf<F> = fn(&str, Option<&str>) -> Option<(F, Kind)>;

fn attr_exp<F: Copy>(
    e: &AttrExp,
    outer: Option<&str>,
    schema: &str,
    field: FieldOf<F>,
) -> Result<Criterion<F>, ScimError> {
    let (path, op, value) = match e {
        AttrExp::Present(p) => (p, Op::Present, None),
        AttrExp::Comparison(p, op, v) => (p, op_of(op), Some(v)),
    };
    let (name, sub) = names(path, schema)?;
    // Inside `emails[...]`, `value` means `emails.value`.
    let (name, sub) = match outer {
        Some(o) if sub.is_none() => (o.to_owned(), Some(name)),
        Some(_) => {
            return Err(ScimError::invalid_filter(
                "a value filter names sub-attributes",
            ))
        }
        None => (name, sub),
    };
    let shown = match &sub {
        Some(s) => format!("{name}.{s}"),
        None => name.clone(),
    };
    let (f, kind) = field(&name, sub.as_deref())
        .ok_or_else(|| ScimError::invalid_filter(format!("vigil cannot filter on `{shown}`")))?;
    let operand = match value {
        None => None,
        Some(v) => Some(operand(kind, op, v, &shown)?),
    };
    Ok(Criterion::Test(f, op, operand))
}

fn val_filter<F: Copy>(
    v: &ValFilter,
    outer: &str,
    schema: &str,
    field: FieldOf<F>,
) -> Result<Criterion<F>, ScimError> {
    Ok(match v {
        ValFilter::Attr(e) => attr_exp(e, Some(outer), schema, field)?,
        ValFilter::Not(inner) => Criterion::Not(Box::new(val_filter(inner, outer, schema, field)?)),
        ValFilter::And(items) => Criterion::And(
            items
                .iter()
                .map(|i| val_filter(i, outer, schema, field))
                .collect::<Result<_, _>>()?,
        ),
        ValFilter::Or(items) => Criterion::Or(
            items
                .iter()
                .map(|i| val_filter(i, outer, schema, field))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn tree<F: Copy>(f: &Filter, schema: &str, field: FieldOf<F>) -> Result<Criterion<F>, ScimError> {
    Ok(match f {
        Filter::Attr(e) => attr_exp(e, None, schema, field)?,
        Filter::ValuePath(vp) => {
            let (name, sub) = names(&vp.attr, schema)?;
            if sub.is_some() {
                return Err(ScimError::invalid_filter("a value path names an attribute"));
            }
            val_filter(&vp.filter, &name, schema, field)?
        }
        Filter::Not(inner) => Criterion::Not(Box::new(tree(inner, schema, field)?)),
        Filter::And(items) => Criterion::And(
            items
                .iter()
                .map(|i| tree(i, schema, field))
                .collect::<Result<_, _>>()?,
        ),
        Filter::Or(items) => Criterion::Or(
            items
                .iter()
                .map(|i| tree(i, schema, field))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn parse(raw: &str) -> Result<Option<Filter>, ScimError> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    if raw.len() > MAX_LEN {
        return Err(ScimError::invalid_filter(format!(
            "a filter has at most {MAX_LEN} characters"
        )));
    }
    raw.parse::<Filter>()
        .map(Some)
        .map_err(|e| ScimError::invalid_filter(format!("the filter does not parse: {e}")))
}

/// A `filter` on `/Users`.
pub fn users(raw: Option<&str>) -> Result<Criterion<UserField>, ScimError> {
    match parse(raw.unwrap_or(""))? {
        None => Ok(Criterion::All),
        Some(f) => tree(&f, SCHEMA_USER, user_field),
    }
}

/// A `filter` on `/Groups`.
pub fn groups(raw: Option<&str>) -> Result<Criterion<GroupField>, ScimError> {
    match parse(raw.unwrap_or(""))? {
        None => Ok(Criterion::All),
        Some(f) => tree(&f, SCHEMA_GROUP, group_field),
    }
}

/// Whether one value of a multi-valued attribute (a JSON object such as a member or an
/// e-mail) matches a PATCH path's value filter. Strings compare case-insensitively but for
/// `value` (ids) and `$ref`.
pub fn matches(f: &ValFilter, item: &Value) -> bool {
    match f {
        ValFilter::Not(inner) => !matches(inner, item),
        ValFilter::And(items) => items.iter().all(|i| matches(i, item)),
        ValFilter::Or(items) => items.iter().any(|i| matches(i, item)),
        ValFilter::Attr(AttrExp::Present(p)) => {
            lookup(item, p).is_some_and(|v| !v.is_null() && v != &Value::String(String::new()))
        }
        ValFilter::Attr(AttrExp::Comparison(p, op, want)) => {
            let Some(have) = lookup(item, p) else {
                return matches!(op, CompareOp::Ne);
            };
            let exact = matches!(p.name.to_ascii_lowercase().as_str(), "value" | "$ref");
            compare(have, op, want, exact)
        }
    }
}

fn lookup<'a>(item: &'a Value, p: &AttrPath) -> Option<&'a Value> {
    let obj = item.as_object()?;
    let v = super::get(obj, &p.name)?;
    match &p.sub_attr {
        Some(s) => super::get(v.as_object()?, s),
        None => Some(v),
    }
}

fn compare(have: &Value, op: &CompareOp, want: &CompValue, exact: bool) -> bool {
    match (have, want) {
        (Value::Bool(h), CompValue::True | CompValue::False) => {
            let w = matches!(want, CompValue::True);
            match op {
                CompareOp::Eq => *h == w,
                CompareOp::Ne => *h != w,
                _ => false,
            }
        }
        (Value::String(h), CompValue::Str(w)) => {
            let (h, w) = if exact {
                (h.clone(), w.clone())
            } else {
                (h.to_lowercase(), w.to_lowercase())
            };
            match op {
                CompareOp::Eq => h == w,
                CompareOp::Ne => h != w,
                CompareOp::Co => h.contains(&w),
                CompareOp::Sw => h.starts_with(&w),
                CompareOp::Ew => h.ends_with(&w),
                CompareOp::Gt => h > w,
                CompareOp::Ge => h >= w,
                CompareOp::Lt => h < w,
                CompareOp::Le => h <= w,
            }
        }
        (Value::Null, CompValue::Null) => matches!(op, CompareOp::Eq),
        _ => matches!(op, CompareOp::Ne),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(f: UserField, op: Op, v: &str) -> Criterion<UserField> {
        Criterion::Test(f, op, Some(Operand::Text(v.into())))
    }

    #[test]
    fn the_filters_the_issue_names_translate() {
        assert_eq!(
            users(Some(r#"userName eq "bjensen""#)).unwrap(),
            t(UserField::Username, Op::Eq, "bjensen")
        );
        assert_eq!(
            users(Some(r#"USERNAME EQ "B""#)).unwrap(),
            t(UserField::Username, Op::Eq, "B")
        );
        assert_eq!(
            users(Some(r#"emails.value co "@example.com""#)).unwrap(),
            t(UserField::Email, Op::Contains, "@example.com")
        );
        assert_eq!(
            users(Some(r#"emails[value sw "a"]"#)).unwrap(),
            t(UserField::Email, Op::StartsWith, "a")
        );
        assert_eq!(
            users(Some("displayName pr")).unwrap(),
            Criterion::Test(UserField::DisplayName, Op::Present, None)
        );
        assert_eq!(
            users(Some(
                r#"externalId eq "1" or (userName sw "a" and active eq true)"#
            ))
            .unwrap(),
            Criterion::Or(vec![
                t(UserField::ExternalId, Op::Eq, "1"),
                Criterion::And(vec![
                    t(UserField::Username, Op::StartsWith, "a"),
                    Criterion::Test(UserField::Active, Op::Eq, Some(Operand::Bool(true))),
                ]),
            ])
        );
        assert_eq!(
            users(Some(&format!(r#"{SCHEMA_USER}:userName eq "x""#))).unwrap(),
            t(UserField::Username, Op::Eq, "x")
        );
        assert_eq!(
            groups(Some(r#"displayName eq "Sales""#)).unwrap(),
            Criterion::Test(
                GroupField::DisplayName,
                Op::Eq,
                Some(Operand::Text("Sales".into()))
            )
        );
        assert_eq!(users(None).unwrap(), Criterion::All);
    }

    #[test]
    fn what_cannot_be_answered_is_invalid_filter() {
        for bad in [
            "userName eq",
            r#"title eq "x""#,
            r#"active eq "yes""#,
            "active gt true",
            r#"meta.created gt "yesterday""#,
            r#"emails[type eq "work"]"#,
            r#"urn:example:Other:userName eq "x""#,
            "userName eq 5",
        ] {
            let e = users(Some(bad)).unwrap_err();
            assert_eq!(e.scim_type, Some("invalidFilter"), "{bad}");
        }
        let deep = format!("{}userName pr{}", "(".repeat(500), ")".repeat(500));
        assert_eq!(users(Some(&deep)).unwrap_err().status, 400);
    }

    #[test]
    fn value_filters_match_members() {
        let f: scim_v2::filter::PatchPath = r#"members[value eq "U1"]"#.parse().unwrap();
        let scim_v2::filter::PatchPath::Value(vp) = f else {
            panic!("a value path")
        };
        assert!(matches(&vp.filter, &serde_json::json!({"value": "U1"})));
        assert!(!matches(&vp.filter, &serde_json::json!({"value": "u1"})));
        assert!(!matches(&vp.filter, &serde_json::json!({"display": "U1"})));
    }
}
