"""sparse_jax: masks, static pruning, Topology-Aware Revival and dynamic sparse training.

Masks are pytrees shaped like the params (a boolean array per prunable leaf,
``None`` per dense leaf). The top level holds the verbs a training script
needs; the submodules (``masks``, ``scores``, ``distributions``, ``revival``,
``topology``, ``methods``, ``rules``, ``schedules``, ``transforms``, ``state``,
``redo``, ``export``, ``utils``, ``validation``) hold the rest. A method of your own is a
:class:`SparseMethod` (an initial mask and an optional mask rule) passed to
:func:`register_method`.

A typical use: prune (or revive) once, then train with a sparse optax
transform whose state carries the masks::

    init = sj.sparse_init(key, params, 0.9, method="tar", score="snip", loss_fn=loss, batch=batch)
    tx = sj.sparse_optimizer("tar", optax.adam(3e-4))
    opt_state = sj.with_masks(tx.init(init.params), init.masks)
"""

# The submodules stay reachable as sj.masks, sj.scores, ... for what the top level leaves out.
from sparse_jax import (  # noqa: F401
    distributions,
    export,
    masks,
    methods,
    pruning,
    redo,
    revival,
    rules,
    schedules,
    scores,
    state,
    topology,
    transforms,
    utils,
    validation,
)
from sparse_jax.distributions import DISTRIBUTIONS, distribution_masks, layer_counts
from sparse_jax.export import to_bcoo
from sparse_jax.masks import (
    active_counts,
    apply_mask,
    check_masks,
    default_filter,
    dense_masks,
    density_summary,
    matching_width,
    target_active,
    topk_mask,
)
from sparse_jax.methods import (
    MASK_METHODS,
    METHODS,
    Method,
    SparseMethod,
    get_method,
    register_method,
    unregister_method,
)
from sparse_jax.pruning import SparseInit, prune, reinit_kept, sparse_init
from sparse_jax.redo import dormant_units, recycle, reset_moments
from sparse_jax.revival import (
    RevivalConfig,
    revival_budget,
    revive,
    tar,
    tar_allocation,
    topology_proxy,
    uniform_allocation,
    uniform_revival,
)
from sparse_jax.rules import DropAndGrow, MagnitudePrune, MaskRule, Rule, RuleContext
from sparse_jax.scores import SCORES, compute_scores
from sparse_jax.topology import Reachability, layer_topology, reachability, topology_table
from sparse_jax.transforms import (
    DSTSchedule,
    GMPSchedule,
    SparseState,
    drop_and_grow,
    get_masks,
    gmp_sparse,
    keep_sparse,
    rigl_sparse,
    set_sparse,
    sparse_optimizer,
    sparse_transform,
    static_sparse,
    with_masks,
)
from sparse_jax.utils import Residual, is_none, kernel_stages, path_name

__all__ = [
    # methods and masks
    "METHODS",
    "MASK_METHODS",
    "Method",
    "SparseMethod",
    "register_method",
    "unregister_method",
    "get_method",
    "SCORES",
    "DISTRIBUTIONS",
    "sparse_init",
    "SparseInit",
    "prune",
    "reinit_kept",
    "compute_scores",
    "layer_counts",
    "distribution_masks",
    "dense_masks",
    "apply_mask",
    "check_masks",
    "default_filter",
    "active_counts",
    "density_summary",
    "target_active",
    "matching_width",
    "topk_mask",
    # revival
    "RevivalConfig",
    "revival_budget",
    "revive",
    "tar",
    "uniform_revival",
    "tar_allocation",
    "uniform_allocation",
    "topology_proxy",
    # ReDo: recycling dormant units
    "dormant_units",
    "recycle",
    "reset_moments",
    # topology
    "Reachability",
    "Residual",
    "kernel_stages",
    "layer_topology",
    "reachability",
    "topology_table",
    # mask rules
    "MaskRule",
    "Rule",
    "RuleContext",
    "DropAndGrow",
    "MagnitudePrune",
    # training transforms
    "DSTSchedule",
    "GMPSchedule",
    "SparseState",
    "sparse_transform",
    "sparse_optimizer",
    "static_sparse",
    "set_sparse",
    "rigl_sparse",
    "gmp_sparse",
    "with_masks",
    "get_masks",
    "keep_sparse",
    "drop_and_grow",
    # export
    "to_bcoo",
    # tree helpers
    "is_none",
    "path_name",
]
