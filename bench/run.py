"""Run every benchmark (`bench/bench_*.py`) with its reference in the same run, print a table, write the report.

    python -m bench.run [--quick] [--only NAME ...]          # make bench / make bench-quick

Prepares a fresh scratch database (`<name of DATABASE_URL>_bench`: dropped, created, migrated), points
DATABASE_URL at it, sets up Django, then calls `run(quick)` of each benchmark module, which returns a list of
`bench.figures.Figure`. Full mode writes docs/performance.md; quick mode (a few seconds per benchmark, the CI
smoke test) writes var/bench/performance-quick.md and never touches docs/. The exit status is 1 when a
benchmark crashed (the harness is broken); a missed target is reported, not a failure.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import secrets
import shlex
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.figures import Figure  # noqa: E402
from bench.stats import markdown_tables, short_of_target, text_table  # noqa: E402

DOCS = ROOT / "docs" / "performance.md"
QUICK_REPORT = ROOT / "var" / "bench" / "performance-quick.md"
PARTIAL_REPORT = ROOT / "var" / "bench" / "performance-partial.md"


def benchmark_names() -> list[str]:
    """`ingest` for bench/bench_ingest.py, ...; in file-name order."""
    return [path.stem.removeprefix("bench_") for path in sorted((ROOT / "bench").glob("bench_*.py"))]


def scratch_url(url: str, suffix: str = "_bench") -> tuple[str, str, str]:
    """(scratch database URL, its name, the URL of the maintenance database `postgres`) for DATABASE_URL.
    Always a new name (`hd_bench` gives `hd_bench_bench`): the database DATABASE_URL names is never dropped."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "postgres"
    scratch = name + suffix
    return (
        urlunsplit(parts._replace(path="/" + scratch)),
        scratch,
        urlunsplit(parts._replace(path="/postgres")),
    )


