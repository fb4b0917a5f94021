import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparse_jax as sj


def _mask(shape, active):
    """A mask of ``shape`` whose first ``active`` flat entries are on."""
    n = math.prod(shape)
    return jnp.arange(n).reshape(shape) < active


# Three layers: A (10x10) 5 active / 95 pruned, B (20x10) 150 active / 50 pruned, C (10x2) 0 / 20.
HAND = {"A": _mask((10, 10), 5), "B": _mask((20, 10), 150), "C": _mask((10, 2), 0), "bias": None}


def test_topology_proxy_hand_values():
    assert sj.topology_proxy((10, 10)) == pytest.approx(10 * math.log(20))  # 29.96 < 100
    assert sj.topology_proxy((20, 10)) == pytest.approx(15 * math.log(30))  # 51.02
    assert sj.topology_proxy((1000, 2)) == 2000  # N ln N / 2 = 3462 > 2000 entries
    assert sj.topology_proxy((3, 3, 4, 8)) == pytest.approx(22 * math.log(44))  # conv: n_in = 36


def test_tar_allocation_hand_worked_with_floor():
    # B = 40, phi = 0.25, L = 3: floor ceil(0.25 * 40 / 3) = 4 each, 28 left.
    # Needs: g_A = 29.96 - 5 = 24.96, g_B = max(0, 51.02 - 150) = 0, g_C = 14.91 - 0 = 14.91.
    # Shares of 28: A 17.53, C 10.47 -> floors 17 + 10, the spare unit to A (0.53 > 0.47).
    alloc = sj.tar_allocation(HAND, 40, phi=0.25)
    assert alloc == {"A": 4 + 18, "B": 4, "C": 4 + 10, "bias": None}


def test_tar_allocation_caps_and_passes_overflow_on():
    # B = 100, phi = 0.2: floor ceil(20 / 3) = 7 each, 79 left. C's share 29.5 exceeds its
    # spare 20 - 7 = 13, so C is filled and the other 66 go to A (B's need is 0).
    alloc = sj.tar_allocation(HAND, 100, phi=0.2)
    assert alloc == {"A": 7 + 66, "B": 7, "C": 20, "bias": None}


def test_tar_allocation_proportional_to_proxy_when_no_need():
    # Both layers are above their proxy E, so the rest is split in proportion to E.
    m = {"a": _mask((10, 10), 60), "b": _mask((20, 10), 160)}
    ea, eb = sj.topology_proxy((10, 10)), sj.topology_proxy((20, 10))
    alloc = sj.tar_allocation(m, 30, phi=0.0)
    assert alloc["a"] == round(30 * ea / (ea + eb)) and alloc["a"] + alloc["b"] == 30


def test_tar_allocation_floor_never_exceeds_budget():
    # phi = 1, B = 10, L = 3: ceil(10 / 3) = 4 each would be 12 > 10; the last layer gives back 2.
    m = {"a": _mask((10, 10), 0), "b": _mask((10, 10), 0), "c": _mask((10, 10), 0)}
    assert sj.tar_allocation(m, 10, phi=1.0) == {"a": 4, "b": 4, "c": 2}


def test_uniform_allocation_hand_worked():
    # Pruned 95, 50, 20 (total 165); B = 33 -> exactly 19, 10, 4.
    assert sj.uniform_allocation(HAND, 33) == {"A": 19, "B": 10, "C": 4, "bias": None}


@pytest.mark.parametrize("fn", ["tar", "uniform_revival"])
def test_revival_revives_exactly_budget_only_pruned_keeps_kept(fn):
    revive = getattr(sj, fn)
    base = {k: v for k, v in HAND.items()}
    out = revive(jax.random.key(0), base, 40)
    total = 0
    for name in ("A", "B", "C"):
        new, old = out[name], base[name]
        assert bool((new | ~old).all()), "a kept connection was removed"
        total += int(new.sum() - old.sum())
    assert total == 40
    assert out["bias"] is None


