//! The directory as provisioning sees it: users and groups found by a [`Criterion`] tree (a
//! SCIM filter, translated by `scim/`), paged, with the profile columns an HR system keeps
//! (`external_id`, given and family names). Conditions become diesel expressions, so every
//! value is a bound parameter on both backends.
//!
//! Text comparisons follow SCIM's `caseExact`: usernames, e-mail addresses and names compare
//! in lower case, ids and external ids exactly. A column without a value compares as `''`, so
//! `not (externalId eq "x")` matches an account that has none.

use diesel::dsl::{exists, not};
use diesel::expression::{AsExpression, BoxableExpression};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use super::schema::{group_members, groups, users};
use super::users::lower;
use super::{DbConn, StoreError, StoreResult};

/// What a condition tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Present,
    Eq,
    Ne,
    Contains,
    StartsWith,
    EndsWith,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A comparison value, already typed for its attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Text(String),
    Bool(bool),
    /// Unix microseconds (created, last modified).
    Micros(i64),
}

/// A condition tree over one resource's fields. The caller (`scim/`) types each operand for
/// its field; a test whose operand does not fit its field matches nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criterion<F> {
    All,
    Test(F, Op, Option<Operand>),
    And(Vec<Criterion<F>>),
    Or(Vec<Criterion<F>>),
    Not(Box<Criterion<F>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserField {
    Id,
    Username,
    ExternalId,
    Email,
    DisplayName,
    GivenName,
    FamilyName,
    Active,
    Created,
    Modified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupField {
    Id,
    DisplayName,
    ExternalId,
    /// A member's user id (`members.value`): only `eq`.
    Member,
    Created,
    Modified,
}

/// A user with what SCIM shows of them.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = users)]
pub struct DirectoryUser {
    pub id: String,
    pub username: String,
    pub email: String,
    pub name: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

/// A group with what SCIM shows of it.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = groups)]
pub struct DirectoryGroup {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub external_id: Option<String>,
}

/// One page of matches and how many match in all.
#[derive(Debug)]
pub struct Page<T> {
    pub total: i64,
    pub items: Vec<T>,
}

type Db = <DbConn as diesel::Connection>::Backend;
type Cond<QS> = Box<dyn BoxableExpression<QS, Db, SqlType = Bool>>;
type TextExpr<QS> = Box<dyn BoxableExpression<QS, Db, SqlType = Text>>;

/// How a field is compared.
enum Column<QS> {
    /// Text, compared in lower case when the flag is set.
    Text(TextExpr<QS>, bool),
    Bool(Box<dyn BoxableExpression<QS, Db, SqlType = Bool>>),
    Micros(Box<dyn BoxableExpression<QS, Db, SqlType = BigInt>>),
    /// A custom test (group members): given the operator and operand.
    Custom(fn(Op, Option<&Operand>) -> StoreResult<Cond<QS>>),
}

diesel::define_sql_function! {
    /// `coalesce(text, text)`: a missing value compares as the empty string.
    fn coalesce(x: Nullable<Text>, y: Text) -> Text;
}

fn like_escaped(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

fn truth<QS: 'static>(b: bool) -> Cond<QS> {
    Box::new(AsExpression::<Bool>::as_expression(b))
}

fn text_test<QS: 'static>(
    col: TextExpr<QS>,
    fold: bool,
    op: Op,
    v: Option<&Operand>,
) -> StoreResult<Cond<QS>> {
    if op == Op::Present {
        return Ok(Box::new(col.ne("")));
    }
    let Some(Operand::Text(v)) = v else {
        return Ok(truth(false));
    };
    let v = if fold { v.to_lowercase() } else { v.clone() };
    let col: TextExpr<QS> = if fold { Box::new(lower(col)) } else { col };
    Ok(match op {
        Op::Eq => Box::new(col.eq(v)),
        Op::Ne => Box::new(col.ne(v)),
        Op::Contains => Box::new(col.like(format!("%{}%", like_escaped(&v))).escape('\\')),
        Op::StartsWith => Box::new(col.like(format!("{}%", like_escaped(&v))).escape('\\')),
        Op::EndsWith => Box::new(col.like(format!("%{}", like_escaped(&v))).escape('\\')),
        Op::Gt => Box::new(col.gt(v)),
        Op::Ge => Box::new(col.ge(v)),
        Op::Lt => Box::new(col.lt(v)),
        Op::Le => Box::new(col.le(v)),
        Op::Present => return Ok(truth(false)),
    })
}

fn bool_test<QS: 'static>(
    col: Box<dyn BoxableExpression<QS, Db, SqlType = Bool>>,
    op: Op,
    v: Option<&Operand>,
) -> StoreResult<Cond<QS>> {
    match (op, v) {
        (Op::Present, _) => Ok(truth(true)),
        (Op::Eq, Some(Operand::Bool(b))) => Ok(Box::new(col.eq(*b))),
        (Op::Ne, Some(Operand::Bool(b))) => Ok(Box::new(col.ne(*b))),
        _ => Ok(truth(false)),
    }
}

fn time_test<QS: 'static>(
    col: Box<dyn BoxableExpression<QS, Db, SqlType = BigInt>>,
    op: Op,
    v: Option<&Operand>,
) -> StoreResult<Cond<QS>> {
    if op == Op::Present {
        return Ok(truth(true));
    }
    let Some(Operand::Micros(t)) = v else {
        return Ok(truth(false));
    };
    let t = *t;
    Ok(match op {
        Op::Eq => Box::new(col.eq(t)),
        Op::Ne => Box::new(col.ne(t)),
        Op::Gt => Box::new(col.gt(t)),
        Op::Ge => Box::new(col.ge(t)),
        Op::Lt => Box::new(col.lt(t)),
        Op::Le => Box::new(col.le(t)),
        _ => return Ok(truth(false)),
    })
}

