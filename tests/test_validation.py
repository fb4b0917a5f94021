import math

import numpy as np
import pytest

from sparse_jax.validation import check_choice, check_int, check_number


def test_one_wording_names_the_value_and_what_is_allowed():
    with pytest.raises(ValueError, match=r"^algo='ppo' is not allowed; allowed: sac, td3\.$"):
        check_choice("algo", "ppo", ("sac", "td3"))
    with pytest.raises(ValueError, match=r"^seeds=True is not allowed; allowed: an integer >= 1\.$"):
        check_int("seeds", True, minimum=1)
    with pytest.raises(ValueError, match=r"^rho=nan is not allowed; allowed: \[0, 1\]\.$"):
        check_number("rho", math.nan, lo=0.0, hi=1.0)
    with pytest.raises(ValueError, match=r"^sparsity=1.0 is not allowed; allowed: \[0, 1\)\.$"):
        check_number("sparsity", 1.0, lo=0.0, hi=1.0, hi_open=True)
    with pytest.raises(ValueError, match=r"^lr=0 is not allowed; allowed: a finite number > 0\.$"):
        check_number("lr", 0, lo=0.0, lo_open=True)


def test_accepted_values_come_back_as_python_numbers():
    assert check_int("n", 3.0, minimum=1) == 3 and type(check_int("n", np.int64(4))) is int
    assert check_number("x", np.float32(0.5), lo=0.0, hi=1.0) == 0.5
    for bad in (2.5, "3", None, True):
        with pytest.raises(ValueError, match="is not allowed"):
            check_int("n", bad)
    for bad in (math.inf, "0.1", None, False):
        with pytest.raises(ValueError, match="is not allowed"):
            check_number("x", bad)
    with pytest.raises(ValueError, match=r"c=\[1\] is not allowed; allowed: 1, 2"):
        check_choice("c", [1], (1, 2))  # unhashable values are refused, not a TypeError
