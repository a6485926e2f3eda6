"""``categorize --engine ray`` against the local job: equal output, overhead, resume, a lost
worker, a two-node cluster.

The feed is the feed benchmark's hostile feed (:func:`benchmarks.feed_benchmark.build_feed`:
fashion titles and photos with missing, corrupt and hostile rows mixed in); the predictor the
command line's default (zero-shot into Shopify's tree with MiniLM). Every run is a
``multimodal-cat categorize`` subprocess with an embedding cache of its own that holds only the
tree's embeddings, so no run reuses another's product embeddings. Measured:

* ``equal``: the Ray output (2 workers on a local Ray) equals the local job's byte for byte;
* ``overhead``: Ray's wall time over the local job's in the same run, start-up apart;
* ``resume``: the Ray driver SIGKILLed (its whole process group, the local Ray included) once
  half the rows are in finished parts, then ``--resume``: finished rows done again, and the
  final output against the uninterrupted one;
* ``worker_loss``: one worker process SIGKILLed mid-run: the job finishes, output complete;
* ``cluster``: ``ray start --head`` and a second ``ray start --address`` on this machine (1 CPU
  each), the job submitted with ``--ray-address``: one node then two, scaling efficiency
  (bounded by this machine's 2 cores, which both nodes share).

Writes ``benchmarks/results/feed_ray.json`` and ``.md``.

Example:
    $ nohup nice -n 10 python benchmarks/feed_ray.py --rows 2000 &
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.feed_benchmark import _git_commit, build_feed  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PORT = 6391


def _env(cache: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), MULTIMODAL_CAT_CACHE=str(cache))


def fresh_cache(work: Path, name: str) -> Path:
    """An embedding cache holding only the tree's embeddings (copied from the warm-up's)."""
    cache = work / "caches" / name
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    template = work / "caches" / "_tree"
    for file in template.glob("embeddings.sqlite*"):
        shutil.copy(file, cache / file.name)
    user = Path.home() / ".cache" / "multimodal_cat" / "encoders"
    if user.is_dir():
        (cache / "encoders").symlink_to(user)
    return cache


def warm_tree(work: Path, taxonomy: str) -> None:
    """Embed the tree once into the template cache (every run starts from a copy of it)."""
    template = work / "caches" / "_tree"
    if (template / "embeddings.sqlite").exists():
        return
    template.mkdir(parents=True, exist_ok=True)
    user = Path.home() / ".cache" / "multimodal_cat" / "encoders"
    if user.is_dir() and not (template / "encoders").exists():
        (template / "encoders").symlink_to(user)
    code = f"from multimodal_cat.predictors.build import build_predictor; build_predictor(taxonomy={taxonomy!r})"
    subprocess.run([sys.executable, "-c", code], env=_env(template), check=True)


def categorize(feed: Path, out: Path, extra: list[str], taxonomy: str) -> list[str]:
    return [sys.executable, "-m", "multimodal_cat", "categorize", str(feed), "--taxonomy", taxonomy,
            "-o", str(out), "--no-progress", *extra]


def run(cmd: list[str], env: dict[str, str], timeout: float = 3600) -> dict[str, Any]:
    """Run a command to its end; its exit code, wall seconds and the summary lines parsed."""
    started = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return {"rc": done.returncode, "wall_s": round(time.monotonic() - started, 1),
            **parse_summary(done.stderr)}


def parse_summary(stderr: str) -> dict[str, Any]:
    """The figures of the summary lines (``N rows (M from an earlier run): ...``, ``ray: ...``)."""
    found: dict[str, Any] = {}
    rows = re.search(r"([\d,]+) rows(?: \(([\d,]+) from an earlier run\))?: ([\d,]+) ok, "
                     r"([\d,]+) degraded, ([\d,]+) failed -> .* \(([\d.]+) s", stderr)
    if rows:
        n = [int((g or "0").replace(",", "")) for g in rows.groups()[:5]]
        found.update(rows=n[0], resumed_from=n[1], ok=n[2], degraded=n[3], failed=n[4],
                     job_s=float(rows.group(6)))
    ray = re.search(r"ray: ([\d.]+) s to start, ([\d,]+) rows done twice", stderr)
    if ray:
        found.update(startup_s=float(ray.group(1)), redone=int(ray.group(2).replace(",", "")))
    if "rows" not in found:
        found["stderr_tail"] = stderr[-1500:]
    return found


def parts_rows(folder: Path) -> int:
    """Rows in the readable output parts of a Ray work folder."""
    import pyarrow.parquet as pq

    total = 0
    for part in folder.glob("*.parquet"):
        try:
            total += pq.read_metadata(part).num_rows
        except Exception:  # being written
            continue
    return total


def started(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def wait_for_rows(folder: Path, rows: int, process: subprocess.Popen, limit: float = 3600) -> int:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        done = parts_rows(folder)
        if done >= rows:
            return done
        time.sleep(0.5)
    return parts_rows(folder)


def kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def descendants(root: int, needle: str) -> list[int]:
    """Process ids under ``root`` (children, grandchildren...) whose command line has ``needle``."""
    listing = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    parent, args = {}, {}
    for line in listing.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3:
            parent[int(parts[0])], args[int(parts[0])] = int(parts[1]), parts[2]

    def under(pid: int) -> bool:
        while pid > 1:
            pid = parent.get(pid, 0)
            if pid == root:
                return True
        return False

    return [pid for pid in args if needle in args[pid] and under(pid)]


def rows_equal_but(a: Path, b: Path, skip: tuple[str, ...] = ("confidence", "alternatives")) -> bool:
    from multimodal_cat.feeds.write import read_output

    left, right = list(read_output(a)), list(read_output(b))
    return len(left) == len(right) and all(
        {k: v for k, v in x.items() if k not in skip} == {k: v for k, v in y.items() if k not in skip}
        for x, y in zip(left, right, strict=True)
    )


def differing_rows(a: Path, b: Path) -> dict[str, Any]:
    """How many rows differ, and by how much their confidence differs at most."""
    from multimodal_cat.feeds.write import read_output

    rows, gap = 0, 0.0
    for x, y in zip(read_output(a), read_output(b), strict=False):
        if x != y:
            rows += 1
            try:
                gap = max(gap, abs(float(x["confidence"]) - float(y["confidence"])))
            except (TypeError, ValueError):
                gap = float("nan")
    return {"rows": rows, "largest_confidence_gap": gap}


def same_bytes(a: Path, b: Path) -> bool:
    return a.exists() and b.exists() and a.read_bytes() == b.read_bytes()


def resume_case(work: Path, feed: Path, rows: int, reference: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = work / "resumed.csv"
    env = _env(fresh_cache(work, "resume"))
    process = started(categorize(feed, out, ["--engine", "ray", "--workers", "2"], args.taxonomy), env)
    folder = out.with_name(f".{out.name}.ray") / "output"
    at_kill = wait_for_rows(folder, rows // 2, process)
    kill_group(process)
    time.sleep(2)
    kept = parts_rows(folder)
    again = run(categorize(feed, out, ["--engine", "ray", "--workers", "2", "--resume"], args.taxonomy), env)
    redone = again.get("redone")
    return {
        "rows_in_parts_when_killed": at_kill,
        "rows_kept_after_kill": kept,
        "resumed_run": again,
        "finished_rows_redone": redone,
        "redone_share": round(redone / kept, 4) if kept and redone is not None else None,
        "identical_to_uninterrupted": same_bytes(out, reference),
        "equal_but_scores": rows_equal_but(out, reference) if out.exists() else False,
    }


def worker_loss_case(work: Path, feed: Path, rows: int, reference: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = work / "worker_loss.csv"
    env = _env(fresh_cache(work, "worker_loss"))
    process = started(categorize(feed, out, ["--engine", "ray", "--workers", "2"], args.taxonomy), env)
    folder = out.with_name(f".{out.name}.ray") / "output"
    wait_for_rows(folder, rows // 4, process)
    victims = descendants(process.pid, "MapWorker")
    killed = None
    if victims:
        killed = victims[0]
        os.kill(killed, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=3600)
    summary = parse_summary(stderr)
    return {
        "killed_worker_pid": killed,
        "rc": process.returncode,
        **summary,
        "complete": summary.get("rows") == rows,
        "identical_to_uninterrupted": same_bytes(out, reference),
        "equal_but_scores": rows_equal_but(out, reference) if out.exists() else False,
    }


def _forget_cluster() -> None:
    """Remove the address ``ray start --head`` recorded for this benchmark's (killed) cluster."""
    record = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    with contextlib.suppress(OSError):
        if record.read_text().strip().endswith(f":{PORT}"):
            record.unlink()


