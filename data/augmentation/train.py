"""Data augmentation and Hessian complexity (rugosity) of a small ReLU MLP on scikit-learn's digits.

Trains ``64 -> 32 -> 32 -> 10`` ReLU MLPs on the 8x8 digits with and without data augmentation
(three seeds each), keeps checkpoints through training as powercells ``.npz`` networks and
measures, at every checkpoint, on 2-D slices of input space anchored at training points and at
test points:

* the finite-difference rugosity estimate (:func:`powercells.approx.rugosity_estimate`),
* its exact small-eps limit (:func:`powercells.approx.rugosity_limit`),
* the exact region count (:func:`powercells.count_regions`),
* the mean Frobenius norm of the network's Jacobian along the slice (exact, from the
  subdivision: the area-weighted mean over the regions),

and the accuracy on the training and the test images.

Outputs (next to this file): ``checkpoints/{condition}_s{seed}_e{epoch:03d}.npz``,
``slices.npz`` (the split and the slices, enough to rebuild every domain) and ``results.csv``
(one row per condition, seed, epoch, split and slice family; means over the slices).

Run: ``python data/augmentation/train.py`` (a few minutes on one core; deterministic).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import csv  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
CHECKPOINTS = HERE / "checkpoints"

# data
TEST_SIZE = 360                     # of the 1797 images; stratified, fixed split
SPLIT_SEED = 0
# model and training
HIDDEN = (32, 32)
SEEDS = (0, 1, 2)
EPOCHS = 256
CHECKPOINT_EPOCHS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256)
BATCH = 64
LR = 1e-3                           # Adam, no weight decay
# augmentation: every training image of every batch, freshly drawn
MAX_SHIFT = 1.0                     # pixels, uniform in [-1, 1] along each axis
MAX_ROTATION = 15.0                 # degrees, uniform in [-15, 15]
# slices
SLICES_PER_SPLIT = 16               # anchors per split (train, test) and family
SQUARE_RADIUS = 1.0                 # half-width of the square slices, in input units
SLICE_SEED = 0
# rugosity estimate
EPS = 1e-2
N_SAMPLES = 1 << 12

FAMILIES = ("random", "tangent", "triangle")
FIELDS = ("condition", "seed", "epoch", "split", "slices", "n_slices", "accuracy", "loss",
          "regions_mean", "regions_min", "regions_max", "regions_layer1_mean",
          "rugosity_limit_mean", "rugosity_limit_std", "rugosity_estimate_mean",
          "rugosity_estimate_stderr", "crossings_mean", "gradient_norm_mean", "slivers")


def load_split():
    """The digits scaled to [0, 1] and the fixed stratified train/test split (indices)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    train_index, test_index = train_test_split(np.arange(len(y)), test_size=TEST_SIZE,
                                               stratify=y, random_state=SPLIT_SEED)
    return X, y, np.sort(train_index), np.sort(test_index)


