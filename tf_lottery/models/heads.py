"""What a model's last layer outputs: probabilities (a softmax) or logits.

Training picks its loss from it (``from_logits``) and the criteria turn probabilities
back into logits; both read it here, so neither depends on the other.
"""

from __future__ import annotations

import keras


def outputs_probabilities(model: keras.Model) -> bool:
    """Whether ``model`` ends in a softmax (else its outputs are logits).

    Example:
        >>> outputs_probabilities(tl.models.cifar_resnet(20, output="softmax"))
        True
    """
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    return last.get_config().get("activation") == "softmax"
