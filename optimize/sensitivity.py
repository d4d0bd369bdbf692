"""What the data determine: the exact Hessian of the loss with respect to the fitted parameters
(forward-over-reverse through the engine, charges and forces included) at fixed geometry, in
coordinates scaled by each parameter's bound range, and its eigen-spectrum. Stiff directions
(large eigenvalues) are pinned by the training set; sloppy ones (small) are not: moving along
them barely changes the loss, so their values are not determined by the data."""
from __future__ import annotations

import numpy as np

import reaxgrad.core as rg


def loss_hessian(problem, theta, chunk: int = 8) -> np.ndarray:
    """d²L/dθ² of the training loss at the problem's current geometries (P × P), column
    blocks of ``chunk`` Hessian-vector products per compiled call."""
    args = problem._args()
    weights = {k: float(k == "train") for k in problem.tables}
    need = problem.need_forces

    def loss(th, positions, lists, charges):
        return problem._traced_loss(th, need, positions, lists, charges, weights)[0]

    def columns(th, block, positions, lists, charges):
        grad = rg.grad(loss)
        return rg.vmap(lambda v: rg.jvp(lambda t: grad(t, positions, lists, charges),
                                        (th,), (v,))[1])(block)

    compiled = rg.jit(columns)
    p = len(theta)
    eye = np.eye(p)
    out = np.zeros((p, p))
    for start in range(0, p, chunk):
        block = eye[start:start + chunk]
        if len(block) < chunk:  # same shape every call: one compilation
            block = np.vstack([block, np.zeros((chunk - len(block), p))])
        cols = np.asarray(compiled(np.asarray(theta, dtype=np.float64), block, *args))
        n = min(chunk, p - start)
        out[start:start + n] = cols[:n]
    return 0.5 * (out + out.T)


def sensitivity_report(problem, theta) -> dict:
    """Gradient, scaled Hessian diagonal and eigen-decomposition, per parameter."""
    loss, grad = problem.loss_and_grad(theta)
    hessian = loss_hessian(problem, theta)
    bounds = problem.pmap.bounds
    scale = np.where(np.isfinite(bounds[:, 1] - bounds[:, 0]),
                     bounds[:, 1] - bounds[:, 0], np.maximum(np.abs(theta), 1.0))
    scaled = hessian * scale[:, None] * scale[None, :]
    values, vectors = np.linalg.eigh(scaled)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    labels = problem.pmap.labels()
    top = max(abs(values[0]), 1e-300)
    return {
        "loss": loss,
        "scaling": "θ_k / (upper_k − lower_k) (bound ranges)",
        "parameters": [
            {"parameter": labels[k], "value": float(theta[k]),
             "lower": float(bounds[k, 0]), "upper": float(bounds[k, 1]),
             "gradient": float(grad[k]), "scaled_gradient": float(grad[k] * scale[k]),
             "scaled_curvature": float(scaled[k, k]),
             "stiffest_mode_weight": float(vectors[k, 0] ** 2)}
            for k in range(len(theta))],
        "eigenvalues": values.tolist(),
        "relative_eigenvalues": (values / top).tolist(),
        "eigenvectors": vectors.T.tolist(),
        "sloppy_modes": int(np.sum(np.abs(values) < 1e-6 * top)),
        "hessian": hessian.tolist(),
    }


def sensitivity_plot(path, report: dict) -> None:
    """Eigen-spectrum (log scale) and per-parameter scaled curvature."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import write_atomic

    values = np.array(report["eigenvalues"])
    params = report["parameters"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4),
                                      gridspec_kw={"width_ratios": [1, 2]})
    modes = np.arange(len(values))
    floor = max(np.abs(values).max(initial=0.0), 1e-300) * 1e-12
    up = values > 0
    left.semilogy(modes[up], np.maximum(values[up], floor), "o", ms=4, label="positive")
    left.semilogy(modes[~up], np.maximum(-values[~up], floor), "o", ms=4, mfc="none",
                  label="negative")
    left.set_xlabel("mode (stiff → sloppy)")
    left.set_ylabel("|eigenvalue| of the scaled Hessian")
    left.legend(fontsize=7)
    curv = np.array([p["scaled_curvature"] for p in params])
    right.bar(range(len(params)), np.maximum(np.abs(curv), floor),
              color=np.where(curv > 0, "C0", "C3"))
    right.set_yscale("log")
    right.set_xticks(range(len(params)))
    right.set_xticklabels([p["parameter"] for p in params], rotation=90, fontsize=6)
    right.set_ylabel("|scaled curvature| d²L/dθ̃² (red: negative)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, buffer.getvalue(), mode="wb")
