"""The ablation tables of SPEC §7 and matched-cost baselines (issue 10): ``strucspars-viz ablate``.

* :mod:`.arms` -- the five arms as start payloads from one ``sparsified.pt``;
* :mod:`.baselines` -- Torch-Pruning baselines (slimming, taylor, magnitude), dense, narrow;
* :mod:`.shapes` -- registry models resized to a (pruned) state dict;
* :mod:`.jobs` -- one locked, resumable run folder per (arm, seed); :mod:`.launch` -- series,
  processes, submitit; :mod:`.stats` -- mean, sd, t interval, Welch; :mod:`.report` -- CSV / MD / PNG;
* :mod:`.sweep` -- :func:`run_ablation`, everything in one call; :mod:`.cli` -- the subcommand.
"""
from .arms import ARMS, arm_payload, build_arm, reinitialise_
from .baselines import BASELINES, prune_to_params, target_params
from .jobs import Job, plan_jobs, run_job
from .report import collect_rows, summary_table, write_report
from .stats import spread, welch_p
from .sweep import run_ablation

__all__ = ["ARMS", "BASELINES", "Job", "arm_payload", "build_arm", "collect_rows", "plan_jobs", "prune_to_params",
           "reinitialise_", "run_ablation", "run_job", "spread", "summary_table", "target_params", "welch_p",
           "write_report"]
