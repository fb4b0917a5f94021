import jax
import pytest

from agents.algorithms import td3
from tests.helpers import HAND_CRITIC, HAND_TARGET, hand_batch, hand_q

policy_fn = lambda p, obs: p["k"] * obs  # deterministic "actor"
q_fn = hand_q
BATCH = hand_batch((0.3, 0.4))
CRITIC, TARGET = HAND_CRITIC, HAND_TARGET


def test_critic_loss_hand_worked_without_noise():
    # a' = 0.5 * s' = 0.15 -> min(0.5*0.3 + 0.15, 1*0.3) = 0.3 -> y0 = 1 + 0.5 * 0.3 = 1.15; y1 = 2.
    # Q: (1.1, 2.0) and (2.2, 4.0) -> squared errors 0.0025 + 0.7225 = 0.725 and 0.04 + 4 = 4.04.
    loss = td3.critic_loss(CRITIC, TARGET, {"k": 0.5}, BATCH, jax.random.key(0), policy_fn, q_fn, 0.5, 0.2, 0.0)
    assert float(loss) == pytest.approx(0.5 * (0.725 + 4.04) / 2)


def test_target_action_is_smoothed_within_clip_and_action_bounds():
    # The target actor outputs 5 * s' = 1.5 and 2.0: clipped to 1 whatever the (clipped) noise.
    hi = td3.critic_loss(CRITIC, TARGET, {"k": 5.0}, BATCH, jax.random.key(1), policy_fn, q_fn, 0.5, 10.0, 0.5)
    # min(0.5*0.3 + 1, 0.3) = 0.3 -> y0 = 1.15 again.
    assert float(hi) == pytest.approx(0.5 * (0.725 + 4.04) / 2)
    # With noise the target moves, but never by more than noise_clip in action.
    noisy = [
        float(td3.critic_loss(CRITIC, TARGET, {"k": 0.5}, BATCH, jax.random.key(i), policy_fn, q_fn, 0.5, 1.0, 0.05))
        for i in range(5)
    ]
    assert len(set(noisy)) > 1
    # a' in [0.10, 0.20]: Q1' in [0.25, 0.35], min with 0.3 -> y0 in [1.125, 1.15].
    lo_err, hi_err = (1.1 - 1.125) ** 2 + (2 - 1.125) ** 2, (1.1 - 1.15) ** 2 + (2 - 1.15) ** 2
    for v in noisy:
        assert 0.5 * (min(lo_err, hi_err) + 4.04) / 2 - 1e-6 <= v <= 0.5 * (max(lo_err, hi_err) + 4.04) / 2 + 1e-6


def test_actor_loss_is_minus_q1():
    # mu(s) = 0.5 s -> Q1 = s + 0.5 s = 1.5 and 3.0.
    assert float(td3.actor_loss({"k": 0.5}, CRITIC, BATCH.obs, policy_fn, q_fn)) == pytest.approx(-(1.5 + 3.0) / 2)


@pytest.mark.slow
def test_dense_td3_learns_inverted_pendulum():
    """One of 3 seeds reaches 500 on inverted_pendulum within 35k steps (training stops when one does).

    Measured with this config over seeds 0-7, natively (AMD EPYC, AVX2) and under
    ``XLA_FLAGS=--xla_cpu_max_isa=AVX`` and ``SSE4_2`` (24 runs): the first evaluation at 1000
    came at 13k-39k env steps (median 23k); by 35k, 23 of the 24 runs were at >= 500 in one of
    the last 3 evaluations (the other, native seed 6, solved at 39k); before learning it stays
    below 470 (mostly 40-150). The suite needs 1 of seeds 0-2, each of which reached 500 by 35k
    under all three: with a per-seed failure rate near 1/24, three seeds all failing is about
    1e-4. The earlier criterion (seeds 0 and 1 averaging >= 500 at 33k) passed under SSE4_2 only
    by 555 (seed 0 at 111).
    """
    from tests.helpers import evaluations_until_solved, pendulum_config

    returns = evaluations_until_solved(pendulum_config("td3", 35_000), seeds=[0, 1, 2])
    assert returns[-1].max() >= 500, returns.tolist()
