"""Block Influence (Men et al. 2024, "ShortGPT: Layers in Large Language Models are More Redundant
Than You Expect", arXiv:2403.03853, Eq. 1): how much a block changes the hidden states it is given.

``BI = 1 - E[cos(x_in, x_out)]``, the cosine taken along the features at every position (a token,
or a pixel of a CNN's feature map) and averaged over the batch's positions, padded tokens left out.
A block whose output points where its input did (BI near 0) does little: lowest first. A block
that changes the shape (a downsampling block, never removable) scores 2, the largest BI there is.
ShortGPT scores a trained LLM on a calibration set; nothing here is specific to language models.

Example:
    >>> tl.criteria.get("block_influence")(trained_lm, inputs)
"""

from __future__ import annotations

from typing import Dict

from tf_lottery.criteria import base, features
from tf_lottery.criteria.registry import register
from tf_lottery.criteria.similarity import mean_cosine


@register("block_influence", prune_first="low", needs="images", when="trained",
          summary="1 - cos(block input, block output) per position (ShortGPT, Men et al. 2024)")
def block_influence(model, data, batch_size: int = 256) -> Dict[str, float]:
    """Block scores: 1 minus the mean cosine of each block's input and output (see module docstring)."""
    inputs = base.inputs_of(data)
    streams = features.block_streams(model, inputs, batch_size)
    return {name: 1.0 - mean_cosine(x_in, x_out, features.position_weights(inputs, x_in))
            if x_in.shape == x_out.shape else 2.0 for name, (x_in, x_out) in streams.items()}
