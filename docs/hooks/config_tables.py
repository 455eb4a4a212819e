"""MkDocs hook: tables generated at build time, from the code and from benchmarks/results/.

`<!-- config-table -->` becomes one row per `hjax.Config` field (name, type, default, the field's
docstring via `hjax.config.field_docs()`), and `<!-- presets-table -->` one row per preset
(`hjax.PRESETS`: the fields it sets, and `Config.preset_note(name)`: what it was measured to do).
Neither import loads JAX or an env, so the hook costs next to nothing. A Config field without a
docstring fails the build.

Measured figures are never typed into a page: `<!-- results-table: NAME -->` becomes the table of
`benchmarks/results/NAME.json` (with the machine and the command that measured it), and
`<!-- results-text: NAME -->` the text file `benchmarks/results/NAME` in a code block. A name
with no file fails the build.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

# The checkout the docs describe: where hjax is imported from (editable install), whose
# benchmarks/ holds the results (a copy of docs/ elsewhere, as tests/test_docs.py makes, still
# reads them).
ROOT = Path(__import__("hjax").__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks import make_docs_results  # noqa: E402  (imported now: plugins may reset sys.path later)

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


RESULTS_MARKER = re.compile(r"<!-- results-(table|text): ([\w./-]+) -->")


def results_block(kind: str, name: str) -> str:
    if kind == "table":
        path = ROOT / "benchmarks" / "results" / f"{name}.json"
        if not path.is_file():
            raise FileNotFoundError(f"docs: no results file {path} for <!-- results-table: {name} -->")
        return f"From `benchmarks/results/{name}.json`.\n\n" + make_docs_results.table(make_docs_results.load(name))
    path = ROOT / "benchmarks" / "results" / name
    if not path.is_file():
        raise FileNotFoundError(f"docs: no results file {path} for <!-- results-text: {name} -->")
    return f"From `benchmarks/results/{name}`:\n\n```text\n{path.read_text().rstrip()}\n```"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    markdown = RESULTS_MARKER.sub(lambda m: results_block(m.group(1), m.group(2)), markdown)
    if CONFIG_MARKER in markdown:
        markdown = markdown.replace(CONFIG_MARKER, config_table())
    if PRESETS_MARKER in markdown:
        markdown = markdown.replace(PRESETS_MARKER, presets_table())
    return markdown
