"""Next-token pairs of token sequences, and the prepared text data a causal-LM run trains on.

A causal language model learns from pairs: the inputs are a window's tokens but the last, the
labels the token that follows each position (:func:`next_token_batch`). A padded position is
labelled :data:`IGNORED` and weighs nothing in the loss.

:class:`TextData` is :class:`tf_lottery.data.PreparedData`'s twin for ``--task=causal_lm``: the
same ``size``, ``arrays``, ``train_pipeline`` and ``eval_pipeline``, so one training harness
(resume, timing, energy) trains both. Its batches are ``(inputs, labels, weights)``: the labels
with :data:`IGNORED` replaced by 0 and a weight of 0 there, which Keras' loss and metrics read.

The splits (:func:`prepare_text`): 10 % of the corpus entries are the test split (by entry,
seeded by the run's seed, so no entry is in two splits), unless the corpus comes with its own
test split (a tfds dataset's ``test`` or ``validation``), which is then used; the rest are cut
into windows, shuffled by the seed, ``val_size`` windows held out from the end and ``train_size``
kept.

Example:
    >>> data = prepare_text(text.read_fortunes(), DataOptions("fortunes", val_size=256), length=128)
    >>> data.input_shape, data.num_classes
    ((128,), 258)
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_lottery.data.text import ByteTokenizer, split_texts, token_windows
from tf_lottery.data.transforms import shard_by_data, take_first

IGNORED = -1
"""The label of a position the next-token loss leaves out (padding, or the end of a sequence)."""

TEST_FRACTION = 0.1
"""The share of a corpus's entries in the test split."""


