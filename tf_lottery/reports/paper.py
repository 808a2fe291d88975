"""The paper's published numbers, for the reports to print beside each measured cell.

From Jordao et al., "When Layers Play the Lottery, all Tickets Win at Initialization" (ICCV 2023
Workshops; arXiv 2301.10835). Every accuracy is a difference to the dense network in percentage
points (its "(+)" / "(-)" marks turned into signs); the paper reports single runs on CIFAR-10
with no spread, and never the absolute accuracies. The lookups return None where the paper
has no number, so a report shows it only where one exists.
"""

from __future__ import annotations

from typing import Optional

#: Table 2: ResNet32, tickets at initialization (Algorithm 2), {criterion: {p: pp}}.
TABLE2 = {"snip": {1: +0.08, 2: +0.00, 3: -0.50, 4: -0.53, 5: -1.00},
          "grasp": {1: +0.40, 2: +0.72, 3: +0.34, 4: +0.41, 5: +0.12}}

#: Table 1: ResNet32, after-training criteria, weight rewinding to θ_0, θ_25, θ_50, θ_75 of
#: 200 epochs (p not stated), {criterion: [pp at each rewind point, in that order]}.
TABLE1 = {"hrank": [-0.01, +0.21, +0.10, +0.12], "expectabs": [+0.33, +0.13, -0.48, -0.62],
          "pls": [+0.06, +0.31, +0.10, +0.10], "random": [+0.38, +0.15, +0.26, -0.07],
          "kl": [+0.74, +0.46, -0.03, -0.17]}
#: Table 1's rewind points, in epochs of the paper group's 200-epoch recipe.
TABLE1_EPOCHS = (0, 25, 50, 75)

#: Table 3: ResNet32, p = 1, at initialization, {method: {criterion: pp}} (filters: the standard
#: structured LTH with the layer ticket's filter count).
TABLE3 = {"filters": {"snip": -0.79, "grasp": -0.11}, "blocks": {"snip": +0.08, "grasp": +0.40}}

#: Table 4: GraSP tickets at initialization, {(depth, p): (FLOPs ↓ %, memory ↓ %, CO2 ↓ %, speed-up x)}.
#: The ResNet32 "p = 4" row's FLOPs are those of 5 blocks (5 x 6.826 %); it is kept as printed.
TABLE4 = {(32, 1): (6.82, 10.13, 11.11, 1.10), (32, 3): (20.47, 25.29, 25.92, 1.35),
          (32, 4): (34.13, 30.11, 33.33, 1.57), (56, 3): (11.25, 15.15, 13.33, 1.16),
          (56, 4): (15.00, 19.42, 20.00, 1.24), (56, 5): (18.76, 23.69, 24.44, 1.34),
          (56, 12): (45.00, 45.82, 51.11, 2.03)}


def table2(depth: Optional[int], criterion: str, p: Optional[int]) -> Optional[float]:
    """The paper's Table 2 value for a ResNet32 ticket at initialization, or None.

    Args:
        depth: The ResNet's depth (None: not a CIFAR ResNet).
        criterion: The criterion.
        p: Blocks removed.

    Returns:
        The accuracy difference in pp, or None where the paper has none.

    Example:
        >>> table2(32, "grasp", 2), table2(56, "grasp", 2)
        (0.72, None)
    """
    return TABLE2.get(criterion, {}).get(p) if depth == 32 else None


#: The length, in epochs, of the recipe Table 1's rewind points are counted in.
TABLE1_LENGTH = 200  # epochs of the paper group's recipe


def table1(depth: Optional[int], criterion: str, rewind: Optional[str], rewind_epoch: Optional[int],
           epochs: Optional[int]) -> Optional[float]:
    """The paper's Table 1 value for a ResNet32 ticket weight-rewound to θ_i of an ``epochs``-long
    training, or None: a shorter training is matched at the same fraction of its length
    (θ_2 of 8 epochs is the paper's θ_50 of 200), and only where the fraction is one of the paper's.

    Args:
        depth: The ResNet's depth (None: not a CIFAR ResNet).
        criterion: The criterion.
        rewind: The rewind mode (only ``"weights"`` is in Table 1).
        rewind_epoch: The rewind epoch i.
        epochs: The training's length in epochs.

    Returns:
        The accuracy difference in pp, or None.

    Example:
        >>> table1(32, "kl", "weights", 2, 8), table1(32, "kl", "weights", 1, 6)
        (-0.03, None)
    """
    if depth != 32 or rewind != "weights" or rewind_epoch is None or not epochs:
        return None
    scaled = rewind_epoch * TABLE1_LENGTH / epochs
    match = [i for i, e in enumerate(TABLE1_EPOCHS) if abs(e - scaled) < 1e-9]
    values = TABLE1.get(criterion)
    return None if values is None or not match else values[match[0]]


def table3(depth: Optional[int], method: str, criterion: str, p: Optional[int]) -> Optional[float]:
    """The paper's Table 3 value (ResNet32, p = 1), or None.

    Args:
        depth: The ResNet's depth.
        method: ``"blocks"`` or ``"filters"``.
        criterion: The criterion.
        p: Blocks removed (the filter ticket's count matched to it).

    Returns:
        The accuracy difference in pp, or None.

    Example:
        >>> table3(32, "filters", "snip", 1), table3(32, "blocks", "grasp", 2)
        (-0.79, None)
    """
    return TABLE3.get(method, {}).get(criterion) if depth == 32 and p == 1 else None


def table4(depth: Optional[int], criterion: str, p: Optional[int]) -> Optional[tuple]:
    """The paper's Table 4 row of a GraSP ticket, or None.

    Args:
        depth: The ResNet's depth.
        criterion: The criterion (only ``"grasp"`` is in Table 4).
        p: Blocks removed.

    Returns:
        ``(FLOPs ↓ %, memory ↓ %, CO2 ↓ %, speed-up x)``, or None.

    Example:
        >>> table4(32, "grasp", 1)
        (6.82, 10.13, 11.11, 1.1)
    """
    return TABLE4.get((depth, p)) if criterion == "grasp" else None
