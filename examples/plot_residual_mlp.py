r"""
Your own residual MLP, analysed with ``analysis``
=================================================

``analysis`` works on any residual network: it needs the inputs and outputs of each block at
the same points, and :func:`analysis.collect_blocks` records them with forward hooks on the
sub-modules you name. Here the network is a plain PyTorch residual MLP of the plane,

.. math::

    x_{m+1} = x_m + g_m(x_m), \qquad g_m(x) = W_2 \tanh(W_1 x + b_1) + b_2,

trained end to end on two moons, once without and once with the transport (kinetic-energy)
penalty :math:`\frac{1}{2\tau} \sum_m \lVert g_m(x_m) \rVert^2` written out in the training
loop. Nothing from ``otblocks`` is used. Each block is then compared with the exact optimal
transport (OT) map between its input and output samples (:func:`analysis.map_vs_ot`), its
regularity fitted (:func:`analysis.holder_fit`), and the path of the data measured in
Wasserstein distance (:func:`analysis.wasserstein`).
"""

# %%
# Problem sizes
# -------------
# Everything below scales with these constants (about 20 s on 2 CPU cores as set).

N_TRAIN = 300  # training points (two moons, noise 0.15)
N_TEST = 600  # points the blocks are analysed on
DEPTH = 6  # residual blocks, each a map of the plane
HIDDEN = 32  # hidden units of each residual branch g
EPOCHS = 400  # full-batch Adam steps
TAUS = (float("inf"), 0.5)  # squared units of the plane; inf: no penalty
SEED = 0

import matplotlib.pyplot as plt
import torch
from sklearn.datasets import make_moons

import analysis
from analysis.plot import plot_by_block, plot_point_clouds, plot_transport_arrows

torch.set_num_threads(1)  # a tiny model: one thread is fastest (and leaves the other cores alone)
torch.manual_seed(SEED)
x_train, y_train = (torch.as_tensor(a) for a in make_moons(N_TRAIN, noise=0.15, random_state=SEED))
x_test, y_test = (torch.as_tensor(a) for a in make_moons(N_TEST, noise=0.15, random_state=SEED + 1))
x_train, x_test = x_train.float(), x_test.float()

# %%
# The network: nothing but ``torch.nn``
# -------------------------------------
# A block is ``x + g(x)``; the network keeps its blocks in an ``nn.ModuleList`` called
# ``blocks``, so they are named ``blocks.0``, ``blocks.1``, ... in ``model.named_modules()``.


