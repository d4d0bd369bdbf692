"""The fusing backend (core/fusion, executor "fused"): what the schedule fuses and what stays
on the host, results equal to the interpreter's (the specification) to 1e-12 relative,
deterministic sums on any thread count, no aliasing, and the on-disk kernel cache."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from cases import ALL, bind

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp
from reaxgrad.core.executors.fused import FusedIndexError, Plan
from reaxgrad.core.fusion import runtime_c
from reaxgrad.core.fusion.schedule import Group, HostStep, schedule

pytestmark = pytest.mark.skipif(not runtime_c.available(), reason="no C compiler")


def steps(f, *args):
    s = schedule(rc.jit(f, backend="interpreter").lower(*args))
    groups = [x for x in s.steps if isinstance(x, Group)]
    host = [x.eqn.prim.name for x in s.steps if isinstance(x, HostStep)]
    return groups, host


def conforms(got, want, rtol=1e-12):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want)
        return
    scale = np.max(np.abs(want)) if want.size else 0.0
    err = np.max(np.abs(got - want)) if want.size else 0.0
    assert err <= rtol * max(scale, 1e-300), f"max abs diff {err} vs scale {scale}"


def both(f, *args):
    return (rc.jit(f, backend="fused")(*args), rc.jit(f, backend="interpreter")(*args))


# ---- schedule: what fuses ----------------------------------------------------------------------

def test_elementwise_chain_and_its_sum_are_one_kernel():
    groups, host = steps(lambda x: jnp.sum(jnp.exp(x) * 2.0 + 1.0), np.ones(100))
    assert len(groups) == 1 and host == []
    assert [e.prim.name for e in groups[0].eqns] == ["exp", "mul", "add", "reduce_sum"]


def test_gathers_feed_and_segment_sums_end_one_kernel():
    i = np.array([0, 3, 1, 1, 2])
    j = np.array([1, 0, 2, 3, 3])

    def f(x):
        return rc.ops.segment_sum(jnp.exp(x[i]) - x[j] * 2.0, i, 4)

    groups, host = steps(f, np.arange(4.0))
    assert host == [] and len(groups) == 1
    assert "scatter_add" in [e.prim.name for e in groups[0].eqns]
    assert "gather" not in [e.prim.name for e in groups[0].eqns]  # index maps, not statements


def test_matmul_solve_and_callbacks_stay_on_the_host():
    def f(a, b):
        m = a @ a.T + 100.0 * jnp.eye(80)
        y = rc.pure_callback(lambda v: np.sort(v), b, b)
        return jnp.linalg.solve(m, jnp.exp(y))

    groups, host = steps(f, np.ones((80, 80)), np.ones(80))
    assert {"dot_general", "solve", "pure_callback"} <= set(host)
    assert groups  # the elementwise work around them is fused


def test_small_contractions_fuse():
    m = np.eye(3) * 2.0

    def f(x, y):
        return jnp.exp(x @ m), (x * 2.0).T @ y, jnp.einsum("ij,ij->i", x, y)

    x = np.ones((50, 3))
    groups, host = steps(f, x, x)
    assert host == [] and groups


def test_a_value_read_at_other_rows_is_materialized_first():
    idx = np.array([2, 0, 1, 1])

    def f(x):
        y = jnp.exp(x)
        return y[idx] * 2.0  # the gather reads y at other rows

    groups, host = steps(f, np.ones(3))
    assert len(groups) == 2 and host == []
    (y,) = groups[0].store
    assert y.aval.shape == (3,)


def test_a_reduction_is_read_by_a_later_kernel():
    groups, host = steps(lambda x: x - jnp.mean(x), np.ones(10))
    assert len(groups) == 2 and host == []
    assert groups[0].final == groups[0].store


def test_kernels_never_write_inputs_and_outputs_are_fresh():
    x = np.linspace(0.0, 1.0, 200)
    before = x.copy()
    f = rc.jit(lambda x: (jnp.exp(x), x * 2.0, jnp.sum(x)), backend="fused")
    a1, b1, c1 = f(x)
    kept = a1.copy()
    a2, b2, c2 = f(x)
    np.testing.assert_array_equal(x, before)
    for u, v in ((a1, a2), (b1, b2), (a1, b1), (a1, x)):
        assert not np.shares_memory(u, v)
    a2[:] = 0.0  # outputs are writable and independent of earlier ones
    np.testing.assert_array_equal(a1, kept)


# ---- conformance with the interpreter -----------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ALL))
def test_every_case_equals_the_interpreter(name):
    fn, args = ALL[name]
    f = bind(fn)
    got, want = both(f, *args)
    conforms(got, want)

    def scalar(*a):
        return jnp.sum(f(*a) ** 2)

    nums = tuple(range(len(args)))
    got, want = both(rc.grad(scalar, argnums=nums), *args)
    for g, w in zip(got, want):
        conforms(g, w)


def test_larger_programs_equal_the_interpreter():
    rng = np.random.default_rng(0)
    n, m = 3000, 700
    pos = rng.normal(size=(m, 3)) * 5
    i, j = rng.integers(0, m, n), rng.integers(0, m, n)

    def energy(p):
        d = p[i] - p[j]
        r = jnp.sqrt(jnp.sum(d * d, axis=1) + 1.0)
        e = jnp.where(r < 4.0, jnp.exp(-r) * jnp.cos(r) ** 3, jnp.log1p(r) / r)
        per_atom = rc.ops.segment_sum(e, i, m)
        return jnp.sum(per_atom ** 2) + jnp.max(jnp.abs(p))

    got, want = both(rc.value_and_grad(energy), pos)
    conforms(got[0], want[0])
    conforms(got[1], want[1])


# ---- C kernels: determinism, errors, sources --------------------------------------------------

def _big_sums(x, idx):
    return jnp.sum(jnp.sin(x) * x), rc.ops.segment_sum(jnp.exp(-x * x), idx, 1000), \
        jnp.sum(x.reshape(-1, 4) ** 2, axis=0)


def test_sums_repeat_bitwise_on_any_thread_count():
    rng = np.random.default_rng(1)
    x = rng.normal(size=200_000)
    idx = rng.integers(0, 1000, x.size)
    f = rc.jit(_big_sums, backend="fused")
    results = []
    try:
        for threads in (1, 2, 3, 1):
            runtime_c.set_num_threads(threads)
            results.append(f(x, idx))
    finally:
        runtime_c.set_num_threads(0)
        os.environ.pop("REAXGRAD_NUM_THREADS", None)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    want = rc.jit(_big_sums, backend="interpreter")(x, idx)
    for a, b in zip(results[0], want):
        conforms(a, b)


def test_segment_sum_of_loaded_values_equals_the_interpreter_bitwise():
    rng = np.random.default_rng(2)
    data = rng.normal(size=(50_000, 3))
    ids = rng.integers(0, 777, 50_000)
    got, want = both(lambda d, i: rc.ops.segment_sum(d, i, 777), data, ids)
    np.testing.assert_array_equal(got, want)  # same order of additions as np.bincount


def test_out_of_range_gather_raises():
    f = rc.jit(lambda x, i: jnp.exp(x[i]), backend="fused")
    x = np.ones(4)
    np.testing.assert_allclose(f(x, np.array([0, -1, 3])), np.e)  # negative indices wrap
    with pytest.raises(FusedIndexError):
        f(x, np.array([0, 4, 1]))
    with pytest.raises(IndexError):
        rc.jit(lambda x, i: jnp.exp(x[i]), backend="interpreter")(x, np.array([0, 4, 1]))


def test_one_source_serves_every_list_capacity():
    """Large sizes are runtime values: lists padded to another capacity reuse the library."""

    def f(x, i):
        return rc.ops.segment_sum(jnp.exp(x[i]) * 2.0, i, 500)

    sources = set()
    for n in (1000, 4096, 70000):
        x = np.ones(500)
        i = np.zeros(n, dtype=np.int64)
        sources.add(Plan(rc.jit(f, backend="interpreter").lower(x, i)).source)
    assert len(sources) == 1


def test_kernel_source_compiles_with_openmp_and_simd():
    plan = Plan(rc.jit(lambda x: jnp.sum(jnp.exp(x) ** 2), backend="interpreter")
                .lower(np.ones(10)))
    assert "#pragma omp parallel for" in plan.source and "#pragma omp simd" in plan.source
    path = runtime_c.build(plan.source)
    assert path.exists() and path.suffix == ".so"


# ---- the disk cache ------------------------------------------------------------------------------

_CHILD = textwrap.dedent("""
    import json, time
    import numpy as np
    import reaxgrad.core as rc
    import reaxgrad.core.numpy as jnp
    from reaxgrad.core.fusion import runtime_c

    f = rc.jit(lambda x, y: jnp.sum(jnp.tanh(x * {k}) * jnp.exp(-y) + x ** 3), backend="fused")
    t0 = time.perf_counter()
    out = float(f(np.linspace(0, 1, 1000), np.linspace(1, 2, 1000)))
    print(json.dumps(dict(runtime_c.stats, first_call=time.perf_counter() - t0, out=out)))
