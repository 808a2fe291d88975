"""Block outputs on a batch of images: what the after-training criteria look at."""

from __future__ import annotations

from typing import Dict

import keras
import numpy as np

from tf_lottery import graph, surgery


def block_outputs(model: keras.Model, images, batch_size: int = 256) -> Dict[str, np.ndarray]:
    """``{block name: its output (post-add ReLU) on images}``, in inference mode.

    Args:
        model: The (trained) network.
        images: Array of images.
        batch_size: Images per forward pass.
    """
    view = graph.flat(model)
    found = surgery.find_blocks(view)
    probe = keras.Model(view.input, [graph.output_of(view, b.output_layer) for b in found])
    outputs = probe.predict(np.asarray(images, dtype="float32"), batch_size=batch_size, verbose=0)
    if len(found) == 1:
        outputs = [outputs]
    return {b.name: out for b, out in zip(found, outputs)}
