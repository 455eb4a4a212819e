"""A Griffe extension for the API pages: documents `hjax.envs` from the top-level `envs/` folder.

The wheel installs `envs/` as `hjax.envs` through a setuptools package-dir mapping (pyproject.toml),
which Griffe's static loader does not follow: it finds `hjax/` on the search path and looks for
`hjax/envs/`, which does not exist. Once `hjax` is loaded, this loads `envs/` with the same
loader settings and hangs it under `hjax` as its `envs` submodule, so `::: hjax.envs.make` works and
nothing is imported (no JAX, no Brax) to build the docs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import griffe


class EnvsSubpackage(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.name != "hjax" or "envs" in pkg.members:
            return  # not hjax, or an installed hjax that has hjax/envs/ itself
        root = Path(pkg.filepath).parent.parent  # the checkout: hjax/ and envs/ side by side
        if not (root / "envs" / "__init__.py").is_file():
            return
        collection = loader.modules_collection
        sub = griffe.GriffeLoader(
            search_paths=[root],
            docstring_parser=loader.docstring_parser,
            docstring_options=loader.docstring_options,
            lines_collection=loader.lines_collection,
            modules_collection=collection,
        )
        envs = sub.load("envs", try_relative_path=False)
        # `load` registered it as a top-level module `envs`; it is `hjax.envs` instead.
        if collection.members.get("envs") is envs:
            del collection.members["envs"]
        pkg.set_member("envs", envs)
