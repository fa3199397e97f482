"""``zenrec report``: a Markdown file and a self-contained HTML page from a run directory.

Works on a benchmark run (``benchmark.json``, ``results.parquet``, ``cells/``) or a tuning
run (``tune.json``, ``trials.csv``). The HTML inlines every figure as a PNG data URI and a
few lines of inline script (sortable tables): it loads nothing from the network.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import time
from pathlib import Path
from typing import Any

from zenrec._errors import DataError
from zenrec._io import atomic_write_text

__all__ = ["build_report"]


class _Doc:
    """Collects sections once and renders them to Markdown and HTML."""

    def __init__(self, title: str, fig_dir: Path) -> None:
        self.title = title
        self.fig_dir = fig_dir
        self.md: list[str] = [f"# {title}", ""]
        self.html: list[str] = [f"<h1>{html.escape(title)}</h1>"]
        self.n_fig = 0

    def h2(self, text: str) -> None:
        self.md += [f"## {text}", ""]
        self.html.append(f"<h2>{html.escape(text)}</h2>")

    def p(self, text: str) -> None:
        self.md += [text, ""]
        self.html.append(f"<p>{html.escape(text)}</p>")

    def code(self, text: str) -> None:
        self.md += ["```", text, "```", ""]
        self.html.append(f"<pre>{html.escape(text)}</pre>")

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        from zenrec.reports.tables import markdown_table

        self.md += [markdown_table(header, [[_cell(c) for c in r] for r in rows]), ""]
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in r) + "</tr>" for r in rows
        )
        self.html.append(
            f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        )

    def figure(self, png: bytes, caption: str) -> None:
        self.n_fig += 1
        name = f"fig{self.n_fig:02d}.png"
        self.fig_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.fig_dir / f".{name}.tmp"
        tmp.write_bytes(png)
        tmp.replace(self.fig_dir / name)
        self.md += [f"![{caption}]({self.fig_dir.name}/{name})", "", f"*{caption}*", ""]
        b64 = base64.b64encode(png).decode("ascii")
        self.html.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def render_html(self) -> str:
        return _HTML.format(title=html.escape(self.title), body="\n".join(self.html))


def _cell(c: Any) -> str:
    if isinstance(c, float):
        return "-" if math.isnan(c) else f"{c:.4g}"
    return "-" if c is None else str(c)


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; }}
th {{ background: #f3f3f3; cursor: pointer; }}
pre {{ background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }}
figure {{ margin: 1em 0; }} figure img {{ max-width: 100%; }}
figcaption {{ font-size: 0.85em; color: #555; }}
</style></head>
<body>
{body}
<script>
// sortable tables: click a header to sort by that column (numbers numerically)
document.querySelectorAll("table.sortable").forEach(function (table) {{
  table.querySelectorAll("th").forEach(function (th, col) {{
    th.addEventListener("click", function () {{
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var asc = th.dataset.order !== "asc"; th.dataset.order = asc ? "asc" : "desc";
      rows.sort(function (a, b) {{
        var x = a.cells[col].textContent, y = b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return asc ? c : -c;
      }});
      rows.forEach(function (r) {{ body.appendChild(r); }});
    }});
  }});
}});
document.body.dataset.ready = "1";
</script>
</body></html>
"""


