"""Measures how well SNIP and GraSP block scores predict the real effect of removing a block.

The paper does not say how per-weight saliencies become a block score, nor GraSP's
ranking direction (the paper's Algorithm 2 leaves both open). Both criteria are first-order predictions of what
removing weights does at initialization:

* SNIP (|w * g|) predicts the size of the loss change, abs(ΔL);
* GraSP (-θ ⊙ Hg) predicts, summed, half the change of the squared gradient norm, Δ(g²)
  (positive: removal raises the gradient norm, which GraSP wants, so it prunes high first).

For every removable block of an untrained ResNet we remove the block (physically, with
``tl.surgery``), measure ΔL and Δ|g|² on the scoring batch, and report the Spearman rank
correlation between the block scores (sum and mean aggregations) and those measured
effects, over several seeds. Data: Fashion-MNIST from the local IDX files, 10 examples
per class (GraSP's default batch), scaled to [0, 1] minus the per-pixel training mean.

    python scripts/criteria_agreement.py --depth=32 --seeds=0,1,2,3,4
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from absl import app, flags
from scipy.stats import spearmanr

import tf_lottery as tl
from tf_lottery.criteria import base
from tf_lottery.data import load_fashion_mnist
from tf_lottery.core.io import write_json_atomic
from tf_lottery.reports.tables import markdown_table

_DEPTH = flags.DEFINE_integer("depth", 32, "ResNet depth.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Model and batch seeds.")
_PER_CLASS = flags.DEFINE_integer("per_class", 10, "Scoring examples per class.")
_OUT = flags.DEFINE_string("out", "benchmarks/results", "Output folder.")


def loss_and_grad_norm(model, images, labels, temperature):
    params = [tf.convert_to_tensor(v.value) for v in model.trainable_variables]
    kernels = list(base.prunable_kernels(model).values())
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss = base.cross_entropy(model, base.forward(model, images, params), labels, temperature)
    grads = tape.gradient(loss, [params[i] for i in kernels])
    return float(loss), float(sum(tf.reduce_sum(g * g) for g in grads))


def main(argv):
    del argv
    (train_x, train_y), _ = load_fashion_mnist()
    scaled = train_x.astype("float32") / 255.0
    mean = scaled.mean(axis=0)
    rows, correlations = [], {}
    for seed in (int(s) for s in _SEEDS.value):
        model = tl.models.cifar_resnet(_DEPTH.value, input_shape=(28, 28, 1), seed=seed)
        x, y = base.class_balanced_batch(scaled - mean, train_y, per_class=_PER_CLASS.value, seed=seed)
        images, labels = base.as_batch((x, y))
        loss0, _ = loss_and_grad_norm(model, images, labels, 1.0)
        _, norm0 = loss_and_grad_norm(model, images, labels, 200.0)
        removable = tl.surgery.removable_blocks(model)
        loss_change, norm_change = [], []
        for block in removable:
            ticket = tl.surgery.remove_blocks(model, [block], min_blocks_per_stage=1)
            loss_change.append(abs(loss_and_grad_norm(ticket, images, labels, 1.0)[0] - loss0))
            norm_change.append(loss_and_grad_norm(ticket, images, labels, 200.0)[1] - norm0)
        for criterion, effect in (("snip", loss_change), ("grasp", norm_change)):
            for aggregation in base.AGGREGATIONS:
                scores = tl.criteria.get(criterion)(model, (x, y), aggregation=aggregation)
                rho = spearmanr([scores[b] for b in removable], effect).statistic
                correlations.setdefault(f"{criterion}/{aggregation}", []).append(float(rho))
        print(f"seed {seed}: " + ", ".join(f"{k} {v[-1]:+.2f}" for k, v in correlations.items()), flush=True)
    for key, values in correlations.items():
        criterion, aggregation = key.split("/")
        effect = "abs(ΔL)" if criterion == "snip" else "Δ(g²)"
        rows.append([criterion, aggregation, effect, f"{np.mean(values):+.2f} ± {np.std(values):.2f}",
                     " ".join(f"{v:+.2f}" for v in values)])
    table = markdown_table(["criterion", "aggregation", "measured effect", "Spearman ρ (mean ± std)", "per seed"],
                           rows, align="lllrl")
    print(table)
    path = os.path.join(_OUT.value, f"criteria_agreement_resnet{_DEPTH.value}_fashion_mnist.json")
    write_json_atomic(path, {"depth": _DEPTH.value, "seeds": _SEEDS.value, "per_class": _PER_CLASS.value,
                             "spearman": correlations, "table": table})
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    app.run(main)
