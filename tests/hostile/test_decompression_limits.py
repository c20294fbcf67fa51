"""Hostile files cannot make a reader do unbounded work: declared sizes are checked before anything is read
or decompressed, and streams are read with a cap. Each reader gets several crafted files; each case asserts
the exact error, and for the bombs a fresh process's peak memory and time."""

import gzip
import json
import pickle
import struct
import zipfile

import numpy as np
import pytest

from resilq.archive import (
    MAX_ARRAY_BYTES,
    MAX_JSON_DEPTH,
    MAX_MANIFEST_BYTES,
    MAX_TOTAL_BYTES,
    read_json_file,
    read_npz,
)
from resilq.cli import main
from resilq.data.cifar import MAX_BATCH_BYTES, load_cifar10
from resilq.data.idx import MAX_IDX_BYTES, read_idx
from resilq.errors import DatasetError, FormatError
from resilq.ir import load_model, save_model

from factories import random_model
from hostile_files import deflate_zeros, deflated, npy_header, read_in_child, write_zip


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.rq"
    save_model(random_model(np.random.default_rng(3)), path)
    return path


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _rewrite(src, dst, manifest_edit=None, replace=None):
    """``src`` rewritten with the manifest edited and some members replaced by (stream, crc, size) triples."""
    members = _members(src)
    manifest = json.loads(members.pop("manifest.json"))
    if manifest_edit:
        manifest_edit(manifest)
    out = [("manifest.json", *deflated(json.dumps(manifest).encode()))]
    for name, data in members.items():
        out.append((name, *(replace[name] if replace and name in replace else deflated(data))))
    return write_zip(dst, out)


# ---------------------------------------------------------------------------------------------- .rq zip bombs
@pytest.fixture(scope="module")
def bomb_stream():
    """1.5 GB of zeros behind an int8 .npy header declaring 1.5e9 elements: a 1.5 MB deflate stream."""
    megabytes = 1500
    header = npy_header("|i1", (megabytes << 20,))
    return deflate_zeros(megabytes, header), megabytes


def test_a_zip_bomb_model_is_refused_fast_in_bounded_memory(model_file, tmp_path, bomb_stream):
    (stream, crc, size), megabytes = bomb_stream

    def declare(m):
        m["arrays"]["L0.weight"] = {"dtype": "int8", "shape": [megabytes << 20]}

    bomb = _rewrite(model_file, tmp_path / "bomb.rq", declare, {"arrays/L0.weight.npy": (stream, crc, size)})
    assert 1.4e6 < bomb.stat().st_size < 1.7e6 and size > 1.5e9
    with pytest.raises(FormatError, match=f"array 'L0.weight' declares shape \\[{megabytes << 20}\\] .* more than "
                                          f"the {MAX_ARRAY_BYTES:,} bytes"):
        load_model(bomb)
    baseline = read_in_child("resilq.ir.load_model", model_file)
    child = read_in_child("resilq.ir.load_model", bomb)
    assert baseline["error"] is None and "more than the" in child["error"]
    assert child["seconds"] < 10 and child["peak_mb"] < baseline["peak_mb"] + 32, (baseline, child)


def test_a_bomb_member_behind_an_honest_manifest_is_refused_by_its_declared_size(model_file, tmp_path, bomb_stream):
    (stream, crc, size), _ = bomb_stream  # the manifest still says L0.weight is small
    bomb = _rewrite(model_file, tmp_path / "bomb.rq", replace={"arrays/L0.weight.npy": (stream, crc, size)})
    with pytest.raises(FormatError, match=f"array 'L0.weight' declares {size:,} bytes, more than the"):
        load_model(bomb)
    child = read_in_child("resilq.ir.load_model", bomb)
    assert "refusing to decompress" in child["error"] and child["seconds"] < 10


def test_a_member_that_lies_about_its_size_is_cut_at_the_declared_size(model_file, tmp_path, bomb_stream):
    """Declared: the genuine member's size and CRC; stored: a 1.5 GB stream. Read: declared bytes, then CRC."""
    (stream, _, _), _ = bomb_stream
    genuine = _members(model_file)["arrays/L0.weight.npy"]
    lying = (stream, __import__("zlib").crc32(genuine), len(genuine))
    bomb = _rewrite(model_file, tmp_path / "lie.rq", replace={"arrays/L0.weight.npy": lying})
    baseline = read_in_child("resilq.ir.load_model", model_file)
    child = read_in_child("resilq.ir.load_model", bomb)
    assert child["error"] is not None and "L0.weight" in child["error"]
    assert child["seconds"] < 10 and child["peak_mb"] < baseline["peak_mb"] + 32, (baseline, child)