def recreate_database(maintenance_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown",
    )
    kib = next(
        (int(line.split()[1]) for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal")),
        0,
    )
    info = {
        "cores (nproc)": str(os.cpu_count()),
        "CPU": cpu,
        "memory": f"{kib / 1024**2:.1f} GiB" if kib else "unknown",
        "Python": platform.python_version(),
    }
    try:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            info["PostgreSQL"] = str(cursor.fetchone()[0])
        import django

        info["Django"] = django.get_version()
    except Exception as error:  # the report still says what it can
        info["PostgreSQL"] = f"unknown ({error})"
    try:
        import redis

        server: dict[str, Any] = redis.Redis.from_url(os.environ["REDIS_URL"]).info("server")  # type: ignore[assignment]
        info["Redis"] = str(server["redis_version"])
    except Exception as error:
        info["Redis"] = f"unknown ({error})"
    return info


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


@dataclass
class Outcome:
    name: str
    figures: list[Figure] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""
    doc: str = ""  # the module's docstring: how it measures


def run_benchmark(name: str, quick: bool) -> Outcome:
    outcome = Outcome(name)
    started = time.monotonic()
    try:
        module = importlib.import_module(f"bench.bench_{name}")
        outcome.doc = (module.__doc__ or "").strip()
        figures = module.run(quick)
        if not isinstance(figures, list) or not all(isinstance(f, Figure) for f in figures):
            raise TypeError(f"bench_{name}.run() must return a list of Figure, got {type(figures).__name__}")
        outcome.figures = figures
    except Exception:
        outcome.error = traceback.format_exc()
        print(f"!! benchmark {name} crashed:\n{outcome.error}", file=sys.stderr, flush=True)
    finally:
        from bench import servers

        servers.stop_all()  # whatever it left running
    outcome.seconds = time.monotonic() - started
    return outcome


WHY_SHORT = "performance-notes.md#what-is-still-short-and-why"  # written by hand after each run


def report(
    outcomes: list[Outcome],
    *,
    quick: bool,
    command: str,
    started: datetime,
    load_before: str,
    load_after: str,
    info: dict[str, str],
    total_seconds: float,
) -> str:
    figures = [f for outcome in outcomes for f in outcome.figures]
    short = short_of_target(figures)
    crashed = [outcome for outcome in outcomes if outcome.error]
    lines = [
        "# Performance: every benchmark against its reference, same run" + (" (quick mode)" if quick else ""),
        "",
        "Written by `bench/run.py` (`make bench`); do not edit by hand: the next run rewrites it. What was "
        "tried and what it gave: [performance-notes.md](performance-notes.md); the report benchmark's history "
        "and how the store got there: [performance-reports.md](performance-reports.md).",
        "",
        f"- **date**: {started:%Y-%m-%d %H:%M} UTC ({total_seconds / 60:.1f} minutes)",
        f"- **command**: `{command}`",
        f"- **load average** (1, 5, 15 min) before: {load_before}; after: {load_after}",
        "- **machine**: " + "; ".join(f"{key} {value}" for key, value in info.items()),
        "",
    ]
    if quick:
        lines += [
            "Quick mode: a few seconds per benchmark, a smoke test that the harness works. Its figures are "
            "noisy; only `make bench` (full mode) measures.",
            "",
        ]
    lines += ["## Still short of target", ""]
    lines += [f"- {line}" for line in short] or ["- nothing: every target was met in this run"]
    for outcome in crashed:
        lines.append(f"- **{outcome.name} crashed** (no figures): `{outcome.error.strip().splitlines()[-1]}`")
    if short:
        lines += ["", f"Why each is short, and what would close it: [{WHY_SHORT}]({WHY_SHORT})."]
    lines += [
        "",
        "## Figures",
        "",
        "Ratio = product / reference (for a rate, higher is better; for a time, lower).",
        "",
    ]
    lines.append(markdown_tables(figures))
    lines += ["## How each benchmark measures", ""]
    for outcome in outcomes:
        lines += [f"### {outcome.name} (`bench/bench_{outcome.name}.py`, {outcome.seconds:.0f} s)", ""]
        lines += ["```text", outcome.doc or "(no docstring)", "```", ""]
    lines += [
        "",
        "## Reproduce",
        "",
        "```sh",
        "make bench          # full mode: this file (about 20 minutes on 2 cores)",
        "make bench-quick    # quick mode: var/bench/performance-quick.md (CI smoke test, ~3 minutes)",
        ".venv/bin/python -m helpdesk.services exec -- .venv/bin/python -m bench.run --quick --only ingest",
        "```",
        "",
        "With DATABASE_URL / REDIS_URL unset the embedded PostgreSQL and Redis are used. The run works in a "
        "scratch database named after DATABASE_URL's with `_bench` appended (dropped and created each run), "
        "starts the product as production runs it (gunicorn with uvicorn workers on `helpdesk.asgi`, a Celery "
        "worker and beat) and the reference the same way (`bench/reference.py`), and sends load from a separate "
        "process (`bench/load.py`). Each module `bench/bench_*.py` is one table; `--only NAME` runs some.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="A few seconds per benchmark (CI smoke test)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help=f"Some of: {', '.join(benchmark_names())}")
    args = parser.parse_args(argv)
    names = benchmark_names()
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(names)}")
        names = [name for name in names if name in args.only]
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        parser.error("DATABASE_URL and REDIS_URL must be set (make bench starts embedded ones when unset)")

    started_at = datetime.now(UTC)
    started = time.monotonic()
    load_before = load_average()
    command = "make bench-quick" if args.quick else "make bench"
    if args.only:
        command = (
            "python -m bench.run" + (" --quick" if args.quick else "") + " --only " + shlex.join(args.only)
        )

    from bench import servers

    for old_log in servers.LOG_DIR.glob("*.log"):  # the servers' output of this run only
        old_log.unlink()
    url, database, maintenance = scratch_url(os.environ["DATABASE_URL"])
    print(f"scratch database {database}: dropping, creating, migrating", flush=True)
    recreate_database(maintenance, database)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_urlsafe(40))
    os.environ["DJANGO_SETTINGS_MODULE"] = "helpdesk.settings"
    os.environ.pop("DEBUG", None)
    os.environ.pop("CELERY_TASK_ALWAYS_EAGER", None)
    # Servers the benchmarks start inherit os.environ; the migration runs as `manage.py migrate` would.
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True, env=os.environ
    )
    import django

    django.setup()
    info = machine()
    print(f"migrated in {time.monotonic() - started:.0f} s; running {', '.join(names)}", flush=True)

    outcomes = []
    for name in names:
        print(f"\n== {name} ({'quick' if args.quick else 'full'})", flush=True)
        outcomes.append(run_benchmark(name, args.quick))
        print(f"   {name}: {outcomes[-1].seconds:.0f} s", flush=True)

    figures = [f for outcome in outcomes for f in outcome.figures]
    print("\n" + text_table(figures))
    short = short_of_target(figures)
    print("still short of target:" if short else "every target met")
    for line in short:
        print("  " + line)
    crashed = [outcome.name for outcome in outcomes if outcome.error]
    text = report(
        outcomes,
        quick=args.quick,
        command=command,
        started=started_at,
        load_before=load_before,
        load_after=load_average(),
        info=info,
        total_seconds=time.monotonic() - started,
    )
    # A partial full run (--only) must not replace the full report in docs/.
    target = QUICK_REPORT if args.quick else (PARTIAL_REPORT if args.only else DOCS)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    raw = ROOT / "var" / "bench" / f"figures-{'quick' if args.quick else 'full'}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(
        json.dumps(
            {
                "date": started_at.isoformat(),
                "command": command,
                "machine": info,
                "figures": [dict(asdict(f), ratio=f.ratio) for f in figures],
                "crashed": crashed,
            },
            indent=1,
        )
    )
    print(f"\nwritten: {target.relative_to(ROOT)} ({(time.monotonic() - started) / 60:.1f} minutes in all)")
    if crashed:
        print(f"CRASHED: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
