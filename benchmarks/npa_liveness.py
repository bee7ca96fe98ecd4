"""Is NPA calibration live? The share of anchors Algorithm 1 calibrates, for Eq. 5's sum and its mean, at several T.

Usage: python benchmarks/npa_liveness.py [-m pcfrl] [-t synth-fer] [--preset quick] [--seed 0] [--n 64]
       [--set KEY=VALUE ...]

Loads (or pretrains) the method's checkpoint as `pcfrl-bench analyze` does, renders ``--n`` frames of the
pretraining world (one per clip, like a training batch; default: the preset's batch size), embeds the training
views with the branch heads in training mode and prints per branch:
- the effective rank of the embeddings (exp of the entropy of the normalised singular values: 1 = collapsed
  to one direction, d = spread over all d dimensions) and the mean cosine of different images' views;
- the calibrated share of anchors (best candidate's PA >= T, Algorithm 1) at T = 0.5, 1, 2, 5 with NS summed
  over the 2N-2 other views (Eq. 5 as printed) and averaged over them (``ns_reduction: mean``), and the
  median of each anchor's best PA.
A share of 1.00 at every T means the threshold never acts: calibration is a top-1 rule (Table 7's NN).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.console import Console

from pcfrl_bench.analysis import synthetic_batch
from pcfrl_bench.calibration import calibrate, cosine_matrix, pair_alignment
from pcfrl_bench.data.synthetic import SyntheticWorld, WorldStyle
from pcfrl_bench.runner import RunOptions, RunPaths, ensure_pretrained, resolve
from pcfrl_bench.io import default_data_root, user_cache_dir

THRESHOLDS = (0.5, 1.0, 2.0, 5.0)


def effective_rank(z: torch.Tensor) -> float:
    """exp(entropy) of the singular values of the centred rows, normalised to sum 1."""
    s = torch.linalg.svdvals(z - z.mean(0))
    p = s / s.sum()
    return float(torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--method", default="pcfrl")
    ap.add_argument("-t", "--task", default="synth-fer")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=0, help="images in the batch (0: the preset's batch size)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    resolved = resolve(args.method, args.task, args.preset, args.seed, "cpu", args.overrides)
    cfg = resolved.config
    cache = Path(args.cache_dir) if args.cache_dir else user_cache_dir()
    paths = RunPaths(cache / "runs", cache, default_data_root())
    model, *_ = ensure_pretrained(resolved, paths, torch.device("cpu"), RunOptions(progress=False), Console(quiet=True))
    w = cfg.data.synthetic
    world = SyntheticWorld(w.seed, w.identities, w.clips_per_identity, w.frames_per_clip, style=WorldStyle.of(w))
    images, labels = synthetic_batch(world, args.n or cfg.pretrain.batch_size, cfg.data.image_size, args.seed)
    torch.manual_seed(args.seed)
    with torch.no_grad():
        model.train()  # the heads' BatchNorm uses batch statistics, as in training
        branches = model.branches({"image": images, **labels})
    print(f"{args.method} on {args.task} ({args.preset}, seed {args.seed}), {images.shape[0]} images")
    for b in branches:
        z = b.z.detach().float()
        other = b.groups[:, None] != b.groups[None, :]
        print(f"\n{b.name}: {z.shape[0]} views x {z.shape[1]} dims, effective rank {effective_rank(z):.1f}, "
              f"mean cosine of other images' views {float(cosine_matrix(z)[other].mean()):.3f}, alpha {b.params.alpha}")
        print("NS      " + "  ".join(f"T={t:<4}" for t in THRESHOLDS) + "  median best PA")
        for reduction in ("sum", "mean"):
            pa = pair_alignment(z, b.params.alpha, ns_reduction=reduction)
            best = pa.masked_fill(~other, float("-inf")).max(1).values
            shares = [float(calibrate(pa, b.groups, "threshold", t).any(1).float().mean()) for t in THRESHOLDS]
            print(f"{reduction:<6}  " + "  ".join(f"{s:6.2f}" for s in shares) + f"  {float(best.median()):.2f}")


if __name__ == "__main__":
    main()
