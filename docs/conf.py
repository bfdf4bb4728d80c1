"""Sphinx configuration of the strucspars-viz site (built by ``scripts/build_site.py``; see ``docs/README.md``).

The notebook pages come from the copies that ``scripts/run_notebooks.py`` executed (myst-nb does not
run anything: ``nb_execution_mode = "off"``). Everything a page loads is local: the theme's files,
MathJax (bundled by ``sphinx-mathjax-offline``), the figures and animations embedded in the notebooks.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import strucspars_viz

project = "strucspars-viz"
author = "strucspars-viz contributors"
copyright = "strucspars-viz contributors, MIT licence"
release = version = strucspars_viz.__version__

extensions = [
    "myst_nb",                 # .md and executed .ipynb pages (brings myst_parser)
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",  # the module tables at the top of each API page (no generated stubs)
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]

# --- pages -----------------------------------------------------------------------------------------
root_doc = "index"
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "_doctrees", "**.ipynb_checkpoints", "README.md", "_generated"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# --- notebooks -------------------------------------------------------------------------------------
nb_execution_mode = "off"      # pages show what scripts/run_notebooks.py executed; never run at build time
nb_ipywidgets_js = {}          # no require.js / widget manager from a CDN (quick-mode pages hold no live widgets)
nb_merge_streams = True        # one block per cell for print output
nb_output_stderr = "remove"    # library banners and warnings on stderr are not part of the lesson

# --- API reference from the docstrings (which state the math in SPEC notation) ----------------------
# scripts/build_site.py writes api.rst and one page per layer (api/*.rst) with an automodule per module.
autosummary_generate = False
# ignore-module-all: a package page documents what the package itself defines, not its re-exports
# (each object once, on its own module's page, so cross-references have one target)
autodoc_default_options = {"members": True, "show-inheritance": True, "undoc-members": False, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
napoleon_google_docstring = True
napoleon_numpy_docstring = True
# types in the docstrings are prose ("int64 array (n,)"), not class names: shown as text, not cross-referenced
napoleon_use_rtype = False
napoleon_use_param = False
# `x` in a docstring is a variable or a short expression (`n`, `seed`, `S[P][:, Q]`), shown as code; a
# cross-reference resolving such names would link `n` to some unrelated attribute called n
default_role = "code"

# --- HTML: a theme that loads no web fonts and no CDN files ----------------------------------------
html_theme = "furo"
html_title = f"strucspars-viz {release}"
# MathJax 3 as bundled by the sphinx-mathjax-offline wheel, served from _static/mathjax/ (not from a CDN).
# (Its Sphinx extension does the same but does not declare itself parallel-safe, which serialises the build.)
_MATHJAX = Path(importlib.util.find_spec("sphinx-mathjax-offline").origin).parent / "static"
mathjax_path = "mathjax/tex-chtml.js"
html_static_path = ["_static", str(_MATHJAX)]
html_css_files = ["site.css"]
html_theme_options = {"navigation_with_keys": True}
html_show_sourcelink = False
html_copy_source = False       # the executed notebooks hold MBs of embedded frames: do not copy them twice
