"""``make bench``: run every section, write var/bench/<date>.json, print the tables, and rewrite
the generated part of docs/performance.md with the plot beside it.

    python -m bench [--quick] [--only model,stages,e2e,growth,video] [--no-docs]

Each section runs in its own process with a time limit; one that fails is reported as failed
and the others still run. The targets of issue 11 that span sections (the pipeline against the
bare engine, memory) are checked here.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench import BASE_DIR, section_result

SECTIONS = ("model", "stages", "e2e", "growth", "video")
SECTION_SECONDS = {"model": 900, "stages": 600, "e2e": 2400, "growth": 900, "video": 600}
DOC = BASE_DIR / "docs" / "performance.md"
PLOT = BASE_DIR / "docs" / "performance-latency.png"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
RSS_LIMIT_MB = 600
RSS_GROWTH_MB = 25  # "no growth": less than this over 1,000 detections (allocator noise)


def _run_section(name: str, out: Path, *, quick: bool) -> list[dict]:
    command = [sys.executable, "-m", f"bench.{name}", "--json", str(out)]
    if quick:
        command.append("--quick")
    print(f"==> {name}", flush=True)
    started = time.monotonic()
    try:
        result = subprocess.run(command, cwd=BASE_DIR, timeout=SECTION_SECONDS[name],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        failed = result.returncode != 0
        tail = result.stdout[-3000:]
    except subprocess.TimeoutExpired as exc:
        failed, tail = True, f"timed out after {exc.timeout} s"
    seconds = round(time.monotonic() - started, 1)
    if failed or not out.exists():
        print(tail, file=sys.stderr)
        return [section_result(section=name, title=f"{name}: FAILED", columns=["output"],
                                rows=[[tail[-500:]]], data={"failed": True, "seconds": seconds})]
    doc = json.loads(out.read_text())
    sections = doc["sections"] if "sections" in doc else [doc]
    for s in sections:
        s["data"]["seconds"] = seconds
    print(f"    done in {seconds} s", flush=True)
    return sections


def _find(sections: list[dict], name: str) -> dict | None:
    return next((s for s in sections if s["section"] == name and not s["data"].get("failed")),
                None)


def cross_targets(sections: list[dict]) -> list[dict]:
    """The targets that compare sections: the pipeline against the bare engine, memory."""
    out: list[dict] = []
    model, e2e, memory = _find(sections, "model"), _find(sections, "e2e"), _find(sections,
                                                                                   "memory")
    if model and e2e:
        engine_ms = model["data"]["figures"]["engine_predict_end_to_end"]
        engine_ips = 1000.0 / engine_ms
        for run in e2e["data"]["runs"]:
            setup = f"{run['setup']} ({run['database']})"
            levels = {lv["clients"]: lv for lv in run["levels"]}
            if 8 in levels:
                lv = levels[8]
                ratio = (lv["images_per_s"] or 0) / engine_ips
                out.append({
                    "target": f"{setup}: 8 clients >= 0.7 x the bare engine's images/s",
                    "measured": f"{lv['images_per_s']} vs {engine_ips:.1f} images/s = "
                                f"{ratio:.2f}x",
                    "met": ratio >= 0.7})
            for clients, lv in sorted(levels.items()):
                limit = 2 * engine_ms + 100
                out.append({
                    "target": f"{setup}, {clients} client(s): p50 <= 2 x engine + 100 ms "
                              f"({limit:.0f} ms), p99 <= 4 x p50, 0 errors, 0 lost",
                    "measured": f"p50 {lv['p50_ms']} ms, p99 {lv['p99_ms']} ms, "
                                f"{lv['errors']} errors, {lv['lost']} lost",
                    "met": bool(lv["p50_ms"] is not None and lv["p50_ms"] <= limit
                                and lv["p99_ms"] <= 4 * lv["p50_ms"]
                                and not lv["errors"] and not lv["lost"])})
    if memory:
        m = memory["data"]
        children = [k for k in m["rss_mb_loaded"] if k.startswith("child")]
        # The pool child that loaded the model is the largest; beat's child is small.
        model_child = max(children, key=lambda k: m["rss_mb_loaded"][k]) if children else "main"
        loaded, after = m["rss_mb_loaded"][model_child], m["rss_mb_after"].get(model_child)
        out.append({"target": f"worker RSS <= {RSS_LIMIT_MB} MB with the model loaded",
                    "measured": f"{loaded} MB (the pool process that holds the model)",
                    "met": loaded <= RSS_LIMIT_MB})
        if after is not None:
            out.append({"target": f"no RSS growth over {m['detections']} detections "
                                  f"(< {RSS_GROWTH_MB} MB)",
                        "measured": f"{loaded} -> {after} MB ({after - loaded:+.1f} MB)",
                        "met": after - loaded < RSS_GROWTH_MB})
    return out


def machine() -> dict:
    cpu = ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("tensorflow-cpu", "tensorflow", "keras", "Django", "celery", "mtcnn"):
        with contextlib.suppress(PackageNotFoundError):  # not installed: not listed
            versions[package] = version(package)
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "packages": versions,
            "database": "PostgreSQL" if os.environ.get("BENCH_DATABASE_URL") else "SQLite"}


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("|", "/")


def markdown(report: dict) -> str:
    lines = [
        f"Made by `{report['command']}` on {report['date']} "
        f"({report['machine']['cpu']}, {report['machine']['cores']} cores, Python "
        f"{report['machine']['python']}; "
        + ", ".join(f"{k} {v}" for k, v in report["machine"]["packages"].items())
        + f"). Raw figures: `var/bench/{report['date']}.json`.", ""]
    if report.get("quick"):
        lines += ["**A --quick run: fewer images and rows than the full suite.**", ""]
    lines += ["### Targets", "", "| target | measured | met |", "|---|---|---|"]
    for section in report["sections"]:
        for t in section["targets"]:
            lines.append(f"| {_cell(t['target'])} | {_cell(t['measured'])} | "
                         f"{_cell(t['met'])} |")
    for t in report["targets"]:
        lines.append(f"| {_cell(t['target'])} | {_cell(t['measured'])} | {_cell(t['met'])} |")
    for section in report["sections"]:
        lines += ["", f"### {section['title']}", ""]
        lines.append("| " + " | ".join(section["columns"]) + " |")
        lines.append("|" + "---|" * len(section["columns"]))
        for row in section["rows"]:
            lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
        for note in section["notes"]:
            lines += ["", note]
        if section["section"] == "e2e":
            lines += ["", f"![Latency percentiles against concurrency]({PLOT.name})"]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> bool:
    e2e = _find(report["sections"], "e2e")
    if not e2e:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = e2e["data"]["runs"]
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4.2), squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        clients = [lv["clients"] for lv in run["levels"]]
        for key, style in (("p50_ms", "o-"), ("p95_ms", "s--"), ("p99_ms", "^:")):
            ax.plot(clients, [lv[key] for lv in run["levels"]], style, label=key[:3])
        ax.set_xscale("log", base=2)
        ax.set_xticks(clients, [str(c) for c in clients])
        ax.set_xlabel("concurrent API clients")
        ax.set_ylabel("upload to verdict (ms)")
        ax.set_title(f"{run['setup']} broker, {run['database']}")
        ax.grid(True, alpha=0.3)
        twin = ax.twinx()
        twin.bar(clients, [lv["images_per_s"] or 0 for lv in run["levels"]],
                 width=[c * 0.25 for c in clients], alpha=0.15, color="green")
        twin.set_ylabel("images/s (bars)")
        ax.legend(loc="upper left")
    fig.suptitle(f"Upload-to-verdict latency against concurrency ({report['date']})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def doc_update(report: dict) -> None:
    generated = f"{BEGIN}\n{markdown(report)}{END}"
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + generated + tail
    else:
        text = text.rstrip() + "\n\n" + generated + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


def _command(args: argparse.Namespace) -> str:
    """The command line that repeats this run (a database URL without its password)."""
    from urllib.parse import urlsplit

    prefix = ""
    url = os.environ.get("BENCH_DATABASE_URL", "")
    if url:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")
        user = netloc[0].partition(":")[0]
        prefix = f"BENCH_DATABASE_URL={parts.scheme}://{user + '@' if user else ''}{netloc[2]}"
        prefix += f"{parts.path} "
    extra = []
    if args.quick:
        extra.append("--quick")
    if args.only != ",".join(SECTIONS):
        extra.append(f"--only {args.only}")
    return prefix + "make bench" + (f" BENCH_ARGS='{' '.join(extra)}'" if extra else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections (default: {','.join(SECTIONS)})")
    parser.add_argument("--no-docs", action="store_true",
                        help="leave docs/performance.md and its plot as they are")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    today = dt.date.today().isoformat()
    out_dir = BASE_DIR / "var" / "bench"
    parts = out_dir / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    sections: list[dict] = []
    for name in names:
        sections += _run_section(name, parts / f"{name}.json", quick=args.quick)
    report = {
        "date": today,
        "command": _command(args),
        "quick": args.quick,
        "machine": machine(),
        "sections": sections,
        "targets": cross_targets(sections),
    }
    out = out_dir / f"{today}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    print()
    print(markdown(report))
    if plot(report, out_dir / f"{today}-latency.png") and not args.no_docs:
        plot(report, PLOT)
    if not args.no_docs:
        doc_update(report)
        print(f"Wrote {out}, {DOC.relative_to(BASE_DIR)} and {PLOT.relative_to(BASE_DIR)}.")
    else:
        print(f"Wrote {out}.")
    if any(s["data"].get("failed") for s in sections):
        sys.exit(1)


if __name__ == "__main__":
    main()
