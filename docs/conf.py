"""Sphinx configuration: MyST Markdown pages, API from numpy-style docstrings, MathJax.

Built in CI with warnings as errors: ``sphinx-build -W --keep-going -b html docs docs/_build/html``.
Before the build, ``docs/figures.py`` regenerates every figure the pages show from the
commands in the repository (``OTBLOCKS_DOCS_SKIP_FIGURES=1`` reuses existing ones), and
sphinx-gallery runs every ``examples/plot_*.py`` into ``docs/auto_examples/`` (git-ignored; an
example that fails fails the build).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

project = "otblocks"
author = "the otblocks developers"
copyright = "2026, the otblocks developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
autodoc_typehints = "description"
autodoc_member_order = "bysource"
exclude_patterns = ["_build", "_generated", "README.md"]  # _generated: included, not pages
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # every example is executed
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "reset_modules": ("matplotlib", "docs._gallery.reset_torch"),  # torch threads, per example
}
html_theme = "furo"
html_title = "otblocks"
nitpicky = False
# "array-like of shape (n, d)" in numpy-style types makes napoleon cross-reference `n` and `d`,
# which match the result dataclasses' fields: ambiguous, not broken, references.
suppress_warnings = ["ref.python"]


def _figures(app) -> None:
    if os.environ.get("OTBLOCKS_DOCS_SKIP_FIGURES") == "1":
        return
    script = HERE / "figures.py"
    if script.exists():
        subprocess.run([sys.executable, str(script)], check=True, cwd=HERE.parent)


def setup(app):
    app.connect("builder-inited", _figures)
