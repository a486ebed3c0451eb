"""Mutation check: plant one-line bugs where the numbers come from and see the tests catch them.

    nice -n 10 python tests/mutation/run.py            # every mutation
    nice -n 10 python tests/mutation/run.py cog ece    # those whose name contains a word

For each mutation in ``MUTATIONS`` the script replaces one exact piece of one source line,
runs only the test files that should catch it (``pytest -x``), restores the file and records
the first failing test. The relevant test files are first run unmutated: a failing baseline
would make every mutation look caught, so the script stops there. Files are restored on
Ctrl-C and on SIGTERM; a file with uncommitted changes is refused, so ``git checkout`` can
always recover it. A mutation whose line no longer matches the source exactly once is
reported as stale: update its ``original`` to the current code. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 900  # one mutation's test run; a hang counts as not caught


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to the repository root
    original: str  # must occur exactly once in the file
    mutated: str
    tests: tuple[str, ...]  # test files (or node ids) that should catch it


METRICS = "src/floodkd/evaluate/metrics.py"
EVALUATE = "src/floodkd/evaluate/evaluate.py"
CALIBRATION = "src/floodkd/distill/calibration.py"
INFERENCE = "src/floodkd/distill/inference.py"
BLENDING = "src/floodkd/predict/blending.py"
TILED = "src/floodkd/predict/tiled.py"
COG = "src/floodkd/predict/cog.py"
LOSSES = "src/floodkd/distill/losses.py"
DATA = "src/floodkd/distill/data.py"

T_METRICS = ("tests/evaluate/test_metrics.py",)
T_EVALUATE = ("tests/evaluate/test_evaluate_scores.py",)
T_CALIBRATION = ("tests/distill/test_calibration.py",)
T_CALIBRATED_MAPS = ("tests/predict/test_calibrated_maps.py",)
T_BLENDING = ("tests/predict/test_blending_uncertainty.py", "tests/predict/test_tiled.py")
T_MAPS = ("tests/predict/test_maps.py", "tests/predict/test_overviews.py")
T_LOSSES = ("tests/distill/test_losses.py",)
T_DATA = ("tests/distill/test_data.py",)

MUTATIONS = [
    # metrics
    Mutation("precision and recall swapped", METRICS,
             '"precision": _ratio(tp, tp + fp),', '"precision": _ratio(tp, tp + fn),', T_METRICS),
    Mutation("IoU without false negatives", METRICS,
             '"iou": _ratio(tp, tp + fp + fn),', '"iou": _ratio(tp, tp + fp),', T_METRICS),
    Mutation("F1 computed as IoU", METRICS,
             '"f1": _ratio(2 * tp, 2 * tp + fp + fn),', '"f1": _ratio(tp, tp + fp + fn),',
             T_METRICS),
    Mutation("AUROC ranks the correct pixels", METRICS,
             "u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0",
             "u = ranks[~positive].sum() - n_neg * (n_neg + 1) / 2.0", T_METRICS),
    Mutation("truth 255 scored as dry", EVALUATE,
             "scored_px = cover & (truth != LABEL_NODATA)  # tiles",
             "scored_px = cover  # tiles", T_EVALUATE),
    Mutation("land subset keeps the sea", EVALUATE,
             "permanent[ok], ~sea[ok])", "permanent[ok], np.ones_like(ok[ok]))", T_EVALUATE),
    # calibration
    Mutation("calibration not applied at inference", INFERENCE,
             "calibration.temperature, calibration.bias,", "1.0, 0.0,", T_CALIBRATED_MAPS),
    Mutation("water bias not applied at inference", INFERENCE,
             "calibration.temperature, calibration.bias,", "calibration.temperature, 0.0,",
             T_CALIBRATED_MAPS),
    Mutation("dry class read as P(flood)", CALIBRATION,
             "dry, water = logits.unbind(dim)", "water, dry = logits.unbind(dim)",
             T_CALIBRATION),
    Mutation("calibration fit counts unlabelled pixels", CALIBRATION,
             "keep = labels_t != IGNORE_LABEL", "keep = labels_t >= 0", T_CALIBRATION),
    Mutation("calibration fit on the members' mean margin, not their mean P", CALIBRATION,
             "margin = logits_t[..., 1] - logits_t[..., 0]",
             "margin = (logits_t[..., 1] - logits_t[..., 0]).mean(0, keepdim=True)",
             T_CALIBRATION),
    Mutation("ECE bins not weighted by their pixels", CALIBRATION,
             "return float((counts[filled] / prob.size * gap).sum())",
             "return float(gap.mean())", T_CALIBRATION),
    Mutation("ECE counts unknown labels", CALIBRATION,
             "keep = (truth != IGNORE_LABEL) & np.isfinite(prob)", "keep = np.isfinite(prob)",
             T_CALIBRATION),
    # blending
    Mutation("blend weight zero at the tile edge", BLENDING,
             "np.pi * (i + 0.5) / (ramp_len + 1)", "np.pi * i / (ramp_len + 1)", T_BLENDING),
    Mutation("far ramp not mirrored", BLENDING,
             "weights[length - ramp_len :] = ramp[::-1]", "weights[length - ramp_len :] = ramp",
             T_BLENDING),
    Mutation("tiles added unweighted", TILED,
             "            moments *= weight\n", "", T_BLENDING),
    # COG writing
    Mutation("COG nodata dropped from the scratch profile", COG,
             '"transform": transform, "nodata": nodata, "tiled": True,',
             '"transform": transform, "tiled": True,', T_MAPS),
    Mutation("NaN written as 0, not nodata", COG,
             "values = np.where(np.isfinite(values), values, self._nodata)",
             "values = np.nan_to_num(values)", T_MAPS),
    Mutation("one overview resampling for every band", COG,
             "dataset.build_overviews(factors, Resampling[band.overview_resampling])",
             "dataset.build_overviews(factors, Resampling.average)", T_MAPS),
    Mutation("region outline not applied", TILED,
             "return values if inside is None else np.where(inside, values, np.nan)",
             "return values", T_MAPS),
    # losses
    Mutation("KD loss scaled by T, not T^2", LOSSES,
             "return _masked_mean(per_pixel, mask) * temperature**2",
             "return _masked_mean(per_pixel, mask) * temperature", T_LOSSES),
    Mutation("KD gradient reaches the teacher", LOSSES,
             "F.log_softmax(teacher_logits.detach() / temperature, dim=1)",
             "F.log_softmax(teacher_logits / temperature, dim=1)", T_LOSSES),
    Mutation("reverse KL", LOSSES,
             "per_pixel = (teacher_log_p.exp() * (teacher_log_p - student_log_p)).sum(dim=1)",
             "per_pixel = (student_log_p.exp() * (student_log_p - teacher_log_p)).sum(dim=1)",
             T_LOSSES),
    Mutation("temperature annealed linearly", LOSSES,
             "return float(t_start * math.exp(fraction * math.log(t_end / t_start)))",
             "return float(t_start + fraction * (t_end - t_start))", T_LOSSES),
    # hold-out selection
    Mutation("hold-out rounds down", DATA,
             "n_held = math.ceil(fraction * passes.size)",
             "n_held = math.floor(fraction * passes.size)", T_DATA),
    Mutation("hold-out ignores the radar matching window", DATA,
             "n_held] - np.timedelta64(int(window_days * 86400), \"s\")",
             "n_held] - np.timedelta64(0, \"s\")", T_DATA),
    Mutation("calibration hold-out may take every block", DATA,
             "for block in order[: max(len(order) - 1, 0)]:", "for block in order:", T_DATA),
    # ingest unit handling
    Mutation("SAR linear to dB with 20 log10", "src/floodkd/ingest/sar.py",
             "decibels = 10.0 * np.log10(linear_power)",
             "decibels = 20.0 * np.log10(linear_power)", ("tests/ingest/test_sar.py",)),
    Mutation("optical offset tag ignored", "src/floodkd/ingest/optical.py",
             'return DnScaling(1.0 / q, (offset or 0.0) / q, "tags")',
             'return DnScaling(1.0 / q, 0.0, "tags")', ("tests/ingest/test_optical.py",)),
    Mutation("GCM precipitation flux not converted to mm/day", "src/floodkd/ingest/gcm.py",
             '"kg m-2 s-1": 86400.0,', '"kg m-2 s-1": 1.0,', ("tests/ingest/test_gcm.py",)),
    Mutation("DEM in feet kept as metres", "src/floodkd/ingest/terrain.py",
             "_FOOT_M = 0.3048", "_FOOT_M = 1.0", ("tests/ingest/test_terrain.py",)),
]


class Stopped(Exception):
    """SIGTERM: stop like Ctrl-C, restoring the file first."""


def _on_sigterm(_signum, _frame) -> None:
    raise Stopped


def dirty(path: str) -> bool:
    """True when git sees uncommitted changes to ``path`` (so restoring could lose work)."""
    status = subprocess.run(["git", "status", "--porcelain", "--", path], cwd=REPO,
                            capture_output=True, text=True, check=True)
    return bool(status.stdout.strip())


def run_tests(tests: tuple[str, ...]) -> tuple[int, str]:
    """pytest -x on ``tests`` against this checkout's sources: (exit code, first failure)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider",
               "-m", "not slow", *tests]
    try:
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return -1, f"timeout after {TIMEOUT_S} s"
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, re.MULTILINE)
    return result.returncode, failed[0] if failed else result.stdout.strip()[-200:]


