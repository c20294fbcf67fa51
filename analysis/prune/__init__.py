"""Structured output-channel pruning ranked by vulnerability or L1 norm, with Brevitas fine-tuning (the
hardening-and-pruning paper): the MACs pruning saves pay for the protection added afterwards."""

from .ranking import PruningPlan, Ranking, check_ratio, l1_importance, plan_pruning, vulnerability_importance
from .surgery import prune_channels, removed_outputs
from .workflow import FinetuneConfig, PruneResult, prune

__all__ = ["FinetuneConfig", "PruneResult", "PruningPlan", "Ranking", "check_ratio", "l1_importance", "plan_pruning",
           "prune", "prune_channels", "removed_outputs", "vulnerability_importance"]
