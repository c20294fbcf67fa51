"""The .rq file: round trip, and clear errors for every way a file can be bad."""

import io
import json
import zipfile

import numpy as np
import pytest

from resilq.arith import Scheme
from resilq.errors import FormatError, UnsupportedModelError
from resilq.ir import Flatten, InputQuant, Linear, Model, load_model, save_model

from factories import protect, random_model


@pytest.fixture
def model(rng):
    return random_model(rng)


def test_round_trip_is_identical(model, tmp_path):
    path = save_model(model, tmp_path / "m.rq")
    back = load_model(path)
    assert back.hash == model.hash
    assert back.metadata == dict(model.metadata)
    for a, b in zip(model.layers, back.layers):
        assert type(a) is type(b) and a.name == b.name
        if hasattr(a, "weight"):
            assert np.array_equal(a.weight, b.weight) and a.weight.dtype == b.weight.dtype
            assert np.array_equal(a.bias, b.bias)


def test_protection_round_trips_and_changes_the_hash(model, rng, tmp_path):
    hard = protect(model, rng, Scheme.TMR)
    back = load_model(save_model(hard, tmp_path / "h.rq"))
    assert back.hash == hard.hash != model.hash
    assert back.network_hash == model.network_hash
    for i in model.neuron_layers:
        assert np.array_equal(back.protection(i).neurons, hard.protection(i).neurons)
        assert back.protection(i).scheme is Scheme.TMR


def test_not_a_zip(tmp_path):
    p = tmp_path / "x.rq"
    p.write_bytes(b"hello, I am not a model")
    with pytest.raises(FormatError, match="not a resilq model file"):
        load_model(p)


def test_missing_file(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        load_model(tmp_path / "nope.rq")


def test_truncated(model, tmp_path):
    p = save_model(model, tmp_path / "m.rq")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="m.rq"):
        load_model(p)


def test_corrupted_bytes_are_caught(model, tmp_path):
    p = save_model(model, tmp_path / "m.rq")
    data = bytearray(p.read_bytes())
    # damage the middle of the first stored array's compressed payload
    with zipfile.ZipFile(p) as zf:
        info = zf.getinfo("arrays/L0.weight.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for k in range(8):
        data[start + info.compress_size // 2 + k] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="L0.weight"):
        load_model(p)


def _rewrite(p, edit_manifest=None, replace=None):
    with zipfile.ZipFile(p) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(members["manifest.json"])
    if edit_manifest:
        edit_manifest(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    members.update(replace or {})
    with zipfile.ZipFile(p, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)


def test_wrong_version(model, tmp_path):
    p = save_model(model, tmp_path / "m.rq")
    _rewrite(p, lambda m: m.__setitem__("version", 99))
    with pytest.raises(FormatError, match="version 99 is not supported"):
        load_model(p)


def test_wrong_kind(model, tmp_path):
    p = save_model(model, tmp_path / "m.rq")
    _rewrite(p, lambda m: m.__setitem__("kind", "nvf"))
    with pytest.raises(FormatError, match="is a resilq 'nvf' file"):
        load_model(p)


def test_tampered_weights_fail_the_hash(model, tmp_path):
    p = save_model(model, tmp_path / "m.rq")
    buf = io.BytesIO()
    w = model.layers[0].weight.copy()
    w.flat[0] = w.flat[0] ^ 1
    np.save(buf, w)
    _rewrite(p, replace={"arrays/L0.weight.npy": buf.getvalue()})
    with pytest.raises(FormatError, match="hash mismatch"):
        load_model(p)


def test_pickled_array_is_refused_not_executed(model, tmp_path):
    p = save_model(model, tmp_path / "m.rq")
    buf = io.BytesIO()
    np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)

    def declare(m):
        m["arrays"]["L0.weight"] = {"dtype": "int8", "shape": [1]}

    _rewrite(p, declare, {"arrays/L0.weight.npy": buf.getvalue()})
    with pytest.raises(FormatError, match="has dtype object, which resilq files do not store"):
        load_model(p)


def test_shape_mismatch_against_manifest(model, tmp_path):
    p = save_model(model, tmp_path / "m.rq")
    _rewrite(p, lambda m: m["arrays"]["L0.bias"].__setitem__("shape", [99]))
    with pytest.raises(FormatError, match="L0.bias"):
        load_model(p)


def test_invalid_model_inside_a_valid_file(model, tmp_path):
    p = save_model(model, tmp_path / "m.rq")

    def break_chain(m):
        m["header"]["layers"][0]["padding"] = -1
        m["header"].pop("hash")

    _rewrite(p, break_chain)
    with pytest.raises(FormatError, match="invalid.*conv1.*padding >= 0"):
        load_model(p)


def test_model_validation_messages(model):
    fc = model.layers[-2]
    with pytest.raises(UnsupportedModelError, match="fc1.*only the final classifier may output raw int32"):
        model.with_layer(len(model.layers) - 2, Linear(fc.name, fc.weight, fc.bias, None))
    wide = np.full((2, 160000), 127, np.int8)
    with pytest.raises(UnsupportedModelError, match="'wide'.*int32 accumulator can overflow"):
        Model(InputQuant((1, 400, 400), 7), (Flatten("f"), Linear("wide", wide, np.zeros(2, np.int32), None)))
