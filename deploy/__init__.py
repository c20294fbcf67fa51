"""resilq.deploy: run a packaged network on a PYNQ-Z2, or on the bit-true emulated device, through one driver.

* :mod:`.memory` -- DDR blocks (``pynq.allocate`` on a board, host memory in emulation) and the
  :class:`~.memory.Device` protocol the driver talks to;
* :mod:`.emulator` -- the accelerator's registers and DDR behaviour backed by the bit-true executor;
  :mod:`.unpack` decodes a memory image back into the network it encodes;
* :mod:`.targets` -- ``board`` (pynq), ``emulator``, ``csim`` (the HLS C++ through ctypes);
* :mod:`.hwh` -- reads an overlay's ``.hwh`` and refuses one whose IP or register map differs;
* :mod:`.pynq_ip` -- the ``pynq.DefaultIP`` subclass bound to the accelerator's VLNV (imports pynq);
* :mod:`.driver` -- :class:`~.driver.Accelerator`: load a model, inject faults, run, read counters;
* :mod:`.package` -- the deployment folder (overlay, model, driver code) and its dependency check.

Everything but :mod:`.pynq_ip` (pynq) and the csim target (g++) is numpy-only and runs on the PYNQ
image's Python 3.10 with numpy 1.21.
"""
