"""Every code block of the README and the docs runs as written, and every command line they show parses.

Python blocks run page by page, in order, in one fresh process per page (a later block may use
what an earlier one of its page made), in a temporary folder. Blocks marked
``<!-- example: name -->`` are run by the tests of what they need: the serving examples by
``tests/export/test_serving.py``, in processes that cannot import tf_lottery; the lm-evaluation-harness
example by ``tests/evals/test_harness.py``, where the lm_eval extra is installed; a block marked ``<!-- not run here: why -->`` is
skipped (none is, today). The ``tf-lottery`` command lines of the shell blocks are parsed into a
config, flagfiles included, without running them (CIFAR-10 and GPU runs cannot run here).
"""

import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

from tf_lottery import cli

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PAGES = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "**", "*.md"),
                                                                          recursive=True))
BLOCK = re.compile(r"(?:<!-- (example|not run here): ?([^>]*?) -->\n)?^```(\w+)\n(.*?)^```", re.S | re.M)
COMMAND = re.compile(r"(?:^|[\s$])(tf-lottery(?:[ \t]+--[^\s#]+)*)[ \t]*(?:#.*)?$", re.M)


def _blocks(page):
    """``[(mark, language, code)]`` of a page's fenced blocks, in order."""
    text = open(os.path.join(ROOT, page)).read()
    return [(mark, language, code) for mark, _, language, code in BLOCK.findall(text)]


def _python_pages():
    found = {}
    for page in PAGES:
        code = [c for mark, language, c in _blocks(page) if language == "python" and not mark]
        if code:
            found[page] = code
    return found


def _commands():
    found = []
    for page in PAGES:
        for _, language, code in _blocks(page):
            if language in ("bash", "sh", "console"):
                found += [(page, match) for match in COMMAND.findall(code.replace("\\\n", " "))]
    return found


def test_the_blocks_are_found_and_the_serving_examples_are_marked():
    pages = _python_pages()
    assert {"README.md", "docs/concepts.md", "docs/python-api.md", "docs/howto/baselines.md",
            "docs/howto/robustness.md", "docs/howto/your-model.md"} <= set(pages)
    serving = [mark for mark, language, _ in _blocks("docs/howto/serving.md") if language == "python"]
    assert serving and set(serving) == {"example"}  # every serving block is run by tests/export/test_serving.py
    assert not any(mark == "not run here" for page in PAGES for mark, _, _ in _blocks(page))
    assert len(_commands()) >= 20


@pytest.mark.parametrize("page", sorted(_python_pages()))
def test_every_python_block_of_the_page_runs_as_written(page, tmp_path):
    code = "\n\n".join(_python_pages()[page])
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=3600)
    assert done.returncode == 0, f"{page}:\n{done.stderr[-3000:]}"


@pytest.mark.parametrize("page, command", _commands(), ids=lambda value: value[:60])
def test_every_command_line_shown_parses(page, command):
    args = [arg for arg in shlex.split(command)[1:] if arg != "--help"]
    cli.FLAGS.unparse_flags()
    cwd = os.getcwd()
    os.chdir(ROOT)  # flagfiles are named from the repository's root
    try:
        cli.FLAGS(["tf-lottery", *args])
        cli.config_from_flags()
    finally:
        os.chdir(cwd)
        cli.FLAGS.unparse_flags()
