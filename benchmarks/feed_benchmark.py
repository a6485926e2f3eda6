"""Feed job benchmark: flat memory, every row accounted for, kill -9 + resume is exact.

Builds synthetic feeds (default 10k and 100k rows) from the Myntra fashion titles
(``../shared/data/fashion``) with a mix of good images, missing and corrupt images, empty
titles, malformed CSV rows and invalid UTF-8, plus the hostile rows of issue 14 (NUL bytes,
encoded surrogates, device and FIFO image paths, ``data:`` URLs, EXIF-rotated and 16-bit
images, images just under the pixel cap, unclosed CSV quotes); runs ``categorize`` on each in its own
subprocess and records peak RSS and rows/s; checks the output has one row per input record,
in order; then kills a run with SIGKILL half way, resumes it with ``--resume`` and checks the
result is byte-identical to an uninterrupted run. Writes ``benchmarks/results/feed_benchmark.json`` (``feed_benchmark_real.json`` with a real predictor)
and ``.md``.

Example:
    $ nice -n 10 python benchmarks/feed_benchmark.py --fake-predictor        # plumbing only
    $ nice -n 10 python benchmarks/feed_benchmark.py --sizes 2000 --taxonomy shopify
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "fashion"
RESULTS = ROOT / "benchmarks" / "results"
TARGET_RATIO = 1.5


def build_feed(path: Path, rows: int, seed: int = 0) -> dict[str, int]:
    """Write a CSV feed of ``rows`` records next to ``images/`` and ``corrupt/``; returns the mix."""
    rng = random.Random(seed)
    work = path.parent
    if not (work / "images").exists():
        (work / "images").symlink_to(DATA / "images")
    _write_corrupt_images(work / "corrupt")
    _write_hostile_files(work / "hostile")
    with open(DATA / "styles.csv", newline="", encoding="utf-8") as handle:
        styles = list(csv.DictReader(handle))
    imaged = {p.stem for p in (DATA / "images").glob("*.jpg")}
    mix = dict.fromkeys(
        (
            "good_image",
            "missing_image",
            "corrupt_image",
            "empty_title",
            "malformed",
            "bad_utf8",
            "no_image",
            *HOSTILE,
        ),
        0,
    )
    with open(path, "wb") as out:
        out.write(b"id,title,brand_hint,category,image\n")
        for i in range(rows):
            style = styles[i % len(styles)]
            title, image = style["productDisplayName"], ""
            roll = rng.random()
            if roll < 0.005:
                mix["malformed"] += 1
                out.write(f"{i},{title},x,y,z,extra\n".encode())
                continue
            if i % _BIG_PNG_EVERY == _BIG_PNG_EVERY // 2:
                image = "hostile/big.png"
                mix["big_png"] = mix.get("big_png", 0) + 1
            elif style["id"] in imaged:
                image, kind = _image_for(style["id"], rng)
                mix[kind] += 1
            else:
                mix["no_image"] += 1
            if 0.005 <= roll < 0.025:
                title = ""
                mix["empty_title"] += 1
            cells = [f"F{i}", title, style["gender"], style["masterCategory"], image]
            line = _csv_line(cells)
            if 0.025 <= roll < 0.027:
                line = line.replace(b",", b",\xff", 1)  # invalid UTF-8 in the title
                mix["bad_utf8"] += 1
            elif i % _BIG_PNG_EVERY == 1_234:
                line = _hostile_line("unclosed_quote", cells, rng)
                mix["unclosed_quote"] = mix.get("unclosed_quote", 0) + 1
            elif 0.027 <= roll < 0.036:
                kind = HOSTILE[int((roll - 0.027) / 0.009 * len(HOSTILE))]
                line = _hostile_line(kind, cells, rng)
                mix[kind] += 1
            out.write(line)
    return mix


# Hostile rows of issue 14, 0.1% of rows each (every one must come out as one row).
HOSTILE = (
    "nul_in_image_path",
    "nul_in_title",
    "surrogate_bytes",
    "device_image",
    "fifo_image",
    "data_url",
    "bad_data_url",
    "exif_rotated",
    "png_16_bit",
)
_BIG_PNG_EVERY = 5_000  # one row in this many points at a PNG just under the pixel cap


def _hostile_line(kind: str, cells: list[str], rng: random.Random) -> bytes:
    cells = list(cells)
    if kind == "nul_in_image_path":
        cells[4] = "images/a\x00b.jpg"
    elif kind == "nul_in_title":
        cells[1] = cells[1][:5] + "\x00" + cells[1][5:]
    elif kind == "device_image":
        cells[4] = rng.choice(["/dev/zero", "/dev/urandom"])
    elif kind == "fifo_image":
        cells[4] = "hostile/fifo.jpg"
    elif kind == "data_url":
        cells[4] = "data:image/png;base64," + base64.b64encode(_small_png()).decode()
    elif kind == "bad_data_url":
        cells[4] = "data:image/png;base64,iVBORw0K$$"
    elif kind == "exif_rotated":
        cells[4] = "hostile/exif.jpg"
    elif kind == "png_16_bit":
        cells[4] = "hostile/deep.png"
    line = _csv_line(cells)
    if kind == "surrogate_bytes":
        line = line.replace(b",", b",\xed\xa0\x80", 1)  # an encoded lone surrogate
    elif kind == "unclosed_quote":
        line = line.replace(b",", b',"', 1)  # swallows rows until the next quote
    return line


def _small_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_hostile_files(folder: Path) -> None:
    """A FIFO, an EXIF-rotated JPEG, a 16-bit PNG and a PNG just under the pixel cap."""
    import numpy as np
    from PIL import Image

    folder.mkdir(exist_ok=True)
    if not (folder / "fifo.jpg").exists():
        os.mkfifo(folder / "fifo.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (60, 40), "blue").save(folder / "exif.jpg", exif=exif)
    Image.fromarray(np.full((32, 32), 40_000, dtype=np.uint16)).save(folder / "deep.png")
    if not (folder / "big.png").exists():
        Image.new("RGB", (6_300, 6_300), (120, 80, 40)).save(folder / "big.png")  # 39.7M pixels


def _image_for(style_id: str, rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.05:
        return f"images/absent-{style_id}.jpg", "missing_image"
    if roll < 0.10:
        return f"corrupt/{rng.randrange(3)}.jpg", "corrupt_image"
    return f"images/{style_id}.jpg", "good_image"


def _write_corrupt_images(folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    sample = next((DATA / "images").glob("*.jpg")).read_bytes()
    (folder / "0.jpg").write_bytes(sample[: len(sample) // 3])  # truncated
    (folder / "1.jpg").write_bytes(os.urandom(2048))  # not an image
    (folder / "2.jpg").write_bytes(b"<html>404 not found</html>")  # an error page


def _csv_line(cells: list[str]) -> bytes:
    text = ",".join(
        '"' + c.replace('"', '""') + '"' if any(x in c for x in ',"\n') else c for c in cells
    )
    return (text + "\n").encode("utf-8")


def _command(feed: Path, out: Path, args: argparse.Namespace, resume: bool = False) -> list[str]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "_run",
        str(feed),
        str(out),
        "--batch-size",
        str(args.batch_size),
    ]
    if args.fake_predictor:
        cmd.append("--fake-predictor")
    else:
        cmd += ["--taxonomy", args.taxonomy]
    return cmd + (["--resume"] if resume else [])


def _child(argv: list[str]) -> int:
    """Subprocess body: run the job in-process and print peak RSS and the summary as JSON."""
    import resource

    parser = argparse.ArgumentParser()
    parser.add_argument("feed")
    parser.add_argument("out")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--fake-predictor", action="store_true")
    parser.add_argument("--taxonomy", default="shopify")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from multimodal_cat.feeds import categorize_feed
    from multimodal_cat.predictors import DryRunPredictor

    if args.fake_predictor:
        predictor = DryRunPredictor()
    else:
        from multimodal_cat.predictors.build import build_predictor

        predictor = build_predictor(model=None, taxonomy=args.taxonomy, bf16=False)
    sampler = _RssSampler()
    sampler.start()
    summary = categorize_feed(
        args.feed,
        predictor,
        args.out,
        batch_size=args.batch_size,
        resume=args.resume,
        progress=False,
    )
    sampler.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "peak_rss_mb": round(peak, 1),
                "rss_before_job_mb": sampler.first,
                "peak_rss_during_job_mb": sampler.peak,
                "rss_at_end_mb": sampler.last,
                "rows": summary.rows,
                "ok": summary.ok,
                "degraded": summary.degraded,
                "failed": summary.failed,
                "seconds": summary.seconds,
            }
        )
    )
    return 0


class _RssSampler(threading.Thread):
    """Samples this process's resident memory (VmRSS) every 50 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.first = self.peak = self.last = _rss_mb()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.05):
            self.last = _rss_mb()
            self.peak = max(self.peak, self.last)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.last = _rss_mb()
        self.peak = max(self.peak, self.last)


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def check_output(out: Path, expected_rows: int) -> dict[str, object]:
    """One row per input record, row numbers 1..N in order, every status counted."""
    statuses: dict[str, int] = {}
    expected = 1
    with open(out, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if int(row["row"]) != expected:
                return {"ok": False, "problem": f"row {expected} missing or out of order"}
            expected += 1
            statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    ok = expected - 1 == expected_rows
    return {"ok": ok, "rows": expected - 1, "expected": expected_rows, "statuses": statuses}


def _env(work: Path) -> dict[str, str]:
    """The job's environment: an embedding cache of this benchmark run's own, so the figures do
    not depend on what earlier runs left in the user cache (it starts empty; sizes run in
    ascending order and share it). The converted encoder weights are linked, not rebuilt."""
    cache = work / "embedding_cache"
    cache.mkdir(parents=True, exist_ok=True)
    user = Path(os.environ.get("MULTIMODAL_CAT_CACHE", Path.home() / ".cache" / "multimodal_cat"))
    if (user / "encoders").is_dir() and not (cache / "encoders").exists():
        (cache / "encoders").symlink_to(user / "encoders")
    return dict(os.environ, MULTIMODAL_CAT_CACHE=str(cache))


def run_size(work: Path, rows: int, args: argparse.Namespace) -> dict[str, object]:
    feed = work / f"feed_{rows}.csv"
    mix = build_feed(feed, rows)
    out = work / f"out_{rows}.csv"
    started = time.monotonic()
    done = subprocess.run(
        _command(feed, out, args), capture_output=True, text=True, check=True, env=_env(work)
    )
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    stats["wall_s"] = round(time.monotonic() - started, 1)
    stats["rows_per_s"] = round(stats["rows"] / stats["seconds"], 1)
    stats["feed_mb"] = round(feed.stat().st_size / 2**20, 1)
    return {"rows": rows, "mix": mix, "job": stats, "check": check_output(out, rows)}


def big_png_run(work: Path, args: argparse.Namespace, rows: int = 64) -> dict[str, object]:
    """Peak RSS of a feed whose every row points at a PNG just under the 40M-pixel cap."""
    _write_hostile_files(work / "hostile")
    feed = work / f"feed_big_png_{rows}.csv"
    feed.write_text(
        "id,title,image\n" + "".join(f"B{i},Big poster {i},hostile/big.png\n" for i in range(rows))
    )
    out = work / f"out_big_png_{rows}.csv"
    done = subprocess.run(
        _command(feed, out, args), capture_output=True, text=True, check=True, env=_env(work)
    )
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "rows": rows,
        "pixels_per_image": 6_300 * 6_300,
        "job": stats,
        "check": check_output(out, rows),
    }


