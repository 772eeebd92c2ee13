"""apt: advanced optimizers and optimization-based multi-task learning.

Public surface (see DESIGN.md §7):
    apt.mtl.make_method(name, n_tasks, **hp), apt.mtl.mtl_backward(...), apt.mtl.aggregate(...)
    apt.optim.make_optimizer(name, named_parameters, ...)
    apt.experiment.Config, apt.experiment.run(config)
"""

__version__ = "0.1.0"
