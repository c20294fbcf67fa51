"""Vulnerability analysis: Neuron Vulnerability Factors (SPEC §3)."""

from .result import TABLE_THRESHOLDS, NVFResult, check_threshold, load_nvf, save_nvf

__all__ = ["TABLE_THRESHOLDS", "NVFResult", "check_threshold", "load_nvf", "save_nvf"]
