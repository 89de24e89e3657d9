"""The generated parts of the documentation, and the Sphinx extension that writes them.

Three things are generated from the code, so that the site cannot drift from it:

- ``docs/api/*.rst``: one page per public module, with an autodoc entry for every name
  in the module's ``__all__`` (an object re-exported by a later module gets a short entry
  pointing at the first one). Written when the build starts; not committed.
- ``docs/protocol/*.rst``: one page per AMQP class, from the spec XML through the
  compiler's IR: every method with its ids, direction, reply, content flag and fields
  (type and meaning), and every content property. Written when the build starts.
- ``docs/_generated/*.dot``: the connection and channel state machines, drawn from
  ``amqpcodec._state``'s tables. Committed, and checked fresh by ``tests/test_docs.py``;
  ``python docs/_ext/amqpcodec_docs.py`` rewrites them.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

DOCS = Path(__file__).resolve().parent.parent
ROOT = DOCS.parent

# ---------------------------------------------------------------------------------------
# Public modules and names


def public_modules() -> list[str]:
    """Every importable module of the package whose dotted name has no ``_`` part and
    that declares ``__all__``, the package itself first."""
    import amqpcodec

    names = ["amqpcodec"]
    for info in pkgutil.walk_packages(amqpcodec.__path__, "amqpcodec."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        names.append(info.name)
    return [n for n in names if hasattr(importlib.import_module(n), "__all__")]


def public_names() -> Iterator[tuple[str, str, Any]]:
    """(module, name, object) for every name in every public module's ``__all__``."""
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in module.__all__:
            yield module_name, name, getattr(module, name)


# Private bases whose public methods belong to each subclass's API (the lifecycle of the
# broker and the proxy): documented on the subclass as its own, and not named as a base.
SHARED_BASES = frozenset({"amqpcodec._serving.Listener"})


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_protocol_namespace(module_name: str, obj: Any) -> bool:
    """The spec's class namespaces and property classes: documented on protocol pages."""
    return module_name == "amqpcodec.spec" and inspect.isclass(obj) and hasattr(obj, "__qualname__")


