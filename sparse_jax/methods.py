"""Sparse training methods as objects, in one registry.

A :class:`SparseMethod` says how a method makes its initial masks (one of
:func:`sparse_jax.sparse_init`'s mask makers) and how it trains them (a mask
rule of :mod:`sparse_jax.rules`, or none for fixed masks). Everything else
(the library's :func:`sparse_jax.sparse_optimizer`, the sweep's program
sharing, the FLOPs model, the report's baselines) asks a method's facts
instead of comparing its name. A new method is one :func:`register_method`
call:

>>> from sparse_jax.rules import DropAndGrow
>>> class GrowNearZero(DropAndGrow):  # regrow where the dense gradient is smallest
...     def grow_scores(self, ctx, i, mask, grad):
...         return -abs(grad)
>>> m = register_method(SparseMethod("grow_near_zero", mask="static", rule=GrowNearZero(grow="gradient")))
>>> m.rewires, m.grows, m.needs_dense_grad, m.starts_dense
(True, True, True, False)
>>> unregister_method("grow_near_zero")
>>> METHODS["tar"].mask, METHODS["rigl"].rule, METHODS["gmp"].starts_dense
('tar', DropAndGrow(grow='gradient'), True)
>>> MASK_METHODS
('dense', 'static', 'uniform_revival', 'tar')
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Hashable

from sparse_jax import rules
from sparse_jax.rules import MaskRule
from sparse_jax.validation import check_choice, fail

# The initial masks sparse_init can make: dense, static pruning (score x distribution), and static
# pruning followed by one revival step (uniformly across layers, or TAR's topology-aware allocation).
MASKS = ("dense", "static", "uniform_revival", "tar")
REVIVAL_MASKS = ("uniform_revival", "tar")


@dataclasses.dataclass(frozen=True)
class SparseMethod:
    """One sparse training method.

    Attributes:
      name: its registry key and the name in run ids and tables (lowercase letters, digits, ``_``).
      mask: how the initial masks are made: ``dense``, ``static`` (score x
        distribution), ``uniform_revival`` or ``tar`` (:func:`sparse_jax.sparse_init`).
      rule: how the masks change during training (a :class:`sparse_jax.rules.MaskRule`),
        ``None`` for fixed masks.
      description: one line for listings.
      ensemble: it trains an ensemble of online critics at several sparsities and keeps the
        best (EauDe, :mod:`sparse_jax.eaude`): its algorithm selects and prunes between them, so it
        starts dense (``mask="dense"``), needs no rule, and only algorithms with an ensemble
        variant train it.
      matches_active: it trains dense networks narrowed until their parameter count is nearest the
        active count of the sparse networks at its sparsity (Graesser et al. 2022's "small dense"
        baseline; the training code picks the width, :func:`sparse_jax.matching_width`): ``mask="dense"``,
        no rule. Its sparsity sets its width, not its masks.
    """

    name: str
    mask: str = "static"
    rule: MaskRule | None = None
    description: str = ""
    ensemble: bool = False
    matches_active: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            fail("name", self.name, "lowercase letters, digits and '_', starting with a letter (run ids hold it)")
        check_choice("mask", self.mask, MASKS)
        if self.rule is not None and not isinstance(self.rule, MaskRule):
            fail("rule", self.rule, "None or a sparse_jax.rules.MaskRule (for example a subclass of rules.Rule)")
        if self.ensemble and (self.mask != "dense" or self.rule is not None):
            fail("ensemble", self.ensemble, f"False with mask={self.mask!r} and rule={self.rule!r} (an ensemble "
                 "method starts dense and its algorithm changes the masks: mask='dense', rule=None)")  # fmt: skip
        if self.matches_active and (self.mask != "dense" or self.rule is not None or self.ensemble):
            fail("matches_active", self.matches_active, f"False with mask={self.mask!r}, rule={self.rule!r} and "
                 f"ensemble={self.ensemble!r} (a narrowed dense baseline: mask='dense', rule=None, "
                 "ensemble=False)")  # fmt: skip

    @property
    def rewires(self) -> bool:
        """Its masks change during training (a rule, or an ensemble): it compiles a program of its own."""
        return self.rule is not None or self.ensemble

    @property
    def starts_dense(self) -> bool:
        """It starts from dense masks (``dense``, and dense-to-sparse methods such as GMP)."""
        return self.mask == "dense"

    @property
    def dense_to_sparse(self) -> bool:
        """It starts dense and prunes during training: its parameter count is the one it prunes to."""
        return self.starts_dense and self.rewires

    @property
    def prunes(self) -> bool:
        """It has a target sparsity and a layer-wise distribution (every method but ``dense``)."""
        return not (self.starts_dense and not self.rewires)

    @property
    def sized_by_sparsity(self) -> bool:
        """Its runs change with the target sparsity: it prunes, or its width matches the sparse count."""
        return self.prunes or self.matches_active

    @property
    def uses_score(self) -> bool:
        """Its initial masks come from a pruning score (not for methods that start dense)."""
        return not self.starts_dense

    @property
    def revives(self) -> bool:
        """Its initial masks spend a revival reserve ``rho`` (``uniform_revival``, ``tar``)."""
        return self.mask in REVIVAL_MASKS

    @property
    def grows(self) -> bool:
        """Its rule regrows connections: a dynamic sparse training baseline (SET, RigL)."""
        return self.rule is not None and self.rule.grows

    @property
    def needs_dense_grad(self) -> bool:
        """Its mask updates read the dense gradient (the FLOPs model charges it)."""
        return self.rule is not None and self.rule.needs_dense_grad

    @property
    def update(self) -> str:
        """``fixed`` for fixed-mask methods, else the method's name (the field of earlier versions)."""
        return self.name if self.rewires else "fixed"

    def program_tag(self, distribution: str) -> Hashable:
        """What of this method a compiled training program depends on, under ``distribution``.

        Every fixed-mask method gives the same tag (their runs differ by masks
        alone, so they share one program); a method with a rule gives its name
        and what its rule's update depends on (:meth:`rules.MaskRule.program_tag`); an
        ensemble method its name and the distribution (its pruning ladder's layout).
        """
        if self.ensemble:
            return self.name, distribution
        return "fixed" if self.rule is None else (self.name, self.rule.program_tag(distribution))