def test_arrays_that_together_exceed_the_total_are_refused_before_reading(model_file, tmp_path):
    n = MAX_ARRAY_BYTES // 4  # int32: each array at the per-array limit

    def declare(m):
        for k in range(MAX_TOTAL_BYTES // MAX_ARRAY_BYTES + 1):
            m["arrays"][f"pad{k}"] = {"dtype": "int32", "shape": [n]}

    bomb = _rewrite(model_file, tmp_path / "many.rq", declare)
    with pytest.raises(FormatError, match=f"more than the {MAX_TOTAL_BYTES:,} a resilq file may hold"):
        load_model(bomb)


@pytest.mark.parametrize("shape, needle", [
    ([10 ** 15], "declares shape \\[1000000000000000\\]"),
    ([2 ** 32, 2 ** 32, 2 ** 32], "declares shape"),  # the product overflows int64
    ([-1], "malformed shape"), (["7"], "malformed shape"), ([True], "malformed shape"), ([1] * 9, "malformed shape"),
    ("[1]", "malformed shape")])
def test_declared_shapes_are_checked_before_reading(model_file, tmp_path, shape, needle):
    def declare(m):
        m["arrays"]["L0.weight"]["shape"] = shape

    with pytest.raises(FormatError, match=needle):
        load_model(_rewrite(model_file, tmp_path / "s.rq", declare))


def test_an_npy_header_declaring_1e15_elements_is_refused_before_reading(model_file, tmp_path):
    member = npy_header("|i1", (10 ** 15,)) + bytes(64)
    bomb = _rewrite(model_file, tmp_path / "h.rq", replace={"arrays/L0.weight.npy": deflated(member)})
    with pytest.raises(FormatError, match="L0.weight' declares shape \\[1000000000000000\\]"):
        load_model(bomb)
    w = _members(model_file)["arrays/L0.weight.npy"]
    shape = tuple(np.load(__import__("io").BytesIO(w)).shape)
    short = npy_header("|i1", shape) + bytes(3)  # the header is right, the data is not all there
    with pytest.raises(FormatError, match="declares .* bytes of data but the member holds 3"):
        load_model(_rewrite(model_file, tmp_path / "t.rq", replace={"arrays/L0.weight.npy": deflated(short)}))
    huge_header = b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 30)
    with pytest.raises(FormatError, match=".npy header of 1,073,741,824 bytes"):
        load_model(_rewrite(model_file, tmp_path / "u.rq", replace={"arrays/L0.weight.npy": deflated(huge_header)}))


