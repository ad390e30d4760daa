r"""
A torchvision ResNet-18: which map is "the block", and is it an OT map?
=======================================================================

``analysis`` does not care who built the network. Here it is torchvision's
``resnet18(weights=None)``, trained for a few epochs on scikit-learn's 8x8 handwritten digits
(1,797 real scans, upsampled to 32x32 and repeated over the three colour channels), next to a
pre-activation variant built from the same torchvision ``ResNet`` class.

**Which map is the block?** torchvision's ``BasicBlock`` computes

.. math::

    T(x) = \operatorname{ReLU}\big(P(x) + g(x)\big), \qquad
    g(x) = \mathrm{BN}_2(\mathrm{conv}_2(\operatorname{ReLU}(\mathrm{BN}_1(\mathrm{conv}_1 x)))),

with shortcut :math:`P` the identity, or a strided 1x1 convolution and BatchNorm
(``downsample``) in the three blocks that halve the resolution and double the channels. The
residual step of the theory, :math:`x \mapsto x + g(x)`, is the sum *before* the ReLU,
:math:`S(x) = P(x) + g(x)`; the module's output is :math:`\operatorname{ReLU}(S(x))`, a
projection of it onto the non-negative orthant. We measure both. In the pre-activation
ResNet (He et al., 2016) the ReLU moves inside the branch, :math:`T(x) = P(x) +
g(\operatorname{ReLU}(\mathrm{BN}(x)))`, and the module *is* the residual step.

**Blocks that change shape** (stride 2) have inputs and outputs of different sizes, so no
transport map between them exists; each is compared with its shortcut image: the sample is
:math:`(P(x), T(x))`, both of the output's shape.
"""

# %%
# Problem sizes
# -------------
# About a minute on 2 CPU cores as set; raise ``EPOCHS`` and ``N_ANALYSIS`` on a bigger machine.

SIZE = 32  # the 8x8 digits are upsampled (bilinear) to SIZE x SIZE
N_TRAIN = 1200  # training images; the other 597 are the test set
EPOCHS = 3
BATCH_SIZE = 64
N_ANALYSIS = 500  # test images pushed through the trained networks for the analysis
N_JACOBIAN = 32  # of those, points where each block's Jacobian is probed
SEED = 0

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torchvision.models import resnet18
from torchvision.models.resnet import ResNet, conv3x3

import analysis
from analysis.plot import plot_by_block

torch.manual_seed(SEED)
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0  # (1797, 1, 8, 8), in [0, 1]
images = F.interpolate(images, size=(SIZE, SIZE), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
images = (images - images.mean()) / images.std()
labels = torch.tensor(digits.target)
order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SEED))
train_idx, test_idx = order[:N_TRAIN], order[N_TRAIN:]
print(f"{len(train_idx)} training and {len(test_idx)} test images of shape {tuple(images.shape[1:])}")

# %%
# The two networks
# ----------------
# The pre-activation block keeps torchvision's constructor signature, so torchvision's
# ``ResNet`` builds the network around it (stem, four stages, ``downsample`` shortcuts, head).


class PreActBlock(torch.nn.Module):
    """P(x) + conv2(relu(bn2(conv1(relu(bn1(x)))))): nothing after the sum."""

    expansion = 1

    def __init__(
        self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1, norm_layer=None
    ):
        super().__init__()
        self.bn1 = torch.nn.BatchNorm2d(inplanes)
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn2 = torch.nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.downsample = downsample

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        return shortcut + self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))


