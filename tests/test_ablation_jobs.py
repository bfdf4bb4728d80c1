"""Ablation sweep jobs: resumable after an interruption, submitit's local executor path (issue 10)."""
import json
from dataclasses import replace

import pytest
import torch

from strucspars_viz.ablation.jobs import plan_jobs, read_job_log, run_job
from strucspars_viz.ablation.launch import launch
from strucspars_viz.ablation.report import read_csv, write_report
from strucspars_viz.training.artifacts import read_weights

from test_ablation import make_sparsified

pytestmark = pytest.mark.slow


def test_interrupted_sweep_resumes(tmp_path):
    run = make_sparsified(tmp_path / "run")
    out = tmp_path / "out"
    jobs = plan_jobs(run, out, ["finetune", "noshuffle"], [0, 1], finetune_epochs=2, threads=1)
    assert [j.name for j in jobs] == ["finetune/seed0", "finetune/seed1", "noshuffle/seed0", "noshuffle/seed1"]
    run_job(jobs[0])  # finished
    assert run_job(replace(jobs[1], stop_after_epochs=1)) is None  # killed after one epoch
    done0 = (jobs[0].dir / "summary.json").stat().st_mtime_ns
    assert not (jobs[1].dir / "summary.json").exists() and (jobs[1].dir / "checkpoint.pt").exists()
    launch(jobs)  # the rerun
    events = [(e["job"], e["event"]) for e in read_job_log(out)]
    assert events[-7:] == [("finetune/seed0", "skip"), ("finetune/seed1", "resume"), ("finetune/seed1", "done"),
                           ("noshuffle/seed0", "start"), ("noshuffle/seed0", "done"),
                           ("noshuffle/seed1", "start"), ("noshuffle/seed1", "done")]
    assert (jobs[0].dir / "summary.json").stat().st_mtime_ns == done0
    metrics = [json.loads(line) for line in (jobs[1].dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]  # resumed, not restarted
    # the run folder's final checkpoint holds the sparsifier state really used (the arm's P, Q)
    final = read_weights(jobs[2].dir / "final.pt")
    perms = final.sparsifier["layers"]["layer1.0.conv1"]["row_perm"]
    assert torch.equal(perms, torch.arange(perms.numel()))
    start = read_weights(jobs[0].dir / "sparsified.pt")  # FINETUNE starts from the run's weights
    src = read_weights(run / "sparsified.pt")
    assert all(torch.equal(start.state_dict[k], v) for k, v in src.state_dict.items())
    rows = write_report(out)
    assert len(read_csv(out / "ablation.csv")) == len(rows) == 4


def test_submitit_local_executor(tmp_path):
    pytest.importorskip("submitit")
    run = make_sparsified(tmp_path / "run")
    out = tmp_path / "out"
    jobs = plan_jobs(run, out, ["shufflenet"], [0], finetune_epochs=1, threads=1)
    summaries = launch(jobs, launcher="submitit-local")
    assert summaries[0]["top1"] == json.loads((jobs[0].dir / "summary.json").read_text())["top1"]
    assert (out / "submitit").is_dir()


@pytest.mark.parametrize("method", ["taylor", "slimming"])
def test_taylor_and_slimming_within_two_percent(method):
    from strucspars_viz.ablation.baselines import prune_to_params
    from strucspars_viz.models import build_model

    model = build_model("resnet20")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # trained BN scales differ; at init they all tie at 1 and global ranking jumps
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.0, 1.0, generator=gen)

    def grad_fn(m):
        torch.nn.functional.cross_entropy(m(torch.randn(8, 3, 32, 32, generator=gen)),
                                          torch.randint(0, 10, (8,), generator=gen)).backward()

    target = 90_000
    pruned, info = prune_to_params(model, torch.zeros(1, 3, 32, 32), method, target, grad_fn=grad_fn)
    assert abs(sum(p.numel() for p in pruned.parameters()) / target - 1) <= 0.02


def test_parallel_processes_give_the_serial_result(tmp_path):
    """``--jobs 2``: the jobs run in two spawned worker processes (one thread each), and a job's final
    weights are bit-identical to the same job run in series in this process."""
    import os

    run = make_sparsified(tmp_path / "run")
    par, ser = tmp_path / "par", tmp_path / "ser"
    jobs = plan_jobs(run, par, ["shufflenet", "random"], [0], finetune_epochs=1)
    summaries = launch(jobs, n_jobs=2)
    assert [s["name"] for s in summaries] == ["shufflenet_seed0", "random_seed0"]
    pids = {e["pid"] for e in read_job_log(par)}
    assert len(pids) == 2 and os.getpid() not in pids  # two workers, neither of them this process
    assert all(json.loads((j.dir / "config.json").read_text())["threads"] == 1 for j in jobs)  # pinned
    launch(plan_jobs(run, ser, ["shufflenet"], [0], finetune_epochs=1, threads=1))
    a = read_weights(jobs[0].dir / "final.pt").state_dict
    b = read_weights(ser / "shufflenet" / "seed0" / "final.pt").state_dict
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert launch(jobs, n_jobs=2)[1]["top1"] == summaries[1]["top1"]  # a rerun skips both finished jobs
    assert [e["event"] for e in read_job_log(par)][-2:] == ["skip", "skip"]


