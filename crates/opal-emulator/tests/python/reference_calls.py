#!/usr/bin/env python3
"""The reference publisher's Opal calls, made with OBiBa's own Python client against the emulator.

The CR8TOR reference Publish Service talks to Opal through obiba-opal 5.3.0. This script makes
the same calls, through the same client services and in the same order (docs/OPAL-WIRE.md §14),
against a running opal-emulator, and checks what the emulator then holds through its test-only
routes:

1. a first publish of two tables: project, user `dsuser_default` carrying the group, DataSHIELD
   permission, two resource references, the resources permission;
2. a second publish with a new client: everything exists, so nothing is created or changed;
3. a wrong administrator password: the client sees Opal's 401;
4. the reference's password generator against Opal's password rule (it fails about 1 in 7).

With an https:// URL it also checks certificate verification: refused without the CA, accepted
with it (--ca-file) and with the client's `no_ssl_verify`.

Usage: reference_calls.py --url URL --admin-password PASSWORD [--ca-file CA.pem]
Exits non-zero on the first failed check.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import string
import sys

import requests
from obiba_opal import (
    DataSHIELDPermService,
    GroupService,
    HTTPError,
    OpalClient,
    ProjectService,
    ResourcesPermService,
    RESTService,
    UserService,
)

ADMIN = "administrator"
DEFAULT_USER = "dsuser_default"
PROJECT = "Pr004"
GROUP = f"{PROJECT}_group"
TABLES = [("pr004_20250601_cohort", "person"), ("pr004_20250601_cohort", "visit")]
DB = {"host": "datashield-postgres.example", "port": "5432", "db": "opal-resource-db"}
READER = ("opal_reader", "r3ad-Only!pw")
OPAL_SPECIALS = "@#$%^&+=!"

passes = 0
failures = 0


def check(condition: bool, what: str) -> None:
    global passes, failures
    print(("ok   " if condition else "FAIL ") + what)
    if condition:
        passes += 1
    else:
        failures += 1


class Emulator:
    """The emulator's test-only routes."""

    def __init__(self, url: str, verify):
        self.url = url
        self.verify = verify

    def state(self) -> dict:
        return requests.get(f"{self.url}/emulator/state", verify=self.verify, timeout=10).json()

    def journal(self) -> list:
        return requests.get(f"{self.url}/emulator/journal", verify=self.verify, timeout=10).json()

    def password_check(self, name: str, password: str) -> dict:
        return requests.post(
            f"{self.url}/emulator/password-check",
            json={"name": name, "password": password},
            verify=self.verify,
            timeout=10,
        ).json()


def opal_password_rule(password: str) -> bool:
    """Opal's rule, as OPAL-WIRE §7 states it (checked here against the emulator's)."""
    return (
        8 <= len(password) <= 64
        and not any(c in " \t\n\x0b\x0c\r" for c in password)
        and any(c.isdigit() and c.isascii() for c in password)
        and any(c in string.ascii_lowercase for c in password)
        and any(c in string.ascii_uppercase for c in password)
        and any(c in OPAL_SPECIALS for c in password)
    )


def reference_style_password(rng=secrets.SystemRandom(), length: int = 20) -> str:
    """What the reference generates: 20 characters from letters, digits and !@#$%^&*()-_=+."""
    alphabet = string.ascii_letters + string.digits + "!@#$%^&*()-_=+"
    return "".join(rng.choice(alphabet) for _ in range(length))


def rule_abiding_password() -> str:
    """A reference-style password drawn until it satisfies Opal's rule."""
    while True:
        candidate = reference_style_password()
        if opal_password_rule(candidate):
            return candidate


