"""Independent SCIM 2.0 client checks for vigil's SCIM server (RFC 7643/7644).

The requests are built and the answers validated by third-party libraries that
know nothing of vigil: scim2-client (typed SCIM client, on httpx2) and
scim2-tester (RFC compliance checker), both pinned in requirements.txt.

Usage (the interpreter comes from ``bash tests/scim/venv.sh``, which prints it):

    python check.py tester      BASE_URL TOKEN
    python check.py scenario    BASE_URL TOKEN
    python check.py deprovision BASE_URL TOKEN USER_ID [--delete]

BASE_URL is ``{issuer}/scim/v2`` and TOKEN a bearer token obtained with the
client_credentials grant and scope ``scim``. vigil's Rust integration test
starts a server on a fresh database, gets such a token, runs these modes as
subprocesses and asserts on their exit status (0 passed, 1 failed, 2 usage).
``scenario`` ends with ``RESULT {"users": {userName: id}, "groups": {"Sales": id}}``
so that the Rust side can check the provisioned accounts in vigil itself.

``tester`` fails on any ERROR or CRITICAL check, except one known false positive
of scim2-tester 0.5.2, printed as WAIVED: a PATCH result differing from what was
sent only in readOnly sub-attributes the server fills in (Group members.display).
"""

import json
import sys

import httpx2
from scim2_client import SCIMClientException
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import (BaseModel, Context, Email, Group, GroupMember, Name,
                          PatchOp, PatchOperation, SCIMException, SearchRequest,
                          User)
from scim2_tester import Status, check_server

USAGE = "usage: check.py {tester|scenario} BASE_URL TOKEN\n       check.py deprovision BASE_URL TOKEN USER_ID [--delete]"
SCIM_JSON = "application/scim+json"
LAST = {}  # the last HTTP exchange, shown when a step fails


class Failed(Exception):
    pass


def expect(cond, message):
    if not cond:
        raise Failed(message)


def _on_request(request):
    if request.content:  # RFC 7644 §3.1: bodies are application/scim+json
        request.headers["Content-Type"] = SCIM_JSON


def _on_response(response):
    response.read()
    LAST["response"] = response


def connect(base_url, token):
    http = httpx2.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}", "Accept": SCIM_JSON},
        event_hooks={"request": [_on_request], "response": [_on_response]},
        timeout=30,
    )
    return SyncSCIMClient(http)


def exchange(response):
    """Describe a raw HTTP exchange for a failure report."""
    if not hasattr(response, "request"):
        return repr(response)
    req = response.request
    body = req.content.decode(errors="replace") if req.content else ""
    return (f"  request:  {req.method} {req.url}\n"
            + (f"            {body[:2000]}\n" if body else "")
            + f"  response: {response.status_code} {response.headers.get('content-type')}\n"
            f"            {response.text[:4000]}")


def _jsonable(obj):
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", exclude_none=True)
    if isinstance(obj, BaseException):
        return f"{type(obj).__name__}: {obj}"
    return str(obj)


def show(data):
    if hasattr(data, "status_code") and hasattr(data, "request"):
        return "\n" + exchange(data)
    try:
        return json.dumps(data, default=_jsonable)[:4000]
    except (TypeError, ValueError):
        return repr(data)[:4000]


# ---------------------------------------------------------------- tester mode