METHODS: dict[str, SparseMethod] = {}


def register_method(method: SparseMethod, *, replace: bool = False) -> SparseMethod:
    """Add ``method`` to :data:`METHODS` (so sweeps, tables and ``sparse_optimizer`` know it); returns it.

    A name already registered is refused unless ``replace=True``.
    """
    if not isinstance(method, SparseMethod):
        fail("method", method, "a sparse_jax.SparseMethod")
    if method.name in METHODS and not replace:
        raise ValueError(
            f"method {method.name!r} is already registered ({METHODS[method.name]!r}); pick another name or "
            "pass replace=True."
        )
    METHODS[method.name] = method
    return method


def unregister_method(name: str) -> None:
    """Remove a registered method (for tests and notebooks that register one for a while)."""
    check_choice("method", name, METHODS)
    del METHODS[name]


def get_method(name: str) -> SparseMethod:
    """The registered method called ``name``; an unknown name is an error listing the registered ones."""
    return METHODS[check_choice("method", name, METHODS)]


for _m in (
    SparseMethod("dense", "dense", description="dense training"),
    SparseMethod("static", "static", description="static sparse training (score x distribution, fixed masks)"),
    SparseMethod("uniform_revival", "uniform_revival", description="static pruning, one uniform revival step"),
    SparseMethod("tar", "tar", description="Topology-Aware Revival: static pruning, one topology-aware revival"),
    SparseMethod("set", "static", rules.SET, "SET: magnitude drop, random regrowth"),
    SparseMethod("rigl", "static", rules.RIGL, "RigL: magnitude drop, dense-gradient regrowth"),
    SparseMethod("gmp", "dense", rules.GMP, "gradual magnitude pruning from dense (Zhu & Gupta 2017)"),
    SparseMethod("eaudesac", "dense", None, "EauDe: online critics at several sparsities, the best kept", True),
    SparseMethod(
        "small_dense",
        "dense",
        description="dense, narrowed to the sparse networks' parameter count",
        matches_active=True,
    ),  # fmt: skip
):
    register_method(_m)

# The built-in methods that differ only by their initial mask (they train with the same fixed-mask transform).
MASK_METHODS: tuple[str, ...] = tuple(name for name, m in METHODS.items() if not m.rewires and not m.matches_active)

# The name of earlier versions.
Method = SparseMethod