class Block(torch.nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.g = torch.nn.Sequential(torch.nn.Linear(width, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.g(x)


class ResidualMLP(torch.nn.Module):
    def __init__(self, depth: int, hidden: int) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList([Block(2, hidden) for _ in range(depth)])
        self.head = torch.nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def train(tau: float) -> ResidualMLP:
    torch.manual_seed(SEED)
    model = ResidualMLP(DEPTH, HIDDEN)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(EPOCHS):
        h, kinetic = x_train, 0.0
        for block in model.blocks:
            g = block.g(h)  # (n, 2): the displacement of each point
            kinetic = kinetic + g.pow(2).sum(dim=1).mean()
            h = h + g
        loss = torch.nn.functional.cross_entropy(model.head(h), y_train)
        if tau != float("inf"):
            loss = loss + kinetic / (2 * tau)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


models = {tau: train(tau) for tau in TAUS}
with torch.no_grad():
    for tau, model in models.items():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
        print(f"tau = {tau:g}: test accuracy {accuracy:.3f}")

# %%
# Collecting each block's inputs and outputs
# ------------------------------------------
# One forward pass of the whole model; hooks on ``blocks.0`` ... ``blocks.5`` record what enters
# and leaves each block. (``analysis.collect_blocks(model.blocks, x_test)`` runs the same chain
# without hooks: a ``ModuleList`` or ``Sequential`` stands for its blocks.)

names = [f"blocks.{m}" for m in range(DEPTH)]
samples = {tau: analysis.collect_blocks(model, x_test, names=names) for tau, model in models.items()}
s = samples[TAUS[0]][0]
print(s.name, s.x_in.shape, s.x_out.shape)

# %%
# The data along the depth
# ------------------------
fig = plt.figure(figsize=(2.2 * (DEPTH + 1), 2.2 * len(TAUS)), layout="constrained")
for row, (tau, per_block) in zip(fig.subfigures(len(TAUS), 1), samples.items(), strict=True):
    clouds = [per_block[0].x_in] + [b.x_out for b in per_block]
    plot_point_clouds(
        clouds, y_test.numpy(), titles=["input"] + [f"after {b.name}" for b in per_block], ncols=DEPTH + 1, fig=row
    )
    row.suptitle(f"tau = {tau:g}")

# %%
# Each block against the exact OT map
# -----------------------------------
# :func:`analysis.map_vs_ot` solves the exact assignment problem between the block's inputs and
# outputs on the sample. ``cost_ratio`` is the block's own transport cost over the optimal one
# (1 when the block's pairing is optimal), ``fraction_reassigned`` the share of points the
# optimal assignment sends elsewhere, ``resolution`` the median displacement over the median
# spacing of the points (below 1 the sample cannot tell an OT map from another). The Hölder
# exponent :math:`\eta` and constant :math:`C` are fitted with :math:`\varepsilon = 0`: the
# regularity of the block itself.

rows = {}
for tau, per_block in samples.items():
    for b in per_block:
        cmp = analysis.map_vs_ot(b.x_in, b.x_out)
        fit = analysis.holder_fit(b.x_in, b.x_out, eps=0.0, n_bootstrap=20, seed=SEED)
        rows[tau, b.index] = (cmp, fit)

print(
    f"{'tau':>5} {'block':>8} {'kinetic':>9} {'cost ratio':>10} {'reassigned':>10} {'resolution':>10} "
    f"{'eta':>5} {'C':>7}"
)
for (tau, k), (cmp, fit) in rows.items():
    print(
        f"{tau:5g} {names[k]:>8} {cmp.kinetic:9.4f} {cmp.cost_ratio:10.4f} {cmp.fraction_reassigned:10.1%} "
        f"{cmp.resolution:10.2f} {fit.eta:5.2f} {fit.C:7.3g}"
    )

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
plot_by_block(
    {f"tau = {tau:g}": [rows[tau, k][0].kinetic for k in range(DEPTH)] for tau in TAUS},
    ylabel="kinetic cost (own pairing)",
    log=True,
    ax=axes[0],
)
plot_by_block(
    {f"tau = {tau:g}": [rows[tau, k][0].cost_ratio for k in range(DEPTH)] for tau in TAUS},
    ylabel="kinetic / $W_2^2$",
    reference=1.0,
    ax=axes[1],
)

# %%
# Where the pairing is not optimal
# --------------------------------
# The block with the largest cost ratio of each run, drawn as arrows :math:`x_i \to T(x_i)`
# over the OT arrows :math:`x_i \to t_{\sigma(i)}`; circled points are re-routed by the
# optimal assignment.

fig, axes = plt.subplots(1, len(TAUS), figsize=(5.5 * len(TAUS), 5), layout="constrained")
for ax, tau in zip(axes, TAUS, strict=True):
    k = max(range(DEPTH), key=lambda m: rows[tau, m][0].cost_ratio)
    b, (cmp, _) = samples[tau][k], rows[tau, k]
    plot_transport_arrows(
        b.x_in, b.x_out, cmp, max_points=300, ax=ax, title=f"tau = {tau:g}, {b.name}: cost ratio {cmp.cost_ratio:.3f}"
    )

# %%
# The path of the data
# --------------------
# :math:`\sum_m W_2(\rho_m, \rho_{m+1})` against :math:`W_2(\rho_0, \rho_M)`: a path that goes
# straight to its end has ratio 1. The penalty shortens the steps.

for tau, per_block in samples.items():
    steps = [analysis.wasserstein(b.x_in, b.x_out).w2 for b in per_block]
    direct = analysis.wasserstein(per_block[0].x_in, per_block[-1].x_out).w2
    print(
        f"tau = {tau:g}: path length {sum(steps):.3f}, W2(input, output) {direct:.3f}, ratio {sum(steps) / direct:.2f}"
    )

# %%
# What it shows
# -------------
# With the penalty the blocks move points less and their pairing is, on this sample, almost the
# optimal one (cost ratio near 1); without it the network is free to move points along longer,
# crossing paths. On 600 points of the plane the sample resolves such crossings; in many
# dimensions check ``resolution`` and ``uninformative`` in the :class:`analysis.MapComparison`
# before reading a cost ratio of 1 as "optimal".

plt.show()