def _writable(value):
    """A value with its readOnly (sub-)attributes dropped, as a client may send it."""
    if isinstance(value, list):
        return [_writable(v) for v in value]
    if isinstance(value, BaseModel):
        return value.model_dump(scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    return value


def read_only_difference(r):
    """Tell a PATCH result that differs from what was sent only in readOnly sub-attributes.

    scim2-tester 0.5.2 compares the whole value, so a server filling in a readOnly
    sub-attribute it declares in /Schemas (Group members.display) fails the check,
    although RFC 7643 §7 lets the service provider set readOnly values.
    """
    data = r.data if isinstance(r.data, dict) else {}
    actual = data.get("modify_actual", data.get("actual"))
    return (r.status == Status.ERROR and r.title in ("check_add_attribute", "check_replace_attribute")
            and "expected" in data and actual is not None
            and _writable(data["expected"]) == _writable(actual))


def run_tester(base_url, token):
    scim = connect(base_url, token)
    discovered = run_step("discover", scim.discover)
    if not discovered:
        print("(continuing: scim2-tester runs the discovery checks itself)")
        scim = connect(base_url, token)
    results = check_server(scim, raise_exceptions=False)
    counts = {}
    waived = [r for r in results if read_only_difference(r)]
    for r in results:
        status = "WAIVED" if any(r is w for w in waived) else r.status.name
        counts[status] = counts.get(status, 0) + 1
        print(f"{status:10} {r.resource_type or '-':6} {r.title}: {(r.reason or '').partition(chr(10))[0]}")
    bad = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)
           and not any(r is w for w in waived)]
    notes = [r for r in results if r.status == Status.DEVIATION]
    for title, group in (("FAILED CHECKS", bad), ("DEVIATIONS (SHOULD-level)", notes),
                         ("WAIVED: differ only in readOnly sub-attributes", waived)):
        if group:
            print(f"\n==== {title} ====")
        for r in group:
            print(f"--- {r.status.name} [{r.resource_type or '-'}] {r.title}")
            what = " ".join((r.description or "").split("**Status:**")[0].split())
            print(f"  what:   {what[:400]}")
            print(f"  reason: {r.reason}")
            if r.data is not None:
                print(f"  data:   {show(r.data)}")
    print("\nsummary: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return 1 if bad or not discovered else 0


# -------------------------------------------------------------- scenario mode

def search(scim, model, flt, **params):
    return scim.query(model, query_parameters=SearchRequest(filter=flt, **params))


def names(listing):
    return sorted(u.user_name for u in listing.resources or [])


def scim_error(call):
    """Run a call expected to fail; return the SCIM error it raised."""
    try:
        result = call()
    except SCIMException as exc:
        return exc
    raise Failed(f"expected a SCIM error, got success: {show(result)}")


def create_users(scim, ids):
    people = [
        ("alice", "hr-1001", "Alice Liddell", ("Alice", "Liddell"), "correct horse battery staple 1"),
        ("bob", "hr-1002", "Bob Builder", ("Bob", "Builder"), "bob's long passphrase 22"),
        ("carol", "hr-1003", "Carol", None, None),
        ("dave", "hr-1004", "Dave", None, None),
    ] + [(f"load-{n:02}", f"hr-load-{n:02}", None, None, None) for n in range(1, 26)]
    for user_name, external_id, display, name, password in people:
        user = User(
            user_name=user_name, external_id=external_id, display_name=display,
            name=Name(given_name=name[0], family_name=name[1]) if name else None,
            emails=[Email(value=f"{user_name}@example.com", primary=True)],
            password=password, active=True)
        created = scim.create(user)
        expect(created.id, f"created {user_name} has no id")
        expect(created.user_name == user_name, f"userName {created.user_name!r} != {user_name!r}")
        expect(created.external_id == external_id, f"{user_name}: externalId {created.external_id!r}")
        expect(getattr(created, "password", None) is None, "password returned (writeOnly, RFC 7643 §4.1.1)")
        meta = created.meta
        expect(meta and meta.resource_type == "User" and meta.created and meta.location
               and str(meta.location).endswith(created.id), f"{user_name}: bad meta {show(meta)}")
        ids[user_name] = created.id
    alice = scim.query(User, ids["alice"])
    expect(alice.name.given_name == "Alice" and alice.name.family_name == "Liddell", f"alice.name {alice.name}")
    expect([e.value for e in alice.emails] == ["alice@example.com"], f"alice.emails {alice.emails}")
    expect(alice.active is True and alice.display_name == "Alice Liddell", f"alice {show(alice)}")


def duplicate(scim, ids):
    exc = scim_error(lambda: scim.create(User(user_name="alice", emails=[Email(value="alice2@example.com")])))
    expect(int(exc.status) == 409 and exc.scim_type == "uniqueness",
           f"duplicate userName: status {exc.status}, scimType {exc.scim_type!r} (want 409 uniqueness, RFC 7644 §3.3)")


def filters(scim, ids):
    cases = [
        ('userName eq "alice"', ["alice"]),
        ('USERNAME Eq "ALICE"', ["alice"]),
        ('userName co "aro"', ["carol"]),
        ('externalId eq "hr-1002"', ["bob"]),
        ('emails.value eq "bob@example.com"', ["bob"]),
        ('displayName pr and userName eq "alice"', ["alice"]),
        ('userName eq "alice" or userName eq "bob"', ["alice", "bob"]),
        ('userName sw "load-" and externalId eq "hr-load-03"', ["load-03"]),
        ('name.familyName eq "Liddell"', ["alice"]),
    ]
    for flt, want in cases:
        got = search(scim, User, flt)
        expect(names(got) == want and got.total_results == len(want),
               f"filter {flt!r}: got {names(got)} (totalResults {got.total_results}), want {want}")
    got = search(scim, User, 'userName sw "load-"', count=200)
    expect(got.total_results == 25 and len(got.resources or []) == 25,
           f'userName sw "load-": totalResults {got.total_results}, {len(got.resources or [])} resources')
    try:
        got = search(scim, User, 'emails[value co "load-1"]')
        want = [f"load-{n}" for n in range(10, 20)]
        expect(names(got) == want and got.total_results == 10, f"value path filter: got {names(got)}")
    except SCIMException as exc:
        if int(exc.status) == 400 and exc.scim_type == "invalidFilter":
            print("warn filters: value path filter emails[value co ...] answered 400 invalidFilter")
        else:
            raise
    # the typed client refuses to send a malformed filter, so send it raw
    resp = scim.request("GET", "/Users", params={"filter": "userName eq"})
    body = resp.json() if resp.text else {}
    expect(resp.status_code == 400 and body.get("scimType") == "invalidFilter"
           and str(body.get("status")) == "400", "malformed filter: want 400 invalidFilter (RFC 7644 §3.4.2.2)\n" + exchange(resp))


def paging(scim, ids):
    flt = 'userName sw "load-"'
    page = search(scim, User, flt, start_index=1, count=10)
    expect((len(page.resources or []), page.total_results, page.start_index, page.items_per_page) == (10, 25, 1, 10),
           f"page 1/10: {len(page.resources or [])} resources, totalResults {page.total_results}, "
           f"startIndex {page.start_index}, itemsPerPage {page.items_per_page}")
    page = search(scim, User, flt, start_index=21, count=10)
    expect(len(page.resources or []) == 5 and page.total_results == 25 and page.start_index == 21,
           f"page 21/10: {len(page.resources or [])} resources, startIndex {page.start_index}, want 5 at 21")
    seen, start = [], 1
    while start <= 25:
        page = search(scim, User, flt, start_index=start, count=7)
        got = page.resources or []
        expect(got and page.total_results == 25, f"page {start}/7: {len(got)} resources of {page.total_results}")
        seen += [u.id for u in got]
        start += len(got)
    expect(len(seen) == 25 and len(set(seen)) == 25, f"walking pages of 7: {len(seen)} ids, {len(set(seen))} distinct")
    expect(set(seen) == {ids[f"load-{n:02}"] for n in range(1, 26)}, "walking pages of 7: ids differ from created ones")
    page = search(scim, User, flt, count=0)
    expect(page.total_results == 25 and not page.resources,
           f"count=0: totalResults {page.total_results}, {len(page.resources or [])} resources (want 25, none)")


def patch(scim, model, id, *operations):
    return scim.modify(model, id, PatchOp[model](operations=[PatchOperation(op=o, path=p, value=v) for o, p, v in operations]))


def groups(scim, ids, gids):
    alice, bob = ids["alice"], ids["bob"]
    created = scim.create(Group(display_name="Sales", external_id="grp-sales", members=[GroupMember(value=alice, type="User")]))
    gid = gids["Sales"] = created.id
    expect(gid and created.display_name == "Sales" and created.external_id == "grp-sales", f"created group {show(created)}")
    group = scim.query(Group, gid)
    members = group.members or []
    expect([m.value for m in members] == [alice] and members[0].display, f"Sales members: {show(members)} (want alice with display)")
    patch(scim, Group, gid, ("add", "members", [GroupMember(value=bob)]))
    patch(scim, Group, gid, ("remove", f'members[value eq "{alice}"]', None))
    group = scim.query(Group, gid)
    expect([m.value for m in group.members or []] == [bob], f"Sales members after add bob/remove alice: {show(group.members)}")
    for name in ("Sales EMEA", "Sales"):
        patch(scim, Group, gid, ("replace", "displayName", name))
        got = scim.query(Group, gid).display_name
        expect(got == name, f"group displayName after PATCH replace: {got!r}, want {name!r}")
    found = search(scim, Group, 'displayName eq "Sales"')
    expect(found.total_results == 1 and [g.id for g in found.resources or []] == [gid], f"groups displayName eq Sales: {show(found)}")
    user = scim.query(User, bob)
    if user.groups is None:
        print("warn groups: User.groups (readOnly) not returned for bob")
    else:
        expect([g.value for g in user.groups] == [gid], f"bob.groups {show(user.groups)}, want [Sales]")


def updates(scim, ids):
    carol = scim.query(User, ids["carol"])
    carol.display_name = "Carol Ann"
    replaced = scim.replace(carol)
    expect(replaced.display_name == "Carol Ann", f"PUT answer displayName {replaced.display_name!r}")
    carol = scim.query(User, ids["carol"])
    expect(carol.display_name == "Carol Ann" and carol.user_name == "carol", f"carol after PUT {show(carol)}")
    patch(scim, User, ids["dave"], ("replace", "active", False))
    dave = scim.query(User, ids["dave"])
    expect(dave.active is False, f"dave after PATCH active=false: active {dave.active!r}")


def run_scenario(base_url, token):
    scim = connect(base_url, token)
    ids, gids = {}, {}
    steps = [("discover", scim.discover),  # /ResourceTypes, /Schemas, /ServiceProviderConfig
             ("create users", lambda: create_users(scim, ids)),
             ("duplicate userName", lambda: duplicate(scim, ids)),
             ("filters", lambda: filters(scim, ids)),
             ("paging", lambda: paging(scim, ids)),
             ("groups", lambda: groups(scim, ids, gids)),
             ("put and patch users", lambda: updates(scim, ids))]
    for name, step in steps:
        if not run_step(name, step):
            return 1
    print("RESULT " + json.dumps({"users": ids, "groups": gids}))
    return 0


def run_step(name, step):
    """Run one step, print 'ok NAME' or a failure report; tell whether it passed."""
    LAST.clear()
    try:
        step()
    except Failed as exc:
        print(f"FAIL {name}: {exc}")
        if "response" in LAST:
            print("last exchange:\n" + exchange(LAST["response"]))
        return False
    except (SCIMException, SCIMClientException) as exc:
        detail = f" ({exc.__cause__})" if exc.__cause__ else ""
        notes = "".join(f"\n  {n}" for n in getattr(exc, "__notes__", []))
        print(f"FAIL {name}: {type(exc).__name__}: {exc}{detail}{notes}")
        source = getattr(exc, "source", None) or LAST.get("response")
        if source is not None:
            print("exchange:\n" + exchange(source))
        return False
    print(f"ok {name}")
    return True


def run_deprovision(base_url, token, user_id, delete):
    scim = connect(base_url, token)

    def step():
        scim.discover()
        if delete:
            scim.delete(User, user_id)
            exc = scim_error(lambda: scim.query(User, user_id))
            expect(int(exc.status) == 404, f"GET after DELETE: status {exc.status}, want 404 (RFC 7644 §3.6)")
        else:
            patch(scim, User, user_id, ("replace", "active", False))
            user = scim.query(User, user_id)
            expect(user.active is False, f"GET after PATCH active=false: active {user.active!r}")

    return 0 if run_step("deprovision", step) else 1


def main(argv):
    if len(argv) < 3:
        print(USAGE, file=sys.stderr)
        return 2
    mode, base_url, token, rest = argv[0], argv[1], argv[2], argv[3:]
    if mode == "tester" and not rest:
        return run_tester(base_url, token)
    if mode == "scenario" and not rest:
        return run_scenario(base_url, token)
    if mode == "deprovision" and rest and set(rest[1:]) <= {"--delete"}:
        return run_deprovision(base_url, token, rest[0], "--delete" in rest[1:])
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
