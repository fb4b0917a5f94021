"""Demo: static pruning versus TAR and uniform revival on an SAC-sized actor.

Run ``python -m sparse_jax [--sparsity 0.9] [--width 256] [--seed 0]``. Prints
each method's per-layer topology, TAR's budget allocation and the
input-to-output reachability, all at the same parameter count.
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp

import sparse_jax as sj


class MLP(nn.Module):
    """A plain MLP: ``widths`` hidden ReLU layers, then a linear output."""

    widths: tuple[int, ...]
    out: int

    @nn.compact
    def __call__(self, x):
        for w in self.widths:
            x = nn.relu(nn.Dense(w)(x))
        return nn.Dense(self.out)(x)


def main(argv: list[str] | None = None) -> None:
    """Print topology tables for static, uniform-revival and TAR masks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsity", type=float, default=0.95)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--obs-dim", type=int, default=17)
    parser.add_argument("--act-dim", type=int, default=6)
    parser.add_argument("--distribution", default="erk", choices=sj.DISTRIBUTIONS)
    parser.add_argument("--score", default="magnitude", choices=sj.SCORES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    key = jax.random.key(args.seed)
    net = MLP((args.width, args.width), 2 * args.act_dim)
    params = net.init(key, jnp.zeros((1, args.obs_dim)))["params"]
    config = sj.RevivalConfig()
    print(
        f"Actor {args.obs_dim}-{args.width}-{args.width}-{2 * args.act_dim}, sparsity {args.sparsity}, "
        f"{args.score} + {args.distribution}, rho={config.rho}, phi={config.phi}\n"
    )
    for method in ("static", "uniform_revival", "tar"):
        init = sj.sparse_init(
            key, params, args.sparsity, method=method, score=args.score, distribution=args.distribution, revival=config
        )
        print(sj.topology_table(init.masks, title=f"== {method}"))
        if method != "static":
            revived = jax.tree.map(lambda a, b: int(a.sum() - b.sum()), init.masks, init.base_masks)
            print("revived per layer:", {k: v["kernel"] for k, v in revived.items()})
        r = sj.reachability(init.masks)
        print(
            f"reachability: {r.pair_fraction:.3f} of input-output pairs, "
            f"{r.inputs_reaching_output}/{r.n_in} inputs reach an output, "
            f"{r.outputs_reached}/{r.n_out} outputs reached\n"
        )


if __name__ == "__main__":
    main()