def connect(url: str, password: str, verify) -> OpalClient:
    """OpalClient.buildWithAuthentication, with a CA bundle when one is given (the builder signs
    in before a caller could set `session.verify`, so the same steps are taken by hand)."""
    if verify is True or url.startswith("http:"):
        return OpalClient.buildWithAuthentication(server=url, user=ADMIN, password=password)
    if verify is False:
        return OpalClient.buildWithAuthentication(
            server=url, user=ADMIN, password=password, no_ssl_verify=True
        )
    client = OpalClient(url)
    client.session.verify = verify
    client.credentials(ADMIN, password)
    client.init_otp()
    return client


def publish(client: OpalClient) -> str | None:
    """The reference's publish steps 3 to 7; answers the password given to a new dsuser_default."""
    created_password = None
    # Step 3: the project.
    if not ProjectService(client).get_project(PROJECT):
        ProjectService(client).add_project(
            name=PROJECT,
            database=None,
            title=PROJECT,
            description=f"Data Access Request for project {PROJECT}",
            tags=None,
            export_folder=None,
        )
    # Step 4: the group, through dsuser_default.
    try:
        GroupService(client).get_group(GROUP)
    except HTTPError:
        users = UserService(client)
        user = users.get_user(DEFAULT_USER)
        if not user:
            created_password = rule_abiding_password()
            users.add_user(DEFAULT_USER, upassword=created_password, groups=[GROUP])
            user = users.get_user(DEFAULT_USER)
        groups = sorted({*user.get("groups", []), GROUP})
        users.update_user(DEFAULT_USER, groups=groups, disabled=not user.get("enabled", True))
    # Step 5: DataSHIELD use for the group.
    principals = [p["subject"]["principal"] for p in DataSHIELDPermService(client).get_perms("group")]
    if GROUP not in principals:
        DataSHIELDPermService(client).add_perm(subject=GROUP, type="group", permission="use")
    # Step 6: one resource per table.
    listed = (
        RESTService(client).make_request(method="GET").resource(f"/project/{PROJECT}/resources").send()
    )
    existing = [r["name"] for r in listed.from_json()]
    for schema, table in TABLES:
        name = f"tre_postgresql_{schema}_{table}"
        if name in existing:
            continue
        body = {
            "name": name,
            "description": f"Resource for table {table} in schema {schema}",
            "project": PROJECT,
            "provider": "resourcer",
            "factory": "sql",
            "parameters": json.dumps(
                {
                    "host": DB["host"],
                    "port": DB["port"],
                    "db": DB["db"],
                    "table": table,
                    "schema": schema,
                    "driver": "postgresql",
                }
            ),
            "credentials": json.dumps({"username": READER[0], "password": READER[1]}),
        }
        (
            RESTService(client)
            .make_request(method="POST")
            .content_type_json()
            .resource(f"/project/{PROJECT}/resources")
            .content(json.dumps(body))
            .send()
        )
    # Step 7: resources view for the group.
    perms = (
        client.new_request()
        .fail_on_error()
        .accept_json()
        .content_type_json()
        .get()
        .resource(f"/project/{PROJECT}/permissions/resources")
        .send()
        .from_json()
    )
    if GROUP not in [p["subject"]["principal"] for p in perms]:
        ResourcesPermService(client).add_perm(
            project=PROJECT, subject=GROUP, type="group", permission="view"
        )
    return created_password


def writes(entries: list) -> list:
    return [e for e in entries if e["method"] in ("POST", "PUT", "DELETE")]


