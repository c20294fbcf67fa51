"""Mapping a model onto the accelerator (refusals name the layer and the limit), and the memory image."""

from __future__ import annotations

import numpy as np
import pytest
from hls_support import calibrated_model, protect_fraction

from resilq.arith import Scheme
from resilq.errors import ParameterError, ShapeError, UnsupportedModelError
from resilq.hls import imageformat as fmt
from resilq.hls import regmap
from resilq.hls.config import AccelConfig
from resilq.hls.cycles import cycle_report, layer_cycles, protected_groups
from resilq.hls.mapping import plan_model
from resilq.hls.packing import pack, weight_rows
from resilq.ir import Protection

CFG = AccelConfig()
LENETISH = [("conv", 6, 5, 1, 0), ("pool", 2, 2), ("conv", 16, 5, 1, 0), ("pool", 2, 2), ("flatten",), ("fc", 40),
            ("head", 10)]


@pytest.fixture(scope="module")
def model():
    return calibrated_model(np.random.default_rng(3), (1, 28, 28), LENETISH, "lenetish")


def test_plan_maps_linear_as_a_1x1_conv(model):
    plans = plan_model(model, CFG)
    assert [p.index for p in plans] == [0, 1, 2, 3, 5, 6]  # the Flatten needs no descriptor
    fc = plans[4]
    assert (fc.op, fc.in_c, fc.in_h, fc.kernel, fc.out_c, fc.hw_out) == (fmt.Op.CONV, 256, 1, 1, 40, 1)
    assert fc.flags == fmt.Flag.RELU | fmt.Flag.NEURONS | fmt.Flag.BATCH  # vector layers take a batch at once
    assert plans[-1].flags == fmt.Flag.RAW | fmt.Flag.BATCH and plans[1].op is fmt.Op.MAXPOOL
    assert not plans[0].batched and not plans[2].batched
    conv1 = plans[0]
    assert (conv1.cg, conv1.ft, conv1.row_bytes, conv1.tiles) == (1, 25, 200, 1)


@pytest.mark.parametrize("spec,config,needle", [
    ([("conv", 4, 13, 1, 0), ("flatten",), ("head", 3)], CFG, "kernel size 13 exceeds the accelerator limit 11 (max_kernel)"),
    ([("conv", 4, 3, 5, 0), ("flatten",), ("head", 3)], CFG, "stride 5 exceeds the accelerator limit 4 (max_stride)"),
    ([("conv", 4, 3, 1, 0), ("flatten",), ("head", 3)], AccelConfig(max_channels=2), "output channels 4 exceeds"),
    ([("conv", 4, 3, 1, 0), ("flatten",), ("head", 3)], AccelConfig(max_in=512), "(max_in)"),
    ([("conv", 64, 3, 1, 0), ("flatten",), ("head", 3)], AccelConfig(max_out=2048), "(max_out)"),
    ([("conv", 4, 3, 1, 0), ("flatten",), ("head", 3)], AccelConfig(max_pos=100), "output positions per channel"),
    ([("flatten",), ("fc", 8), ("head", 3)], AccelConfig(max_fanin=512), "fan-in"),
    ([("flatten",), ("fc", 8), ("head", 30)], AccelConfig(max_raw=16), "int32 classifier outputs 30"),
])
def test_refusals_name_the_layer_and_the_limit(spec, config, needle):
    model = calibrated_model(np.random.default_rng(0), (3, 24, 24), spec)
    with pytest.raises(UnsupportedModelError, match="layer '") as err:
        plan_model(model, config)
    assert needle in str(err.value)


def test_descriptor_fields_are_16_bit():
    """The kernel's MAX_DIM (descriptor.hpp): a fan-in of 65,536 fits max_fanin here but not the 16-bit fields
    that keep every index product inside one DSP48E1; the emulator's decoder applies the same rule."""
    model = calibrated_model(np.random.default_rng(0), (1, 1, 65536), [("flatten",), ("head", 3)], "wide")
    with pytest.raises(UnsupportedModelError, match=r"input channels 65,536 exceeds the accelerator limit 65,535 "
                       r"\(16-bit descriptor fields\)"):
        plan_model(model, AccelConfig(max_fanin=65536))


def test_padding_not_smaller_than_kernel_is_refused():
    model = calibrated_model(np.random.default_rng(0), (1, 8, 8), [("conv", 2, 1, 1, 1), ("flatten",), ("head", 2)])
    with pytest.raises(UnsupportedModelError, match="padding 1 must be smaller than the kernel 1"):
        plan_model(model, CFG)


