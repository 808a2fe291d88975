"""The evidence holds together: the text's tables are generated from the committed files, those files
name no machine's paths, and every committed run's folder name is still the hash of its config."""

import importlib.util
import json
import os
import re
import shutil

import pytest

from tf_lottery.config import Config
from tf_lottery.config.experiments import EXPERIMENTS

ROOT = os.path.join(os.path.dirname(__file__), "..")
RESULTS = os.path.join(ROOT, "benchmarks", "results")


def _tables():
    spec = importlib.util.spec_from_file_location("evidence_tables", os.path.join(ROOT, "scripts", "evidence_tables.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("document", _tables().DOCUMENTS)
def test_every_table_in_the_text_is_what_its_files_give(document):
    tables = _tables()
    with open(os.path.join(ROOT, document), encoding="utf-8") as handle:
        text = handle.read()
    assert tables.render(text) == text, f"{document}: run scripts/evidence_tables.py"


def test_the_documents_have_their_generated_tables():
    tables = _tables()
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        found = {m.group("name") for m in tables.MARKER.finditer(handle.read())}
    assert {"table2_twin", "lm_twin_at_init", "lm_twin_contrasts"} <= found


def test_a_changed_committed_value_changes_the_table(tmp_path):
    tables = _tables()
    for folder in ("fashion_mnist_table2", "lm_twin_long"):
        shutil.copytree(os.path.join(RESULTS, folder), tmp_path / folder, ignore=shutil.ignore_patterns("runs", "*.png"))
    text = "<!-- table: table2_twin -->\n<!-- /table -->\n<!-- table: lm_twin_at_init -->\n<!-- /table -->\n"
    before = tables.render(text, str(tmp_path))
    assert before == tables.render(text, RESULTS)
    path = tmp_path / "fashion_mnist_table2" / "results.json"
    payload = json.loads(path.read_text())
    payload["rows"][0]["accuracy_pp"] += 1.0
    path.write_text(json.dumps(payload))
    assert tables.render(text, str(tmp_path)) != before
    path = tmp_path / "lm_twin_long" / "results.json"
    payload = json.loads(path.read_text())
    next(iter(payload["at_initialization"].values()))["interleaved_speedup_wall"] = 9.99
    path.write_text(json.dumps(payload))
    assert "9.99x" in tables.render(text, str(tmp_path))


def test_no_committed_result_holds_an_absolute_path():
    pattern = re.compile(r"(?<![\w.])/(work|tmp|root|home)/")
    found = []
    for folder, _, names in os.walk(RESULTS):
        for name in names:
            if name.endswith((".json", ".md")):
                with open(os.path.join(folder, name), encoding="utf-8") as handle:
                    if pattern.search(handle.read()):
                        found.append(os.path.relpath(os.path.join(folder, name), RESULTS))
    assert not found, found


def _committed_runs():
    for folder, subfolders, names in os.walk(RESULTS):
        if os.path.basename(folder) == "runs":
            for name in sorted(subfolders):
                if re.fullmatch(r"[a-z_]+-[0-9a-f]{12}", name) and os.path.exists(
                        os.path.join(folder, name, "config.json")):
                    yield os.path.join(folder, name)


def test_every_committed_runs_hash_holds():
    """A run's folder is named by the hash of its config: today's code must give the same name, or a
    rerun of the campaign would train it again (the pinned campaign moves forward only while this holds)."""
    checked = 0
    for path in _committed_runs():
        name = os.path.basename(path)
        with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
            config = Config.from_dict(json.load(handle))
        scope = EXPERIMENTS.get(config.experiment).scope
        assert f"{config.experiment}-{config.digest(scope)}" == name, path
        checked += 1
    if not checked:
        pytest.skip("no committed run folders yet")