def plant_and_test(mutation: Mutation) -> tuple[str, str]:
    """(result, detail): caught / survived / stale / refused, and the test that caught it."""
    path = REPO / mutation.path
    if dirty(mutation.path):
        return "refused", "uncommitted changes in the file: commit or stash them first"
    source = path.read_text()
    count = source.count(mutation.original)
    if count != 1:
        return "stale", f"original found {count} times: update it to the current code"
    try:
        path.write_text(source.replace(mutation.original, mutation.mutated))
        code, detail = run_tests(mutation.tests)
    finally:
        path.write_text(source)
    if code == 0:
        return "survived", ", ".join(mutation.tests)
    if code in (1, 2):  # tests failed, or collection broke (e.g. import error)
        return "caught", detail
    return "error", f"pytest exit {code}: {detail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("words", nargs="*", help="run only mutations whose name has a word")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS
              if not args.words or any(w.lower() in m.name.lower() for w in args.words)]
    if not chosen:
        print("no mutation matches", args.words, file=sys.stderr)
        return 2
    changed = sorted({m.path for m in chosen if dirty(m.path)})
    if changed:
        print(f"refusing: uncommitted changes in {', '.join(changed)} (a mutation run rewrites "
              "these files): commit or stash them first", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
    print(f"baseline: {len(tests)} test files unmutated ...", flush=True)
    code, detail = run_tests(tests)
    if code != 0:
        print(f"baseline fails ({detail}): fix the tests before counting mutations",
              file=sys.stderr)
        return 1
    rows = []
    try:
        for number, mutation in enumerate(chosen, start=1):
            result, detail = plant_and_test(mutation)
            rows.append((number, mutation, result, detail))
            print(f"[{number}/{len(chosen)}] {result:8} {mutation.name}: {detail}", flush=True)
    except (KeyboardInterrupt, Stopped):
        print("\nstopped; the mutated file was restored", file=sys.stderr)
        return 130
    print("\n| # | mutation | file | result | caught by |\n|---|---|---|---|---|")
    for number, mutation, result, detail in rows:
        caught_by = detail if result == "caught" else ""
        note = "" if result in ("caught", "survived") else f" ({detail})"
        print(f"| {number} | {mutation.name} | {mutation.path.removeprefix('src/floodkd/')} | "
              f"{result}{note} | {caught_by} |")
    caught = sum(result == "caught" for _, _, result, _ in rows)
    print(f"\ncaught {caught} of {len(rows)}")
    return 0 if all(result in ("caught", "survived") for _, _, result, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
