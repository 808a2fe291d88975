"""KL: how much the model's predictions change when a block is silenced (after training).

Luo and Wu, "Neural Network Pruning with Residual-Connections and Limited-Data" (CURL),
CVPR 2020, at block level as in the paper's Table 1: the block's residual branch is
silenced (the variables :func:`tf_lottery.surgery.silencing_variables` names, its last
BN's gamma and beta in a basic block, replaced by zeros, so in inference mode the block
passes its input through, exactly what removing it does), and the score is the mean
``KL(p || q)`` between the softmax outputs p of the intact model and q of the silenced
one. Silencing happens in a pure forward pass with replaced values: the model's own
weights are never touched. Low = unimportant.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import tensorflow as tf

from tf_lottery.surgery import residual as surgery
from tf_lottery.surgery.silencing import silencing_variables
from tf_lottery.criteria import base
from tf_lottery.criteria.loss import logits_of
from tf_lottery.criteria.registry import register


def _log_probabilities(forward, images, params, batch_size):
    parts = [forward(params, images[start:start + batch_size]).numpy()
             for start in range(0, images.shape[0], batch_size)]
    return np.concatenate(parts)


@register("kl", prune_first="low", needs="images", when="trained",
          summary="KL(intact || block silenced) of the softmax outputs (Luo & Wu 2020)")
def kl(model, data, batch_size: int = 256) -> Dict[str, float]:
    """Block scores from the KL divergence of silencing each block (see module docstring)."""
    images, _ = base.as_batch(data, need_labels=False)
    values = [tf.convert_to_tensor(v.value) for v in model.trainable_variables]
    index = {id(v): i for i, v in enumerate(model.trainable_variables)}

    @tf.function(reduce_retracing=True)
    def forward(params, batch):  # traced once, then reused for every silenced block
        outputs = base.forward(model, batch, params, training=False)
        return tf.nn.log_softmax(tf.cast(logits_of(model, outputs), tf.float64))

    log_p = _log_probabilities(forward, images, values, batch_size)
    scores = {}
    for block in surgery.find_blocks(model):
        silenced = list(values)
        for variable in silencing_variables(model, block):
            silenced[index[id(variable)]] = tf.zeros_like(variable.value)
        log_q = _log_probabilities(forward, images, silenced, batch_size)
        scores[block.name] = float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=1)))
    return scores
