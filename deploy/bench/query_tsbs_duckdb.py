#!/usr/bin/env python3
"""DuckDB side of bench/src/bin/query_tsbs.rs.

Usage: query_tsbs_duckdb.py SPEC.json

SPEC: {"csv": path, "db": path, "fields": [...], "runs": N,
       "queries": [{"name": ..., "sql": ...}, ...]}
The CSV has columns time_ms, hostname and the fields. It is loaded into a file-backed DuckDB
table cpu(time TIMESTAMP, hostname VARCHAR, <fields> BIGINT) in file order, checkpointed, then
each query runs once as a warm-up and N timed times (execute + fetchall, time.perf_counter).
Prints one JSON object on stdout: version, rows, load_secs and per query times_ms, rows and
checksum (sum of the int/float values of the answer), or error.
"""
import json
import sys
import time


def summarize(rows):
    total = 0.0
    for row in rows:
        for v in row:
            if isinstance(v, bool):
                continue
            if isinstance(v, (int, float)):
                total += v
            elif type(v).__name__ == "Decimal":
                total += float(v)
    return len(rows), total


def main():
    spec = json.load(open(sys.argv[1]))
    try:
        import duckdb
    except ImportError as e:
        print(json.dumps({"error": f"python module duckdb missing ({e}); pip install duckdb"}))
        return
    con = duckdb.connect(spec["db"])
    fields = spec["fields"]
    cols = {"time_ms": "BIGINT", "hostname": "VARCHAR"}
    cols.update({f: "BIGINT" for f in fields})
    t0 = time.perf_counter()
    con.execute(
        "CREATE TABLE cpu AS SELECT epoch_ms(time_ms) AS time, hostname, "
        + ", ".join(fields)
        + " FROM read_csv(?, header = true, columns = "
        + "{" + ", ".join(f"'{k}': '{v}'" for k, v in cols.items()) + "})",
        [spec["csv"]],
    )
    con.execute("CHECKPOINT")
    load_secs = time.perf_counter() - t0
    n = con.execute("SELECT count(*) FROM cpu").fetchone()[0]
    out = {
        "version": duckdb.__version__,
        "rows": n,
        "load_secs": load_secs,
        "queries": [],
    }
    for q in spec["queries"]:
        r = {"name": q["name"]}
        try:
            rows = con.execute(q["sql"]).fetchall()  # warm-up
            r["rows"], r["checksum"] = summarize(rows)
            times = []
            for _ in range(spec["runs"]):
                t = time.perf_counter()
                con.execute(q["sql"]).fetchall()
                times.append((time.perf_counter() - t) * 1000.0)
            r["times_ms"] = times
        except Exception as e:  # report, keep going
            r["error"] = str(e)
        out["queries"].append(r)
    con.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