def build_report(run_dir: str | Path, output: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` (and ``figures/``) for a run directory.

    Returns:
        Paths of the Markdown and HTML files.
    """
    run_dir = Path(run_dir)
    out_dir = Path(output) if output else run_dir
    if (run_dir / "benchmark.json").exists():
        meta = json.loads((run_dir / "benchmark.json").read_text())
        doc = _Doc(f"Benchmark {meta['config']['name']}", out_dir / "figures")
        _benchmark_sections(doc, run_dir, meta)
    elif (run_dir / "tune.json").exists():
        info = json.loads((run_dir / "tune.json").read_text())
        doc = _Doc(f"Tuning {info['study']}", out_dir / "figures")
        _tuning_sections(doc, run_dir, info, level="main")
    else:
        raise DataError(
            f"{run_dir}: no benchmark.json or tune.json; pass the directory written by "
            "'zenrec benchmark' or 'zenrec tune'"
        )
    doc.p(f"Generated by zenrec report on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    atomic_write_text(md_path, "\n".join(doc.md))
    atomic_write_text(html_path, doc.render_html())
    return md_path, html_path


def _benchmark_sections(doc: _Doc, run_dir: Path, meta: dict[str, Any]) -> None:
    import polars as pl

    from zenrec.experiments import BenchmarkConfig, load_cells, summarise
    from zenrec.reports import plots
    from zenrec.reports.tables import (
        fmt_ci,
        fmt_seconds,
        library_cell,
        seed_notes,
        warm_cells,
        warm_header,
    )

    cfg = BenchmarkConfig(**meta["config"])
    tables = summarise(run_dir, cfg)
    summary, sig = tables.get("summary"), tables.get("significance")
    if summary is None:
        raise DataError(
            f"{run_dir}: the benchmark has no finished cell yet; run 'zenrec benchmark' first"
        )
    if cfg.description:
        doc.p(cfg.description)
    last = meta["runs"][-1]
    doc.h2("How it was run")
    doc.table(
        ["what", "value"],
        [
            ["config", meta.get("config_source")],
            ["command", last.get("command") or f"zenrec benchmark {meta.get('config_source')}"],
            [
                "machine",
                f"{last['machine']['cpu']}, {last['machine']['cores']} cores, "
                f"load {last['machine']['load_average']}",
            ],
            ["versions", json.dumps(last.get("versions"))],
            ["seeds", ", ".join(str(s) for s in cfg.seeds)],
            [
                "tuning budget",
                "none (given hyperparameters)"
                if cfg.tune is None
                else f"{cfg.tune.trials} trials per model, timeout {cfg.tune.timeout} s, "
                f"pruner {cfg.tune.pruner}, TPE on validation data only",
            ],
            ["baseline of the tests", cfg.baseline_label],
            [
                "peers",
                "none"
                if not cfg.peers
                else "; ".join(
                    f"{p.key}: {p.library} {p.model}"
                    + (f" {json.dumps(p.params)}" if p.params else "")
                    for p in cfg.peers
                ),
            ],
        ],
    )
    if cfg.peers:
        doc.p(
            "Peers are other libraries run after the zenrec cells, one at a time, each in its "
            "own virtual environment as a subprocess, on zenrec's split of the same dataset, "
            "protocol and seed exported to files (the same rows; the split's sha256 is in each "
            "peer cell). Their "
            "metrics are the library's own evaluation (RecBole's runner reports @10 only). Peers "
            "report aggregate metrics, not per-user values, so they are left out of the "
            "significance tests. A peer that is not configured or not installed is listed with the "
            "reason (ZENREC_PEER_PYTHON_RECBOLE / _SURPRISE name their interpreters; the "
            "repository's setup_peers.sh creates them). Where a protocol "
            "has no validation part (msrec), RecBole's valid.tsv is the part zenrec tunes on, a "
            "subset of train: RecBole still trains on the whole train part, "
            "as zenrec's refit does. "
            "In the re-run commands of peer rows, SPLIT_DIR is that exported split (paths are "
            "relative to the config file's folder); rerunning the benchmark repeats them."
        )
    results = tables["results"]
    for (dname, pname), grp in summary.group_by(["dataset", "protocol"], maintain_order=True):
        from zenrec.evaluation.protocols import get_protocol

        protocol = get_protocol(str(pname))
        metrics = [
            c.removesuffix("_ci_low")
            for c in grp.columns
            if c.endswith("_ci_low")
            and c.split("@")[0] not in ("coverage", "avg_popularity", "gini", "novelty")
        ]
        main = metrics[0]
        doc.h2(f"{dname} - protocol {pname}")
        doc.p(protocol.description)
        header = [
            "model",
            "library",
            "tuned",
            "seeds",
            *[f"{m} [95% CI]" for m in metrics],
            *warm_header(grp, main),
            "fit s",
        ]
        rows = [
            [
                r["label"],
                library_cell(r),
                "yes" if r["tuned"] else "no",
                r["n_seeds"],
                *[fmt_ci(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"]) for m in metrics],
                *warm_cells(grp, main, r),
                fmt_seconds(r["fit_seconds"]),
            ]
            for r in grp.iter_rows(named=True)
        ]
        doc.table(header, rows)
        note = seed_notes(grp, metrics)
        if note:
            doc.p(note)
        if "library" in grp.columns:
            peer_rows = grp.filter(pl.col("library").fill_null("zenrec") != "zenrec")
            if peer_rows.height:
                doc.p(
                    "Peer rows: "
                    + "; ".join(
                        f"{r['label']} = {r['library']} {r['model']}"
                        + (
                            f" ({r['n_seeds']} seed{'s' if r['n_seeds'] != 1 else ''})"
                            if r["n_seeds"]
                            else f", not run: {r['note']}"
                        )
                        for r in peer_rows.iter_rows(named=True)
                    )
                    + ". They are not in the significance tests (no per-user values)."
                )
        grp = grp.filter(pl.col(main).is_not_nan() & pl.col("fit_seconds").is_not_nan())
        labels = grp["label"].to_list()
        doc.figure(
            plots.metric_bars(
                labels,
                grp[main].to_list(),
                grp[f"{main}_ci_low"].to_list(),
                grp[f"{main}_ci_high"].to_list(),
                main,
                f"{dname} / {pname}: {main}",
            ),
            f"{main} per model on {dname} ({pname}), mean over {len(cfg.seeds)} seeds with 95% CI",
        )
        doc.figure(
            plots.accuracy_vs_time(
                labels,
                grp["fit_seconds"].to_list(),
                grp[main].to_list(),
                main,
                f"{dname} / {pname}: accuracy vs training time",
            ),
            f"{main} against mean fit seconds on {dname} ({pname})",
        )
        if sig is not None:
            s = sig.filter((pl.col("dataset") == dname) & (pl.col("protocol") == pname))
            if s.height:
                doc.p(
                    f"Paired tests against {cfg.baseline_label} over users "
                    "(each user's value averaged over seeds), Holm-adjusted over the models "
                    "compared; significant = both adjusted "
                    f"p-values below {cfg.alpha}."
                )
                doc.table(
                    [
                        "metric",
                        "model",
                        "n users",
                        "mean diff [95% CI]",
                        "Wilcoxon p",
                        "Wilcoxon p (Holm)",
                        "t-test p",
                        "t-test p (Holm)",
                        "significant",
                    ],
                    [
                        [
                            r["metric"],
                            r["model"],
                            r["n"],
                            fmt_ci(r["mean_diff"], r["diff_ci_low"], r["diff_ci_high"]),
                            r["wilcoxon_p"],
                            r["wilcoxon_p_holm"],
                            r["ttest_p"],
                            r["ttest_p_holm"],
                            "yes" if r["significant"] else "no",
                        ]
                        for r in s.iter_rows(named=True)
                    ],
                )
        cov = [
            c
            for c in grp.columns
            if c.startswith("coverage@") and not c.endswith(("_low", "_high"))
        ]
        if cov:
            k = int(cov[0].split("@")[1])
            ap = f"avg_popularity@{k}"
            grp = grp.filter(pl.col(cov[0]).is_not_nan())  # peers do not report coverage
            labels = grp["label"].to_list()
            doc.figure(
                plots.popularity_coverage(
                    labels,
                    grp[cov[0]].to_list(),
                    grp[ap].to_list(),
                    grp[main].to_list(),
                    main,
                    k,
                    f"{dname} / {pname}: popularity bias and coverage",
                ),
                f"Catalog coverage@{k} and mean popularity of recommended items vs {main}",
            )
            doc.table(
                ["model", f"coverage@{k}", f"gini@{k}", f"avg_popularity@{k}", f"novelty@{k}"],
                [
                    [
                        r["label"],
                        r.get(f"coverage@{k}"),
                        r.get(f"gini@{k}"),
                        r.get(ap),
                        r.get(f"novelty@{k}"),
                    ]
                    for r in grp.iter_rows(named=True)
                ],
            )
        histories = {}
        for rec in load_cells(run_dir):
            if (
                rec.dataset == dname
                and rec.protocol["name"] == pname
                and rec.history
                and rec.label is not None
                and rec.label not in histories
            ):
                histories[rec.label] = rec.history
        if histories:
            doc.figure(
                plots.learning_curves(
                    histories, main.removesuffix("(sampled)"), f"{dname} / {pname}"
                ),
                "Per-epoch validation metric (first seed) of the iterative models",
            )
        else:
            doc.p(
                "Learning curves: no per-epoch histories were recorded "
                "(the models here fit in closed form or fixed sweeps without validation passes)."
            )
        doc.h2(f"Re-run any row ({dname}, {pname})")
        sub = results.filter((pl.col("dataset") == dname) & (pl.col("protocol") == pname)).sort(
            ["label", "seed"]
        )
        commands = sorted({c for c in sub["command"].to_list() if c})
        if commands:
            doc.code("\n".join(commands))
        own = (
            sub.filter(pl.col("library").fill_null("zenrec") == "zenrec")
            if "library" in sub.columns
            else sub
        )
        missing = own.filter(pl.col("command").is_null()).height
        if missing:
            doc.p(
                f"{missing} of {own.height} zenrec rows have no re-run command: their dataset "
                "was given in Python, so no command line reads the same interactions; each "
                "cell's data_fingerprint identifies them (name a built-in dataset, a file or a "
                "data config in 'datasets' to get commands)."
            )
    tdir = run_dir / "tuning"
    if tdir.exists():
        for t in sorted(tdir.glob("*/tune.json")):
            _tuning_sections(doc, t.parent, json.loads(t.read_text()), level="sub")


def _read_trials(run_dir: Path) -> list[dict[str, str]]:
    f = run_dir / "trials.csv"
    if not f.exists():
        return []
    with f.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _tuning_sections(doc: _Doc, run_dir: Path, info: dict[str, Any], level: str) -> None:
    from zenrec.reports import plots

    doc.h2(f"Tuning: {info['study']}")
    default = info.get("default_value_valid")
    doc.table(
        ["what", "value"],
        [
            [
                "model / dataset / protocol",
                f"{info['model']} / {info['dataset']} / {info['protocol']['name']}",
            ],
            ["objective", f"{info['direction']} validation {info['metric']}"],
            ["validation data", info.get("validation")],
            ["sampler / pruner", f"{info.get('sampler')} / {info.get('pruner')}"],
            [
                "finished trials",
                f"{info['n_finished']} (target {info.get('n_trials_target')}), "
                f"states {info.get('states')}",
            ],
            [
                "best trial",
                f"#{info['best_trial']}: {info['best_value_valid']:.4f} (default config: "
                f"{'-' if default is None else round(default, 4)})",
            ],
            ["best params", json.dumps(info["best_params"])],
            ["storage", info.get("storage")],
        ],
    )
    if info.get("test"):
        m = info["test"]["metrics"]
        doc.p(
            "Best configuration refit on train, evaluated once on test: "
            + ", ".join(f"{k} {v:.4f}" for k, v in m.items() if "@" not in k or k.endswith("@10"))
        )
    if info.get("reproduce"):
        doc.code(info["reproduce"])
    elif info.get("reproduce_note"):
        doc.p(f"Re-run: none; {info['reproduce_note']} ({info.get('data_fingerprint')}).")
    for remark in info.get("remarks") or []:
        doc.p(f"Note: {remark}.")
    trials = _read_trials(run_dir)
    if trials:
        nums = [int(t["number"]) for t in trials]
        vals = [float(t["value"]) if t["value"] not in ("", None) else None for t in trials]
        doc.figure(
            plots.tuning_history(
                nums,
                vals,
                [t["state"] for t in trials],
                info["metric"],
                info["direction"],
                f"tuning history: {info['study']}",
            ),
            f"Validation {info['metric']} of each trial and the best so far ({info['study']})",
        )
        _trial_seconds(doc, trials)
    imp, how = _importances(info, run_dir) or ({}, "")
    if imp:
        doc.figure(
            plots.param_importance(imp, f"parameter importance: {info['study']}", how),
            f"Hyperparameter importance (optuna.importance, {how}) for {info['study']}",
        )
    elif info.get("space", {}).get("params"):
        doc.p(
            "Parameter importance: not available (needs at least two completed trials "
            "and a readable storage)."
        )


def _trial_seconds(doc: _Doc, trials: list[dict[str, str]]) -> None:
    """Each trial's fit seconds, with the median and the slowest against it."""
    rows, secs = [], []
    for t in trials:
        raw = t.get("fit_seconds") or ""
        s = float(raw) if raw else None
        if s is not None:
            secs.append(s)
        rows.append(
            [
                t["number"],
                t["state"].lower(),
                t.get("value") or "-",
                "-" if s is None else f"{s:.1f}",
                t.get("last_epoch") or "-",
            ]
        )
    if not secs:
        return
    import statistics

    med = float(statistics.median(secs))
    doc.p(
        f"Trial fit seconds: median {med:.1f}, slowest {max(secs):.1f} "
        f"({max(secs) / med if med > 0 else float('nan'):.1f}x the median)."
    )
    doc.table(["trial", "state", "value", "fit s", "last epoch"], rows)


def _importances(info: dict[str, Any], run_dir: Path) -> tuple[dict[str, float], str] | None:
    """Hyperparameter importances of a tuning study and the method's name, or None."""
    storage_url = info.get("storage") or ""
    if (
        "***" in storage_url
        or not info.get("space", {}).get("params")
        or len(info["space"]["params"]) < 1
    ):
        return None
    try:
        import optuna

        from zenrec.tuning.tuner import make_storage

        storage, _ = make_storage(storage_url, run_dir)
        study = optuna.load_study(study_name=info["study"], storage=storage)
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(complete) < 2:
            return None
        import importlib.util

        ev: optuna.importance.BaseImportanceEvaluator
        if importlib.util.find_spec("sklearn") is not None:
            ev, how = optuna.importance.FanovaImportanceEvaluator(seed=0), "fANOVA"
        else:  # fANOVA needs scikit-learn; PED-ANOVA does not
            ev, how = optuna.importance.PedAnovaImportanceEvaluator(), "PED-ANOVA"
        return optuna.importance.get_param_importances(study, evaluator=ev), how
    except Exception:  # an unreachable storage must not stop the report
        return None
