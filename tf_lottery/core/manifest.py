"""Manifests: what a writer wrote into a folder, so that a reader verifies the folder rather than believes it.

A manifest (``manifest.json``) names each file of a folder (relative, with ``/``) with its size in bytes
and its SHA-256. Run folders and exports carry one. A reader compares the folder with it
(:func:`check`) and gets one :class:`Finding` per file that is missing, changed, or there without
being recorded; what to do about each is the reader's business (a run remakes or retrains,
an export refuses to load).

A manifest may also name files that were deliberately not kept (``not_kept``: the weights of a run
whose small files were committed without them): they are not recorded, so their absence is no finding,
and the reader can say "weights not kept" rather than treat the run as damaged.

Example:
    >>> write("runs/init_ticket-3f2a9c1b7d4e")
    >>> [f.describe() for f in check("runs/init_ticket-3f2a9c1b7d4e", read("runs/init_ticket-3f2a9c1b7d4e"))]
    []
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Dict, Iterable, List, Optional

from tf_lottery.core.io import write_json_atomic

MANIFEST = "manifest.json"
FORMAT = 1
# Never recorded: the manifest itself, what a reader moved aside, atomic writers' temporaries, and
# training states that live only while a training is interrupted (they carry their own checks).
_SKIPPED_SUFFIXES = (".damaged",)
_SKIPPED_PREFIXES = (".tmp-", ".old-", "resume_")


class DamagedManifest(ValueError):
    """A ``manifest.json`` that does not parse or does not hold a manifest."""


@dataclasses.dataclass(frozen=True)
class Finding:
    """One file that does not match its folder's manifest.

    Attributes:
        name: The file, relative to the folder (``evals/ticket/clean.json``).
        problem: ``"missing"``, ``"changed"`` or ``"unrecorded"`` (there, but never recorded).
        detail: What differs (sizes, or that the content differs at the same size).
    """

    name: str
    problem: str
    detail: str = ""

    def describe(self) -> str:
        return f"{self.name}: {self.problem}" + (f" ({self.detail})" if self.detail else "")


def file_digest(path: str) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _skipped(name: str) -> bool:
    parts = name.split("/")
    return name == MANIFEST or any(p.startswith(_SKIPPED_PREFIXES) or p.endswith(_SKIPPED_SUFFIXES) for p in parts)


def files_of(folder: str) -> List[str]:
    """Every file under ``folder`` a manifest records, relative with ``/``, in sorted order (links are
    followed as the reader would)."""
    found = []
    for parent, folders, files in os.walk(folder):
        folders[:] = sorted(f for f in folders if not (f.startswith(_SKIPPED_PREFIXES) or f.endswith(_SKIPPED_SUFFIXES)))
        for name in files:
            relative = os.path.relpath(os.path.join(parent, name), folder).replace(os.sep, "/")
            if not _skipped(relative):
                found.append(relative)
    return sorted(found)


def entry(path: str) -> dict:
    """What a manifest records of one file: ``{"bytes": ..., "sha256": ...}``."""
    return {"bytes": os.path.getsize(path), "sha256": file_digest(path)}


def describe(folder: str, names: Optional[Iterable[str]] = None) -> Dict[str, dict]:
    """The entries of ``names`` (default: every file :func:`files_of` finds) under ``folder``."""
    return {name: entry(os.path.join(folder, name)) for name in (files_of(folder) if names is None else names)}


def write(folder: str, not_kept: Iterable[str] = (), extra: Optional[dict] = None) -> dict:
    """Records every file of ``folder`` in its ``manifest.json`` (atomically); returns the manifest.

    Args:
        folder: The folder.
        not_kept: Files deliberately left out (weights of committed runs): absent without a finding.
        extra: Other fields the writer keeps beside the files.
    """
    return save(folder, {**(extra or {}), "files": describe(folder), "not_kept": sorted(set(not_kept))})


def _entries_digest(payload: dict) -> str:
    """The SHA-256 of what a manifest vouches for: its folder's name, its entries and what it names not kept."""
    vouched = {"folder": payload.get("folder"), "files": payload["files"], "not_kept": payload.get("not_kept", [])}
    return hashlib.sha256(json.dumps(vouched, sort_keys=True).encode()).hexdigest()


def save(folder: str, payload: dict) -> dict:
    """Writes ``payload`` (a manifest's fields) as ``folder``'s manifest, naming the folder and sealing the
    entries with their digest, so that an edited or swapped manifest is found; returns what it wrote."""
    payload = {**payload, "format": FORMAT, "folder": os.path.basename(os.path.normpath(folder))}
    payload["digest"] = _entries_digest(payload)
    write_json_atomic(os.path.join(folder, MANIFEST), payload)
    return payload


def read(folder: str) -> Optional[dict]:
    """The manifest of ``folder``, or None when it has none.

    Raises:
        DamagedManifest: naming the file when it is not a manifest (it then vouches for nothing).
    """
    path = os.path.join(folder, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            payload = validated(json.load(handle))
        if "digest" in payload and payload["digest"] != _entries_digest(payload):
            raise ValueError("its entries do not match its digest: it was edited")
        name = os.path.basename(os.path.normpath(folder))
        if payload.get("folder") not in (None, name):
            raise ValueError(f"it is the manifest of {payload['folder']}, not of {name}")
        return payload
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise DamagedManifest(f"{path} is damaged ({error}): it should hold each file's size and SHA-256") from None


def validated(payload) -> dict:
    """``payload`` when it is a manifest (a ``files`` object of ``{"bytes": int, "sha256": hex}``).

    Raises:
        ValueError: saying what is wrong.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("files"), dict):
        raise ValueError("no 'files' object")
    for name, item in payload["files"].items():
        if (not isinstance(item, dict) or not isinstance(item.get("bytes"), int) or
                not isinstance(item.get("sha256"), str) or len(item["sha256"]) != 64):
            raise ValueError(f"the entry of {name!r} is not {{'bytes': int, 'sha256': hex}}")
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"the entry {name!r} is outside the folder")
    if not isinstance(payload.get("not_kept", []), list):
        raise ValueError("'not_kept' is not a list")
    return payload


def check(folder: str, manifest: dict) -> List[Finding]:
    """The files of ``folder`` that do not match ``manifest``: missing, changed, or unrecorded.

    A file whose size matches is hashed; one whose size differs is changed without hashing it.
    """
    findings = []
    for name, recorded in sorted(manifest["files"].items()):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            findings.append(Finding(name, "missing"))
            continue
        size = os.path.getsize(path)
        if size != recorded["bytes"]:
            findings.append(Finding(name, "changed", f"{size} bytes, recorded {recorded['bytes']}"))
        elif file_digest(path) != recorded["sha256"]:
            findings.append(Finding(name, "changed", "same size, other content"))
    for name in files_of(folder):  # a file named not_kept but there is unrecorded too: nothing vouches for it
        if name not in manifest["files"]:
            findings.append(Finding(name, "unrecorded", "not written by the folder's writer"))
    return findings
