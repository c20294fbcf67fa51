"""The command line, as a user runs it: outputs that matter and errors that say what is wrong."""

import numpy as np
import pytest

from resilq.cli import main
from resilq.ir import save_model


@pytest.fixture(scope="module")
def lenet_file(digits_lenet, tmp_path_factory):
    return save_model(digits_lenet.model, tmp_path_factory.mktemp("m") / "lenet5.rq")


def test_info_prints_neurons_and_layers(lenet_file, capsys):
    assert main(["info", str(lenet_file)]) == 0
    out = capsys.readouterr().out
    assert "4,684 neurons" in out
    for name in ("conv1", "pool1", "conv2", "fc1", "fc2", "fc3"):
        assert name in out
    assert "3,456" in out and "1,024" in out  # conv1 and conv2 neurons


def test_eval_prints_the_integer_accuracy(lenet_file, digits_lenet, capsys):
    assert main(["eval", str(lenet_file), "--dataset", "digits"]) == 0
    out = capsys.readouterr().out
    assert f"top-1 accuracy {digits_lenet.int_accuracy:.2%}" in out


def test_train_writes_a_model(tmp_path, capsys):
    out = tmp_path / "mlp.rq"
    code = main(["train", "--model", "mlp7", "--epochs", "1", "--verify", "100", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and out.exists()
    assert "bit-identical at every layer" in text and "2,816 neurons" in text


def test_corrupt_model_file(tmp_path, capsys):
    bad = tmp_path / "bad.rq"
    bad.write_bytes(b"\x00" * 100)
    assert main(["info", str(bad)]) == 2
    assert "bad.rq: not a resilq model file" in capsys.readouterr().err


def test_missing_dataset_directory(tmp_path, capsys):
    code = main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "x.rq")])
    assert code == 2
    assert "missing: data directory for 'mnist' does not exist" in capsys.readouterr().err


def test_wrong_input_shape(lenet_file, tmp_path, capsys):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 3]}
    pickle.dump(batch, open(folder / "test_batch", "wb"))
    assert main(["eval", str(lenet_file), "--dataset", "cifar10", "--data-dir", str(tmp_path), "--any-dataset"]) == 2
    assert "shape (4, 3, 32, 32), the model expects (N, 1, 28, 28)" in capsys.readouterr().err


def test_unsupported_layer_in_a_user_model(tmp_path, capsys):
    user = tmp_path / "mynet.py"
    user.write_text(
        "import torch.nn as nn\n"
        "from resilq.train.quantizers import input_quant, linear\n"
        "def build(shape, n):\n"
        "    return nn.Sequential(input_quant(), nn.Flatten(), linear(784, 20), nn.Tanh(), linear(20, n))\n")
    code = main(["train", "--model", f"{user}:build", "--epochs", "1", "--out", str(tmp_path / "u.rq")])
    assert code == 2
    assert "unsupported layer '3' of type Tanh" in capsys.readouterr().err


def _parsers(parser, path=("resilq",)):
    """Every (sub)command parser of ``parser`` with its command path."""
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_option_of_every_command_explains_itself():
    """--help of every command: each option has a help text, no enum repr ({Method.EXACT,...}), no
    "default: None" for an option whose default is decided elsewhere; the renamed option keeps its alias."""
    import argparse
    import re

    from resilq.cli import build_parser

    parser = build_parser()
    silent, bad = [], []
    for path, p in _parsers(parser):
        for action in p._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
                continue
            if not action.help:
                silent.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
        bad += [f"{' '.join(path)}: {m}" for m in re.findall(r"\{[A-Z]\w*\.[A-Z_]+|default: None", p.format_help())]
    assert silent == [] and bad == []
    train = " ".join(dict(_parsers(parser))["resilq", "train"].format_help().split())  # however wide the terminal
    for option in ("training epochs (default: 10)", "(default: 64)", "Adam learning rate (default: 0.002)"):
        assert option in train
    campaign = parser.parse_args(["campaign", "m.rq", "--model", "stuck-at-0", "--out", "x.db"])
    assert campaign.fault_model == "stuck-at-0"  # the old name of --fault-model still works, unlisted
    assert "--fault-model FAULT_MODEL" in dict(_parsers(parser))["resilq", "campaign"].format_help()
