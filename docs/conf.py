"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build/html``."""

from __future__ import annotations

import glob
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))
sys.path.insert(0, str(DOCS / "_ext"))

import amqpcodec  # noqa: E402

project = "amqpcodec"
author = "The amqpcodec authors"
copyright = "2026, The amqpcodec authors"
release = version = amqpcodec.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.graphviz",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "amqpcodec_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
# The generated spec classes list their fields as Google-style sections.
napoleon_custom_sections = [("Fields", "params_style"), ("Properties", "params_style")]
napoleon_numpy_docstring = False
graphviz_output_format = "svg"
html_theme = "alabaster"
html_title = f"amqpcodec {release}"
html_static_path: list[str] = []
# Annotations name classes unqualified (``Method``), and three public modules define a
# ``Method`` (the generated classes' base, its alias, and the compiler's IR): Sphinx links
# such a name to one of them and warns that there were several. The warning is the only
# one silenced; every other warning fails the build (-W).
suppress_warnings = ["ref.python"]


# Intersphinx without a network: the inventories of Debian's python3.X-doc and
# python-hypothesis-doc packages (.ci/run installs them). A missing inventory is left out
# of the mapping rather than fetched, so references into it render as plain text.
def _inventory(pattern: str) -> str | None:
    found = sorted(glob.glob(pattern))
    return found[-1] if found else None


intersphinx_mapping = {
    name: (url, inventory)
    for name, url, inventory in (
        (
            "python",
            "https://docs.python.org/3",
            _inventory("/usr/share/doc/python3*/html/objects.inv"),
        ),
        (
            "hypothesis",
            "https://hypothesis.readthedocs.io/en/latest",
            _inventory("/usr/share/doc/python-hypothesis-doc/html/objects.inv"),
        ),
    )
    if inventory is not None
}
