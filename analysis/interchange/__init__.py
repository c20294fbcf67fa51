"""Interchange with the QONNX ecosystem (FINN, qonnx, Brevitas's QONNX export). Needs the ``[onnx]`` extra."""
