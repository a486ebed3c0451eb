"""The region page as one standalone HTML file: images embedded, no scripts, no links out,
so it can be mailed or opened from a USB stick."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from floodkd import __version__
from floodkd.report.collect import RegionResults

__all__ = ["render_page", "render_section"]

_STYLE = """
body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.2em .5em}
th{background:#f2f2f2}td.n{text-align:right}.warn{background:#fff3cd;padding:.5em}
figure{display:inline-block;margin:.5em}img{max-width:100%}figcaption{font-size:90%}
code{font-size:90%}
"""
# the metric columns of the evaluation table, in order
_SCORES = ("iou", "flood_iou", "f1", "precision", "recall", "pixels")
# a benchmark file's columns worth a reader's time (Snakemake writes more)
_BENCHMARK_COLUMNS = ("s", "max_rss", "cpu_time", "mean_load")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return _e(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{_number(c)}</td>' if isinstance(c, (int, float))
                         else f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _metrics(results: RegionResults) -> str:
    if results.metrics is None:
        return "<p>No evaluation for this region (it has no truth or held-out labels, or " \
               "it is mapped by the radar teacher).</p>"
    metrics = results.metrics
    models = [name for name, row in metrics.items() if isinstance(row, dict) and "iou" in row]
    parts = []
    if results.metrics_details:
        parts.append(f"<p>Truth: {_e(results.metrics_details.get('truth', 'n/a'))}. Flooded "
                     f"means P(flood) &gt; "
                     f"{_e(results.metrics_details.get('settings', {}).get('threshold'))}.</p>")
    parts.append(_table(["model", *_SCORES], ([m, *(metrics[m].get(k) for k in _SCORES)]
                                             for m in models)))
    ece = metrics.get("ece", {})
    parts.append(_table(["label fraction", "ECE before calibration", "ECE after calibration",
                         "uncertainty-error AUROC"],
                        [[metrics.get("label_fraction"), ece.get("before_calibration"),
                          ece.get("after_calibration"), metrics.get("uncertainty_error_auroc")]]))
    return "".join(parts)


def _maps(results: RegionResults) -> str:
    if not results.quicklooks:
        return "<p>No maps yet.</p>"
    parts = [_image(path, path.stem.replace("_", " ")) for path in results.quicklooks]
    rows = []
    for name, tags in results.map_tags.items():
        # predict tags each setting of the scenario as SCENARIO_<KEY>
        scenario = {k.removeprefix("SCENARIO_").lower(): v for k, v in tags.items()
                    if k.startswith("SCENARIO_") and k != "SCENARIO_DATETIME"}
        rows.append([name, tags.get("SCENARIO", ""), tags.get("SCENARIO_DATETIME", ""),
                     ", ".join(f"{k}={v}" for k, v in scenario.items()),
                     tags.get("MODEL_SHA256", "")[:12]])
    parts.append(_table(["map", "scenario", "date", "scenario settings", "model sha256"], rows))
    return "".join(parts)


def _inputs(results: RegionResults) -> str:
    rows = [[modality, item["glob"], len(item["files"])] for modality, item in
            results.inputs.items()]
    parts = [_table(["modality", "files matched by", "files"], rows)]
    for modality, item in results.inputs.items():
        listed = "".join(f"<li><code>{_e(f)}</code></li>" for f in item["files"])
        parts.append(f"<details><summary>{_e(modality)}: {len(item['files'])} file(s)"
                     f"</summary><ul>{listed}</ul></details>")
    used = {name: json.loads(tags["INPUT_FILES"]) for name, tags in results.map_tags.items()
            if "INPUT_FILES" in tags}
    for name, files in used.items():
        listed = "".join(f"<li><code>{_e(f)}</code></li>" for f in files)
        parts.append(f"<details><summary>read by {_e(name)}: {len(files)} file(s)</summary>"
                     f"<ul>{listed}</ul></details>")
    return "".join(parts)


def _return_levels(results: RegionResults) -> str:
    parts = []
    if results.return_levels:
        header = list(results.return_levels[0])
        parts.append(_table(header, ([_maybe_float(row[k]) for k in header]
                                     for row in results.return_levels)))
    if results.return_levels_png is not None:
        parts.append(_image(results.return_levels_png, "return levels"))
    return "".join(parts)


def _maybe_float(text: str) -> Any:
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def _json_html(value: Any, depth: int = 0) -> str:
    """Nested JSON as nested lists; a list of flat records as a table."""
    if isinstance(value, dict):
        items = "".join(f"<li><b>{_e(k)}</b>: {_json_html(v, depth + 1)}</li>"
                        for k, v in value.items())
        return f"<ul>{items}</ul>"
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value) and all(
                not isinstance(x, (dict, list)) for v in value for x in v.values()):
            header = list(dict.fromkeys(k for v in value for k in v))
            return _table(header, ([v.get(k, "") for k in header] for v in value))
        return "<ul>" + "".join(f"<li>{_json_html(v, depth + 1)}</li>" for v in value) + "</ul>"
    return _number(value)


def _benchmarks(results: RegionResults) -> str:
    if not results.benchmarks:
        return "<p>No benchmark files.</p>"
    rows = [[job, *(_maybe_float(row.get(c, "")) for c in _BENCHMARK_COLUMNS)]
            for job, row in results.benchmarks.items()]
    return ("<p>Wall-clock seconds, peak resident memory (MB), CPU seconds and mean load (%) "
            "of each job, from the Snakemake benchmark files.</p>"
            + _table(["job", "wall s", "max RSS MB", "CPU s", "mean load %"], rows))


def _document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{_e(title)}</h1>{body}</body></html>\n")


def render_section(results: RegionResults, section: str) -> str:
    """One section as a page of its own (``metrics`` or ``benchmarks``), for Snakemake's
    report, which shows HTML results inline."""
    content = {"metrics": _metrics, "benchmarks": _benchmarks}[section](results)
    return _document(f"{results.region}: {section}", content)


def render_page(results: RegionResults, figures: dict[str, Path]) -> str:
    """The HTML of the region page; ``figures`` holds the reliability and training PNGs
    (keys ``reliability`` and ``training``) where there was data for them."""
    sections = [("Evaluation", _metrics(results)), ("Maps", _maps(results))]
    if "reliability" in figures:
        sections.append(("Reliability diagram", _image(
            figures["reliability"], "observed flooded fraction against predicted P(flood), "
            "distilled student, evaluation pixels")))
    if "training" in figures:
        sections.append(("Training curves", _image(figures["training"],
                                                   "loss per epoch of each phase and member")))
    sections.append(("Inputs used", _inputs(results)))
    if results.return_levels or results.return_levels_png:
        sections.append(("Return levels", _return_levels(results)))
    if results.plan is not None:
        sections.append(("Plan", _json_html(results.plan)))
    sections.append(("Benchmarks", _benchmarks(results)))
    warning = ('<p class="warn">SYNTHETIC region: the demo coast, not a real place.</p>'
               if results.synthetic else "")
    body = "".join(f"<h2>{_e(title)}</h2>{content}" for title, content in sections)
    return _document(f"floodkd report: {results.region}",
                     f"{warning}<p>floodkd {_e(__version__)}.</p>{body}")