""")


def _child(tmp_path, k):
    env = dict(os.environ, REAXGRAD_CACHE_DIR=str(tmp_path))
    return subprocess.Popen([sys.executable, "-c", _CHILD.format(k=k)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_a_second_process_reuses_the_disk_cache(tmp_path):
    first = _result(_child(tmp_path, 1.25))
    assert first["compiles"] == 1 and first["disk_hits"] == 0
    second = _result(_child(tmp_path, 1.25))
    assert second["compiles"] == 0 and second["disk_hits"] == 1
    assert second["out"] == first["out"]
    assert second["first_call"] < first["first_call"]
    print(f"first call: {first['first_call']:.2f} s compiling, {second['first_call']:.3f} s "
          f"from the disk cache")


def test_processes_compiling_at_once_each_get_a_complete_library(tmp_path):
    procs = [_child(tmp_path, 2.5) for _ in range(3)]
    results = [_result(p) for p in procs]
    assert len({r["out"] for r in results}) == 1
    assert len(list(tmp_path.glob("*.so"))) == 1
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


# ---- CUDA: the same kernel descriptions ------------------------------------------------------

def _energy_program():
    rng = np.random.default_rng(3)
    n, m = 2000, 300
    pos = rng.normal(size=(m, 3)) * 4
    i, j = rng.integers(0, m, n), rng.integers(0, m, n)

    def energy(p):
        d = p[i] - p[j]
        r = jnp.sqrt(jnp.sum(d * d, axis=1) + 1.0)
        e = jnp.where(r < 3.0, jnp.exp(-r) * jnp.cos(r) ** 3, jnp.log1p(r) / r)
        return jnp.sum(rc.ops.segment_sum(e, i, m) ** 2) + jnp.max(jnp.abs(p))

    f = rc.value_and_grad(energy)
    return f, pos


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_cuda_source_compiles_with_nvcc(arch):
    from reaxgrad.core.fusion import runtime_cuda

    if runtime_cuda.nvcc() is None:
        pytest.skip("nvcc not found")
    f, pos = _energy_program()
    plan = Plan(rc.jit(f, backend="interpreter").lower(pos))
    cuda = plan.cuda()
    assert "RG_KERNEL void k0" in cuda.source and "rg_segsum_double" in cuda.source
    runtime_cuda.nvcc_check(cuda.source, arch)


def _emulated(f, *args):
    from reaxgrad.core.executors.fused import emulate_cuda

    program = rc.jit(f, backend="interpreter").lower(*args)
    return emulate_cuda(program)(*program.consts, *args)


def test_cuda_kernels_run_on_the_host_equal_the_interpreter():
    """The generated CUDA source built for the host (one thread doing every row) and the CUDA
    launcher's logic (reductions in chunks, stable-sorted segment sums) without a GPU."""
    f, pos = _energy_program()
    got = _emulated(f, pos)
    want = rc.jit(f, backend="interpreter")(pos)
    conforms(got[0], want[0])
    conforms(got[1], want[1])
    data = np.random.default_rng(4).normal(size=(5000, 3))
    ids = np.random.default_rng(5).integers(0, 100, 5000)
    (got,) = _emulated(lambda d, i: rc.ops.segment_sum(d, i, 100), data, ids)
    np.testing.assert_array_equal(got, rc.ops.segment_sum(data, ids, 100))


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_case_through_the_cuda_kernels(name):
    fn, args = ALL[name]
    f = bind(fn)
    (got,) = _emulated(lambda *a: [f(*a)], *args)
    conforms(got, rc.jit(f, backend="interpreter")(*args))


