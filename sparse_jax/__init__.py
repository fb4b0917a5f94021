"""sparse_jax: masks, static pruning, Topology-Aware Revival and dynamic sparse training.

Masks are pytrees shaped like the params (a boolean array per prunable leaf,
``None`` per dense leaf); every transform is a pure function or an optax
``GradientTransformationExtraArgs``.
"""

from sparse_jax import distributions, masks, pruning, revival, scores, topology, transforms
from sparse_jax.distributions import (
    DISTRIBUTIONS,
    apportion,
    distribution_masks,
    erk,
    global_,
    global_masks,
    layer_counts,
    uniform,
)
from sparse_jax.masks import (
    active_counts,
    apply_mask,
    check_masks,
    check_sparsity,
    default_filter,
    dense_masks,
    density_summary,
    target_active,
    topk_mask,
)
from sparse_jax.pruning import MASK_METHODS, SparseInit, prune, reinit_kept, sparse_init
from sparse_jax.revival import (
    RevivalConfig,
    revival_budget,
    revive,
    revived_params,
    tar,
    tar_allocation,
    topology_proxy,
    uniform_allocation,
    uniform_revival,
)
from sparse_jax.scores import SCORES, compute_scores, magnitude, snip
from sparse_jax.scores import random as random_scores
from sparse_jax.topology import LayerTopology, Reachability, layer_topology, reachability, topology_table
from sparse_jax.transforms import (
    DST_METHODS,
    DSTSchedule,
    SparseState,
    drop_and_grow,
    get_masks,
    rigl_sparse,
    set_sparse,
    sparse_optimizer,
    sparse_transform,
    static_sparse,
)

__all__ = [
    "DISTRIBUTIONS", "DST_METHODS", "DSTSchedule", "LayerTopology", "MASK_METHODS", "Reachability",
    "RevivalConfig", "SCORES", "SparseInit", "SparseState", "active_counts", "apply_mask", "apportion",
    "check_masks", "check_sparsity", "compute_scores", "default_filter", "dense_masks", "density_summary",
    "distribution_masks", "distributions", "drop_and_grow", "erk", "get_masks", "global_", "global_masks",
    "layer_counts", "layer_topology", "magnitude", "masks", "prune", "pruning", "random_scores",
    "reachability", "reinit_kept", "revival", "revival_budget", "revive", "revived_params", "rigl_sparse",
    "scores", "set_sparse", "snip", "sparse_init", "sparse_optimizer", "sparse_transform", "static_sparse",
    "tar", "tar_allocation", "target_active", "topk_mask", "topology", "topology_proxy", "topology_table",
    "transforms", "uniform", "uniform_allocation", "uniform_revival",
]
