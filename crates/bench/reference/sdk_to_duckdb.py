#!/usr/bin/env python3
"""The script a user would write instead of the service (issue 11's reference): Databricks'
Python SDK runs `SELECT *` of each table with EXTERNAL_LINKS + ARROW_STREAM, three chunks
download at once (bounded, in order), and each table streams into DuckDB with
`CREATE TABLE ... AS SELECT` over a pyarrow RecordBatchReader. DuckDB's defaults, no LZ4 (the
SDK never asks for it). Prints `seconds=<wall> peak_rss_kib=<VmHWM> cpu_s=<user+system>` on
its last line.

    python sdk_to_duckdb.py --host http://127.0.0.1:PORT --warehouse ID \
        --table tre.bench.wide --table tre.bench.narrow --out /tmp/ref.duckdb

Needs `pip install databricks-sdk duckdb pyarrow`.
"""

import argparse
import concurrent.futures
import resource
import time
import urllib.request

import duckdb
import pyarrow as pa
import pyarrow.ipc as ipc
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.sql import Disposition, Format, StatementState


def run(w, warehouse, table):
    r = w.statement_execution.execute_statement(
        statement=f"SELECT * FROM {table}", warehouse_id=warehouse, wait_timeout="30s",
        disposition=Disposition.EXTERNAL_LINKS, format=Format.ARROW_STREAM)
    while r.status.state in (StatementState.PENDING, StatementState.RUNNING):
        time.sleep(0.25)
        r = w.statement_execution.get_statement(r.statement_id)
    if r.status.state != StatementState.SUCCEEDED:
        raise SystemExit(f"{table}: {r.status.state} {r.status.error}")
    return r


def batches(w, r, parallel=3):
    first = r.result.external_links[0] if r.result and r.result.external_links else None

    def fetch(i):
        link = first if i == 0 and first else \
            w.statement_execution.get_statement_result_chunk_n(r.statement_id, i).external_links[0]
        request = urllib.request.Request(link.external_link, headers=link.http_headers or {})
        with urllib.request.urlopen(request) as body:
            return ipc.open_stream(body.read()).read_all().to_batches()

    total = r.manifest.total_chunk_count or 0
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        ahead = [pool.submit(fetch, i) for i in range(min(parallel, total))]
        for i in range(total):
            done = ahead.pop(0).result()
            if i + parallel < total:
                ahead.append(pool.submit(fetch, i + parallel))
            yield from done


def main():
    p = argparse.ArgumentParser()
    for name in ("--host", "--warehouse", "--out"):
        p.add_argument(name, required=True)
    p.add_argument("--client-id", default="emulator-client-id")
    p.add_argument("--client-secret", default="emulator-client-secret")
    p.add_argument("--table", action="append", required=True)
    args = p.parse_args()
    started = time.monotonic()
    w = WorkspaceClient(host=args.host, client_id=args.client_id,
                        client_secret=args.client_secret)
    con = duckdb.connect(args.out)
    for table in args.table:
        r = run(w, args.warehouse, table)
        stream = batches(w, r)
        head = next(stream, None)
        if head is None:
            continue
        reader = pa.RecordBatchReader.from_batches(head.schema, _chain(head, stream))
        con.execute(f'CREATE TABLE "{table.split(".")[-1]}" AS SELECT * FROM reader')
    con.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"seconds={time.monotonic() - started:.3f} peak_rss_kib={usage.ru_maxrss} "
          f"cpu_s={usage.ru_utime + usage.ru_stime:.3f}")


def _chain(head, rest):
    yield head
    yield from rest


if __name__ == "__main__":
    main()