def test_cuda_launch_on_a_gpu():
    from reaxgrad.core.fusion import runtime_cuda

    if not runtime_cuda.available():
        pytest.skip("no CUDA device (CuPy with a GPU)")
    import cupy

    f, pos = _energy_program()
    got = rc.jit(f, backend="fused")(cupy.asarray(pos))
    want = rc.jit(f, backend="interpreter")(pos)
    conforms(cupy.asnumpy(got[0]), want[0])
    conforms(cupy.asnumpy(got[1]), want[1])


def test_large_sources_compile_as_parallel_units(tmp_path, monkeypatch):
    monkeypatch.setenv("REAXGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(runtime_c, "_jobs", lambda source: 3)
    monkeypatch.setattr(runtime_c, "_loaded", {})  # compile again, here
    f, pos = _energy_program()
    plan = Plan(rc.jit(f, backend="interpreter").lower(pos))
    assert len(plan.kernels) >= 3
    from reaxgrad.core.fusion.render_c import split_units

    assert len(split_units(plan.source, 3)) == 3
    got = rc.jit(f, backend="fused")(pos)
    want = rc.jit(f, backend="interpreter")(pos)
    conforms(got[0], want[0])
    conforms(got[1], want[1])
    assert len(list(tmp_path.glob("*.so"))) == 1


def test_values_with_long_trailing_axes_use_short_blocks():
    """Rows of 4,000 elements each (here: 8 vmapped examples): the block of rows shrinks and a
    large block workspace goes on the heap (40 live row values would be 80 MB per block of 64)."""
    x = np.random.default_rng(6).normal(size=(8, 4000))

    def f(row):
        vals = [jnp.sin(row * (1.0 + 0.1 * i)) for i in range(40)]
        acc = vals[0]
        for v in vals[1:]:
            acc = acc * 0.5 + v
        return acc + sum(vals[::-1])

    got, want = both(rc.vmap(f), x)
    conforms(got, want)


def test_strided_selects_are_exact():
    """where(mask, a, b) over rows of 8 (a pattern GCC 12 miscompiles with AVX-512 masked loads:
    the renderer selects between values loaded unconditionally)."""
    rng = np.random.default_rng(7)
    m = rng.random((64, 8)) < 0.6
    a, b = rng.normal(size=(64, 8)), rng.normal(size=(64, 8))
    flat = rng.normal(size=512)

    def f(m, a, b, flat):
        return jnp.where(m, flat.reshape(64, 8), b), jnp.where(m, a, b) * 2.0

    got, want = both(f, m, a, b, flat)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_large_trailing_sizes_are_runtime_values(tmp_path, monkeypatch):
    """Programs differing only in a trailing size above the unroll limit (17 vs 23: row
    reductions, a segment sum of wide rows, stores of wide rows, a sum over rows) render one
    C and one CUDA source, compile once, and give the interpreter's results."""
    from reaxgrad.core.fusion import render_c

    monkeypatch.setenv("REAXGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(runtime_c, "_loaded", {})  # compile here

    def f(x, i):
        y = jnp.exp(x) * 2.0
        return (jnp.sum(y, axis=1) + jnp.max(x * y, axis=1), rc.ops.segment_sum(y, i, 3),
                y * 3.0, jnp.sum(x, axis=0))

    sources, cuda = set(), set()
    for n in (17, 23):
        assert n > render_c.UNROLL
        x = np.random.default_rng(n).normal(size=(5, n))
        i = np.array([0, 2, 1, 0, 2])
        plan = Plan(rc.jit(f, backend="interpreter").lower(x, i))
        sources.add(plan.source)
        cuda.add(plan.cuda().source)
        got, want = both(f, x, i)
        for g, w in zip(got, want):
            conforms(g, w)
    assert len(sources) == 1 and len(cuda) == 1
    assert "j < 17" not in next(iter(sources)) and "j < 23" not in next(iter(sources))
    assert len(list(tmp_path.glob("*.so"))) == 1


def test_a_new_plan_takes_over_an_idle_plans_large_workspace():
    """A program traced again for slightly larger arrays (MD lists after a capacity step)
    runs in the workspace the previous plan left idle instead of new memory; the old plan
    still computes correctly afterwards, in a workspace of its own."""
    from reaxgrad.core.executors import fused

    def f(x, y, idx):
        a = jnp.exp(x) * y  # read at other rows below: stored in the workspace
        b = a[idx] + jnp.sin(a)
        return jnp.sum(b * y, axis=1), jnp.sum(b)

    g = rc.jit(f, backend="fused")
    ref = rc.jit(f, backend="interpreter")
    rng = np.random.default_rng(0)

    def args(n):
        return rng.normal(size=(n, 4)), rng.normal(size=(n, 4)), rng.permutation(n)

    small, large = args(600_000), args(660_000)
    before = set(fused._POOLS.keys())
    for got, want in zip(g(*small), ref(*small)):
        conforms(got, want)
    (pool,) = [fused._POOLS[k] for k in set(fused._POOLS.keys()) - before]
    ws = pool[0][1]
    assert ws.nbytes >= 600_000 * 4 * 8 >= fused._LARGE
    before = set(fused._POOLS.keys())
    for got, want in zip(g(*large), ref(*large)):
        conforms(got, want)
    assert not pool  # its idle context was taken over ...
    (new_pool,) = [fused._POOLS[k] for k in set(fused._POOLS.keys()) - before]
    assert new_pool[0][1] is ws  # ... by the new plan
    for got, want in zip(g(*small), ref(*small)):  # the old plan gets a workspace again
        conforms(got, want)
    assert pool and pool[0][1] is not ws