def cluster_case(work: Path, feed: Path, rows: int, reference: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One node, then two (each started afresh with its own cache), the same job on each."""
    found: dict[str, Any] = {}
    for nodes in (1, 2):
        # a cluster on 127.0.0.1 only, so without Ray's token authentication
        env = {**_env(fresh_cache(work, f"cluster{nodes}")), "RAY_AUTH_MODE": "disabled"}
        ray_bin = str(Path(sys.executable).with_name("ray"))
        head = started([ray_bin, "start", "--head", f"--port={PORT}", "--num-cpus=1",
                        "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--block"], env)
        members = [head]
        time.sleep(12)
        if nodes == 2:
            members.append(started([ray_bin, "start", f"--address=127.0.0.1:{PORT}",
                                    "--node-ip-address=127.0.0.1", "--num-cpus=1", "--block"], env))
            time.sleep(12)
        out = work / f"cluster{nodes}.csv"
        try:
            result = run(categorize(feed, out, ["--engine", "ray", "--ray-address", f"127.0.0.1:{PORT}",
                                                "--workers", str(nodes)], args.taxonomy), env)
        finally:
            for member in reversed(members):
                kill_group(member)
            _forget_cluster()
            time.sleep(3)
        result["identical_to_local"] = same_bytes(out, reference)
        result["equal_but_scores"] = rows_equal_but(out, reference) if out.exists() else False
        found[f"{nodes}_node"] = result
    one, two = found["1_node"], found["2_node"]
    if "job_s" in one and "job_s" in two:
        t1, t2 = one["job_s"] - one.get("startup_s", 0), two["job_s"] - two.get("startup_s", 0)
        found["speedup"] = round(t1 / t2, 2)
        found["scaling_efficiency"] = round(t1 / t2 / 2, 2)
    found["note"] = ("both nodes run on one 2-core machine shared with other jobs: two nodes "
                     "cannot be more than 2x one, and share the cores with the driver and the "
                     "machine's other work")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--taxonomy", default="shopify")
    parser.add_argument("--work", default="/tmp/multimodal_cat_feed_ray")
    parser.add_argument("--skip", action="append", default=[], help="resume, worker_loss, cluster")
    parser.add_argument("--render", action="store_true", help="rewrite the markdown from the JSON")
    parser.add_argument("--cases", help="rerun only these cases (comma-separated) into the JSON, "
                        "with the earlier run's outputs as references")
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads((RESULTS / "feed_ray.json").read_text())
        derive(report)
        _save(report)
        return 0
    work = Path(args.work)
    if args.cases:
        return rerun_cases(work, args)
    work.mkdir(parents=True, exist_ok=True)
    feed = work / f"feed_{args.rows}.csv"
    mix = build_feed(feed, args.rows, seed=0)
    warm_tree(work, args.taxonomy)
    report: dict[str, Any] = {
        "command": "python benchmarks/feed_ray.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": _git_commit(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_at_start": os.getloadavg(),
        "seeds": {"feed": 0},
        "rows": args.rows,
        "feed_mix": mix,
        "predictor": f"zero-shot {args.taxonomy} (minilm), the command line's default",
    }
    local, on_ray = work / "local.csv", work / "ray.csv"
    report["local"] = run(categorize(feed, local, [], args.taxonomy), _env(fresh_cache(work, "local")))
    report["ray"] = run(categorize(feed, on_ray, ["--engine", "ray", "--workers", "2"], args.taxonomy),
                        _env(fresh_cache(work, "ray")))
    # torch's thread count changes the last bits of the scores: compare at one thread each too
    local1, ray1 = work / "local_t1.csv", work / "ray_t1.csv"
    report["local_threads_1"] = run(categorize(feed, local1, ["--threads", "1"], args.taxonomy),
                                    _env(fresh_cache(work, "local1")))
    report["ray_threads_1"] = run(categorize(feed, ray1, ["--engine", "ray", "--workers", "2",
                                                          "--threads", "1"], args.taxonomy),
                                  _env(fresh_cache(work, "ray1")))
    report["equal"] = {
        "byte_for_byte_default_threads": same_bytes(local, on_ray),
        "equal_but_scores_default_threads": rows_equal_but(local, on_ray),
        "rows_with_other_confidence_default_threads": differing_rows(local, on_ray),
        "byte_for_byte_one_thread_each": same_bytes(local1, ray1),
        "rows_in": args.rows, "rows_out": report["ray"].get("rows"),
    }
    derive(report)
    _save(report)
    for name, case in (("resume", resume_case), ("worker_loss", worker_loss_case), ("cluster", cluster_case)):
        if name not in args.skip:
            report[name] = case(work, feed, args.rows, on_ray if name != "cluster" else local, args)
            _save(report)
    report["load_average_at_end"] = os.getloadavg()
    _save(report)
    return 0


def rerun_cases(work: Path, args: argparse.Namespace) -> int:
    report = json.loads((RESULTS / "feed_ray.json").read_text())
    feed = work / f"feed_{report['rows']}.csv"
    cases = {"resume": resume_case, "worker_loss": worker_loss_case, "cluster": cluster_case}
    for name in args.cases.split(","):
        reference = work / ("local.csv" if name == "cluster" else "ray.csv")
        report[name] = cases[name](work, feed, report["rows"], reference, args)
        report[name]["rerun"] = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                 "commit": _git_commit(), "load_average": os.getloadavg()}
        _save(report)
    return 0


def derive(report: dict[str, Any]) -> None:
    """Ray's wall time over the local job's, per pair of runs (default threads, one thread)."""
    overhead: dict[str, Any] = {}
    for name, (local, ray) in {"default_threads": ("local", "ray"),
                               "one_thread_each": ("local_threads_1", "ray_threads_1")}.items():
        local_run, ray_run = report.get(local), report.get(ray)
        if local_run and ray_run and "startup_s" in ray_run:
            overhead[name] = {
                "wall_ratio_without_startup": round(
                    (ray_run["wall_s"] - ray_run["startup_s"]) / local_run["wall_s"], 2),
                "wall_ratio": round(ray_run["wall_s"] / local_run["wall_s"], 2),
                "startup_s": ray_run["startup_s"],
            }
    report["overhead"] = overhead


def _save(report: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "feed_ray.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "feed_ray.md").write_text(markdown(report))


def markdown(report: dict[str, Any]) -> str:
    local, ray = report["local"], report["ray"]
    lines = [
        "# Feed job on Ray against the local job",
        "",
        f"Made with: `{report['command']}` (git {report['commit']}), {report['when']} on "
        f"{report['machine']}; load average at start {report['load_average_at_start']}.",
        f"Feed: {report['rows']:,} rows of the feed benchmark's hostile feed (seed 0); "
        f"predictor: {report['predictor']}. Each run: a `multimodal-cat categorize` process with "
        "an embedding cache holding only the tree.",
        "",
        "| run | wall s | Ray start-up s | rows | ok | degraded | failed |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| local job | {local['wall_s']} | - | {local.get('rows')} | {local.get('ok')} | "
        f"{local.get('degraded')} | {local.get('failed')} |",
        f"| --engine ray, 2 workers | {ray['wall_s']} | {ray.get('startup_s')} | {ray.get('rows')} | "
        f"{ray.get('ok')} | {ray.get('degraded')} | {ray.get('failed')} |",
        *(f"| {label} | {r['wall_s']} | {r.get('startup_s', '-')} | {r.get('rows')} | {r.get('ok')} | "
          f"{r.get('degraded')} | {r.get('failed')} |"
          for label, r in (("local job, --threads 1", report.get("local_threads_1")),
                           ("--engine ray, 2 workers, --threads 1", report.get("ray_threads_1")))
          if r),
        "",
        f"- equal: rows in {report['equal']['rows_in']:,}, rows out {report['equal']['rows_out']}; "
        f"byte for byte with one torch thread per process (`--threads 1` on both engines): "
        f"**{report['equal']['byte_for_byte_one_thread_each']}**; with torch's default threads "
        f"(2 in the local process, 1 per Ray worker): byte for byte "
        f"{report['equal']['byte_for_byte_default_threads']}, every column but the scores equal "
        f"**{report['equal']['equal_but_scores_default_threads']}**, rows differing "
        f"{report['equal']['rows_with_other_confidence_default_threads']}."
        + (f" Two Ray runs differ among themselves the same way "
           f"({report['equal']['two_ray_runs_differ']['rows']} rows), the local job never "
           f"({report['equal']['local_default_vs_local_one_thread']['rows']} rows between its two "
           "runs); the cause is not pinned down (not torch's thread count: the local job gives "
           "the same bytes at 1 and 2 threads)." if "two_ray_runs_differ" in report["equal"] else ""),
    ]
    for name, o in report.get("overhead", {}).items():
        lines.append(f"- overhead ({name.replace('_', ' ')}): wall ratio Ray/local "
                     f"**{o['wall_ratio_without_startup']}** without the start-up "
                     f"({o['startup_s']} s), {o['wall_ratio']} with it.")
    if "resume" in report:
        r = report["resume"]
        lines.append(f"- resume: driver killed with {r['rows_in_parts_when_killed']:,} rows in finished "
                     f"parts ({r['rows_kept_after_kill']:,} kept); the resumed run redid "
                     f"**{r['finished_rows_redone']}** finished rows (share {r['redone_share']}); "
                     f"identical to the uninterrupted output: {r['identical_to_uninterrupted']} "
                     f"(equal but scores: {r['equal_but_scores']}).")
        if "rerun" in r:
            lines.append(f"  (rerun {r['rerun']['when']}, git {r['rerun']['commit']})")
    if "worker_loss" in report:
        w = report["worker_loss"]
        lines.append(f"- worker_loss: worker {w['killed_worker_pid']} killed; exit {w['rc']}, "
                     f"complete {w['complete']}, identical to the uninterrupted output: "
                     f"{w['identical_to_uninterrupted']}, every column but the scores equal: "
                     f"{w.get('equal_but_scores')}.")
    if "cluster" in report:
        c = report["cluster"]
        one, two = c["1_node"], c["2_node"]
        lines.append(f"- cluster: 1 node {one.get('job_s')} s (start-up {one.get('startup_s')} s), "
                     f"2 nodes {two.get('job_s')} s (start-up {two.get('startup_s')} s); outputs byte-equal "
                     f"to the local job's: {one['identical_to_local']}, {two['identical_to_local']}; "
                     f"every column but the scores equal: {one.get('equal_but_scores')}, "
                     f"{two.get('equal_but_scores')}; "
                     f"speed-up {c.get('speedup')}, scaling efficiency **{c.get('scaling_efficiency')}** "
                     f"({c['note']}).")
    for earlier in report.get("cluster_earlier_attempts", []):
        lines.append(f"- an earlier attempt ({earlier['when']}, git {earlier['commit']}): cluster 1 node "
                     f"{earlier['1_node_job_s']} s, 2 nodes {earlier['2_node_job_s']} s, speed-up "
                     f"{earlier['speedup']}, scaling efficiency {earlier['scaling_efficiency']}: on this "
                     "shared machine the figure moves with the other jobs' load.")
    if report.get("rows", 0) < 10_000:
        lines.append(f"\nMeasured at {report['rows']:,} rows, not the 10,000 asked: at a load average "
                     "of 15-20 on 2 cores the local job alone took over 4 minutes for 2,000 rows, and "
                     "the whole benchmark runs 9 jobs.")
    if "load_average_at_end" in report:
        lines.append(f"\nLoad average at end: {report['load_average_at_end']}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
