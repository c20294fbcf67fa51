"""resilq.hls: the HLS accelerator (``hls/``) and everything the host needs to drive it.

The C++ sources in ``hls/include`` and ``hls/src`` are the synthesizable accelerator; this package holds
the facts the host and the hardware share, each written once:

* :mod:`.config` -- ``AccelConfig``: PE x SIMD parallelism, buffer capacities, modelled pipeline depths;
* :mod:`.regmap` -- the AXI-Lite register map (offsets, fields, table capacity, version);
* :mod:`.imageformat` -- the DDR memory image: header, layer descriptors, parameter beats;
* :mod:`.codegen` -- renders the C++ headers of the three above (checked fresh by the tests);
* :mod:`.mapping` -- refuses a model the accelerator cannot run, naming the layer and the limit;
* :mod:`.packing` -- ``Model`` -> ``MemoryImage`` (DDR bytes, descriptors, critical-neuron table);
* :mod:`.host` -- the register-level run sequence, for any MMIO-like device (C-sim here, the board later);
* :mod:`.csim` -- the accelerator source compiled by g++ and driven through ctypes (integers only);
* :mod:`.cycles` / :mod:`.resources` -- cycle model and resource estimate against the board budget.
* :mod:`.tools` -- Vitis HLS (vitis_hls or vitis-run) and Vivado on PATH, releases 2022.1 - 2024.x.

Everything but :mod:`.cli` imports numpy and the standard library only (a test checks it), so the PYNQ
driver can import it on the board; :mod:`.csim` and :mod:`.project` call g++ / Vitis HLS when used.
"""

from pathlib import Path

HLS_DIR = Path(__file__).resolve().parent
INCLUDE_DIR = HLS_DIR / "include"
SRC_DIR = HLS_DIR / "src"
TB_DIR = HLS_DIR / "tb"
TCL_DIR = HLS_DIR / "tcl"