def test_revival_budget_larger_than_pruned_revives_everything():
    out = sj.tar(jax.random.key(0), HAND, 10_000)
    assert all(bool(out[k].all()) for k in ("A", "B", "C"))
    assert sum(jax.tree.leaves(sj.tar_allocation(HAND, 10_000))) == 95 + 50 + 20


def test_revival_same_key_same_mask_different_keys_differ():
    a = sj.tar(jax.random.key(7), HAND, 40)
    b = sj.tar(jax.random.key(7), HAND, 40)
    c = sj.tar(jax.random.key(8), HAND, 40)
    assert all(bool((a[k] == b[k]).all()) for k in ("A", "B", "C"))
    assert any(not bool((a[k] == c[k]).all()) for k in ("A", "B", "C"))


def test_revive_draws_uniformly_among_pruned():
    # Reviving 1 of 20 pruned positions many times hits every pruned position about equally often.
    m = {"w": _mask((5, 5), 5)}
    draw = jax.jit(jax.vmap(lambda k: sj.revive(k, m, {"w": 1})["w"]))
    hits = np.asarray(draw(jax.random.split(jax.random.key(0), 4000))).reshape(4000, 25).sum(0)
    assert hits[:5].tolist() == [4000] * 5
    assert hits[5:].sum() == 4000
    assert hits[5:].min() > 120 and hits[5:].max() < 280  # expected 200 each


def test_revival_budget_matches_static_count():
    n = 71680
    base, b = sj.revival_budget(n, 0.9, rho=0.1)
    assert (base, b) == (7168 - 717, 717)  # round(716.8) = 717
    assert sum(sj.revival_budget(n, 0.95)) == sj.target_active(n, 0.95)
    with pytest.raises(ValueError, match="rho=2"):
        sj.revival_budget(n, 0.9, rho=2)


def test_allocation_rejects_bad_input():
    with pytest.raises(ValueError, match=r"phi=1.5 .*\[0, 1\]"):
        sj.tar_allocation(HAND, 10, phi=1.5)
    with pytest.raises(ValueError, match="budget=-1"):
        sj.tar_allocation(HAND, -1)


@settings(max_examples=50, deadline=None)
@given(
    layers=st.lists(st.tuples(st.integers(1, 30), st.integers(1, 30), st.floats(0, 1)), min_size=1, max_size=5),
    budget=st.integers(0, 2000),
    phi=st.floats(0, 1),
)
def test_property_allocation_exact_and_capped(layers, budget, phi):
    masks = {f"l{i}": np.arange(a * b).reshape(a, b) < int(f * a * b) for i, (a, b, f) in enumerate(layers)}
    pruned = {k: int((~m).sum()) for k, m in masks.items()}
    for alloc in (sj.tar_allocation(masks, budget, phi), sj.uniform_allocation(masks, budget)):
        assert sum(alloc.values()) == min(budget, sum(pruned.values()))
        assert all(0 <= alloc[k] <= pruned[k] for k in masks)


def test_tar_overflow_goes_on_by_proxy_when_needy_layers_are_full():
    # A needs revival but has only 95 pruned; B and C have no need, so the 105 left over are
    # split in proportion to E (B: 51.0, C: 1059.7), not by spare capacity.
    m = {"A": _mask((10, 10), 5), "B": _mask((20, 10), 150), "C": _mask((100, 100), 9000)}
    alloc = sj.tar_allocation(m, 200, phi=0.0)
    eb, ec = sj.topology_proxy((20, 10)), sj.topology_proxy((100, 100))
    assert alloc["A"] == 95
    assert alloc["B"] == round(105 * eb / (eb + ec)) and alloc["B"] + alloc["C"] == 105


def test_static_active_counts_are_checked():
    with pytest.raises(ValueError, match="active has 1 counts"):
        sj.tar_allocation(HAND, 10, active={"A": 5})
    with pytest.raises(ValueError, match="does not match the mask's 150"):
        sj.tar_allocation(HAND, 10, active={"A": 5, "B": 90, "C": 0, "bias": None})
    with pytest.raises(ValueError, match="budget=2.5 must be an integer"):
        sj.tar_allocation(HAND, 2.5)