def kill_and_resume(work: Path, rows: int, args: argparse.Namespace) -> dict[str, object]:
    """SIGKILL a run once half the rows are written, resume it, compare with a full run."""
    feed, full, out = (
        work / f"feed_{rows}.csv",
        work / f"out_{rows}.csv",
        work / f"killed_{rows}.csv",
    )
    checkpoint = out.with_name(f".{out.name}.progress.json")
    checkpoint.unlink(missing_ok=True)
    process = subprocess.Popen(_command(feed, out, args), stdout=subprocess.DEVNULL, env=_env(work))
    killed_at = None
    while process.poll() is None:
        try:
            done = json.loads(checkpoint.read_text())["rows"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            done = 0
        if done >= rows // 2:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            killed_at = done
            break
        time.sleep(0.05)
    size_at_kill = out.stat().st_size
    subprocess.run(
        _command(feed, out, args, resume=True), capture_output=True, check=True, env=_env(work)
    )
    identical = out.read_bytes() == full.read_bytes()
    return {
        "rows": rows,
        "killed_after_rows": killed_at,
        "bytes_at_kill": size_at_kill,
        "identical_to_uninterrupted": identical,
    }


def results_stem(report: dict[str, object]) -> str:
    """``feed_benchmark`` for the no-model dry run, ``feed_benchmark_real`` for a real predictor."""
    return "feed_benchmark" if report["predictor"].startswith("DryRun") else "feed_benchmark_real"


def write_results(report: dict[str, object]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = results_stem(report)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Feed job benchmark",
        "",
        f"Made with: `{report['command']}`",
        "",
        f"{report['when']} on {report['machine']}; predictor: {report['predictor']}.",
        "",
        "| rows | RSS before job (MB) | peak RSS during job (MB) | RSS at end (MB) | rows/s "
        "| ok | degraded | failed | all rows accounted |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for size in report["sizes"]:
        job, check = size["job"], size["check"]
        lines.append(
            f"| {size['rows']:,} | {job['rss_before_job_mb']:.0f} | "
            f"{job['peak_rss_during_job_mb']:.0f} | {job['rss_at_end_mb']:.0f} | {job['rows_per_s']:.0f} | "
            f"{job['ok']:,} | {job['degraded']:,} | {job['failed']:,} | {check['ok']} |"
        )
    lines += [
        "",
        f"Peak RSS (VmRSS sampled every 50 ms) ratio largest/smallest: **{report['rss_ratio']:.2f}** "
        f"(target <= {TARGET_RATIO}): {'pass' if report['rss_ok'] else 'FAIL'}.",
        "",
    ]
    resume = report.get("kill_resume")
    if resume:
        lines.append(
            f"kill -9 after {resume['killed_after_rows']:,} of {resume['rows']:,} rows, then "
            f"--resume: identical to an uninterrupted run: **{resume['identical_to_uninterrupted']}**."
        )
    big = report.get("big_png_feed")
    if big:
        lines += [
            "",
            f"{big['rows']} rows whose image is a {big['pixels_per_image']:,}-pixel PNG (just "
            f"under the cap): peak RSS during the job **{big['job']['peak_rss_during_job_mb']:.0f} MB** "
            f"({big['job']['rows'] / big['job']['seconds']:.1f} rows/s; issue 14 saw 2.6 GB before "
            "large decodes were serialized and reduced).",
        ]
    lines += [
        "",
        "How: each feed is a CSV built from `styles.csv` titles (cycled past 42k rows); rows "
        "whose style has an image get `images/<id>.jpg` (90%), a missing file (5%) or one of "
        "three corrupt files (truncated JPEG, random bytes, an HTML page; 5%); 0.5% of rows "
        "have an extra field (malformed), 2% an empty title, 0.2% invalid UTF-8, 0.9% hostile "
        "rows (0.1% each: NUL in the image path, NUL in the title, an encoded lone surrogate, "
        "/dev/zero or /dev/urandom as image, a FIFO as image, a data: URL, a broken data: URL, "
        "an EXIF-rotated JPEG, a 16-bit PNG); one row in 5,000 opens a quote it never closes "
        "(swallowing the rows up to the next quote) and one in 5,000 points at a 39.7M-pixel "
        "PNG. Each size "
        "runs `categorize_feed` in its own subprocess; RSS is sampled from /proc every 50 ms "
        "after the predictor is built. The kill test SIGKILLs a run once its checkpoint "
        "passes half the rows, reruns it with resume, and compares bytes with the full run.",
        "",
        "Feed mix (largest size): " + json.dumps(report["sizes"][-1]["mix"]),
        f"Code: git {report.get('commit', '?')} plus uncommitted changes at the time.",
        "",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_run"]:
        return _child(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated feed sizes")
    parser.add_argument("--fake-predictor", action="store_true", help="DryRunPredictor, no model")
    parser.add_argument("--taxonomy", default="shopify", help="for build_predictor(taxonomy=...)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--kill-size", type=int, help="feed size for the kill -9 test (default: smallest)"
    )
    parser.add_argument(
        "--work", default="/tmp/feed_benchmark", help="scratch folder (feeds, outputs)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results = [run_size(work, n, args) for n in sizes]
    for result in results:
        print(f"{result['rows']:,} rows: {json.dumps(result['job'])} check={result['check']['ok']}")
    ratio = (
        results[-1]["job"]["peak_rss_during_job_mb"] / results[0]["job"]["peak_rss_during_job_mb"]
    )
    kill_size = args.kill_size or sizes[0]
    if kill_size not in sizes:
        run_size(work, kill_size, args)
    resume = kill_and_resume(work, kill_size, args)
    print(f"kill/resume: {resume}")
    big = big_png_run(work, args)
    print(f"big PNG feed: {json.dumps(big['job'])}")
    report = {
        "command": "python benchmarks/feed_benchmark.py " + " ".join(argv),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "predictor": "DryRunPredictor (no model)"
        if args.fake_predictor
        else f"build_predictor(taxonomy={args.taxonomy!r})",
        "commit": _git_commit(),
        "embedding_cache": "the run's own, empty at the start, shared by the sizes in ascending "
        "order (then by the kill/resume test)",
        "sizes": results,
        "rss_ratio": round(ratio, 3),
        "rss_ok": ratio <= TARGET_RATIO,
        "kill_resume": resume,
        "big_png_feed": big,
    }
    write_results(report)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    good = (
        report["rss_ok"]
        and resume["identical_to_uninterrupted"]
        and all(r["check"]["ok"] for r in results)
        and big["check"]["ok"]
    )
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
