"""Running the jobs of a sweep: in series (default), in parallel processes, or as a submitit job array.

* ``local`` with ``jobs=1``: one after the other in this process;
* ``local`` with ``jobs=N``: ``N`` spawned worker processes (each job pinned to one thread unless
  the run says otherwise, so that ``N`` jobs share the cores instead of oversubscribing them);
* ``slurm``: one submitit job array (``AutoExecutor``); each array task runs :func:`.jobs.run_job`
  (a task may itself be a ``torchrun``: pass ``slurm_params`` such as ``tasks_per_node``);
* ``submitit-local``: the same array through submitit's ``LocalExecutor`` (the tested stand-in for
  a cluster: no scheduler here).

Every path runs the same :func:`~.jobs.run_job`, so a finished job is skipped and an unfinished one
resumed whichever launcher re-runs the sweep.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
from pathlib import Path
from typing import Any

from .jobs import Job, run_job

__all__ = ["LAUNCHERS", "launch"]

LAUNCHERS = ("local", "slurm", "submitit-local")


def launch(jobs: list[Job], *, launcher: str = "local", n_jobs: int = 1, folder: str | Path | None = None,
           slurm_params: dict[str, Any] | None = None) -> list[dict | None]:
    """Run ``jobs``; returns their summaries in order (``None`` for a job stopped early)."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"unknown launcher {launcher!r}; allowed: {', '.join(LAUNCHERS)}")
    if n_jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {n_jobs}")
    if launcher == "local":
        if n_jobs == 1:
            return [run_job(j) for j in jobs]
        jobs = [j if j.threads else dataclasses.replace(j, threads=1) for j in jobs]
        with cf.ProcessPoolExecutor(max_workers=n_jobs, mp_context=mp.get_context("spawn")) as pool:
            return list(pool.map(run_job, [j.to_dict() for j in jobs]))
    return _submitit(jobs, launcher, folder or Path(jobs[0].out) / "submitit", slurm_params or {}, n_jobs)


def _submitit(jobs: list[Job], launcher: str, folder: str | Path, params: dict, n_jobs: int) -> list[dict | None]:
    import submitit

    if launcher == "slurm":
        executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
        executor.update_parameters(**{"slurm_array_parallelism": n_jobs, "timeout_min": 24 * 60, **params})
    else:
        executor = submitit.LocalExecutor(folder=str(folder))
        executor.update_parameters(timeout_min=params.get("timeout_min", 60))
    array = executor.map_array(run_job, [j.to_dict() for j in jobs])
    return [task.result() for task in array]
