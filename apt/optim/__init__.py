"""apt.optim: turning one gradient into a parameter update (Adam, AdamW, Muon and their APT variants).

Public surface:
    OPTIMIZERS, make_optimizer(name, named_parameters, *, lr, muon_excluded, weight_decay, diagnostics, **hp)
    split_muon_params(named_parameters, excluded) -> (muon_named, adamw_named)     (register O1)
    muon_param_groups(named_parameters, *, excluded, adam_lr)
    Muon, APT, SGD, Adam, AdamW                                                    (torch.optim.Optimizer)
    newton_schulz, polar_factor, effective_rank
    diagnostics.task_alignment(update [P], jacobian [K, P]) -> [K]                  (register G4)
    assumptions.ASSUMPTIONS: the assumptions register (one row per rule we had to choose)
Every optimizer built here records ``step_diagnostics`` / ``last_update`` when ``diagnostics=True``.
"""

from apt.optim import assumptions, diagnostics
from apt.optim.apt import APT, APT_BASES
from apt.optim.baselines import SGD, Adam, AdamW
from apt.optim.diagnostics import alignment_summary, task_alignment
from apt.optim.direction import PRESERVATION_RULES
from apt.optim.factory import DEFAULT_HP, OPTIMIZERS, make_optimizer
from apt.optim.momentum import ADAPT_DIRECTIONS, COSINE_SCOPES, MOMENTUM_RULES, adaptive_beta
from apt.optim.muon import ADJUST_LR_RULES, Muon, muon_param_groups, split_muon_params
from apt.optim.newton_schulz import effective_rank, newton_schulz, polar_factor

__all__ = [
    "ADAPT_DIRECTIONS", "ADJUST_LR_RULES", "APT", "APT_BASES", "COSINE_SCOPES", "DEFAULT_HP", "MOMENTUM_RULES",
    "OPTIMIZERS", "PRESERVATION_RULES", "SGD", "Adam", "AdamW", "Muon", "adaptive_beta", "alignment_summary",
    "assumptions", "diagnostics", "effective_rank", "make_optimizer", "muon_param_groups", "newton_schulz",
    "polar_factor", "split_muon_params", "task_alignment",
]