def test_taylor_and_magnitude_share_one_dense_model(tmp_path):
    """Taylor and magnitude prune the same dense model of a seed, trained once even when both jobs
    start together in two workers (the second waits on the queue lock, then finds it finished);
    Network Slimming trains its own (with L1 on the BN scales)."""
    from strucspars_viz.ablation.jobs import pretrain_dir

    run = make_sparsified(tmp_path / "run")
    out = tmp_path / "out"
    jobs = plan_jobs(run, out, [], [0], ["taylor", "magnitude", "slimming"], finetune_epochs=1, threads=1)
    launch(jobs[:2], n_jobs=2)
    shared = out / "pretrain" / "seed0"
    assert pretrain_dir(jobs[0]) == pretrain_dir(jobs[1]) == shared
    epochs = json.loads((shared / "config.json").read_text())["sparsify_epochs"]
    metrics = [json.loads(line) for line in (shared / "metrics.jsonl").read_text().splitlines()]
    assert [m["global_epoch"] for m in metrics] == list(range(1, epochs + 1))  # trained once, not twice
    infos = [json.loads((j.dir / "baseline.json").read_text()) for j in jobs[:2]]
    assert [(out / j.arm / "seed0" / i["pretrain"]).resolve() for j, i in zip(jobs, infos)] == [shared.resolve()] * 2
    assert not (jobs[0].dir / "pretrain").exists() and not (jobs[1].dir / "pretrain").exists()
    assert pretrain_dir(jobs[2]) == jobs[2].dir / "pretrain"
    run_job(jobs[2])
    slim = json.loads((jobs[2].dir / "pretrain" / "config.json").read_text())
    assert slim["bn_l1"] > 0 and json.loads((shared / "config.json").read_text())["bn_l1"] == 0


def test_a_sweep_at_another_target_reuses_the_pretrained_models(tmp_path):
    """``pretrained=``: the pruning baselines prune a finished sweep's dense model (pretraining does not
    depend on the target) instead of training their own; a missing or differently trained one is an error."""
    import shutil

    from strucspars_viz.ablation.jobs import pretrain_dir

    run = make_sparsified(tmp_path / "run")
    first, second = tmp_path / "first", tmp_path / "second"
    run_job(plan_jobs(run, first, [], [0], ["magnitude"], finetune_epochs=1, threads=1)[0])
    job = plan_jobs(run, second, [], [0], ["taylor"], finetune_epochs=1, threads=1, pretrained=first)[0]
    assert pretrain_dir(job) == first / "pretrain" / "seed0"
    before = (first / "pretrain" / "seed0" / "final.pt").stat().st_mtime_ns
    run_job(job)
    info = json.loads((job.dir / "baseline.json").read_text())
    assert (job.dir / info["pretrain"]).resolve() == (first / "pretrain" / "seed0").resolve()
    assert not (second / "pretrain").exists()  # nothing trained here
    assert (first / "pretrain" / "seed0" / "final.pt").stat().st_mtime_ns == before

    with pytest.raises(FileNotFoundError, match="no such sweep folder"):
        plan_jobs(run, second, [], [0], ["taylor"], pretrained=tmp_path / "nowhere")
    seed1 = plan_jobs(run, tmp_path / "third", [], [1], ["magnitude"], finetune_epochs=1, pretrained=first)[0]
    with pytest.raises(FileNotFoundError, match="seed1.*no finished pretraining"):
        run_job(seed1)
    other = tmp_path / "other"
    shutil.copytree(first / "pretrain", other / "pretrain")
    cfg_file = other / "pretrain" / "seed0" / "config.json"
    cfg_file.write_text(json.dumps({**json.loads(cfg_file.read_text()), "lr": 0.5, "target": 0.9}))
    tampered = plan_jobs(run, tmp_path / "fourth", [], [0], ["magnitude"], finetune_epochs=1, pretrained=other)[0]
    with pytest.raises(ValueError, match=r"another configuration \(lr: 0.5 there, .* here\)$"):
        run_job(tampered)