def first_run(url: str, password: str, emulator: Emulator, verify) -> None:
    print("== first publish")
    before = len(emulator.journal())
    client = connect(url, password, verify)
    created_password = publish(client)
    client.close()
    state = emulator.state()
    calls = emulator.journal()[before:]
    project = next((p for p in state["projects"] if p["name"] == PROJECT), None)
    check(project is not None, "project created")
    check(
        project is not None
        and project["title"] == PROJECT
        and project["description"] == f"Data Access Request for project {PROJECT}",
        "project title and description as the reference sets them",
    )
    user = next((u for u in state["subject_credentials"] if u["name"] == DEFAULT_USER), None)
    check(user is not None and user["groups"] == [GROUP], "dsuser_default created with the group")
    check(user is not None and user["enabled"], "dsuser_default enabled")
    check(created_password is not None, "dsuser_default was created by this run")
    if created_password is not None:
        verdict = emulator.password_check(DEFAULT_USER, created_password)
        check(verdict == {"ok": True, "meets_opal_rule": True}, f"stored password is the one sent: {verdict}")
    group = next((g for g in state["groups"] if g["name"] == GROUP), None)
    check(group == {"name": GROUP, "subject_credentials": [DEFAULT_USER]}, f"group exists through its user: {group}")
    ds = [p for p in state["datashield_permissions"] if p["principal"] == GROUP]
    check(ds == [{"principal": GROUP, "subject_type": "GROUP", "actions": ["DATASHIELD_USE"]}], f"DATASHIELD_USE: {ds}")
    resources = {r["name"]: r for r in state["resources"] if r["project"] == PROJECT}
    for schema, table in TABLES:
        name = f"tre_postgresql_{schema}_{table}"
        r = resources.get(name)
        check(r is not None, f"resource {name} created")
        if r is None:
            continue
        check(r["provider"] == "resourcer" and r["factory"] == "sql", f"{name}: resourcer/sql")
        params = json.loads(r["parameters"])
        check(
            params
            == {"host": DB["host"], "port": "5432", "db": DB["db"], "table": table, "schema": schema, "driver": "postgresql"},
            f"{name}: parameters as sent (the reference's port is a string): {params}",
        )
        check(
            json.loads(r["credentials"]) == {"username": READER[0], "password": READER[1]},
            f"{name}: credentials stored as sent",
        )
    rp = state["resource_permissions"].get(PROJECT, [])
    check(rp == [{"principal": GROUP, "subject_type": "GROUP", "actions": ["RESOURCES_VIEW"]}], f"RESOURCES_VIEW: {rp}")
    ops = [(e["operation"], e["status"]) for e in writes(calls)]
    check(
        ops
        == [
            ("create_project", 201),
            ("create_subject_credential", 200),
            ("update_subject_credential", 200),
            ("add_data_shield_permission", 200),
            ("create_resource", 201),
            ("create_resource", 201),
            ("add_resource_permission", 200),
        ],
        f"writes in the reference's order: {ops}",
    )
    check(all(e["status"] < 500 for e in calls), "no 5xx")


def second_run(url: str, password: str, emulator: Emulator, verify) -> None:
    print("== second publish: everything exists")
    before_state = emulator.state()
    before = len(emulator.journal())
    client = connect(url, password, verify)
    publish(client)
    client.close()
    calls = emulator.journal()[before:]
    check(writes(calls) == [], f"no POST or PUT: {writes(calls)}")
    check(emulator.state() == before_state, "state unchanged")
    # obiba-opal 5.3.0's UriBuilder shares one default dict of query parameters between
    # instances, so after the permission calls of the first run every later URL it builds
    # carries `type`, `permission` and `principal` (OPAL-WIRE §14); Opal ignores parameters a
    # resource does not declare, and so must the emulator.
    leaked = [e["query"] for e in calls if e["operation"] == "get_project"]
    check(leaked != [None] and "permission=" in (leaked[0] or ""), f"the client's leaked query is ignored: {leaked}")
    reads = [e["operation"] for e in calls]
    check(
        reads
        == [
            "sign_in",
            "get_project",
            "get_group",
            "list_data_shield_permissions",
            "list_resources",
            "list_resource_permissions",
        ],
        f"reads: {reads}",
    )


