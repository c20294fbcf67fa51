"""Step ``train``: Brevitas QAT of the configured model, export to the IR, chain-of-trust link #1."""

from __future__ import annotations

from ...data import load_dataset
from ...evaluate import accuracy
from ...ir import load_model, save_model
from ...ir.summary import summary_table
from ...ui import say
from ..context import Context


def run(ctx: Context) -> dict:
    cfg = ctx.config.model
    out = ctx.dir("train")
    data_dir = cfg.data_dir or None
    if cfg.path:
        model = load_model(cfg.path)
        dataset = cfg.dataset or model.metadata.get("dataset", "digits")
        test = load_dataset(dataset, "test", data_dir)
        trust = {"status": "skipped", "reason": f"the model was given as {cfg.path}, not trained here"}
        int_acc, float_acc = accuracy(model, test), None
    else:
        from ...train.qat import TrainConfig
        from ...train.workflow import train_and_export

        result = train_and_export(cfg.arch, cfg.dataset, data_dir,
                                  TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed),
                                  per_channel=cfg.per_channel, verify_inputs=cfg.verify_images or None)
        if result.trust is None:  # verify_inputs=None means every test image
            from ...train.trust import compare_brevitas

            result.trust = compare_brevitas(result.net, result.model, result.trace, result.test.images)
        model, test = result.model, result.test
        rep = result.trust
        trust = {"status": "pass" if rep.identical else "FAIL", "inputs": rep.inputs,
                 "top1_agreement": rep.top1_agreement,
                 "layers": [{"tensor": c.name, "elements": c.elements, "mismatches": c.mismatches} for c in rep.layers]}
        int_acc, float_acc = result.int_accuracy, result.float_accuracy
    path = save_model(model, out / "model.rq")
    cols, rows = summary_table(model)
    say(f"{model.name}: {model.n_neurons:,} neurons, {model.macs():,} MACs; integer test accuracy {int_acc:.2%}; "
        f"Brevitas vs integer executor: {trust['status']}")
    return {"model_file": path.name, "name": model.name, "dataset": test.name, "test_images": len(test),
            "int_accuracy": int_acc, "float_accuracy": float_acc, "neurons": model.n_neurons, "macs": model.macs(),
            "params": model.params(), "hash": model.hash, "layers": {"columns": cols, "rows": rows},
            "trust_brevitas_ir": trust}