def _kind(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "function"
    return "data"


def _attribute_doc(name: str, obj: Any) -> list[str] | None:
    """The doc comment (``#:``) or docstring that follows ``name = ...`` in the module of
    the package that defines it, for a constant re-exported elsewhere."""
    try:
        from sphinx.pycode import ModuleAnalyzer
    except ImportError:  # the tests run without Sphinx: the entry is then an autodata
        return None
    for module_name, module in sorted(sys.modules.items()):
        if not module_name.startswith("amqpcodec") or getattr(module, name, None) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
        except Exception:  # no source (a compiled or dynamic module)
            continue
        if ("", name) in docs:
            return [line for line in docs[("", name)] if line is not None]
    return None


def _short_repr(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 60 and "\n" not in text else f"<{type(obj).__name__}>"


def _identity_key(obj: Any) -> int | None:
    """Objects whose identity says they are the same thing wherever they are exported."""
    if inspect.isclass(obj) or inspect.isfunction(obj) or isinstance(obj, enum.Enum):
        return id(obj)
    return None


def api_pages() -> dict[str, str]:
    """{file name: reStructuredText} for ``docs/api/``: one page per public module."""
    first_seen: dict[int, str] = {}
    protocol = _protocol_class_names()
    pages: dict[str, str] = {}
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        title = f"``{module_name}``"
        lines = [title, "=" * len(title), "", f".. automodule:: {module_name}", ""]
        for name in module.__all__:
            obj = getattr(module, name)
            full = f"{module_name}.{name}"
            kind = _kind(obj)
            if kind == "module":
                lines += [
                    f".. py:data:: {name}",
                    "   :no-index:",
                    "",
                    f"   The module :mod:`{obj.__name__}`.",
                    "",
                ]
                continue
            if module_name == "amqpcodec.spec" and name in protocol:
                lines += [
                    f".. py:data:: {name}",
                    "   :no-index:",
                    "",
                    f"   The class namespace :py:class:`{full}`:"
                    f" see :doc:`/protocol/{protocol[name]}`.",
                    "",
                ]
                continue
            key = _identity_key(obj)
            if key is not None and key in first_seen:
                lines += [
                    f".. py:{'class' if kind in ('class', 'exception') else 'data'}:: {name}",
                    "   :no-index-entry:",
                    "",
                    f"   The same object as :py:obj:`{first_seen[key]}`.",
                    "",
                ]
                continue
            if key is not None:
                first_seen[key] = full
            if kind in ("class", "exception"):
                lines += [f".. auto{kind}:: {full}", "   :members:", "   :show-inheritance:"]
                shared = [c for c in obj.__mro__[1:] if _qualified(c) in SHARED_BASES]
                if shared:  # their members, but none of the bases further up
                    lines.append(f"   :inherited-members: {shared[-1].__mro__[1].__name__}")
                lines.append("")
            elif kind == "function":
                lines += [f".. autofunction:: {full}", ""]
            else:
                doc = _attribute_doc(name, obj)
                if doc is None:
                    lines += [f".. autodata:: {full}", "   :no-value:", ""]
                else:
                    lines += [f".. py:data:: {full}", f"   :value: {_short_repr(obj)}", ""]
                    lines += [f"   {line}" if line else "" for line in doc] + [""]
        pages[f"{module_name}.rst"] = "\n".join(lines)
    index = [
        "API reference",
        "=============",
        "",
        "One page per public module; every name in its",
        "``__all__`` has an entry, generated from the docstrings.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
    ]
    index += [f"   {name[:-4]}" for name in pages]
    pages["index.rst"] = "\n".join(index) + "\n"
    return pages


# ---------------------------------------------------------------------------------------
# Protocol pages, from the spec's IR


def _spec() -> Any:
    from amqpcodec.compiler import bundled_spec, parse_spec

    return parse_spec(bundled_spec())


def _protocol_class_names() -> dict[str, str]:
    """{name in amqpcodec.spec: protocol page} for class namespaces and property classes."""
    names: dict[str, str] = {}
    for cls in _spec().classes:
        names[cls.py_name] = cls.name
        if cls.properties:
            names[f"{cls.py_name}Properties"] = cls.name
    return names


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _senders(chassis: frozenset[str]) -> str:
    """CHASSIS names the receivers; the page says who sends."""
    senders = sorted({"client": "server", "server": "client"}[side] for side in chassis)
    return " and ".join(senders) or "nobody"


def protocol_pages() -> dict[str, str]:
    """{file name: reStructuredText} for ``docs/protocol/``: one page per AMQP class."""
    spec = _spec()
    pages: dict[str, str] = {}
    for cls in spec.classes:
        title = f"{cls.name} ({cls.index})"
        lines = [title, "=" * len(title), ""]
        lines += [cls.label or "", ""]
        if cls.extension:
            lines += ["The whole class is a RabbitMQ extension.", ""]
        lines += [
            f".. py:class:: amqpcodec.spec.{cls.py_name}",
            "",
            f"   Namespace of the methods of class {cls.name}.",
            "",
            ".. list-table:: Methods",
            "   :header-rows: 1",
            "",
            "   * - method",
            "     - ids",
            "     - sent by",
            "     - reply",
            "     - content",
        ]
        for m in cls.methods:
            reply = ", ".join(f"``{cls.name}.{r}``" for r in m.responses) or "none"
            if m.responses and m.has_no_wait:
                reply += " (none with no-wait)"
            lines += [
                f"   * - :py:class:`{m.full_name} <amqpcodec.spec.{cls.py_name}.{m.py_name}>`",
                f"     - {m.class_index}, {m.index}",
                f"     - {_senders(m.chassis)}",
                f"     - {reply}",
                f"     - {'yes' if m.content else 'no'}",
            ]
        lines.append("")
        for m in cls.methods:
            flags = ["synchronous" if m.synchronous else "asynchronous"]
            if m.content:
                flags.append("carries content")
            if m.extension:
                flags.append("RabbitMQ extension")
            if m.deprecated:
                flags.append("deprecated")
            lines += [
                f".. py:class:: amqpcodec.spec.{cls.py_name}.{m.py_name}",
                "",
                f"   ``{m.full_name}``: class {m.class_index}, method {m.index};"
                f" {', '.join(flags)}; sent by the {_senders(m.chassis)}.",
                "",
                f"   {m.label}",
                "",
            ]
            if m.responses:
                lines += [
                    "   Reply: "
                    + ", ".join(
                        f":py:class:`amqpcodec.spec.{cls.py_name}.{cls.method(r).py_name}`"
                        for r in m.responses
                    )
                    + ".",
                    "",
                ]
            lines += _field_table(m.fields, "Fields", "   ")
        if cls.properties:
            name = f"{cls.py_name}Properties"
            lines += [
                "Content properties",
                "------------------",
                "",
                f".. py:class:: amqpcodec.spec.{name}",
                "",
                f"   The content properties of class {cls.name}, in flag order (the first is"
                " bit 15 of the first flag word). ``None`` means absent.",
                "",
            ]
            lines += _field_table(cls.properties, "Properties", "   ")
        pages[f"{cls.name}.rst"] = "\n".join(lines)
    index = [
        "Protocol reference",
        "==================",
        "",
        "One page per AMQP class, generated from ``spec/amqp0-9-1.xml``: each method's",
        "ids, which side sends it, its reply, whether content follows, and each field's",
        "wire type and meaning. The meanings are the ``label`` attributes of the XML,",
        "which the generated classes of :mod:`amqpcodec.spec` carry as docstrings too.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
    ]
    index += [f"   {name[:-4]}" for name in pages]
    pages["index.rst"] = "\n".join(index) + "\n"
    return pages


def _field_table(fields: Any, caption: str, indent: str) -> list[str]:
    if not fields:
        return [f"{indent}No fields.", ""]
    lines = [
        f"{indent}.. list-table:: {caption}",
        f"{indent}   :header-rows: 1",
        f"{indent}   :widths: 20 12 14 54",
        "",
        f"{indent}   * - name",
        f"{indent}     - type",
        f"{indent}     - domain",
        f"{indent}     - meaning",
    ]
    for f in fields:
        notes = []
        if f.reserved and not f.label.startswith("Reserved"):
            notes.append("reserved")
        if f.extension:
            notes.append("RabbitMQ extension")
        meaning = _cell(f.label) + (f" ({', '.join(notes)})" if notes else "")
        lines += [
            f"{indent}   * - ``{f.py_name}``",
            f"{indent}     - {f.type}",
            f"{indent}     - {f.domain}",
            f"{indent}     - {meaning}",
        ]
    return [*lines, ""]


# ---------------------------------------------------------------------------------------
# State diagrams, from amqpcodec._state


def _input_name(item: Any) -> str:
    return item.NAME if hasattr(item, "NAME") else "protocol header"


def state_dot(table: dict[Any, dict[tuple[Any, Any], Any]], title: str) -> str:
    """Graphviz source for one transition table: a node per state, an edge per
    (state, next state) labelled with the keys that lead there, ``C:`` sent by the
    client and ``S:`` by the server. Edges of more than six keys are summarised."""
    lines = [
        f"digraph {title.replace(' ', '_')} {{",
        f'  label="{title} (generated from amqpcodec._state)";',
        "  labelloc=t;",
        "  rankdir=TB;",
        '  node [shape=box, style=rounded, fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    states = list(dict.fromkeys([*table, *(s for row in table.values() for s in row.values())]))
    linked = {s for s, row in table.items() if row} | {
        t for r in table.values() for t in r.values()
    }
    for state in states:
        if state in linked:
            lines.append(f'  "{state.name}";')
        else:  # no transition in or out: entered by code, not by the table (ERROR)
            label = f"{state.name}\\n(after a protocol error)"
            lines.append(f'  "{state.name}" [style="rounded,dashed", label="{label}"];')
    for state, row in table.items():
        edges: dict[Any, list[str]] = {}
        for (role, item), target in row.items():
            edges.setdefault(target, []).append(f"{role.value[0].upper()}: {_input_name(item)}")
        for target, keys in edges.items():
            if len(keys) > 6:
                by = sorted({k[0] for k in keys})
                label = f"any of {len(keys)} methods ({', '.join(by)})"
            else:
                label = "\\n".join(keys)
            lines.append(f'  "{state.name}" -> "{target.name}" [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_files() -> dict[Path, str]:
    from amqpcodec import _state

    out = DOCS / "_generated"
    return {
        out / "connection-states.dot": state_dot(
            _state.CONNECTION_TRANSITIONS, "Connection states"
        ),
        out / "channel-states.dot": state_dot(_state.CHANNEL_TRANSITIONS, "Channel states"),
    }


# ---------------------------------------------------------------------------------------
# Sphinx


def _write(directory: Path, pages: dict[str, str], pattern: str = "*.rst") -> None:
    directory.mkdir(exist_ok=True)
    for stale in directory.glob(pattern):
        if stale.name not in pages:
            stale.unlink()
    for name, text in pages.items():
        path = directory / name
        if not path.exists() or path.read_text("utf-8") != text:
            path.write_text(text, "utf-8")


# README sections the site shows as they are (one source for that prose): file name in
# docs/_readme/ -> the README heading whose section it holds.
README_SECTIONS = {
    "errors.md": "## Errors",
    "connection-errors.md": "### Errors of a connection",
    "disagreements.md": "### Where the spec and RabbitMQ disagree",
    "settings.md": "### Settings",
    "capture-cost.md": "### What reading a capture may cost",
}


def readme_section(heading: str) -> str:
    """The README's text under ``heading``, up to the next heading of its level or above."""
    lines = (ROOT / "README.md").read_text("utf-8").splitlines()
    level = len(heading) - len(heading.lstrip("#"))
    start = lines.index(heading) + 1
    fence = False
    for end in range(start, len(lines)):
        line = lines[end]
        if line.startswith("```"):
            fence = not fence
        hashes = len(line) - len(line.lstrip("#"))
        if not fence and 0 < hashes <= level and line[hashes : hashes + 1] == " ":
            return "\n".join(lines[start:end]).strip() + "\n"
    return "\n".join(lines[start:]).strip() + "\n"


def _generate(app: Any) -> None:
    _write(DOCS / "api", api_pages())
    _write(DOCS / "protocol", protocol_pages())
    _write(
        DOCS / "_readme",
        {name: readme_section(heading) for name, heading in README_SECTIONS.items()},
        "*.md",
    )


def reply_code_rows() -> list[tuple[str, int, str, str]]:
    """(name, code, closes, note) for every reply code of the spec."""
    rows = []
    for c in _spec().constants:
        if c.error_class is None and c.name != "reply-success":
            continue
        closes = {"soft-error": "the channel", "hard-error": "the connection"}.get(
            c.error_class or "", "nothing (success)"
        )
        rows.append((c.py_name, c.value, closes, "RabbitMQ extension" if c.extension else ""))
    return rows


def run_command(args: list[str]) -> str:
    """The standard output of ``python -m amqpcodec ARGS`` run in the repository."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "amqpcodec", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"},
    )
    return done.stdout


def _directives() -> dict[str, Any]:
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives
    from docutils.statemachine import StringList

    class _Rst(Directive):
        def rst(self, lines: list[str]) -> list[Any]:
            node = nodes.container()
            self.state.nested_parse(StringList(lines, "<amqpcodec_docs>"), 0, node)
            return list(node.children)

    class ReplyCodes(_Rst):
        def run(self) -> list[Any]:
            lines = [
                ".. list-table::",
                "   :header-rows: 1",
                "",
                "   * - ``amqpcodec.ReplyCode``",
                "     - code",
                "     - closes",
                "     - note",
            ]
            for name, code, closes, note in reply_code_rows():
                lines += [f"   * - ``{name}``", f"     - {code}", f"     - {closes}"]
                lines.append(f"     - {note}" if note else "     -")
            return self.rst(lines)

    class JsonFields(_Rst):
        def run(self) -> list[Any]:
            from amqpcodec._output import JSON_FIELDS

            return [nodes.literal_block(JSON_FIELDS, JSON_FIELDS)]

    class Command(_Rst):
        required_arguments = 1
        final_argument_whitespace = True
        option_spec: ClassVar[dict[str, Any]] = {"lines": directives.positive_int}

        def run(self) -> list[Any]:
            args = self.arguments[0].split()
            output = run_command(args)
            if "lines" in self.options:
                output = "\n".join(output.splitlines()[: self.options["lines"]]) + "\n..."
            text = "$ amqpcodec " + " ".join(args) + "\n" + output
            return [nodes.literal_block(text, text)]

    return {
        "amqpcodec-reply-codes": ReplyCodes,
        "amqpcodec-json-fields": JsonFields,
        "amqpcodec-command": Command,
    }


def _no_inherited_value_doc(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """A constant with no doc comment of its own would show its type's docstring
    (``dict``'s, ``str``'s): leave it empty instead."""
    if what in ("data", "attribute") and not inspect.isclass(obj):
        own = inspect.getdoc(type(obj))
        if own and "\n".join(lines).strip() == own.strip():
            lines.clear()


def _unshared_bases(app: Any, name: str, obj: Any, options: Any, bases: list[Any]) -> None:
    """A shared base stands aside for its own bases in the "Bases:" line."""
    for index, base in reversed(list(enumerate(bases))):
        if inspect.isclass(base) and _qualified(base) in SHARED_BASES:
            bases[index : index + 1] = [b for b in base.__bases__ if b not in bases]


def setup_autodoc(app: Any) -> None:
    app.connect("autodoc-process-docstring", _no_inherited_value_doc)
    app.connect("autodoc-process-bases", _unshared_bases)


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _generate)
    setup_autodoc(app)
    for name, directive in _directives().items():
        app.add_directive(name, directive)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    for path, text in dot_files().items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, "utf-8")
        print(f"wrote {path}")
