"""Run folders: keyed by a hash of the config's identity, so a rerun resumes and a sweep never
overwrites.

``runs/<experiment>-<hash>/`` holds ``config.json`` and everything the run produced. The
hash covers the sections the run's *scope* takes (:meth:`tf_lottery.config.Config.identity`):
where output goes, what is exported or measured never changes it. Each stage of an
experiment leaves a file when it is done (written atomically); a rerun of the same config
finds them and skips the stages already done.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from tf_lottery.config import Config
from tf_lottery.io import atomic_path, write_json_atomic, write_text_atomic


class RunFolder:
    """The folder of one run.

    Args:
        config: The run's config.
        scope: Its identity scope: "dense", "ticket" or "sweep".

    Raises:
        ValueError: if the folder holds a config of another identity (a hash collision or a hand edit).

    Example:
        >>> run = RunFolder(config, "ticket")
        >>> run.start()
        >>> run.path
        'runs/init_ticket-3f2a9c1b7d4e'
    """

    def __init__(self, config: Config, scope: str):
        self.config, self.scope = config, scope
        self.digest = config.digest(scope)
        self.path = os.path.join(config.runtime.runs_dir, f"{config.experiment}-{self.digest}")
        saved = self.read_json("config.json")
        if saved is not None and Config.from_dict(saved).identity(scope) != config.identity(scope):
            raise ValueError(f"{self.path}/config.json holds a different config; move the folder away")

    def start(self) -> None:
        """Creates the folder with its config.json (once the inputs are known to be valid)."""
        if not self.exists("config.json"):
            write_text_atomic(self.file("config.json"), self.config.to_json())

    def file(self, name: str) -> str:
        """Path of a file of the run."""
        return os.path.join(self.path, name)

    def exists(self, name: str) -> bool:
        return os.path.exists(self.file(name))

    def read_json(self, name: str) -> Optional[dict]:
        """A JSON file of the run, or None when it is not there."""
        if not self.exists(name):
            return None
        with open(self.file(name)) as handle:
            return json.load(handle)

    def write_json(self, name: str, payload) -> None:
        write_json_atomic(self.file(name), payload)

    def write_text(self, name: str, text: str) -> None:
        write_text_atomic(self.file(name), text)

    def save_weights(self, model, name: str) -> None:
        """Saves weights atomically (``name`` ends in ``.weights.h5``, as Keras requires)."""
        with atomic_path(self.file(name)) as temporary:
            model.save_weights(temporary)
