"""Rewrites the committed results' paths to the convention of records: relative, never absolute.

Files made before 0.10 recorded the paths of the machine that made them (``/work/evidence/runs/dense-...``,
``/tmp/damage-census-.../work/...``). A run folder is named relative to its runs folder (its name), a run's
own files relative to it, a runs folder as ``runs``. This script rewrites every ``.json`` and ``.md`` under
``benchmarks/results`` in place (atomically) and is idempotent; ``tests/test_evidence.py`` checks that no
absolute path is left.

    .venv/bin/python scripts/relative_paths.py
"""

from __future__ import annotations

import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tf_lottery.core import manifest  # noqa: E402
from tf_lottery.core.io import write_text_atomic  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks", "results")
ABSOLUTE = re.compile(r"/(?:work|tmp|root|home)(?:/[^\s'\"`|()]+)+")
"""An absolute path of a machine (the folders these results were made in)."""
RUN_FOLDER = re.compile(r"^[a-z_]+-[0-9a-f]{12}$")
FOLDER_KEYS = ("run_folder", "dense_run_folder", "folder")


def relative(path: str) -> str:
    """``/work/evidence/runs/dense-3f2a9c1b7d4e/export/dense`` -> ``dense-3f2a9c1b7d4e/export/dense``;
    ``/tmp/damage-census-x/work/dense-...`` -> ``work/dense-...``; a runs folder -> ``runs``."""
    parts = path.strip("/").split("/")
    for index, part in enumerate(parts):
        if RUN_FOLDER.match(part):
            return "/".join(parts[index:])
    for index, part in enumerate(parts):
        if part == "work" and index > 0:
            return "/".join(parts[index:])
    return "runs" if parts[-1].startswith("runs") else parts[-1]


def rewrite_text(text: str) -> str:
    return ABSOLUTE.sub(lambda match: relative(match.group(0)), text)


def rewrite_json(value, key=None):
    if isinstance(value, dict):
        return {k: rewrite_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite_json(v, key) for v in value]
    if isinstance(value, str):
        if key in FOLDER_KEYS and value.startswith("/"):
            return os.path.basename(os.path.normpath(value))
        if key == "runs_dir" and value.startswith("/"):
            return "runs"
        return rewrite_text(value)
    return value


def rewrite_folder(root: str) -> int:
    """Rewrites the JSON and Markdown files under ``root``; a run folder whose files changed gets its
    manifest written again (keeping what it names as not kept). Returns the number of files rewritten."""
    changed, touched = 0, set()
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if not name.endswith((".json", ".md")) or name == manifest.MANIFEST:
                continue
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            if name.endswith(".json"):
                new = json.dumps(rewrite_json(json.loads(text)), indent=2, sort_keys=True) + "\n"
                if json.loads(new) == json.loads(text):
                    continue
            else:
                new = rewrite_text(text)
            if new != text:
                write_text_atomic(path, new)
                changed += 1
                touched.add(folder)
    for folder in touched:  # the run folder holding the file (evals/<side>/ files sit two levels down)
        while folder.startswith(root) and not os.path.exists(os.path.join(folder, manifest.MANIFEST)):
            if folder == root:
                break
            folder = os.path.dirname(folder)
        current = manifest.read(folder) if os.path.exists(os.path.join(folder, manifest.MANIFEST)) else None
        if current is not None:
            manifest.write(folder, not_kept=current.get("not_kept", []))
    return changed


def main() -> int:
    print(f"{rewrite_folder(ROOT)} files rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
