"""Plots bench/scaling.csv (written by scripts/bench-scaling): setups/s against capped nodes,
the best round of each node count, beside perfect scaling from one node."""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(source: str, target: str) -> None:
    best: dict[int, float] = {}
    cores = ""
    pairs = ""
    with open(source, newline="") as f:
        for row in csv.DictReader(f):
            n = int(row["nodes"])
            best[n] = max(best.get(n, 0.0), float(row["setups_per_s"]))
            cores = row["cores_per_node"]
            pairs = str(int(row["pairs"]) // n)
    nodes = sorted(best)
    rates = [best[n] for n in nodes]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(nodes, [rates[0] * n for n in nodes], "--", color="grey", label="perfect scaling")
    ax.plot(nodes, rates, "o-", color="tab:blue", label="measured")
    for n, r in zip(nodes, rates):
        ax.annotate(f"{r:.0f}/s ({r / rates[0]:.2f}×)", (n, r), textcoords="offset points",
                    xytext=(6, -12))
    ax.set_xticks(nodes)
    ax.set_xlabel(f"nodes, each capped at {cores} of a core, {pairs} calling pairs each")
    ax.set_ylabel("call setups per second")
    ax.set_title("mtcall on one PostgreSQL: capped nodes")
    ax.set_ylim(0, max(rates[0] * nodes[-1], max(rates)) * 1.15)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(target)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
