"""resilq: fault-tolerant quantized neural networks on FPGA accelerators.

Flow: ``train`` (Brevitas -> integer IR) -> ``nvf`` (vulnerability analysis) -> ``harden`` ->
``campaign`` (fault injection) -> ``hls`` -> ``overlays`` -> ``deploy``.
Importing ``resilq`` is cheap and needs only numpy; torch and Brevitas load when training is used.
"""

__version__ = "0.1.0"