def next_token_batch(token_ids, padding_mask=None) -> Tuple[dict, np.ndarray]:
    """``(inputs, labels)`` for next-token prediction from a batch of token sequences.

    Args:
        token_ids: ``(batch, length)`` integer tokens, length >= 2.
        padding_mask: ``(batch, length)``, true (1) where a token is real; default: every token.

    Returns:
        ``({"token_ids": ..., "padding_mask": ...}, labels)``: the first ``length - 1`` tokens and
        their mask, and the next token of each position, :data:`IGNORED` where that token is padding.

    Raises:
        ValueError: for sequences shorter than 2 tokens, a negative token or a mask of another shape.

    Example:
        >>> inputs, labels = next_token_batch(np.array([[5, 6, 7, 0]]), np.array([[1, 1, 1, 0]]))
        >>> labels
        array([[ 6,  7, -1]])
    """
    ids = np.asarray(token_ids)
    mask = np.ones_like(ids, dtype=bool) if padding_mask is None else np.asarray(padding_mask).astype(bool)
    if ids.ndim != 2 or ids.shape[1] < 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"token_ids must be a (batch, length >= 2) integer array; got shape {ids.shape}, "
                         f"dtype {ids.dtype}")
    if mask.shape != ids.shape:
        raise ValueError(f"padding_mask has shape {mask.shape}, token_ids {ids.shape}")
    if (ids < 0).any():
        raise ValueError(f"token ids must be >= 0; got {int(ids.min())}")
    labels = np.where(mask[:, 1:], ids[:, 1:], IGNORED).astype("int64")
    return {"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]}, labels


Pairs = Tuple[Dict[str, np.ndarray], np.ndarray]


def _weighted(inputs, labels):
    """A batch as Keras trains on it: labels >= 0, a weight of 0 where the label is :data:`IGNORED`."""
    return inputs, tf.maximum(labels, 0), tf.cast(labels != IGNORED, tf.float32)


@dataclasses.dataclass
class TextData:
    """Next-token pairs of each split and the pipeline factory (see the module docstring).

    Attributes:
        splits: ``{"train", "val" (maybe empty), "test"}`` -> ``(inputs, labels)`` of :func:`next_token_batch`.
        options: The :class:`~tf_lottery.data.DataOptions` used.
        vocabulary_size: Token ids run from 0 to this minus one.
        entries: Corpus entries read.
        tokenizer: The tokenizer that made the ids (an export records its id mapping).

    Example:
        >>> data = prepare_text(text.read_fortunes(), DataOptions("fortunes", val_size=256), length=128)
        >>> data.input_shape, data.num_classes, data.size("val")
        ((128,), 258, 256)
    """

    splits: Dict[str, Pairs]
    options: object
    vocabulary_size: int
    entries: int = 0
    tokenizer: Optional[ByteTokenizer] = None

    scoring_pool: ClassVar[Optional[int]] = None
    streaming: ClassVar[bool] = False

    @property
    def input_shape(self) -> tuple:
        """``(sequence length,)``: the model's ``max_sequence_length``."""
        return (int(self.splits["train"][1].shape[1]),)

    @property
    def num_classes(self) -> int:
        """The vocabulary: a model's outputs per position."""
        return self.vocabulary_size

    @property
    def class_names(self) -> tuple:
        return ()

    def size(self, split: str) -> int:
        """Sequences in ``split``."""
        return int(len(self.splits[split][1]))

    def arrays(self, split: str, count: Optional[int] = None) -> Pairs:
        """The first ``count`` (default: all) ``(inputs, labels)`` of ``split``."""
        inputs, labels = self.splits[split]
        if count is None:
            return inputs, labels
        return {name: value[:count] for name, value in inputs.items()}, labels[:count]

    def token_windows(self, split: str) -> Tuple[np.ndarray, np.ndarray]:
        """``(token_ids, padding_mask)`` of ``split``'s windows, one token longer than the inputs
        (what :func:`tf_lottery.evals.language.perplexity` takes)."""
        inputs, labels = self.splits[split]
        ids = np.concatenate([inputs["token_ids"], np.maximum(labels[:, -1:], 0)], axis=1)
        mask = np.concatenate([inputs["padding_mask"], labels[:, -1:] != IGNORED], axis=1)
        return ids, mask

    def train_pipeline(self, batch_size: int, augment: bool = True, start_step: int = 0) -> tf.data.Dataset:
        """Shuffled, batched, endless ``(inputs, labels, weights)`` from batch ``start_step`` on; a
        function of the seed alone, so a resumed run gets the batches an unbroken run gets.

        Raises:
            ValueError: if the split is smaller than one batch.
        """
        del augment  # text has no augmentation
        inputs, labels = self.splits["train"]
        count = len(labels)
        if count < batch_size:
            raise ValueError(f"the training split ({count} sequences) is smaller than one batch ({batch_size})")
        order = tf.data.Dataset.range(count).shuffle(count, seed=int(self.options.seed),
                                                      reshuffle_each_iteration=True).repeat()
        tensors = ({name: tf.constant(value) for name, value in inputs.items()}, tf.constant(labels))
        stream = order.skip(start_step * batch_size).map(
            lambda index: ({name: tf.gather(value, index) for name, value in tensors[0].items()},
                           tf.gather(tensors[1], index)), num_parallel_calls=tf.data.AUTOTUNE)
        batches = stream.batch(batch_size, drop_remainder=True).map(_weighted)
        return shard_by_data(batches.prefetch(tf.data.AUTOTUNE))

    def eval_pipeline(self, split: str, batch_size: int) -> tf.data.Dataset:
        """``(inputs, labels, weights)`` batches of a split in a fixed order."""
        batches = tf.data.Dataset.from_tensor_slices(self.splits[split]).batch(batch_size).map(_weighted)
        return shard_by_data(batches.prefetch(tf.data.AUTOTUNE))


def prepare_text(texts: Sequence[str], options, length: int, tokenizer: Optional[ByteTokenizer] = None,
                 test_texts: Optional[Sequence[str]] = None) -> TextData:
    """Splits a corpus and cuts it into next-token pairs of ``length`` positions (module docstring).

    Args:
        texts: The corpus entries.
        test_texts: A test split the corpus comes with (a tfds dataset's); then ``texts`` are all
            training text and no entry of them is held out for the test.
        options: A :class:`~tf_lottery.data.DataOptions` (seed, ``train_size``, ``val_size``, ``test_size``
            in sequences).
        length: Positions per sequence (the model's ``max_sequence_length``), >= 1.
        tokenizer: Default: :class:`~tf_lottery.data.text.ByteTokenizer`.

    Returns:
        A :class:`TextData`.

    Raises:
        ValueError: for an empty corpus, or sizes the corpus does not have.
    """
    if not texts:
        raise ValueError("the corpus is empty: no text to train on")
    tokenizer = tokenizer or ByteTokenizer()
    if test_texts is None:
        train_texts, test_texts = split_texts(texts, TEST_FRACTION, seed=options.seed)
    elif not test_texts:
        raise ValueError("the corpus's test split is empty: no text to measure perplexity on")
    else:
        train_texts = list(texts)
    train = next_token_batch(*token_windows(train_texts, tokenizer, length + 1))
    order = np.random.default_rng(options.seed).permutation(len(train[1]))
    train = ({name: value[order] for name, value in train[0].items()}, train[1][order])
    if options.val_size < 0 or options.val_size >= len(order):
        raise ValueError(f"val_size must be between 0 and {len(order) - 1} sequences; got {options.val_size}")
    cut = len(order) - options.val_size
    val = ({name: value[cut:] for name, value in train[0].items()}, train[1][cut:])
    train = take_first(({name: value[:cut] for name, value in train[0].items()}, train[1][:cut]),
                       options.train_size, "train_size", " sequences")
    test = take_first(next_token_batch(*token_windows(test_texts, tokenizer, length + 1)), options.test_size,
                      "test_size", " sequences")
    return TextData({"train": train, "val": val, "test": test}, options, tokenizer.vocabulary_size, len(texts),
                    tokenizer)