def warp(images, angle, shift):
    """Rotate (radians) and translate (pixels) a batch of flattened 8x8 images: bilinear
    resampling about the image centre, zero outside (torch ``affine_grid`` / ``grid_sample``)."""
    import torch
    import torch.nn.functional as F

    n = images.shape[0]
    c, s = torch.cos(angle), torch.sin(angle)
    t = shift * (2.0 / 8.0)                   # pixels -> normalised coordinates
    theta = torch.stack([torch.stack([c, -s, t[:, 0]], 1), torch.stack([s, c, t[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, (n, 1, 8, 8), align_corners=False)
    out = F.grid_sample(images.view(n, 1, 8, 8), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out.view(n, 64)


def augment(images, generator):
    import torch

    n = images.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * np.deg2rad(MAX_ROTATION)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * MAX_SHIFT
    return warp(images, angle, shift)


def augmentation_plane(x):
    """An orthonormal basis (64, 2) of the plane that best fits the three augmentation tangents
    at image x: the secants of the x-shift, y-shift and rotation over the augmentation range
    ((T(+a) - T(-a)) / 2), the two leading left singular vectors."""
    import torch

    xb = torch.tensor(np.repeat(x[None], 6, axis=0), dtype=torch.float64)
    a = np.deg2rad(MAX_ROTATION)
    angle = torch.tensor([0, 0, 0, 0, a, -a], dtype=torch.float64)
    m = MAX_SHIFT
    shift = torch.tensor([[m, 0], [-m, 0], [0, m], [0, -m], [0, 0], [0, 0]], dtype=torch.float64)
    w = warp(xb, angle, shift).numpy()
    G = np.stack([(w[0] - w[1]) / 2, (w[2] - w[3]) / 2, (w[4] - w[5]) / 2], axis=1)
    U, _, _ = np.linalg.svd(G, full_matrices=False)
    return U[:, :2]


def make_slices(X, y, train_index, test_index):
    """The slice table: per split, ``SLICES_PER_SPLIT`` anchor images and per anchor three
    planes through it (see the README): a square in two random orthonormal directions, a square
    in the augmentation plane, and the triangle through the anchor and two other images of its
    class from the same split."""
    import powercells as pc

    rng = np.random.default_rng(SLICE_SEED)
    rows = {"split": [], "family": [], "anchor": [], "origin": [], "directions": [],
            "estimate_seed": []}
    for split, index in (("train", train_index), ("test", test_index)):
        anchors = rng.choice(index, SLICES_PER_SPLIT, replace=False)
        for a in anchors:
            same = index[(y[index] == y[a]) & (index != a)]
            others = rng.choice(same, 2, replace=False)
            dirs = {
                "random": pc.random_directions(64, 2, seed=rng),
                "tangent": augmentation_plane(X[a]),
                "triangle": (X[others] - X[a]).T,
            }
            for family in FAMILIES:
                rows["split"].append(split)
                rows["family"].append(family)
                rows["anchor"].append(a)
                rows["origin"].append(X[a])
                rows["directions"].append(dirs[family])
                rows["estimate_seed"].append(len(rows["estimate_seed"]))
    out = {k: np.array(v) for k, v in rows.items()}
    out["radius"] = np.array(SQUARE_RADIUS)
    out["eps"], out["n_samples"] = np.array(EPS), np.array(N_SAMPLES)
    out["train_index"], out["test_index"] = train_index, test_index
    return out


TRIANGLE = ((-1.0, 0.0), (0.0, -1.0), (1.0, 1.0)), (0.0, 0.0, 1.0)   # t >= 0, t1 + t2 <= 1


def domain_of(slices, i):
    """The powercells domain of slice i of the slice table."""
    import powercells as pc

    origin, D = slices["origin"][i], slices["directions"][i]
    if slices["family"][i] == "triangle":
        return pc.Slice(origin, D, pc.Polytope(np.array(TRIANGLE[0]), np.array(TRIANGLE[1])))
    return pc.Neighbourhood(origin, D, float(slices["radius"]), norm="linf")


def build_model(seed):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    widths = (64, *HIDDEN)
    mods = []
    for a, b in zip(widths[:-1], widths[1:]):
        mods += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*mods, nn.Linear(widths[-1], 10))


def train_run(augmented, seed, X, y, train_index):
    """Train one network; returns ``{epoch: checkpoint path}``."""
    import torch
    import torch.nn.functional as F

    import powercells as pc

    model = build_model(seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(10_000 + seed)
    Xt = torch.tensor(X[train_index], dtype=torch.float32)
    yt = torch.tensor(y[train_index])
    condition = "augmented" if augmented else "plain"
    paths = {}

    def save(epoch):
        path = CHECKPOINTS / f"{condition}_s{seed}_e{epoch:03d}.npz"
        pc.save_npz(pc.from_torch(model, (64,)), path)
        paths[epoch] = path

    if 0 in CHECKPOINT_EPOCHS:
        save(0)
    for epoch in range(1, EPOCHS + 1):
        perm = torch.randperm(len(Xt), generator=gen)
        for lo in range(0, len(Xt), BATCH):
            idx = perm[lo:lo + BATCH]
            xb = augment(Xt[idx], gen) if augmented else Xt[idx]
            loss = F.cross_entropy(model(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch in CHECKPOINT_EPOCHS:
            save(epoch)
    return paths


def accuracy_and_loss(net, X, y):
    """Accuracy and mean cross-entropy of the network's logits (float64 forward pass)."""
    Z = net.forward(X)
    Z = Z - Z.max(axis=1, keepdims=True)
    logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
    return float(np.mean(Z.argmax(axis=1) == y)), float(-np.mean(logp[np.arange(len(y)), y]))


def measure_slice(net, domain, estimate_seed):
    """Exact counts, exact rugosity limit, the estimate and the mean Jacobian norm on one slice."""
    import powercells as pc

    count = pc.count_regions(net, domain)
    tree = pc.subdivide(net, domain)
    if count.partial or tree.partial or count.per_layer != tree.per_layer:
        raise RuntimeError(f"count_regions {count.per_layer} and subdivide {tree.per_layer} "
                           "disagree")
    limit = pc.approx.rugosity_limit(net, tree=tree)
    est = pc.approx.rugosity_estimate(net, domain, eps=EPS, n_samples=N_SAMPLES,
                                      seed=estimate_seed)
    # ||J Q||_F per region (Q an orthonormal basis of the slice's span), area-weighted mean
    A, _ = tree.affine_maps()                                   # (n, 10, 2), slice coordinates
    _, R = np.linalg.qr(domain.directions)
    grad = np.linalg.norm(A @ np.linalg.inv(R), axis=(1, 2))
    areas = tree.areas()
    return {"regions": count.regions, "layer1": count.per_layer[0],
            "slivers": int(sum(count.slivers)), "limit": limit.value, "estimate": est.value,
            "stderr": est.stderr, "crossings": est.crossings,
            "gradient": float(grad @ areas / areas.sum())}


def measure(path, slices, domains, X, y, condition, seed, epoch):
    import powercells as pc

    net = pc.load(path)
    rows = []
    for split in ("train", "test"):
        index = slices[f"{split}_index"]
        acc, loss = accuracy_and_loss(net, X[index], y[index])
        for family in FAMILIES:
            sel = np.flatnonzero((slices["split"] == split) & (slices["family"] == family))
            m = [measure_slice(net, domains[i], int(slices["estimate_seed"][i])) for i in sel]
            col = {k: np.array([r[k] for r in m]) for k in m[0]}
            rows.append({
                "condition": condition, "seed": seed, "epoch": epoch, "split": split,
                "slices": family, "n_slices": len(sel), "accuracy": acc, "loss": loss,
                "regions_mean": col["regions"].mean(), "regions_min": int(col["regions"].min()),
                "regions_max": int(col["regions"].max()),
                "regions_layer1_mean": col["layer1"].mean(),
                "rugosity_limit_mean": col["limit"].mean(),
                "rugosity_limit_std": col["limit"].std(),
                "rugosity_estimate_mean": col["estimate"].mean(),
                "rugosity_estimate_stderr": float(np.sqrt((col["stderr"] ** 2).sum()) / len(sel)),
                "crossings_mean": col["crossings"].mean(),
                "gradient_norm_mean": col["gradient"].mean(),
                "slivers": int(col["slivers"].sum()),
            })
    return rows


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.10g}"
    return str(v)


def main():
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    start = time.perf_counter()
    X, y, train_index, test_index = load_split()
    slices = make_slices(X, y, train_index, test_index)
    np.savez(HERE / "slices.npz", **slices)
    domains = [domain_of(slices, i) for i in range(len(slices["family"]))]
    CHECKPOINTS.mkdir(exist_ok=True)
    rows = []
    for augmented in (False, True):
        condition = "augmented" if augmented else "plain"
        for seed in SEEDS:
            t0 = time.perf_counter()
            paths = train_run(augmented, seed, X, y, train_index)
            t1 = time.perf_counter()
            for epoch, path in paths.items():
                rows += measure(path, slices, domains, X, y, condition, seed, epoch)
            last = rows[-2 * len(FAMILIES):]
            print(f"{condition:9s} seed {seed}: train {t1 - t0:5.1f} s, measure "
                  f"{time.perf_counter() - t1:5.1f} s; epoch {EPOCHS}: accuracy train "
                  f"{last[0]['accuracy']:.3f} test {last[-1]['accuracy']:.3f}", flush=True)
    with open(HERE / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _fmt(v) for k, v in r.items()})
    print(f"{len(rows)} rows to results.csv in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
