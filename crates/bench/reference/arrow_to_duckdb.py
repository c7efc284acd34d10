#!/usr/bin/env python3
"""DuckDB's own floor for an Arrow-fed ingest (issue 11): every table is first read from its
Parquet file into memory (untimed), then timed: `CREATE TABLE ... AS SELECT` over a pyarrow
RecordBatchReader of batches of exactly one row group (122 880 rows), `CHECKPOINT`, close. No
download, no decoding, DuckDB's defaults: what any client that hands DuckDB Arrow pays at least.
Prints `seconds=<wall> cpu_s=<user+system of the timed part>` on its last line.

    python arrow_to_duckdb.py --table encounter=/path/encounter.parquet --out /tmp/floor.duckdb

Needs `pip install duckdb pyarrow`.
"""

import argparse
import os
import time

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 122_880


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--table", action="append", required=True, help="NAME=PARQUET")
    args = p.parse_args()
    tables = []
    for spec in args.table:
        name, path = spec.split("=", 1)
        tables.append((name, pq.read_table(path).combine_chunks()))
    cpu, started = os.times(), time.monotonic()
    con = duckdb.connect(args.out)
    for name, table in tables:
        reader = pa.RecordBatchReader.from_batches(
            table.schema, iter(table.to_batches(max_chunksize=ROW_GROUP_ROWS)))
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM reader')
    con.execute("CHECKPOINT")
    con.close()
    seconds, done = time.monotonic() - started, os.times()
    used = (done.user - cpu.user) + (done.system - cpu.system)
    print(f"seconds={seconds:.3f} cpu_s={used:.3f}")


if __name__ == "__main__":
    main()
