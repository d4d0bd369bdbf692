"""reaxgrad.cluster: options checked with named errors, no cluster unless asked, a LocalCluster
of single-threaded worker processes sharing the kernel disk cache, joined clusters left
running, dask-jobqueue job scripts holding the requested resources, dask-mpi under mpirun,
and one model per worker process."""
import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ase.build import molecule
from ase.db import connect
from ase.io import write

from reaxgrad.cluster import (
    ClusterOptionError,
    add_cluster_options,
    check_cluster_options,
    ffield_digest,
    jobqueue_cluster,
    open_client,
    worker_model,
)


def parse(*argv):
    p = argparse.ArgumentParser()
    add_cluster_options(p)
    return p.parse_args(list(argv))


@pytest.mark.parametrize("argv, words", [
    (["--workers", "2", "--cluster", "slurm", "--cores", "4", "--memory", "8GB"],
     ["--workers", "--jobs"]),
    (["--scheduler-address", "tcp://h:1", "--workers", "2"], ["--scheduler-address",
                                                              "--workers"]),
    (["--scheduler-address", "tcp://h:1", "--scheduler-file", "f.json"], ["not both"]),
    (["--scheduler-file", "absent.json"], ["absent.json", "no such scheduler file"]),
    (["--cores", "4"], ["--cores", "only apply to --cluster"]),
    (["--cluster", "pbs", "--cores", "4"], ["--cluster pbs needs --memory"]),
    (["--cluster", "mpi", "--jobs", "2"], ["--jobs"]),
])
def test_contradictory_options_are_named_errors(argv, words):
    with pytest.raises(ClusterOptionError) as err:
        check_cluster_options(parse(*argv))
    for w in words:
        assert w in str(err.value)


def test_bad_numbers_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        parse("--workers", "0")
    assert "must be >= 1" in capsys.readouterr().err


def test_no_cluster_unless_asked():
    with open_client(parse()) as client:
        assert client is None
    with open_client(argparse.Namespace()) as client:  # a caller without the options
        assert client is None


def _fused_kernel_stats():
    """A small function run by the fused C backend: its value and the kernel-cache counters."""
    import numpy as np

    import reaxgrad.core as rc
    import reaxgrad.core.numpy as rnp
    from reaxgrad.core.fusion import runtime_c

    f = rc.jit(lambda x: (rnp.sin(x) * 3.0 + x * x).sum(), backend="fused")
    return float(f(np.linspace(0.0, 1.0, 1000))), dict(runtime_c.stats)


def test_local_cluster_single_threaded_processes_sharing_the_kernel_cache():
    from reaxgrad.core.fusion import runtime_c
    from reaxgrad.core.fusion.runtime_c import cache_dir

    keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
            "REAXGRAD_NUM_THREADS", "REAXGRAD_CACHE_DIR")
    before = {k: os.environ.get(k) for k in keys[:4]}
    with open_client(parse("--workers", "2")) as client:
        assert sorted(client.nthreads().values()) == [1, 1]
        pids = client.run(os.getpid)
        assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
        envs = client.run(lambda: {k: os.environ.get(k) for k in keys})
        for env in envs.values():
            assert env == {**dict.fromkeys(keys[:4], "1"), "REAXGRAD_CACHE_DIR":
                           str(cache_dir())}
        # a kernel compiled here is loaded from the disk cache by the workers, not rebuilt
        if not runtime_c.available():
            pytest.skip("no C compiler")
        value, _ = _fused_kernel_stats()
        for v, stats in client.run(_fused_kernel_stats).values():
            assert v == pytest.approx(value, rel=1e-12)
            assert stats["compiles"] == 0 and stats["disk_hits"] >= 1
        cluster = client.cluster
    assert client.status == "closed" and cluster.status.name == "closed"
    # the driver's own thread settings are as they were
    assert {k: os.environ.get(k) for k in keys[:4]} == before


