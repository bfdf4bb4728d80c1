# exact commands (run from the repository root, with STRUCSPARS_DATA set to the folder holding
# cifar-10-batches-py, here ../shared/data/cifar10; both launched together at 2026-11-22T05:33:50Z, sharing a 2-core CPU, 1 thread each)
.venv/bin/strucspars-viz train --config configs/cifar10_resnet20_50_cpu.yaml --data-root "$STRUCSPARS_DATA" --out results/cifar10_resnet20/strucspars_50 --no-progress
.venv/bin/strucspars-viz train --config configs/cifar10_resnet20_dense_cpu.yaml --data-root "$STRUCSPARS_DATA" --out results/cifar10_resnet20/dense --no-progress
