"""MkDocs hook: the configuration page's tables, generated from the code at build time.

`<!-- config-table -->` becomes one row per `hjax.Config` field (name, type, default, the field's
docstring via `hjax.config.field_docs()`), and `<!-- presets-table -->` one row per preset
(`hjax.PRESETS`: the fields it sets, and `Config.preset_note(name)`: what it was measured to do).
Neither import loads JAX or an env, so the hook costs next to nothing. A Config field without a
docstring fails the build.
"""

from __future__ import annotations

import dataclasses
from typing import Any

CONFIG_MARKER = "<!-- config-table -->"
PRESETS_MARKER = "<!-- presets-table -->"


def _code(value: str) -> str:
    """`value` as a code span (pipes inside code spans do not split a table cell)."""
    fence = "``" if "`" in value else "`"
    return f"{fence}{value}{fence}"


def _cell(text: str) -> str:
    """Prose for a table cell: pipes outside code spans escaped, one line."""
    parts = " ".join(text.split()).split("`")
    return "`".join(p if i % 2 else p.replace("|", "\\|") for i, p in enumerate(parts))


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()  # type: ignore[misc]


def config_table() -> str:
    from hjax.config import Config, field_docs

    docs = field_docs()
    rows = ["| field | type | default | what it does |", "|---|---|---|---|"]
    for f in dataclasses.fields(Config):
        doc = docs.get(f.name)
        if not doc:
            raise ValueError(f"hjax.Config.{f.name} has no docstring: the configuration page's table needs one")
        type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", repr(f.type))
        rows.append(f"| {_code(f.name)} | {_code(type_name)} | {_code(repr(_default(f)))} | {_cell(doc)} |")
    return "\n".join(rows)


def presets_table() -> str:
    from hjax.config import Config
    from hjax.presets import PRESETS

    rows = ["| preset | fields it sets (the rest are `Config`'s defaults) | measured |", "|---|---|---|"]
    for name, fields in PRESETS.items():
        values = ", ".join(f"{key}={value!r}" for key, value in fields.items())
        rows.append(f"| {_code(name)} | {_code(values)} | {_cell(Config.preset_note(name))} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if CONFIG_MARKER in markdown:
        markdown = markdown.replace(CONFIG_MARKER, config_table())
    if PRESETS_MARKER in markdown:
        markdown = markdown.replace(PRESETS_MARKER, presets_table())
    return markdown