def test_joined_cluster_is_left_running(tmp_path):
    from distributed import Client, LocalCluster

    sfile = tmp_path / "scheduler.json"
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None,
                      scheduler_kwargs={"scheduler_file": str(sfile)}) as cluster:
        with open_client(parse("--scheduler-address", cluster.scheduler_address)) as client:
            assert client.submit(sum, [1, 2]).result() == 3
        assert client.status == "closed"
        with open_client(parse("--scheduler-file", str(sfile))) as client:
            assert client.scheduler.address == cluster.scheduler_address
            assert client.submit(sum, [5, 6]).result() == 11
        with Client(cluster) as again:
            assert again.submit(sum, [3, 4]).result() == 7


def test_default_workers_start_a_local_cluster():
    from reaxgrad.cluster import cpu_count

    with open_client(parse(), default_workers=1) as client:
        assert list(client.nthreads().values()) == [1]
    with open_client(parse("--cluster", "local")) as client:  # one per core
        assert list(client.nthreads().values()) == [1] * cpu_count()


def test_slurm_and_pbs_job_scripts_hold_the_requested_resources():
    args = parse("--cluster", "slurm", "--cores", "8", "--memory", "16GB", "--walltime",
                 "01:30:00", "--queue", "short", "--jobs", "3")
    check_cluster_options(args)
    cluster = jobqueue_cluster("slurm", args)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH --cpus-per-task=8" in script
    assert "#SBATCH --mem=15G" in script  # 16GB = 16e9 bytes, in GiB
    assert "#SBATCH -t 01:30:00" in script and "#SBATCH -p short" in script
    assert "--nworkers 8" in script and "--nthreads 1" in script  # a process per core
    assert "export OMP_NUM_THREADS=1" in script and "export REAXGRAD_NUM_THREADS=1" in script
    assert sys.executable in script
    cluster = jobqueue_cluster("pbs", args)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#PBS -q short" in script and "walltime=01:30:00" in script
    assert "ncpus=8" in script and "mem=15GB" in script  # 16e9 bytes in GiB


def test_mpi_outside_mpirun_is_a_named_error():
    pytest.importorskip("mpi4py")
    with pytest.raises(ClusterOptionError, match="mpirun"):
        with open_client(parse("--cluster", "mpi")):
            pass


def test_batch_under_mpirun(tmp_path, cho):
    """`reaxgrad batch --cluster mpi` under mpiexec -n 3, every rank exiting. Opt-in
    (REAXGRAD_TEST_MPI=1): once in a full-suite run on 2 loaded cores two ranks spun for the
    whole 300 s timeout after the third had exited, when the shutdown was dask-mpi's exit
    hook (a new client opened while the interpreter exits); the client rank now shuts the
    cluster down itself (7 of 7 runs passed in 7-8 s since), but one hang would fail CI."""
    if os.environ.get("REAXGRAD_TEST_MPI") != "1":
        pytest.skip("set REAXGRAD_TEST_MPI=1 to run the mpiexec test")
    mpiexec = shutil.which("mpiexec") or shutil.which("mpirun")
    if mpiexec is None:
        pytest.skip("no mpiexec")
    write(tmp_path / "in.xyz", [molecule("H2O"), molecule("CH4")])
    db = tmp_path / "out.db"
    out = subprocess.run([mpiexec, "-n", "3", sys.executable, "-m", "reaxgrad.cli", "batch",
                          "energy", str(tmp_path / "in.xyz"), "--ffield", cho, "--db", str(db),
                          "--cluster", "mpi", "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2 done, 0 failed" in out.stdout and "on 1 workers" in out.stdout
    assert sorted(r.source_index for r in connect(db).select()) == [0, 1]


def test_worker_model_is_built_once_per_force_field_and_options(cho, tmp_path):
    digest = ffield_digest(cho)
    a = worker_model(cho, digest, convention="lammps")
    a._guess = {"stale": True}
    assert worker_model(cho, digest, convention="lammps") is a and a._guess is None
    b = worker_model(cho, digest, convention="consistent")
    assert b is not a and b.convention == "consistent"
    copy = Path(tmp_path / "copy.ff")
    copy.write_bytes(Path(cho).read_bytes())
    assert ffield_digest(copy) == digest  # keyed by content, not by path
    assert worker_model(copy, ffield_digest(copy), convention="lammps") is a
    for k in range(5):  # a few kept, the least recently used dropped
        worker_model(cho, f"other{k}", convention="lammps")
    assert worker_model(cho, digest, convention="lammps") is not a
