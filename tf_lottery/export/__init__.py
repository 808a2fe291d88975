"""Layer 3, tickets out of tf_lottery: SavedModel and ``.keras`` exports with metadata
(:mod:`~tf_lottery.export.saved_model`), their serving signatures and TFLite (:mod:`~tf_lottery.export.serving`),
language models: token ids to logits and keras_hub presets (:mod:`~tf_lottery.export.language`), and
Hugging Face ``transformers`` folders (:mod:`~tf_lottery.export.hugging_face`).

Example:
    >>> tl.export.save_ticket(result, "exports/ticket")
    >>> tl.export.read_metadata("exports/ticket")["removed"]
    ['stage1_block2']
"""

from tf_lottery.export import hugging_face, language, serving  # noqa: F401
from tf_lottery.export.hugging_face import to_transformers
from tf_lottery.export.language import save_language_model
from tf_lottery.export.saved_model import EXPORT_FILES, DamagedExport, is_complete, read_metadata, save_model, save_ticket
from tf_lottery.export.serving import Preprocessing

__all__ = ["EXPORT_FILES", "DamagedExport", "Preprocessing", "hugging_face", "is_complete", "language",
           "read_metadata", "save_language_model", "save_model", "save_ticket", "serving", "to_transformers"]
