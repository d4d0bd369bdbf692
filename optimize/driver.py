"""The fitting loop, after JAX-ReaxFF's ``train_FF``: relax the flagged structures, measure the
true loss, keep the best parameters, add noise when stuck, then minimise the surrogate (loss at
the relaxed geometries held fixed) with ``scipy.optimize.minimize`` (L-BFGS-B or SLSQP within
the params-file bounds). Several trials from fixed, random or "educated" starts.

State is checkpointed (atomically) after every outer iteration, so a killed run resumes where
it stopped and ends with the same result as an uninterrupted one (same seed).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import minimize

# JAX-ReaxFF's advanced options
ERROR_CHANGE_THRESHOLD = 0.01  # relative change of the true loss below which we are "stuck"
RESTRICTED_WIDTH = 0.15  # width of the restricted search near the end, fraction of the range


@dataclass
class Settings:
    num_trials: int = 1
    num_steps: int = 5
    opt_method: str = "L-BFGS-B"
    init_type: str = "fixed"  # fixed | random | educated
    random_sample_count: int = 0
    num_e_minim_steps: int = 0
    e_minim_lr: float = 5e-4
    end_rmsg: float = 1.0
    minimizer: str = "sd"  # sd (JAX-ReaxFF) | fire | lbfgs
    geometry_gradients: str = "implicit"  # implicit | fixed (JAX-ReaxFF)
    perc_noise_when_stuck: float = 0.04
    seed: int = 0
    max_time: float | None = None
    max_iter: int = 100  # scipy iterations per outer iteration (JAX-ReaxFF: 100)


@dataclass
class State:
    """Everything needed to resume: the position in the loop and the random stream."""

    trial: int = 0
    iteration: int = 0
    params: list | None = None
    bounds: list | None = None
    global_min: float = float("inf")
    global_min_params: list | None = None
    true_loss: float = 0.0
    surrogate: float = 0.0
    lowered: bool = False
    rng: dict | None = None
    best_loss: float = float("inf")
    best_params: list | None = None
    trials: list = field(default_factory=list)
    history: list = field(default_factory=list)  # one dict per outer iteration
    evaluations: int = 0
    done: bool = False


def rng_state(rng: np.random.RandomState) -> dict:
    name, keys, pos, has_gauss, gauss = rng.get_state()
    return {"name": name, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
            "gauss": float(gauss)}


def restore_rng(state: dict) -> np.random.RandomState:
    rng = np.random.RandomState()
    rng.set_state((state["name"], np.array(state["keys"], dtype=np.uint32), state["pos"],
                   state["has_gauss"], state["gauss"]))
    return rng


def add_noise(params, bounds, scale, rng):
    """Uniform noise of ±scale × range, clipped to the bounds (JAX-ReaxFF)."""
    noise = rng.uniform(low=-1.0, high=1.0, size=len(params))
    new = np.asarray(params) + noise * scale * (bounds[:, 1] - bounds[:, 0])
    return np.clip(new, bounds[:, 0], bounds[:, 1])


def lower_bounds(params, bounds):
    """Bounds narrowed to ±RESTRICTED_WIDTH × range around params (JAX-ReaxFF)."""
    size = (bounds[:, 1] - bounds[:, 0]) * RESTRICTED_WIDTH
    lo = np.maximum(bounds[:, 0], params - size)
    hi = np.minimum(bounds[:, 1], params + size)
    return np.stack([np.minimum(lo, hi), np.maximum(lo, hi)], axis=1)


class Fit:
    """Runs trials of the outer loop over a FitProblem. ``evaluate_true(θ)`` relaxes and returns
    {set: Evaluation}; ``checkpoint(state)`` persists; ``progress(state)`` reports."""

    def __init__(self, problem, relaxer, settings: Settings, *, checkpoint=None,
                 progress=None, state: State | None = None):
        self.problem = problem
        self.relaxer = relaxer
        self.s = settings
        self.checkpoint = checkpoint or (lambda state: None)
        self.progress = progress or (lambda state, message="": None)
        self.state = state or State(rng=rng_state(np.random.RandomState(settings.seed)))
        self.start = time.perf_counter()
        self.deadline = None if settings.max_time is None else self.start + settings.max_time
        self.seconds = {"relax": 0.0, "true_loss": 0.0, "optimizer": 0.0}
        self.implicit = None

    # -- pieces --------------------------------------------------------------------------
    def relax(self, theta) -> None:
        """Relax (or, without relaxation, rebuild lists for θ) before a true evaluation."""
        t = time.perf_counter()
        if self.s.num_e_minim_steps > 0 and self.relaxer:
            if self.s.minimizer == "sd":
                self.relaxer.steepest_descent(theta, self.s.num_e_minim_steps,
                                              self.s.e_minim_lr, self.s.end_rmsg)
            else:
                self.relaxer.minimize(theta, self.s.num_e_minim_steps, self.s.end_rmsg,
                                      self.s.minimizer)
        self.problem.refresh_lists(theta)
        relaxed = self.s.num_e_minim_steps > 0 and self.relaxer
        if relaxed and self.s.geometry_gradients == "implicit":
            from .implicit import ImplicitGeometry

            if self.implicit is None:
                self.implicit = ImplicitGeometry(self.problem, self.relaxer)
            self.problem.geometry_model = self.implicit.linearize(theta)
        self.seconds["relax"] += time.perf_counter() - t

    def true_loss(self, theta) -> tuple[float, dict]:
        """Relax at θ, then train (+ validation) loss, as JAX-ReaxFF's "true total loss"."""
        self.relax(theta)
        t = time.perf_counter()
        evaluation = self.problem.evaluate(theta)
        self.seconds["true_loss"] += time.perf_counter() - t
        return float(sum(e.loss for e in evaluation.values())), evaluation

    def _out_of_time(self) -> bool:
        return self.deadline is not None and time.perf_counter() > self.deadline

    def _start_params(self, rng, bounds):
        init = self.problem.pmap.initial
        if self.s.init_type == "random":
            best, best_loss = None, float("inf")
            for _ in range(self.s.random_sample_count):
                theta = rng.uniform(low=bounds[:, 0], high=bounds[:, 1])
                self.problem.refresh_lists(theta)
                loss = self.problem.evaluate(theta)["train"].loss
                if loss < best_loss or best is None:
                    best, best_loss = theta, loss
            if best is not None and np.isfinite(best_loss):
                return best
            return rng.uniform(low=bounds[:, 0], high=bounds[:, 1])
        if self.s.init_type == "educated":
            return add_noise(init, bounds, 0.1, rng)
        return init.copy()

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> State:
        st, s = self.state, self.s
        base_bounds = self.problem.pmap.bounds
        while st.trial < s.num_trials and not st.done:
            rng = restore_rng(st.rng)
            if st.params is None:  # a new trial
                bounds = base_bounds.copy()
                st.params = self._start_params(rng, bounds).tolist()
                st.bounds = bounds.tolist()
                st.global_min, st.global_min_params = float("inf"), list(st.params)
                st.true_loss, st.surrogate, st.lowered, st.iteration = 0.0, 0.0, False, 0
                st.rng = rng_state(rng)
            self._trial(rng)
            if st.done:
                break
            st.trials.append({"trial": st.trial + 1, "loss": st.global_min,
                              "params": st.global_min_params})
            if st.global_min < st.best_loss or st.best_params is None:
                st.best_loss, st.best_params = st.global_min, st.global_min_params
            st.trial += 1
            st.params = None
            self.checkpoint(st)
        st.done = True
        self.checkpoint(st)
        return st

    def _trial(self, rng) -> None:
        st, s = self.state, self.s
        while st.iteration <= s.num_steps:
            e = st.iteration
            params = np.array(st.params)
            bounds = np.array(st.bounds)
            if (e > 1 and s.num_steps - e == 5 and not st.lowered and st.global_min > 0
                    and abs(st.surrogate - st.global_min) / st.global_min > 0.2):
                bounds = lower_bounds(np.array(st.global_min_params), bounds)
                params = np.array(st.global_min_params)
                st.lowered = True
            previous = st.true_loss
            true, evaluation = self.true_loss(params)
            st.true_loss = true
            record = {"trial": st.trial + 1, "iteration": e, "true_loss": true,
                      "train_loss": evaluation["train"].loss,
                      "elapsed": time.perf_counter() - self.start}
            if "valid" in evaluation:
                record["valid_loss"] = evaluation["valid"].loss
            if true < st.global_min:
                st.global_min, st.global_min_params = true, params.tolist()
            stuck = (max(true, previous) > 0
                     and abs(true - previous) / max(true, previous) < ERROR_CHANGE_THRESHOLD)
            if stuck:
                params = add_noise(np.array(st.global_min_params), bounds,
                                   s.perc_noise_when_stuck, rng)
                record["noise"] = True
            elif e < s.num_steps and not self._out_of_time():
                params, record = self._optimize(params, bounds, record)
            st.params, st.bounds, st.rng = params.tolist(), bounds.tolist(), rng_state(rng)
            record["best"] = min(st.global_min, st.best_loss)
            st.history.append(record)
            st.iteration += 1
            self.checkpoint(st)
            self.progress(st)
            if self._out_of_time():
                st.done = True
                return

    def _optimize(self, params, bounds, record):
        t = time.perf_counter()
        before = self.problem.timings.evaluations
        options = {"maxiter": self.s.max_iter}
        if self.s.opt_method == "L-BFGS-B":
            options.update(maxls=20, maxcor=20)

        def callback(*_):
            if self._out_of_time():
                raise StopIteration

        result = minimize(self.problem.loss_and_grad, params, jac=True,
                          method=self.s.opt_method, bounds=bounds, options=options,
                          callback=callback)
        self.state.evaluations += self.problem.timings.evaluations - before
        self.state.surrogate = float(result.fun)
        record.update(surrogate=float(result.fun), nfev=int(result.nfev))
        self.seconds["optimizer"] += time.perf_counter() - t
        return np.clip(np.asarray(result.x, dtype=np.float64), bounds[:, 0], bounds[:, 1]), record


def state_to_dict(state: State) -> dict:
    return asdict(state)


def state_from_dict(data: dict) -> State:
    return State(**data)
