"""KL: how much the model's predictions change when a block is silenced (after training).

Luo and Wu, "Neural Network Pruning with Residual-Connections and Limited-Data" (CURL),
CVPR 2020, at block level as in the paper's Table 1: the block's residual branch is
silenced (its last BN's gamma and beta set to zero, so the block passes its input
through, exactly what removing it does in inference mode), and the score is the mean
``KL(p || q)`` between the softmax outputs p of the intact model and q of the silenced
one. The weights are restored afterwards. Low = unimportant.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from tf_lottery import surgery
from tf_lottery.criteria import base


def _probabilities(model, images, batch_size):
    outputs = model.predict(images, batch_size=batch_size, verbose=0).astype("float64")
    if base.outputs_probabilities(model):
        return np.clip(outputs, 1e-12, 1.0)
    outputs -= outputs.max(axis=1, keepdims=True)
    exp = np.exp(outputs)
    return exp / exp.sum(axis=1, keepdims=True)


@base.register("kl", prune_first="low", needs="images", when="trained",
               summary="KL(intact || block silenced) of the softmax outputs (Luo & Wu 2020)")
def kl(model, data, batch_size: int = 256) -> Dict[str, float]:
    """Block scores from the KL divergence of silencing each block (see module docstring)."""
    images, _ = base.as_batch(data, need_labels=False)
    images = images.numpy()
    p = _probabilities(model, images, batch_size)
    scores = {}
    for block in surgery.find_blocks(model):
        saved = {name: model.get_layer(name).get_weights() for name in block.layers}
        try:
            surgery.silence_blocks(model, [block.name])
            q = _probabilities(model, images, batch_size)
        finally:
            for name, values in saved.items():
                model.get_layer(name).set_weights(values)
        scores[block.name] = float(np.mean(np.sum(p * (np.log(p) - np.log(np.clip(q, 1e-12, 1.0))), axis=1)))
    return scores