def test_huge_and_deeply_nested_manifests_are_refused(model_file, tmp_path, capsys):
    def deep(m):
        m["header"]["metadata"] = json.loads("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))

    with pytest.raises(FormatError, match=f"nested too deeply \\(more than {MAX_JSON_DEPTH} levels\\)"):
        load_model(_rewrite(model_file, tmp_path / "d.rq", deep))
    members = _members(model_file)
    deeper = ('{"format": "resilq", "kind": "model", "x": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()
    out = [("manifest.json", *deflated(deeper))] + [(k, *deflated(v)) for k, v in members.items() if k != "manifest.json"]
    path = write_zip(tmp_path / "e.rq", out)
    with pytest.raises(FormatError, match="nested too deeply"):
        load_model(path)
    capsys.readouterr()
    assert main(["info", str(path)]) == 2
    assert "nested too deeply" in capsys.readouterr().err
    big = deflate_zeros(MAX_MANIFEST_BYTES >> 20, b"{}")  # 8 MiB of NULs after the JSON
    out = [("manifest.json", *big)] + out[1:]
    with pytest.raises(FormatError, match=f"manifest declares {big[2]:,} bytes, more than the"):
        load_model(write_zip(tmp_path / "f.rq", out))


def test_the_model_hash_is_required(model_file, tmp_path):
    def drop(m):
        del m["header"]["hash"]

    def null(m):
        m["header"]["hash"] = None

    for edit, found in ((drop, "None"), (null, "None")):
        with pytest.raises(FormatError, match=f"no valid content hash \\(found {found}\\)"):
            load_model(_rewrite(model_file, tmp_path / "n.rq", edit))


# ---------------------------------------------------------------------------------------------- JSON files, .npz
def test_package_json_and_npz_readers_are_bounded(tmp_path):
    deep = tmp_path / "manifest.json"
    deep.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(FormatError, match="manifest.json is nested too deeply"):
        read_json_file(deep)
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:
        f.truncate(MAX_MANIFEST_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(FormatError, match=f"{MAX_MANIFEST_BYTES + 1:,} bytes, more than the {MAX_MANIFEST_BYTES:,}"):
        read_json_file(huge, "package manifest")
    np.savez(tmp_path / "ok.npz", x=np.zeros((2, 1, 3, 3), np.int8), labels=np.arange(2))
    assert read_npz(tmp_path / "ok.npz", ("x", "labels"))["x"].shape == (2, 1, 3, 3)
    stream, crc, size = deflate_zeros(400, npy_header("|i1", (400 << 20,)))
    write_zip(tmp_path / "bomb.npz", [("x.npy", stream, crc, size), ("labels.npy", *deflated(npy_header("<i8", (0,))))])
    with pytest.raises(FormatError, match="array 'x' declares .* bytes, more than the"):
        read_npz(tmp_path / "bomb.npz", ("x", "labels"))
    write_zip(tmp_path / "h.npz", [("x.npy", *deflated(npy_header("|i1", (10 ** 15,)))),
                                   ("labels.npy", *deflated(npy_header("<i8", (0,))))])
    with pytest.raises(FormatError, match="declares shape \\[1000000000000000\\]"):
        read_npz(tmp_path / "h.npz", ("x", "labels"))
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object), labels=np.arange(1))
    with pytest.raises(FormatError, match="dtype object"):
        read_npz(tmp_path / "obj.npz", ("x", "labels"))
    with pytest.raises(FormatError, match="array 'labels2' is missing"):
        read_npz(tmp_path / "ok.npz", ("x", "labels2"))


# ---------------------------------------------------------------------------------------------- IDX
def _idx(dims, dtype_code=0x08):
    return bytes([0, 0, dtype_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_dimensions_are_checked_before_reading(tmp_path, gz):
    name = "t10k-images-idx3-ubyte" + (".gz" if gz else "")
    cases = {(2 ** 32 - 1,) * 3: "4294967295", (1 << 31,): f"more than the {MAX_IDX_BYTES:,}",
             (65536, 65536, 0x0D): "more than the"}
    for dims, needle in cases.items():
        data = _idx(dims) + bytes(100)
        (tmp_path / name).write_bytes(gzip.compress(data) if gz else data)
        with pytest.raises(DatasetError, match=needle):
            read_idx(tmp_path / name)
    data = bytes([0, 0, 8, 200])
    (tmp_path / name).write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DatasetError, match="200 dimensions"):
        read_idx(tmp_path / name)


def test_a_gzip_idx_bomb_is_refused_in_bounded_memory(tmp_path):
    """A 2 MB gzip holding a small valid header and 2 GB of zeros behind it, and one declaring 2 GB."""
    for dims, needle in (((10, 28, 28), "the file holds more than 7,840"), ((2048, 1024, 1024), "more than the")):
        stream, crc, size = deflate_zeros(2048, _idx(dims))
        path = tmp_path / "train-images-idx3-ubyte.gz"  # gzip = header + raw deflate + crc32 + size mod 2^32
        path.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + stream + struct.pack("<II", crc, size & 0xFFFFFFFF))
        assert path.stat().st_size < 2.5e6
        child = read_in_child("resilq.data.idx.read_idx", path)
        assert child["error"] is not None and needle in child["error"], child
        assert child["seconds"] < 10 and child["peak_mb"] < 200, child


# ---------------------------------------------------------------------------------------------- CIFAR
class _Obj:
    pass


def _write_batches(folder, batch_bytes):
    folder.mkdir(parents=True, exist_ok=True)
    for n in ["test_batch"]:
        (folder / n).write_bytes(batch_bytes)


def test_cifar_object_arrays_and_oversized_batches_are_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    good = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]}
    _write_batches(folder, pickle.dumps(good, protocol=2))
    assert load_cifar10(tmp_path, "test")[0].shape == (2, 3, 32, 32)
    bad = {b"data": np.array([[1] * 3072, [2] * 3072], dtype=object), b"labels": [1, 2]}
    _write_batches(folder, pickle.dumps(bad, protocol=2))
    with pytest.raises(DatasetError, match="refusing an array of dtype object"):
        load_cifar10(tmp_path, "test")
    evil = {b"data": good[b"data"], b"labels": _Obj()}
    _write_batches(folder, pickle.dumps(evil, protocol=2))
    with pytest.raises(DatasetError, match="refusing to load .*_Obj"):
        load_cifar10(tmp_path, "test")
    strings = {b"data": good[b"data"], b"labels": ["1", "2"]}
    _write_batches(folder, pickle.dumps(strings, protocol=2))
    with pytest.raises(DatasetError, match="list of integers"):
        load_cifar10(tmp_path, "test")
    floats = {b"data": good[b"data"].astype(np.float32), b"labels": [1, 2]}
    _write_batches(folder, pickle.dumps(floats, protocol=2))
    with pytest.raises(DatasetError, match="uint8 array, found float32"):
        load_cifar10(tmp_path, "test")
    with open(folder / "test_batch", "wb") as f:
        f.truncate(MAX_BATCH_BYTES + 1)  # sparse
    with pytest.raises(DatasetError, match=f"more than the {MAX_BATCH_BYTES:,}"):
        load_cifar10(tmp_path, "test")
    binary = tmp_path / "bin" / "cifar-10-batches-bin"
    binary.mkdir(parents=True)
    with open(binary / "test_batch.bin", "wb") as f:
        f.truncate(MAX_BATCH_BYTES + 3073)
    with pytest.raises(DatasetError, match="more than the"):
        load_cifar10(tmp_path / "bin", "test")