def wrong_password(url: str, password: str, emulator: Emulator, verify) -> None:
    print("== wrong administrator password")
    before = len(emulator.journal())
    try:
        connect(url, "not-the-password", verify)
        check(False, "buildWithAuthentication refused a wrong password")
    except AttributeError as e:
        # Opal answers 401 without WWW-Authenticate (OPAL-WIRE §2); obiba-opal 5.3.0's init_otp
        # then splits a missing header. The reference surfaces this as "Opal module failure".
        check("split" in str(e), f"5.3.0's builder fails on Opal's 401 as it does against Opal: {e!r}")
    except HTTPError as e:
        check(False, f"unexpected HTTPError from the builder: {e.code}")
    sign_ins = [e for e in emulator.journal()[before:] if e["operation"] == "sign_in"]
    check([(e["status"], e["user"]) for e in sign_ins] == [(401, None)], f"the sign-in got 401: {sign_ins}")
    # The client's own error for any call with the wrong password: HTTPError 401 and Opal's body.
    client = OpalClient(url)
    if not (verify is True or url.startswith("http:")):
        client.session.verify = verify
    client.credentials(ADMIN, "not-the-password")
    try:
        ProjectService(client).get_project(PROJECT, fail_safe=False)
        check(False, "a call with the wrong password raised HTTPError")
    except HTTPError as e:
        check(e.code == 401, f"HTTPError {e.code}")
        check(e.error.get("status") == "Unauthorized", f"Opal's error body: {e.error}")
    # Two failures do not ban the administrator (the third would, for 300 s).
    client = connect(url, password, verify)
    check(ProjectService(client).get_project(PROJECT) is not None, "the right password still works")


def password_rule(url: str, password: str, emulator: Emulator, verify) -> None:
    print("== the reference's password generator against Opal's rule")
    client = connect(url, password, verify)
    weak = "abcDEF123*()-_abcDEF"  # letters, digits, and only specials Opal does not count
    try:
        UserService(client).add_user("dsuser_weak", upassword=weak, groups=["g"])
        check(False, "a password without one of @#$%^&+=! is refused")
    except HTTPError as e:
        check(e.code == 400 and e.error.get("status") == "PasswordTooWeak", f"400 PasswordTooWeak: {e.error}")
    samples = 700
    refused = 0
    disagreements = 0
    rng = random.Random(20250601)  # the same sample every run
    for _ in range(samples):
        candidate = reference_style_password(rng)
        verdict = emulator.password_check("nobody", candidate)
        refused += 0 if verdict["meets_opal_rule"] else 1
        disagreements += verdict["meets_opal_rule"] != opal_password_rule(candidate)
    check(disagreements == 0, "this script's statement of the rule agrees with the emulator's")
    share = refused / samples
    check(0.07 < share < 0.23, f"reference-style passwords refused: {refused}/{samples} ({share:.1%}; expected about 1 in 7)")


def tls_checks(url: str, password: str, ca_file: str) -> None:
    print("== TLS certificate verification")
    try:
        OpalClient.buildWithAuthentication(server=url, user=ADMIN, password=password)
        check(False, "a self-signed certificate is refused by default")
    except requests.exceptions.SSLError:
        check(True, "a self-signed certificate is refused by default (SSLError)")
    client = connect(url, password, ca_file)
    check(ProjectService(client).get_project(PROJECT) is not None, "accepted with the CA as verify=")
    client = connect(url, password, False)
    check(ProjectService(client).get_project(PROJECT) is not None, "accepted with no_ssl_verify=True")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--admin-password", required=True)
    parser.add_argument("--ca-file", help="the CA of an https:// emulator")
    args = parser.parse_args()
    verify = args.ca_file if args.url.startswith("https:") else True
    if args.url.startswith("https:") and not args.ca_file:
        parser.error("an https:// URL needs --ca-file")
    emulator = Emulator(args.url, verify)
    first_run(args.url, args.admin_password, emulator, verify)
    second_run(args.url, args.admin_password, emulator, verify)
    wrong_password(args.url, args.admin_password, emulator, verify)
    password_rule(args.url, args.admin_password, emulator, verify)
    if args.url.startswith("https:"):
        tls_checks(args.url, args.admin_password, args.ca_file)
    print(f"reference_calls: {passes} passed, {failures} failed")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
