#!/usr/bin/env python3
"""How the local engine's throughput and storage grow with the number of incidents.

    python3 benches/growth/run.py [--events 1000 10000 100000] [--out docs/growth.png]
    python3 benches/growth/run.py --from-logs LOG... [--db FILE]   # plot runs made already

Runs `cargo bench --bench serve_load` once per size (release build, 8 senders; the
fixed-rate phase kept short: 200/s for 5 s), each run reporting the raw-POST ceiling and the
pipeline measured in that run and the SQLite file per delivered incident. Writes a PNG of
pipeline/ceiling ratio, incidents/s and KB per incident against the number of incidents, and,
on the largest run's database (kept with serve_load's `--keep-db`), the `EXPLAIN QUERY PLAN`
and the median latency of each query the audit makes (`alarm-relay audit`'s SQL, as in
src/adapters/sqlite_store.rs), printed as Markdown for docs/performance.md.

On first use it creates benches/growth/.venv and installs matplotlib into it.
"""

import argparse
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # keep benches/ free of __pycache__
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from bench_venv import ensure_venv  # noqa: E402  (benches/bench_venv.py)

REPO = HERE.parent.parent
VENV = HERE / ".venv"
REQUIREMENTS = ["matplotlib>=3.8,<4"]

CEILING = re.compile(r"ceiling .*: (\d+)/s in")
PIPELINE = re.compile(r"pipeline .*: (\d+)/s in")
STORE = re.compile(r"store after (\d+) delivered incidents: ([\d.]+) KB per incident")

# (what the audit asks, the SQL it runs); parameters are taken from the database itself.
AUDIT_QUERIES = [
    ("one incident's record", "SELECT projection FROM incidents WHERE incident_id = :id"),
    ("one incident's audit log",
     "SELECT seq, type, at, data FROM incident_events WHERE incident_id = :id ORDER BY seq"),
    ("the latest DELIVERED (audit --status)",
     "SELECT incident_id, projection FROM incidents WHERE status = :status AND updated_at >= '' "
     "ORDER BY updated_at DESC, incident_id DESC LIMIT 20"),
    ("an alarm's incidents (audit --alarm)",
     "SELECT incident_id, projection FROM incidents WHERE alarm_name = :alarm "
     "AND alarm_name <> '' ORDER BY created_at DESC, incident_id DESC LIMIT 20"),
    ("the outbox (sweeper)",
     "SELECT incident_id, projection FROM incidents INDEXED BY incidents_outbox "
     "WHERE status = 'RECEIVED' AND created_at < :now "
     "ORDER BY created_at ASC, incident_id ASC LIMIT 1000"),
    ("one execution", "SELECT execution, history FROM executions WHERE execution_arn = :arn"),
]




def parse(text):
    """The figures of one serve_load report."""
    ceiling, pipeline, store = CEILING.search(text), PIPELINE.search(text), STORE.search(text)
    if not (ceiling and pipeline and store):
        sys.exit("growth: a serve_load report lacks its ceiling, pipeline or store line")
    return {
        "incidents": int(store.group(1)),
        "ceiling": int(ceiling.group(1)),
        "pipeline": int(pipeline.group(1)),
        "kb": float(store.group(2)),
    }


def run(events, keep_db):
    command = ["cargo", "bench", "--bench", "serve_load", "--", "--events", str(events),
               "--senders", "8", "--rate", "200", "--seconds", "5"]
    if keep_db:
        command += ["--keep-db", str(keep_db)]
    print("growth: " + " ".join(command), file=sys.stderr)
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"growth: serve_load failed:\n{done.stderr[-2000:]}")
    print(done.stdout, file=sys.stderr)
    return parse(done.stdout)


def plot(rows, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [row["incidents"] for row in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(x, [row["pipeline"] for row in rows], "o-", label="pipeline (incidents/s)")
    left.set_xscale("log")
    left.set_xlabel("incidents in the run")
    left.set_ylabel("incidents/s, end to end")
    left.set_ylim(bottom=0)
    ratio = left.twinx()
    ratio.plot(x, [row["pipeline"] / row["ceiling"] for row in rows], "s--", color="tab:red",
               label="pipeline / ceiling")
    ratio.set_ylabel("pipeline / raw-POST ceiling (same run)")
    ratio.set_ylim(bottom=0)
    left.set_title("Throughput")
    handles = left.get_legend_handles_labels()[0] + ratio.get_legend_handles_labels()[0]
    left.legend(handles, [h.get_label() for h in handles], loc="lower left")
    right.plot(x, [row["kb"] for row in rows], "o-", color="tab:green",
               label="database file / delivered incident")
    right.axhline(8, color="grey", linestyle=":", label="goal: 8 KB")
    right.set_xscale("log")
    right.set_xlabel("incidents in the run")
    right.set_ylabel("KB per incident (after a WAL checkpoint)")
    right.set_ylim(bottom=0)
    right.set_title("Storage")
    right.legend(loc="lower left")
    figure.suptitle("serve_load, 8 keep-alive senders, 2 cores")
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    print(f"growth: wrote {out}", file=sys.stderr)


def audit_plans(db):
    """EXPLAIN QUERY PLAN and median latency of each audit query, as Markdown."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    count = connection.execute("SELECT count(*) FROM incidents").fetchone()[0]
    some = connection.execute(
        "SELECT incident_id, alarm_name FROM incidents ORDER BY created_at LIMIT 1 "
        "OFFSET (SELECT count(*) / 2 FROM incidents)").fetchone()
    arn = connection.execute(
        "SELECT execution_arn FROM executions LIMIT 1 OFFSET "
        "(SELECT count(*) / 2 FROM executions)").fetchone()[0]
    values = {"id": some[0], "alarm": some[1], "status": "DELIVERED",
              "now": "9999-12-31T00:00:00.000Z", "arn": arn}
    lines = [f"{count:,} incidents in `{db}`:", "",
             "| query | plan | rows | median |", "|---|---|---|---|"]
    for what, sql in AUDIT_QUERIES:
        plan = "; ".join(row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + sql, values))
        timings, rows = [], 0
        for _ in range(50):
            started = time.perf_counter()
            rows = len(connection.execute(sql, values).fetchall())
            timings.append(time.perf_counter() - started)
        lines.append(f"| {what} | `{plan}` | {rows} | {statistics.median(timings) * 1e3:.3f} ms |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--from-logs", type=Path, nargs="+",
                        help="serve_load reports to plot instead of running it")
    parser.add_argument("--db", type=Path, help="the database to explain (with --from-logs)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "growth.png")
    args = parser.parse_args()
    ensure_venv(VENV, REQUIREMENTS, Path(__file__), "growth")
    if args.from_logs:
        rows = [parse(path.read_text()) for path in args.from_logs]
        db = args.db
    else:
        db = REPO / "target" / "growth.db"
        largest = max(args.events)
        rows = [run(n, db if n == largest else None) for n in sorted(args.events)]
    rows.sort(key=lambda row: row["incidents"])
    print("| incidents | ceiling | pipeline | ratio | KB per incident |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['incidents']:,} | {row['ceiling']:,}/s | {row['pipeline']:,}/s | "
              f"{row['pipeline'] / row['ceiling']:.3f} | {row['kb']} |")
    plot(rows, args.out)
    if db:
        print()
        print(audit_plans(db))


if __name__ == "__main__":
    main()
