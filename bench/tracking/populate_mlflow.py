"""Bulk-load runs straight into a real MLflow server's SQLite or PostgreSQL database.

MLflow creates about 3 runs/s through its REST API, so 100k runs would take
hours; `cargo xtask bench tracking` therefore creates the first few runs
through the API (to time that) and loads the rest here with plain SQL into
MLflow's own schema (runs, params, tags, metrics, latest_metrics), exactly as
its SqlAlchemyStore would have written them. The server keeps running; it is
idle while this writes.

The data is the same as what the Rust side sends to Atelier through the API:
run i has metrics m0..m4 in [0, 1), params p0..p4 in '0'..'9', tag grp=g<i%7>,
run name run-<i>, start_time = base + i, all from splitmix64 (see
xtask/src/bench_tracking.rs, `RunData`).

    python populate_mlflow.py --db /tmp/x/mlflow.db --experiment-id 1 --from 50 --to 1000 --base-time 1700000000000

With `--pg-url postgresql://user@host:port/db` instead of `--db` it writes the same rows into MLflow's
schema on PostgreSQL (psycopg2, multi-row INSERTs).
"""

import argparse
import sqlite3
import time

MASK = (1 << 64) - 1
N_METRICS = 5
N_PARAMS = 5


def splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def metric(i: int, k: int) -> float:
    return (splitmix64(i * 16 + k) >> 11) / float(1 << 53)


def param(i: int, k: int) -> str:
    return str(splitmix64(i * 16 + 8 + k) % 10)


def run_uuid(i: int) -> str:
    return f"{splitmix64(i * 16 + 14):016x}{splitmix64(i * 16 + 15):016x}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", help="MLflow's SQLite file")
    where.add_argument("--pg-url", help="MLflow's PostgreSQL database (postgresql://...)")
    ap.add_argument("--experiment-id", type=int, required=True)
    ap.add_argument("--from", dest="start", type=int, required=True)
    ap.add_argument("--to", dest="end", type=int, required=True)
    ap.add_argument("--base-time", type=int, required=True)
    a = ap.parse_args()

    t0 = time.perf_counter()
    if a.pg_url:
        import psycopg2
        from psycopg2.extras import execute_values

        # SQLAlchemy's "postgresql+psycopg2://" is libpq's "postgresql://"
        con = psycopg2.connect(a.pg_url.replace("+psycopg2://", "://", 1))

        def insert_many(cur, sql, rows):
            # "... VALUES (?,?,?)" -> one multi-row "VALUES %s" per 1000 rows
            execute_values(cur, sql[: sql.index(" VALUES")] + " VALUES %s", rows, page_size=1000)
    else:
        con = sqlite3.connect(a.db, timeout=60)

        def insert_many(cur, sql, rows):
            cur.executemany(sql, rows)
    chunk = 10_000
    for lo in range(a.start, a.end, chunk):
        hi = min(lo + chunk, a.end)
        runs, params, tags, metrics, latest = [], [], [], [], []
        for i in range(lo, hi):
            rid = run_uuid(i)
            ts = a.base_time + i
            runs.append((rid, f"run-{i}", "UNKNOWN", "", "", "bench", "RUNNING", ts, None, "",
                         "active", f"mlflow-artifacts:/{a.experiment_id}/{rid}/artifacts",
                         a.experiment_id, None))
            for k in range(N_PARAMS):
                params.append((f"p{k}", param(i, k), rid))
            tags.append(("mlflow.runName", f"run-{i}", rid))
            tags.append(("grp", f"g{i % 7}", rid))
            for k in range(N_METRICS):
                v = metric(i, k)
                # is_nan: a BOOLEAN column on PostgreSQL (sqlite3 binds False as 0)
                metrics.append((f"m{k}", v, ts, rid, 0, False))
                latest.append((f"m{k}", v, ts, 0, False, rid))
        with con:
            cur = con.cursor()
            insert_many(
                cur,
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name,"
                " user_id, status, start_time, end_time, source_version, lifecycle_stage,"
                " artifact_uri, experiment_id, deleted_time) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                runs)
            insert_many(cur, 'INSERT INTO params ("key", value, run_uuid) VALUES (?,?,?)', params)
            insert_many(cur, 'INSERT INTO tags ("key", value, run_uuid) VALUES (?,?,?)', tags)
            insert_many(
                cur,
                'INSERT INTO metrics ("key", value, timestamp, run_uuid, step, is_nan)'
                " VALUES (?,?,?,?,?,?)", metrics)
            insert_many(
                cur,
                'INSERT INTO latest_metrics ("key", value, timestamp, step, is_nan, run_uuid)'
                " VALUES (?,?,?,?,?,?)", latest)
    con.close()
    print(f"loaded runs {a.start}..{a.end} in {time.perf_counter() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
