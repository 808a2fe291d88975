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
    assert checked >= 22  # the quick demo's 8 seeds (16 folders) and the converged pilot's 6, at least


def test_every_committed_run_matches_its_manifest_and_names_its_weights_not_kept():
    from tf_lottery.core import manifest
    lm_twin = os.path.join(RESULTS, "lm_twin_long")
    checked = 0
    for path in _committed_runs():
        if path.startswith(lm_twin):  # the tiny-LM twin's own layout (scripts/lm_twin.py), not run folders
            continue
        recorded = manifest.read(path)
        assert recorded is not None, f"{path} has no manifest.json (scripts/collect_sweep.py writes it)"
        assert manifest.check(path, recorded) == [], path
        assert not [n for n in os.listdir(path) if n.endswith(".weights.h5")]
        checked += 1
    assert checked >= 22


def test_a_sweep_over_the_committed_runs_reports_them_from_their_small_files_without_training(tmp_path):
    """The quick demo's 8 seeds were committed without weights: the sweep verifies them and reports,
    it never trains them again (20 core-hours of evidence are never retrained for a report)."""
    import subprocess
    import sys
    runs = tmp_path / "runs"
    shutil.copytree(os.path.join(RESULTS, "quickstart_seeds", "runs"), runs)
    done = subprocess.run([sys.executable, "-m", "tf_lottery.cli", "--flagfile=flags/quickstart_seeds.cfg",
                           f"--runs_dir={runs}", "--noexport"], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("weights not kept: ticket_final.weights.h5, dense_final.weights.h5") == 8
    assert ": training " not in done.stdout
    sweep = [n for n in os.listdir(runs) if n.startswith("sweep-")]
    rows = json.loads((runs / sweep[0] / "results.json").read_text())["rows"]
    committed = json.loads(open(os.path.join(RESULTS, "quickstart_seeds", "results.json")).read())["rows"]
    assert sorted(r["accuracy_pp"] for r in rows) == sorted(r["accuracy_pp"] for r in committed)
