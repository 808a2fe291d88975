"""Angular distance over a window of blocks (Gromov et al. 2024, "The Unreasonable Ineffectiveness of
the Deeper Layers", arXiv:2403.17887, Eq. 7): how far ``n`` consecutive blocks turn the hidden state.

``d(l, n) = arccos(cos(x_in of block l, x_out of block l+n-1)) / π``, averaged over the batch's
positions (padded tokens left out); Gromov et al. read only the last token, which
``last_token=True`` does (the last real token of each sequence). They remove the window of ``n``
blocks with the smallest distance. As a block score: each block gets the smallest distance of
the windows it belongs to, so the ``n`` lowest-scored blocks are the best window (ask for
``num_blocks=n``). A window stays inside one stage (the hidden state keeps its shape); a block in
no window (a stage of fewer than ``n`` blocks) scores 1, the largest distance. ``window=1`` is the
angle each block turns alone.

Example:
    >>> tl.criteria.get("angular")(trained_lm, inputs, window=2)
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Dict, Optional

import numpy as np

from tf_lottery import surgery
from tf_lottery.criteria import base, features
from tf_lottery.criteria.registry import register
from tf_lottery.criteria.similarity import angular_distance
from tf_lottery.core.options import integer


def _last_positions(hidden: np.ndarray, weights):
    """Each sequence's last kept position, ``(batch, features)`` (the last one when there is no mask)."""
    if hidden.ndim != 3:
        raise ValueError(f"last_token=True reads sequences (batch, length, features); got hidden states of shape "
                         f"{hidden.shape}")
    last = np.full(len(hidden), hidden.shape[1] - 1) if weights is None else \
        hidden.shape[1] - 1 - np.argmax(weights[:, ::-1] > 0, axis=1)
    return hidden[np.arange(len(hidden)), last]


@dataclasses.dataclass(frozen=True)
class AngularSettings:
    """The option of ``angular`` a run chooses (``--angular_window``)."""

    angular_window: Optional[int] = integer(None, "angular: the window of consecutive blocks whose angular "
                                            "distance is measured (Gromov et al. 2024; default 1).", lower_bound=1)
    ARGUMENTS: ClassVar[dict] = {"angular_window": "window"}
    IDENTITY_DEFAULTS: ClassVar[dict] = {"angular_window": None}  # declared in 0.9: earlier runs keep their folders


@register("angular", prune_first="low", needs="images", when="trained", settings=AngularSettings,
          summary="arccos(cos(x_l, x_l+n)) / π of a window of n blocks (Gromov et al. 2024)")
def angular(model, data, window: int = 1, last_token: bool = False, batch_size: int = 256) -> Dict[str, float]:
    """Block scores: the smallest angular distance of the windows each block belongs to (see module docstring).

    Raises:
        ValueError: for a window below 1 or longer than the model's blocks, or ``last_token`` on hidden
            states that are not sequences.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be an integer >= 1; got {window!r}")
    found = surgery.find_blocks(model)
    if window > len(found):  # no window would fit: every block would keep the score 1.0 and the choice be arbitrary
        raise ValueError(f"angular window={window} is longer than {model.name}'s {len(found)} blocks; give a window "
                         f"of 1 to {len(found)} (--angular_window)")
    inputs = base.inputs_of(data)
    streams = features.block_streams(model, inputs, batch_size)
    scores = {b.name: 1.0 for b in found}
    for start in range(len(found) - window + 1):
        chain = found[start:start + window]
        if len({b.stage for b in chain}) != 1:
            continue
        x_in, x_out = streams[chain[0].name][0], streams[chain[-1].name][1]
        if x_in.shape != x_out.shape:
            continue
        weights = features.position_weights(inputs, x_in)
        if last_token:
            distance = angular_distance(_last_positions(x_in, weights), _last_positions(x_out, weights))
        else:
            distance = angular_distance(x_in, x_out, weights)
        for b in chain:
            scores[b.name] = min(scores[b.name], distance)
    return scores
