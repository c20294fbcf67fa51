"""Briefly trained LeNet-5, MLP-7 and AlexNet-CIFAR for the benchmarks, from the MNIST test split alone.

    python benchmarks/zoo_models.py --data-dir /work/shared/data/mnist --out DIR [--train-images 1000] [--epochs 1]

Only MNIST's ``t10k`` files may be present (no training split): the first ``--train-images`` test images train
each zoo network for ``--epochs`` epochs (QAT, Brevitas), the model is exported to the integer IR, and the NEXT images
(``--train-images`` onwards) are the benchmark inputs, saved as ``DIR/inputs-<model>.npy`` (float images).
AlexNet reads them padded to 32x32 and repeated over 3 channels (:func:`resilq.data.rgb32`, a stand-in for
CIFAR-sized inputs). The point is realistic activations for timing, not accuracy.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("RESILQ_QUIET", "1")

from resilq.data import load_dataset, rgb32  # noqa: E402
from resilq.ir import save_model  # noqa: E402
from resilq.train.export import export_brevitas  # noqa: E402
from resilq.train.qat import TrainConfig, seed_everything, train  # noqa: E402
from resilq.train.zoo import build  # noqa: E402

ZOO_INPUTS = {"lenet5": False, "mlp7": False, "alexnet": True}  # name -> rgb32 inputs


def make(name: str, data, train_images: int, out: Path, epochs: int = 1) -> Path:
    data = rgb32(data) if ZOO_INPUTS[name] else data
    seed_everything(0)
    net = build(name, data.shape, len(data.classes))
    train(net, data.take(train_images), TrainConfig(epochs=epochs, seed=0))
    model, _ = export_brevitas(net, data.shape, {"name": name, "dataset": data.name, "input_shape": list(data.shape),
                                                 "classes": list(data.classes)}, with_trace=True)
    np.save(out / f"inputs-{name}.npy", data.take(None, train_images).images)
    return save_model(model, out / f"{name}.rq")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="folder with MNIST's t10k IDX files")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--train-images", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--model", action="append", choices=list(ZOO_INPUTS), help="default: all three")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_dataset("mnist", "test", args.data_dir)
    for name in args.model or list(ZOO_INPUTS):
        print(f"{name}: {make(name, data, args.train_images, args.out, args.epochs)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