def test_table_capacity_and_shadow_lanes_are_refused(model):
    full = protect_fraction(model, np.random.default_rng(0), Scheme.TMR, 1.0)  # 3,456 + 1,024 + 40 neurons
    plan_model(full, CFG)  # 576 conv0 neurons x 2 shadows per lane fit the 2,048-byte lane buffer
    with pytest.raises(UnsupportedModelError, match=r"layer 'conv0'.*shadow values in one PE lane.*\(shadow_lane\)"):
        plan_model(full, AccelConfig(shadow_lane=1024))
    wide = calibrated_model(np.random.default_rng(0), (1, 28, 28), [("conv", 16, 3, 1, 0), ("flatten",), ("head", 3)])
    wide = protect_fraction(wide, np.random.default_rng(0), Scheme.SPLIT, 1.0)  # 10,816 neurons
    with pytest.raises(UnsupportedModelError, match=f"limit {regmap.CRIT_TABLE.capacity:,} \\(critical-table capacity\\)"):
        plan_model(wide, AccelConfig(shadow_lane=8192))
    ok = protect_fraction(model, np.random.default_rng(0), Scheme.SPLIT, 0.05)
    assert sum(p.n_protected for p in plan_model(ok, CFG)) == ok.n_protected


def test_config_validation():
    for bad, needle in [({"pe": 6}, "power of two"), ({"simd": 4}, "SIMD must be one of"),
                        ({"max_in": 100}, "multiple of 8"), ({"max_channels": 70000}, "16-bit channel")]:
        with pytest.raises(ParameterError, match=needle):
            AccelConfig(**bad)
    assert AccelConfig(pe=4, simd=16).out_banks == 16
    assert AccelConfig().config_id != AccelConfig(pe=16).config_id
    assert AccelConfig.from_dict(AccelConfig(pe=2).as_dict()) == AccelConfig(pe=2)


