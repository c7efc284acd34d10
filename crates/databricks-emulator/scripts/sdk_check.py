"""Checks the emulator with the official databricks-sdk (PyPI), per databricks-api.md §4.1.

Not part of `cargo test`. Needs `pip install databricks-sdk pyarrow requests`. Run:

    cargo build -p databricks-emulator
    python crates/databricks-emulator/scripts/sdk_check.py \
        --binary $CARGO_TARGET_DIR/debug/databricks-emulator --data fixtures/databricks

It starts the binary on port 0 (chunk size 64 rows, 300 ms pending delay), talks to it with
OAuth M2M through the discovery documents, and prints `N passed, N failed`.
"""

import argparse
import io
import os
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.ipc
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.sql import Disposition, Format, StatementState

results = {"passed": 0, "failed": 0}


def check(name, fn):
    try:
        fn()
        results["passed"] += 1
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 - report every failure and go on
        results["failed"] += 1
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    for key in list(os.environ):
        if key.startswith("DATABRICKS_"):
            del os.environ[key]
    os.environ["DATABRICKS_CONFIG_FILE"] = "/nonexistent/databrickscfg"
    proc = subprocess.Popen(
        [args.binary, "--data", args.data, "--chunk-rows", "64", "--pending-delay-ms", "300"],
        stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://"), line
        url = line.removeprefix("listening on ")
        run(url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"{results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)


def run(url):
    w = WorkspaceClient(host=url, client_id="emulator-client-id",
                        client_secret="emulator-client-secret")
    full_name = "catalog_name.example_schema_name.person"

    def tables():
        listed = list(w.tables.list(catalog_name="catalog_name", schema_name="example_schema_name"))
        assert sorted(t.name for t in listed) == ["address", "person"], listed
        t = w.tables.get(full_name)
        assert t.full_name == full_name
        assert t.table_constraints[0].primary_key_constraint.child_columns == ["person_key"]
        types = {c.name: (c.type_name.value if c.type_name else None, c.type_text) for c in t.columns}
        assert types["weight_kg"] == ("DECIMAL", "decimal(6,2)"), types
        assert types["last_seen_local"] == ("TIMESTAMP_NTZ", "timestamp_ntz"), types
        assert types["sex"] == ("CHAR", "char(1)"), types

    def schema():
        # What `cr8tor validate` asks first.
        s = w.schemas.get("catalog_name.example_schema_name")
        assert s.full_name == "catalog_name.example_schema_name", s
        assert (s.catalog_name, s.name) == ("catalog_name", "example_schema_name"), s
        assert s.catalog_type.value == "MANAGED_CATALOG", s
        assert s.created_at > 0 and s.schema_id and s.metastore_id and s.browse_only is False, s

    def schema_not_found():
        from databricks.sdk.errors import NotFound
        for name, code in [("catalog_name.nope", "SCHEMA_DOES_NOT_EXIST"),
                           ("nope.example_schema_name", "CATALOG_DOES_NOT_EXIST")]:
            try:
                w.schemas.get(name)
            except NotFound as e:
                assert e.error_code == code, (name, e.error_code)
            else:
                raise AssertionError(f"expected NotFound for {name}")

    def tables_paged():
        # The SDK follows next_page_token; one table per page, so two pages.
        def list_calls():
            journal = requests.get(f"{url}/emulator/journal", timeout=10).json()
            return sum(1 for e in journal if e["operation"] == "list_tables")
        before = list_calls()
        listed = list(w.tables.list(catalog_name="catalog_name",
                                    schema_name="example_schema_name", max_results=1))
        assert sorted(t.name for t in listed) == ["address", "person"], listed
        assert list_calls() - before == 2, list_calls() - before
        person = next(t for t in listed if t.name == "person")
        columns = {c.name: c for c in person.columns}
        assert columns["sex"].comment == "F, M or unknown", columns["sex"]
        assert (columns["sex"].type_name.value, columns["sex"].type_text) == ("CHAR", "char(1)")
        bare = list(w.tables.list(catalog_name="catalog_name", schema_name="example_schema_name",
                                  max_results=0, omit_columns=True))
        assert len(bare) == 2 and all(not t.columns for t in bare), bare

    def not_found():
        from databricks.sdk.errors import NotFound
        try:
            w.tables.get("catalog_name.example_schema_name.nope")
        except NotFound as e:
            assert "does not exist" in str(e)
        else:
            raise AssertionError("expected NotFound")

    def statement():
        r = w.statement_execution.execute_statement(
            statement=f"SELECT * FROM {full_name}", warehouse_id="8f3c2a1b9d4e7f60",
            disposition=Disposition.EXTERNAL_LINKS, format=Format.ARROW_STREAM, wait_timeout="0s")
        assert r.status.state == StatementState.PENDING, r.status
        while r.status.state in (StatementState.PENDING, StatementState.RUNNING):
            time.sleep(0.1)
            r = w.statement_execution.get_statement(r.statement_id)
        assert r.status.state == StatementState.SUCCEEDED, r.status
        links = list(r.result.external_links)
        nxt = links[-1].next_chunk_index
        while nxt is not None:
            d = w.statement_execution.get_statement_result_chunk_n(r.statement_id, nxt)
            links.extend(d.external_links)
            nxt = d.external_links[-1].next_chunk_index
        assert len(links) == r.manifest.total_chunk_count > 1
        tables = []
        for link in links:
            body = requests.get(link.external_link, headers=link.http_headers or {}, timeout=30)
            body.raise_for_status()
            tables.append(pa.ipc.open_stream(io.BytesIO(body.content)).read_all())
        table = pa.concat_tables(tables)
        assert table.num_rows == r.manifest.total_row_count
        assert table.schema.field("registered_at").type == pa.timestamp("us", tz="Etc/UTC")
        assert table.schema.field("weight_kg").type == pa.decimal128(6, 2)

    def retries_429():
        requests.post(f"{url}/emulator/faults", json={
            "operation": "get_table", "fault": {"kind": "too_many_requests", "retry_after_secs": 1}
        }).raise_for_status()
        started = time.monotonic()
        w.tables.get(full_name)
        assert time.monotonic() - started >= 1.0

    def failed_statement():
        r = w.statement_execution.execute_statement(
            statement="SELECT nope FROM catalog_name.example_schema_name.person",
            warehouse_id="w", wait_timeout="5s")
        assert r.status.state == StatementState.FAILED
        assert "UNRESOLVED_COLUMN" in r.status.error.message

    def cancel():
        r = w.statement_execution.execute_statement(
            statement=f"SELECT * FROM {full_name}", warehouse_id="w", wait_timeout="0s")
        w.statement_execution.cancel_execution(r.statement_id)
        assert w.statement_execution.get_statement(r.statement_id).status.state == StatementState.CANCELED

    for name, fn in [("tables", tables), ("schema", schema), ("schema_not_found", schema_not_found),
                     ("tables_paged", tables_paged), ("not_found", not_found), ("statement", statement),
                     ("retries_429", retries_429), ("failed_statement", failed_statement),
                     ("cancel", cancel)]:
        check(name, fn)


if __name__ == "__main__":
    main()