fn translate<QS: 'static, F: Copy>(
    c: &Criterion<F>,
    column: &dyn Fn(F) -> Column<QS>,
) -> StoreResult<Cond<QS>> {
    Ok(match c {
        Criterion::All => truth(true),
        Criterion::Test(f, op, v) => match column(*f) {
            Column::Text(col, fold) => text_test(col, fold, *op, v.as_ref())?,
            Column::Bool(col) => bool_test(col, *op, v.as_ref())?,
            Column::Micros(col) => time_test(col, *op, v.as_ref())?,
            Column::Custom(test) => test(*op, v.as_ref())?,
        },
        Criterion::And(items) => {
            let mut acc = truth(true);
            for i in items {
                acc = Box::new(acc.and(translate(i, column)?));
            }
            acc
        }
        Criterion::Or(items) => {
            let mut acc = truth(false);
            for i in items {
                acc = Box::new(acc.or(translate(i, column)?));
            }
            acc
        }
        Criterion::Not(inner) => Box::new(not(translate(inner, column)?)),
    })
}

fn user_column(f: UserField) -> Column<users::table> {
    match f {
        UserField::Id => Column::Text(Box::new(users::id), false),
        UserField::Username => Column::Text(Box::new(users::username), true),
        UserField::ExternalId => Column::Text(Box::new(coalesce(users::external_id, "")), false),
        UserField::Email => Column::Text(Box::new(users::email), true),
        UserField::DisplayName => Column::Text(Box::new(users::name), true),
        UserField::GivenName => Column::Text(Box::new(coalesce(users::given_name, "")), true),
        UserField::FamilyName => Column::Text(Box::new(coalesce(users::family_name, "")), true),
        UserField::Active => Column::Bool(Box::new(not(users::disabled))),
        UserField::Created => Column::Micros(Box::new(users::created_at)),
        UserField::Modified => Column::Micros(Box::new(users::updated_at)),
    }
}

fn member_test(op: Op, v: Option<&Operand>) -> StoreResult<Cond<groups::table>> {
    match (op, v) {
        (Op::Eq, Some(Operand::Text(uid))) => Ok(Box::new(exists(
            group_members::table
                .filter(group_members::group_id.eq(groups::id))
                .filter(group_members::user_id.eq(uid.clone())),
        ))),
        (Op::Present, _) => Ok(Box::new(exists(
            group_members::table.filter(group_members::group_id.eq(groups::id)),
        ))),
        _ => Ok(truth(false)),
    }
}

fn group_column(f: GroupField) -> Column<groups::table> {
    match f {
        GroupField::Id => Column::Text(Box::new(groups::id), false),
        GroupField::DisplayName => Column::Text(Box::new(groups::name), true),
        GroupField::ExternalId => Column::Text(Box::new(coalesce(groups::external_id, "")), false),
        GroupField::Member => Column::Custom(member_test),
        GroupField::Created => Column::Micros(Box::new(groups::created_at)),
        GroupField::Modified => Column::Micros(Box::new(groups::updated_at)),
    }
}

/// Users matching `c`, oldest first, `limit` from `offset` (0-based), and the total.
pub fn find_users(
    conn: &mut DbConn,
    c: &Criterion<UserField>,
    offset: i64,
    limit: i64,
) -> StoreResult<Page<DirectoryUser>> {
    let total: i64 = users::table
        .filter(translate(c, &user_column)?)
        .count()
        .get_result(conn)?;
    let items = if limit > 0 && offset < total {
        users::table
            .filter(translate(c, &user_column)?)
            .order((users::created_at.asc(), users::id.asc()))
            .offset(offset)
            .limit(limit)
            .select(DirectoryUser::as_select())
            .load(conn)?
    } else {
        Vec::new()
    };
    Ok(Page { total, items })
}