def test_image_layout(model):
    prot = protect_fraction(model, np.random.default_rng(1), Scheme.SPLIT, 0.05)
    image = pack(prot, CFG, batch=3)
    words = image.buffer.view("<u4")
    assert image.buffer.ctypes.data % 64 == 0 and image.nbytes == words[fmt.HeaderWord.IMAGE_BYTES]
    assert (words[0], words[1], words[2], words[3]) == (fmt.MAGIC, fmt.FORMAT_VERSION, CFG.simd, len(image.plans))
    spans = [(image.inputs.offset, image.inputs.offset + 3 * image.inputs.stride)]
    for i, r in image.outputs.items():
        assert r.offset % 64 == 0
        if i != 4:  # the Flatten aliases the pool's output
            spans.append((r.offset, r.offset + (3 * r.stride if r.stride else r.nbytes)))
    spans += [(o, o + 8 * p.out_c + p.out_c * p.row_bytes) for p, o in
              ((p, image.layer_offsets[p.index]) for p in image.plans if p.op is fmt.Op.CONV)]
    spans.sort()
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "regions overlap"
    assert image.outputs[4].offset == image.outputs[3].offset
    # descriptor 0 is conv1: geometry, addresses and its slice of the critical table
    d = words[words[fmt.HeaderWord.DESC_OFFSET] // 4:][:fmt.DESC_WORDS]
    assert d[fmt.DescWord.OP_FLAGS] == fmt.op_flags_word(fmt.Op.CONV, fmt.Flag.RELU | fmt.Flag.NEURONS | fmt.Flag.DENSE_IN
                                                                 | fmt.Flag.POOL_NEXT,
                                                             Scheme.SPLIT)  # 1 channel, k=5: packed, reads the input dense
    assert d[fmt.DescWord.GEOMETRY] == fmt.geometry_word(5, 1, 0)
    assert (d[fmt.DescWord.CRIT_START], d[fmt.DescWord.CRIT_COUNT]) == (0, prot.protection(0).n_protected)
    neurons = prot.protection(0).neurons
    assert np.array_equal(image.table[:neurons.size], (neurons // 576) << 16 | neurons % 576)


def test_weight_rows_follow_the_lane_order(model):
    layer, plan = model.layers[2], plan_model(model, CFG)[2]  # conv2: 16 x 6 x 5 x 5, channels padded to 8
    rows = weight_rows(plan, layer).reshape(16, 5, 5, 8)
    assert np.array_equal(rows[..., :6], layer.weight.transpose(0, 2, 3, 1)) and not rows[..., 6:].any()
    image = pack(model, CFG)
    base = image.layer_offsets[2]
    beats = image.buffer[base:base + 8 * 16].view("<i4").reshape(16, 2)
    assert np.array_equal(beats[:, 0], layer.bias) and np.array_equal(beats[:, 1], layer.requant.shift)


def test_inputs_and_outputs_round_trip(model):
    image = pack(model, CFG, batch=4)
    x = np.random.default_rng(0).integers(-128, 128, (4, 1, 28, 28)).astype(np.int8)
    image.write_inputs(x)
    assert np.array_equal(image.read_output(4, 4)[:, :0].shape, (4, 0))
    region = image.inputs
    assert np.array_equal(image.buffer[region.offset + region.stride:][:784].view(np.int8), x[1].ravel())
    with pytest.raises(ShapeError):
        image.write_inputs(x.astype(np.int16))
    with pytest.raises(ShapeError):
        image.write_inputs(np.zeros((5, 1, 28, 28), np.int8))
    with pytest.raises(ParameterError, match="outside 1..4"):
        image.read_output(0, 5)
    # layer-major: every image has its own region of every layer, in the pixel-major padded layout
    assert all(r.stride >= r.nbytes > 0 for r in image.outputs.values())
    conv1 = image.outputs[0]  # 6 x 24 x 24, channels padded to one 8-byte beat per pixel
    assert conv1.layout == fmt.MapLayout((6, 24, 24), 8) and conv1.nbytes == 24 * 24 * 8
    y = np.random.default_rng(1).integers(-128, 128, (4, 6, 24, 24)).astype(np.int8)
    for k in range(4):
        image.buffer[conv1.offset + k * conv1.stride:][:conv1.nbytes] = conv1.encode(y[k:k + 1])[0]
    assert np.array_equal(image.read_output(0, 4), y)
    pixel = image.buffer[conv1.offset + 8 * (3 * 24 + 5):][:8].view(np.int8)  # image 0, pixel (y=3, x=5)
    assert np.array_equal(pixel[:6], y[0, :, 3, 5]) and not pixel[6:].any()


def test_cycle_model_by_hand():
    """A 2-tile linear layer with protected neurons in one tile, counted by hand."""
    model = calibrated_model(np.random.default_rng(0), (1, 4, 4), [("flatten",), ("fc", 12), ("head", 3)])
    model = model.with_protection({1: Protection(Scheme.TMR, np.array([1, 6], np.int32))})
    rotated = AccelConfig(shadow_units=0)  # every shadow a rotated array pass
    plan = plan_model(model, rotated)[0]
    lat = rotated.latency
    c = layer_cycles(plan, rotated)
    ft = 2  # 16 inputs / SIMD 8
    assert c.load_input == 16 // 8 + lat.load_input  # 16 dense input bytes in 64-bit beats
    assert c.params == 12 + lat.params  # once per layer
    tile_weights = (8 * ft + lat.weights, 4 * ft + lat.weights)
    assert c.weights == sum(tile_weights)
    tile_table = (2 + lat.table, 0 + lat.table)  # both protected neurons (channels 1, 6) are in tile 0
    assert c.table == sum(tile_table) and c.correct == 2 + lat.lcu
    assert list(protected_groups(plan)) == [1, 0]  # both protected neurons sit in tile 0's only position
    # their 4 shadow values: 4 shadow lanes take them in the position's one pass, 3 do not
    assert list(protected_groups(plan_model(model, AccelConfig(shadow_units=4))[0])) == [0, 0]
    assert list(protected_groups(plan_model(model, AccelConfig(shadow_units=3))[0])) == [1, 0]
    tile_compute = ((1 + 2 * 1) * ft + lat.mac, 1 * ft + lat.mac)
    assert c.compute == sum(tile_compute)
    assert c.store == 12 // 8 + 1 + lat.store  # 12 channels padded to 2 beats
    # the input load and params + tile 0's weights share the HP port's read channel (beats add up, the shorter
    # start-up latency hides); tile 0's walk + compute beside tile 1's weights
    head = c.load_input + c.params + tile_weights[0] - min(lat.load_input, lat.params + lat.weights)
    body = max(tile_table[0] + tile_compute[0], tile_weights[1]) + tile_table[1] + tile_compute[1]
    assert c.total == c.descriptor + head + body + c.correct + c.store
    assert c.overlapped == c.load_input + c.params + c.weights + c.table + c.compute - head - body
    report = cycle_report(model, CFG)
    assert report.run(1) == report.run_overhead + report.per_inference
    # five images: fc1 is a vector layer, batched: fetched once, one weight load, the five images as positions
    assert plan_model(model, CFG)[0].batched
    b = layer_cycles(plan, CFG, images=5)
    assert b.descriptor == c.descriptor and (b.params, b.weights, b.table) == (c.params, c.weights, c.table)
    assert b.load_input == 5 * 2 + lat.load_input and b.store == 5 * 2 + lat.store
    assert b.compute == ((5 + 2 * 5) * ft + lat.mac) + (5 * ft + lat.mac) and b.correct == 2 * 5 + lat.lcu
    assert report.run(5) == report.run_overhead + sum(layer_cycles(p, CFG, 5).total for p in plan_model(model, CFG))
    assert report.run(5) < report.run_overhead + 5 * report.per_inference
