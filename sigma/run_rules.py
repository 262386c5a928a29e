"""Converts Sigma rules with pySigma's sqlite backend through the shipped pipeline and runs them
on psexec-sensor `--log-dir` output (JSON logs).

    python sigma/run_rules.py RULE.yml... -- LOGDIR...

Prints one JSON object: {"queries": {rule: sql}, "matches": {rule: {logdir: count}}}. Each log
directory becomes one SQLite database with a table per log, columns as Zircolite builds them
(text compared without case, JSON booleans as 'true'/'false', lists as JSON text).
"""

import json
import sqlite3
import sys
from pathlib import Path

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from psexec_sensor_pipeline import psexec_sensor_zeek_pipeline  # noqa: E402


def load_logdir(d: Path) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    for log in sorted(d.glob("*.log")):
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        if not rows:
            continue
        table = rows[0]["_path"]
        cols = sorted({k for r in rows for k in r})
        quoted = ", ".join(f'"{c}" TEXT COLLATE NOCASE' for c in cols)
        db.execute(f'CREATE TABLE "{table}" ({quoted})')
        marks = ", ".join("?" for _ in cols)
        names = ", ".join(f'"{c}"' for c in cols)

        def cell(v):
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, (list, dict)):
                return json.dumps(v)
            return v

        db.executemany(
            f'INSERT INTO "{table}" ({names}) VALUES ({marks})',
            [[cell(r.get(c)) for c in cols] for r in rows],
        )
    return db


def main(argv):
    split = argv.index("--")
    rules, dirs = argv[:split], argv[split + 1 :]
    backend = sqliteBackend(psexec_sensor_zeek_pipeline())
    queries = {}
    for r in rules:
        collection = SigmaCollection.from_yaml(Path(r).read_text())
        q = backend.convert(collection)
        assert len(q) == 1, f"{r}: expected one query, got {q}"
        queries[r] = q[0]
    matches = {r: {} for r in rules}
    for d in dirs:
        db = load_logdir(Path(d))
        tables = {t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for r, q in queries.items():
            table = q.split(" FROM ", 1)[1].split(" ", 1)[0].strip('"')
            n = len(db.execute(q).fetchall()) if table in tables else 0
            matches[r][d] = n
    print(json.dumps({"queries": queries, "matches": matches}))


if __name__ == "__main__":
    main(sys.argv[1:])
