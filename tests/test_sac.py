import math

import jax
import jax.numpy as jnp
import pytest

from agents.algorithms import sac
from tests.helpers import HAND_CRITIC, HAND_TARGET, hand_batch, hand_q

# Hand-made "networks": the policy always returns action 0.5 with log-probs [-1, 0.5];
# Q1 = w1 * obs + action, Q2 = w2 * obs.
policy_fn = lambda params, obs, key: (jnp.full((obs.shape[0], 1), 0.5), jnp.array([-1.0, 0.5]))
q_fn = hand_q
BATCH = hand_batch((3.0, 4.0))
CRITIC, TARGET = HAND_CRITIC, HAND_TARGET


def test_critic_loss_hand_worked():
    # Targets: min(0.5*3+0.5, 1*3) = 2.0 -> y0 = 1 + 0.5 * 1 * (2.0 - 0.2 * -1) = 2.1; y1 = 2 (terminal).
    # Q: sample 0 (1.1, 2.0), sample 1 (2.2, 4.0). Squared errors: 1.0 + 0.01 = 1.01 and 0.04 + 4 = 4.04.
    loss = sac.critic_loss(CRITIC, TARGET, None, 0.2, BATCH, None, policy_fn, q_fn, gamma=0.5)
    assert float(loss) == pytest.approx(0.5 * (1.01 + 4.04) / 2)
    # A truncated transition (mask 0) is left out of the mean's numerator.
    cut = BATCH.replace(mask=jnp.array([1.0, 0.0]))
    assert float(sac.critic_loss(CRITIC, TARGET, None, 0.2, cut, None, policy_fn, q_fn, gamma=0.5)) == pytest.approx(
        0.5 * 1.01 / 2
    )


def test_critic_loss_gradient_does_not_flow_into_target():
    grads = jax.grad(sac.critic_loss, argnums=1)(CRITIC, TARGET, None, 0.2, BATCH, None, policy_fn, q_fn, 0.5)
    assert grads == {"w1": 0.0, "w2": 0.0}


def test_actor_loss_hand_worked():
    # Q at action 0.5: sample 0 min(1.5, 2) = 1.5, sample 1 min(2.5, 4) = 2.5.
    loss, log_prob = sac.actor_loss(None, CRITIC, 0.2, BATCH.obs, None, policy_fn, q_fn)
    assert float(loss) == pytest.approx(((0.2 * -1 - 1.5) + (0.2 * 0.5 - 2.5)) / 2)
    assert log_prob.tolist() == [-1.0, 0.5]


def test_alpha_loss_hand_worked_and_direction():
    log_prob, target_entropy = jnp.array([-1.0, 0.5]), -1.0
    log_alpha = jnp.log(0.2)
    loss = sac.alpha_loss(log_alpha, log_prob, target_entropy)
    # -mean(log(0.2) * ([-1, 0.5] - 1)) = -log(0.2) * -1.25
    assert float(loss) == pytest.approx(math.log(0.2) * 1.25)
    # Entropy 0.25 is above the target -1, so gradient descent lowers the temperature.
    assert float(jax.grad(sac.alpha_loss)(log_alpha, log_prob, target_entropy)) == pytest.approx(1.25)


@pytest.mark.slow
def test_dense_sac_learns_inverted_pendulum():
    """One of 2 seeds reaches 500 on inverted_pendulum within 21k steps (training stops when one does).

    Measured with this config over seeds 0-7, natively (AMD EPYC, AVX2) and under
    ``XLA_FLAGS=--xla_cpu_max_isa=AVX`` and ``SSE4_2`` (24 runs): the first evaluation at 1000
    came at 7k-19k env steps (median 13k), and all 24 runs stayed at 1000 from 19k to 25k; before
    learning it is 60-420. So each of the 24 runs reaches 500 by 21k, and the suite needs 1 of
    seeds 0-1. The earlier criterion (seeds 0 and 1 averaging >= 500 at 13k) held under one of
    the three instruction sets: at 13k only 11 of the 24 runs were at >= 500.
    """
    from tests.helpers import evaluations_until_solved, pendulum_config

    returns = evaluations_until_solved(pendulum_config("sac", 21_000), seeds=[0, 1])
    assert returns[-1].max() >= 500, returns.tolist()


@pytest.mark.slow
def test_dense_sac_learns_a_deepmind_control_task():
    """One of 2 seeds reaches 230 of 250 on CartpoleBalance (250-step episodes) within 20k steps.

    MuJoCo Playground's CartpoleBalance through our wrappers, with the config of the pendulum
    tests. Measured over seeds 0-7, natively (AMD EPYC, AVX-512) and under
    ``XLA_FLAGS=--xla_cpu_max_isa=AVX`` and ``SSE4_2`` (24 runs): the first evaluation at >= 230
    came at 4k-16k env steps (median 8k), and every one of the 24 runs got there by 16k; the
    first evaluation (after 1k warm-up and 2k steps) is 137-184. Training stops at the first
    evaluation where a seed reaches 230 (about 6k for seeds 0-1).
    """
    from tests.helpers import evaluations_until_solved, pendulum_config

    config = pendulum_config("sac", 20_000, env="CartpoleBalance", episode_length=250)
    returns = evaluations_until_solved(config, seeds=[0, 1], threshold=230.0)
    assert returns[-1].max() >= 230, returns.tolist()
    assert returns[0].max() < 200, returns.tolist()  # it learned: the first evaluation is far below
