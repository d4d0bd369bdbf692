"""Fit outputs: report.json / report.txt (per item), summary.json, parity and loss plots, all
written atomically (temporary file + rename) so that a killed run never leaves half a file."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .items import REPORT_ORDER


def write_atomic(path, data, mode="w") -> None:
    """Write text or bytes to ``path`` through a temporary file in the same folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=1, default=_plain) + "\n")


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(type(x))


def item_rows(tables: dict, evaluation) -> list[dict]:
    """report.json rows, one per scalar target, in trainset order."""
    rows = []
    for cat, t in tables.items():
        pred, err = evaluation.predictions[cat], evaluation.errors[cat]
        for r, item in enumerate(t.items):
            comps = ("x", "y", "z") if cat == "FORCE" else (None,)
            for c, comp in enumerate(comps):
                rows.append({
                    "category": cat, "component": comp, "text": item.text, "line": item.line,
                    "weight": item.weight, "target": float(item.targets[c]),
                    "prediction": float(pred[r, c] if comp else pred[r]),
                    "error": float(err[r, c] if comp else err[r]),
                })
    rows.sort(key=lambda row: (row["line"], "xyz".find(row["component"] or "x")))
    return rows


def report_json(tables: dict, evaluation) -> dict:
    return {"loss": evaluation.loss, "scored": list(evaluation.scored),
            "categories": {c: evaluation.categories.get(c, 0.0) for c in REPORT_ORDER
                           if c in evaluation.categories},
            "items": item_rows(tables, evaluation)}


def _jax_text(item, component) -> str:
    """JAX-ReaxFF's "Item Text" column."""
    cat = item.category
    if cat == "ENERGY":
        terms = []
        for name, f in zip(item.structures, item.factors):
            div = round(1.0 / f)
            terms.append(f"{'-' if div < 0 else '+'} {name}/{abs(div)}")
        return "ENERGY: " + " ".join(terms)
    atoms = " ".join(str(a + 1) for a in item.atoms)
    name = item.structures[0]
    if cat == "FORCE":
        return f"FORCE-{component.upper()}: {name} {atoms}"
    if cat == "CELL":
        return f"CELL: {name} {item.cell_parameter}"
    return f"{cat}: {name} {atoms}".rstrip()


def report_text(tables: dict, evaluation) -> str:
    """The JAX-ReaxFF report table (its columns and order: ENERGY, CHARGE, FORCE, DISTANCE,
    ANGLE, TORSION; then the categories it does not score)."""
    from tabulate import tabulate

    headers = ["Item Text", "Weight", "Target", "Prediction", "Weighted Error", "Cum. Sum."]
    rows, total = [], 0.0
    for cat in REPORT_ORDER:
        if cat not in tables:
            continue
        t = tables[cat]
        pred, err = evaluation.predictions[cat], evaluation.errors[cat]
        for r, item in enumerate(t.items):
            comps = ("x", "y", "z") if cat == "FORCE" else (None,)
            for c, comp in enumerate(comps):
                e = float(err[r, c] if comp else err[r])
                total += e
                rows.append([_jax_text(item, comp), item.weight, float(item.targets[c]),
                             float(pred[r, c] if comp else pred[r]), e, total])
    return tabulate(rows, headers, floatfmt=".2f") + "\n"


def write_reports(folder, tables: dict, evaluation, prefix="") -> None:
    folder = Path(folder)
    write_json(folder / f"{prefix}report.json", report_json(tables, evaluation))
    write_atomic(folder / f"{prefix}report.txt", report_text(tables, evaluation))


def _save_figure(fig, path) -> None:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_atomic(path, buffer.getvalue(), mode="wb")


def parity_plots(folder, tables: dict, evaluation, prefix="") -> list[str]:
    """parity_<CATEGORY>.png: prediction against target per category."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for cat in tables:
        target = np.ravel([it.targets for it in tables[cat].items])
        pred = np.ravel(evaluation.predictions[cat])
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
        lo, hi = float(min(target.min(), pred.min())), float(max(target.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], color="0.6", lw=1)
        ax.scatter(target, pred, s=8)
        ax.set_xlabel("target")
        ax.set_ylabel("prediction")
        ax.set_title(f"{cat} (error {evaluation.categories[cat]:.4g})")
        fig.tight_layout()
        name = f"{prefix}parity_{cat}.png"
        _save_figure(fig, Path(folder) / name)
        plt.close(fig)
        written.append(name)
    return written


def loss_plot(folder, history: list[dict]) -> None:
    """loss.png: true loss per outer iteration (and the best so far)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    fig, ax = plt.subplots(figsize=(5, 3.5))
    x = np.arange(len(history))
    ax.semilogy(x, [h["true_loss"] for h in history], marker="o", ms=3, label="true loss")
    ax.semilogy(x, [h["best"] for h in history], label="best")
    if any("valid_loss" in h for h in history):
        ax.semilogy(x, [h.get("valid_loss", np.nan) for h in history], label="validation")
    ax.set_xlabel("outer iteration (all trials)")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    _save_figure(fig, Path(folder) / "loss.png")
    plt.close(fig)