def train(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(EPOCHS):
        model.train()
        for batch in torch.randperm(N_TRAIN).split(BATCH_SIZE):
            i = train_idx[batch]
            loss = F.cross_entropy(model(images[i]), labels[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(images[test_idx]).argmax(1) == labels[test_idx]).float().mean().item()
    print(f"{type(model.layer1[0]).__name__}: test accuracy {accuracy:.3f} after {EPOCHS} epochs")
    return model


torch.manual_seed(SEED)
post = train(resnet18(weights=None, num_classes=10))
torch.manual_seed(SEED)
pre = train(ResNet(PreActBlock, [2, 2, 2, 2], num_classes=10))

# %%
# Collecting the blocks with forward hooks
# ----------------------------------------
# :func:`analysis.collect_blocks` runs the whole model on the images and records, through
# forward hooks, the inputs and outputs of the sub-modules named as in
# ``model.named_modules()``. Naming a stride-2 block alone is refused in one line that says
# what to compare it with:

names = [f"layer{s}.{b}" for s in range(1, 5) for b in range(2)]
x = images[test_idx[:N_ANALYSIS]]
try:
    analysis.collect_blocks(post, x, names=names)
except ValueError as err:
    print(err)

# %%
# So the three stride-2 blocks get their shortcut image as input, and ``residuals`` names the
# sub-module whose output is :math:`g(x)` (``bn2`` in torchvision's block) to record the sum
# :math:`S(x) = P(x) + g(x)` before the ReLU:

shortcuts = {name: f"{name}.downsample" for name in names if post.get_submodule(name).downsample is not None}
print(shortcuts)
samples = {
    "resnet18, ReLU(P(x) + g(x))": analysis.collect_blocks(post, x, names=names, shortcuts=shortcuts),
    "resnet18, P(x) + g(x)": analysis.collect_blocks(
        post, x, names=names, shortcuts=shortcuts, residuals={name: f"{name}.bn2" for name in names}
    ),
    "pre-activation, P(x) + g(x)": analysis.collect_blocks(pre, x, names=names, shortcuts=shortcuts),
}
for s in samples["resnet18, P(x) + g(x)"]:
    print(f"{s.name}: {s.x_in.shape[1]} features, fraction of negative entries in S(x): {(s.x_out < 0).mean():.2f}")

# %%
# Each block against the exact OT map
# -----------------------------------
# For each block, :func:`analysis.map_vs_ot` on the 500 points: ``cost_ratio`` (1 when the
# block's own pairing :math:`x_i \to T(x_i)` is the optimal assignment between the two point
# clouds), ``fraction_reassigned``, and ``resolution`` (median displacement over median
# spacing of the inputs: below 1 the sample cannot tell an OT map from another, and the result
# is flagged ``uninformative``). The relative displacement is
# :math:`\sqrt{\text{kinetic}} / \mathrm{RMS}(x)`.

results = {label: [analysis.map_vs_ot(s.x_in, s.x_out) for s in per_block] for label, per_block in samples.items()}
for label, per_block in samples.items():
    print(label)
    for s, cmp in zip(per_block, results[label], strict=True):
        rms = np.sqrt((s.x_in**2).sum(1).mean())
        print(
            f"  {s.name:9} cost ratio {cmp.cost_ratio:7.4f}  reassigned {cmp.fraction_reassigned:6.1%}  "
            f"resolution {cmp.resolution:5.2f}{' (uninformative)' if cmp.uninformative else ''}  "
            f"relative displacement {np.sqrt(cmp.kinetic) / rms:.3f}"
        )

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
plot_by_block(
    {label: [c.cost_ratio for c in cmps] for label, cmps in results.items()},
    ylabel="kinetic / $W_2^2$",
    reference=1.0,
    ax=axes[0],
)
plot_by_block(
    {label: [c.resolution for c in cmps] for label, cmps in results.items()},
    ylabel="resolution (displacement / spacing)",
    reference=1.0,
    log=True,
    ax=axes[1],
)
for ax in axes:
    ax.set_xticks(range(len(names)), names, rotation=45, fontsize="small")
    ax.set_xlabel("")

# %%
# A test that keeps its power in high dimension
# ---------------------------------------------
# On 500 points in 512 to 4,096 dimensions, a finite sample is cyclically monotone for almost
# any map that keeps each point nearer its own image than the others' (the cross terms
# :math:`\langle x_i, t_j \rangle` are small next to :math:`\langle x_i, t_i \rangle`), so the
# table above says little either way. A smooth map is an OT map iff its Jacobian is symmetric
# positive semi-definite (Brenier); :func:`analysis.jacobian_asymmetry` estimates
# :math:`\lVert J - J^\top \rVert_F / \lVert J \rVert_F` (0 for a gradient field) and the
# smallest eigenvalue of :math:`(J + J^\top)/2` with Jacobian-vector products, on the blocks
# that keep their shape (the Jacobian of a stride-2 block is not square).


def flat(fn, shape):
    """``fn`` on flattened points: (n, C*H*W) -> (n, C*H*W)."""
    return lambda z: fn(z.reshape(-1, *shape)).flatten(1)


def pre_relu_sum(block):
    """S(x) = x + g(x) of a torchvision BasicBlock with an identity shortcut."""
    return lambda h: h + block.bn2(block.conv2(F.relu(block.bn1(block.conv1(h)))))


maps = {
    "resnet18, ReLU(P(x) + g(x))": (post, lambda b: b),
    "resnet18, P(x) + g(x)": (post, pre_relu_sum),
    "pre-activation, P(x) + g(x)": (pre, lambda b: b),
}
same_shape = [k for k, name in enumerate(names) if name not in shortcuts]
asymmetry = {}
for label, (model, as_map) in maps.items():
    asymmetry[label] = []
    for k in same_shape:
        block = model.get_submodule(names[k])
        c = block.conv2.out_channels
        side = math.isqrt(samples[label][k].x_in.shape[1] // c)  # square feature maps
        points = torch.tensor(samples[label][k].x_in[:N_JACOBIAN], dtype=torch.float32)
        asymmetry[label].append(
            analysis.jacobian_asymmetry(flat(as_map(block), (c, side, side)), points, n_probes=8, seed=SEED)
        )
    print(label)
    for k, j in zip(same_shape, asymmetry[label], strict=True):
        print(
            f"  {names[k]:9} asymmetry {j.asymmetry:.3f} +- {j.asymmetry_se:.3f}  "
            f"min eigenvalue of the symmetric part {j.min_eigenvalue:8.3f}  "
            f"(negative at {j.fraction_negative:.0%} of the points)"
        )

# %%
# What the analysis says
# ----------------------
# With the ReLU after the sum, the module's output is a projection: many coordinates of
# :math:`S(x)` are negative and are set to 0. The pre-ReLU sum :math:`S` is the residual step of
# the theory, the map the transport penalty of ``otblocks`` would act on. These networks were
# trained end to end without any transport penalty, for a few epochs only, and nothing makes
# their blocks OT maps: the sample test of :func:`analysis.map_vs_ot` cannot see it at this
# size and dimension (every pairing comes out optimal), while the Jacobian test does: every
# block's Jacobian is far from symmetric (a gradient field gives 0, a 2-D rotation by
# :math:`\theta` gives :math:`2 \lvert \sin\theta \rvert`), and in the early blocks its symmetric
# part has negative eigenvalues at every point probed. None of these blocks is the gradient of
# a convex function. Read a cost ratio of 1 in high dimension together with such a local test,
# and prefer more points (``N_ANALYSIS``) where ``uninformative`` is raised.

plt.show()