/// Groups matching `c`, oldest first, `limit` from `offset`, and the total.
pub fn find_groups(
    conn: &mut DbConn,
    c: &Criterion<GroupField>,
    offset: i64,
    limit: i64,
) -> StoreResult<Page<DirectoryGroup>> {
    let total: i64 = groups::table
        .filter(translate(c, &group_column)?)
        .count()
        .get_result(conn)?;
    let items = if limit > 0 && offset < total {
        groups::table
            .filter(translate(c, &group_column)?)
            .order((groups::created_at.asc(), groups::id.asc()))
            .offset(offset)
            .limit(limit)
            .select(DirectoryGroup::as_select())
            .load(conn)?
    } else {
        Vec::new()
    };
    Ok(Page { total, items })
}

pub fn user(conn: &mut DbConn, id: &str) -> StoreResult<Option<DirectoryUser>> {
    Ok(users::table
        .find(id)
        .select(DirectoryUser::as_select())
        .first(conn)
        .optional()?)
}

pub fn group(conn: &mut DbConn, id: &str) -> StoreResult<Option<DirectoryGroup>> {
    Ok(groups::table
        .find(id)
        .select(DirectoryGroup::as_select())
        .first(conn)
        .optional()?)
}

/// The groups of each of `user_ids` as (user id, group id, group name), by name.
pub fn groups_of_users(
    conn: &mut DbConn,
    user_ids: &[String],
) -> StoreResult<Vec<(String, String, String)>> {
    Ok(group_members::table
        .inner_join(groups::table)
        .filter(group_members::user_id.eq_any(user_ids))
        .order(groups::name.asc())
        .select((group_members::user_id, groups::id, groups::name))
        .load(conn)?)
}

/// The members of each of `group_ids` as (group id, user id, username), by username.
pub fn members_of_groups(
    conn: &mut DbConn,
    group_ids: &[String],
) -> StoreResult<Vec<(String, String, String)>> {
    Ok(group_members::table
        .inner_join(users::table)
        .filter(group_members::group_id.eq_any(group_ids))
        .order(users::username.asc())
        .select((group_members::group_id, users::id, users::username))
        .load(conn)?)
}

/// Which of `ids` name existing users.
pub fn existing_users(conn: &mut DbConn, ids: &[String]) -> StoreResult<Vec<String>> {
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select(users::id)
        .load(conn)?)
}

/// What provisioning sets on an account besides its password and `active`.
#[derive(Debug, Clone)]
pub struct Profile {
    pub username: String,
    pub email: String,
    pub name: String,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

/// Replace an account's profile; a username taken by another account is `Conflict`.
pub fn set_profile(conn: &mut DbConn, id: &str, p: &Profile, now: i64) -> StoreResult<()> {
    let n = diesel::update(users::table.find(id))
        .set((
            users::username.eq(&p.username),
            // A changed address is unverified until a link mailed to it is opened (the right
            // side reads the row as it was).
            users::email_verified.eq(users::email_verified.and(users::email.eq(p.email.clone()))),
            users::email.eq(&p.email),
            users::name.eq(&p.name),
            users::external_id.eq(&p.external_id),
            users::given_name.eq(&p.given_name),
            users::family_name.eq(&p.family_name),
            users::updated_at.eq(now),
        ))
        .execute(conn)
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("user `{}` already exists", p.username))
            }
            other => other,
        })?;
    match n {
        1 => Ok(()),
        _ => Err(StoreError::NotFound),
    }
}

/// Set a group's name and external id; a name taken by another group is `Conflict`.
pub fn set_group(
    conn: &mut DbConn,
    id: &str,
    name: &str,
    external_id: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    let n = diesel::update(groups::table.find(id))
        .set((
            groups::name.eq(name),
            groups::external_id.eq(external_id),
            groups::updated_at.eq(now),
        ))
        .execute(conn)
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("group `{name}` already exists"))
            }
            other => other,
        })?;
    match n {
        1 => Ok(()),
        _ => Err(StoreError::NotFound),
    }
}

/// Mark a group changed (its members changed).
pub fn touch_group(conn: &mut DbConn, id: &str, now: i64) -> StoreResult<()> {
    diesel::update(groups::table.find(id))
        .set(groups::updated_at.eq(now))
        .execute(conn)?;
    Ok(())
}
