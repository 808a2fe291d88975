"""Sphinx configuration of the tf_lottery documentation (``make docs``)."""

import os
import sys

sys.path.insert(0, os.path.abspath("_ext"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tf_lottery  # noqa: E402

project = "tf_lottery"
author = "the tf_lottery developers"
copyright = "2026, the tf_lottery developers"
release = tf_lottery.__version__
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "tf_lottery_options", "tf_lottery_api"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_typehints = "none"  # the docstrings say what each argument is; bare names like `type` would be ambiguous
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # dataclass fields are documented once, by autodoc

html_theme = "furo"
html_title = f"tf_lottery {release}"

# "More than one target found" for bare builtin names in annotations (a field annotated ``type``
# matches every section's ``type`` field): they are Python builtins, not tf_lottery names.
suppress_warnings = ["ref.python"]
