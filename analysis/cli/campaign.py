"""``resilq campaign``, ``sweep``, ``plot`` and ``report``: defined in :mod:`resilq.campaign.cli`."""

from ..campaign.cli import register

__all__ = ["register"]
