"""SAC and TD3 agents, networks, replay buffer, training loop, sweeps and CLI (built on sparse_jax)."""
