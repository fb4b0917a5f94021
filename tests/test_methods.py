"""sparse_jax.methods: each built-in method's facts, and the registry's names."""

import pytest

import sparse_jax as sj

BUILT_IN = ("dense", "static", "uniform_revival", "tar", "set", "rigl", "gmp")


def test_the_built_in_methods_facts_follow_from_their_mask_and_rule():
    facts = {
        name: (m.mask, m.rewires, m.grows, m.needs_dense_grad, m.starts_dense, m.prunes, m.revives, m.update)
        for name, m in ((name, sj.get_method(name)) for name in BUILT_IN)
    }
    assert facts == {
        "dense": ("dense", False, False, False, True, False, False, "fixed"),
        "static": ("static", False, False, False, False, True, False, "fixed"),
        "uniform_revival": ("uniform_revival", False, False, False, False, True, True, "fixed"),
        "tar": ("tar", False, False, False, False, True, True, "fixed"),
        "set": ("static", True, True, False, False, True, False, "set"),
        "rigl": ("static", True, True, True, False, True, False, "rigl"),
        "gmp": ("dense", True, False, False, True, True, False, "gmp"),
    }
    assert sj.MASK_METHODS == ("dense", "static", "uniform_revival", "tar")
    # Fixed masks share one program; a rule's program depends on the distribution as its rule says.
    assert {sj.get_method(name).program_tag(d) for name in sj.MASK_METHODS for d in ("erk", "global")} == {"fixed"}
    assert [sj.get_method("set").program_tag(d) for d in ("erk", "global")] == [("set", False), ("set", True)]
    assert [sj.get_method("gmp").program_tag(d) for d in ("erk", "global")] == [("gmp", "erk"), ("gmp", "global")]


def test_a_registered_name_is_refused_unless_replaced_and_an_unknown_one_lists_the_registered():
    mine = sj.SparseMethod("static_copy", "static")
    try:
        assert sj.register_method(mine) is mine and sj.get_method("static_copy") is mine
        with pytest.raises(ValueError, match=r"^method 'static_copy' is already registered .* pass replace=True\.$"):
            sj.register_method(sj.SparseMethod("static_copy", "tar"))
        revived = sj.register_method(sj.SparseMethod("static_copy", "tar"), replace=True)
        assert sj.get_method("static_copy") is revived and revived.revives
    finally:
        sj.unregister_method("static_copy")
    with pytest.raises(ValueError, match=r"^method='static_copy' is not allowed; allowed: dense, static, .*, eaudesac"):
        sj.get_method("static_copy")
    with pytest.raises(ValueError, match=r"^mask='sparse' is not allowed; allowed: dense, static, uniform_revival"):
        sj.SparseMethod("mine", "sparse")
    with pytest.raises(ValueError, match=r"^rule='set' is not allowed; allowed: None or a sparse_jax.rules.MaskRule"):
        sj.SparseMethod("mine", rule="set")


def test_an_ensemble_method_starts_dense_rewires_in_its_own_program_and_prunes():
    e = sj.get_method("eaudesac")
    facts = (e.mask, e.rule, e.rewires, e.grows, e.needs_dense_grad, e.dense_to_sparse, e.prunes, e.uses_score)
    assert facts == ("dense", None, True, False, False, True, True, False) and e.update == "eaudesac"
    # Its program depends on the distribution (the layout of its pruning ladder), never on the sparsity.
    assert [e.program_tag(d) for d in ("erk", "global")] == [("eaudesac", "erk"), ("eaudesac", "global")]
    assert "eaudesac" not in sj.MASK_METHODS
    for bad in (dict(mask="static"), dict(mask="dense", rule=sj.rules.GMP)):
        with pytest.raises(ValueError, match=r"^ensemble=True is not allowed; allowed: False with mask="):
            sj.SparseMethod("mine", ensemble=True, **bad)


def test_the_small_dense_baseline_is_dense_sized_by_its_sparsity_and_has_a_program_per_sparsity():
    m = sj.get_method("small_dense")
    facts = (m.mask, m.rule, m.rewires, m.prunes, m.uses_score, m.revives, m.sized_by_sparsity, m.matches_active)
    assert facts == ("dense", None, False, False, False, False, True, True)
    # Trained as dense by the library; its narrower networks keep it out of the mask-only methods.
    assert "small_dense" not in sj.MASK_METHODS and sj.get_method("dense").sized_by_sparsity is False
    for bad in (dict(mask="static"), dict(rule=sj.rules.SET), dict(ensemble=True)):
        with pytest.raises(ValueError, match=r"^(matches_active|ensemble)=True is not allowed; allowed: False with"):
            sj.SparseMethod("mine", **{"mask": "dense", **bad, "matches_active": True})
