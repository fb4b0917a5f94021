"""Sphinx configuration of the API reference (built from the docstrings; the suite builds it with -W)."""

project = "sparse-rl"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
# Google-style sections (Args:, Returns:, Attributes:) as the docstrings write them.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
html_theme = "alabaster"
exclude_patterns = ["_build"]
# Short attribute names (``method``, ``env``) belong to several classes; an ambiguous link is not a docstring error.
suppress_warnings = ["ref.python"]
