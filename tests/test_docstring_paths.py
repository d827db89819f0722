"""Every dotted ``cnnvis.`` path that the docs name resolves: docstrings of cnnvis/ and the CLI's help.

A path is resolved as Python would: the longest prefix that imports as a module, then attributes for the rest
(``cnnvis.io.images.save_image``: module ``cnnvis.io.images``, attribute ``save_image``). ``cnnvis.presets`` is
the repository's top-level ``presets/`` folder, installed under that name; its names are its files.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cnnvis"
PRESETS = ROOT / "presets"

# A dotted name starting at ``cnnvis`` (not inside another name, a path or a URL); trailing punctuation is left out
# because every part must start with a letter or an underscore.
PATH_RE = re.compile(r"(?<![\w./-])cnnvis(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def _docstrings(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(docstring, line of its first character) of the module and of every class and function in it."""
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            value = body[0].value.value
            if isinstance(value, str):
                yield value, body[0].lineno


def docstring_paths() -> Iterator[tuple[str, str]]:
    """(dotted path, where: file:line) for every path named in a docstring under cnnvis/."""
    for file in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        for text, line in _docstrings(tree):
            for m in PATH_RE.finditer(text):
                yield m.group(), f"{file.relative_to(ROOT)}:{line + text.count(chr(10), 0, m.start())}"


def _commands(group, ctx, prefix: str) -> Iterator[tuple[str, object]]:
    import click

    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None:
            continue
        path = f"{prefix} {name}"
        yield path, cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, click.Context(cmd, info_name=name, parent=ctx), path)


def help_paths() -> Iterator[tuple[str, str]]:
    """(dotted path, where: the command or option) for every path named in the CLI's help texts."""
    import click

    from cnnvis.cli.commands import main

    root = click.Context(main, info_name="cnnvis")
    for path, cmd in [("cnnvis", main), *_commands(main, root, "cnnvis")]:
        for field in ("help", "short_help", "epilog"):
            for m in PATH_RE.finditer(getattr(cmd, field, None) or ""):
                yield m.group(), f"`{path}` {field}"
        for param in cmd.params:
            for m in PATH_RE.finditer(getattr(param, "help", None) or ""):
                yield m.group(), f"`{path}` {'/'.join(param.opts)} help"


def _resolve_preset(parts: list[str]) -> str | None:
    """``cnnvis.presets[.NAME]``: the folder, or a preset file (NAME.toml) or module (NAME.py) in it."""
    if len(parts) == 2:
        return None if (PRESETS / "__init__.py").is_file() else "presets/__init__.py is missing"
    if len(parts) == 3 and any((PRESETS / f"{parts[2]}{ext}").is_file() for ext in (".toml", ".py")):
        return None
    return f"presets/ has no {'.'.join(parts[2:])}(.toml|.py)"


def resolve(path: str) -> str | None:
    """None if ``path`` names something that exists; else why not."""
    parts = path.split(".")
    if parts[:2] == ["cnnvis", "presets"]:
        return _resolve_preset(parts)
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        try:
            obj = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
                continue  # no such module: try the shorter prefix
            return f"importing {name} fails: {e}"
        except Exception as e:  # an existing module that fails to import
            return f"importing {name} fails: {type(e).__name__}: {e}"
        for i, attr in enumerate(parts[n:], start=n):
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                return f"{'.'.join(parts[:i])} has no attribute {attr!r}"
            except Exception as e:  # a lazy attribute whose import fails
                return f"{'.'.join(parts[: i + 1])} fails: {type(e).__name__}: {e}"
        return None
    return "no importable prefix"


def test_the_pattern_finds_paths_and_leaves_out_the_rest():
    text = "see cnnvis.io.images.save_image(), ``cnnvis.Channel``; cnnvis/io/x.py, my_cnnvis.x, a/cnnvis.y, cnnvis."
    assert [m.group() for m in PATH_RE.finditer(text)] == ["cnnvis.io.images.save_image", "cnnvis.Channel"]


def test_resolve_names_what_is_missing():
    assert resolve("cnnvis.errors.InputError") is None
    assert resolve("cnnvis.Channel") is None  # a lazy export of the package
    assert resolve("cnnvis.presets") is None
    assert "has no attribute 'Nope'" in resolve("cnnvis.errors.Nope")
    assert "has no attribute 'nope'" in resolve("cnnvis.nope.thing")


def test_every_dotted_path_in_docstrings_and_cli_help_resolves():
    named = [*docstring_paths(), *help_paths()]
    assert named, "no cnnvis. path found: the scan is broken"
    cache: dict[str, str | None] = {}
    bad = []
    for path, where in named:
        if path not in cache:
            cache[path] = resolve(path)
        if cache[path] is not None:
            bad.append(f"{where}: {path} ({cache[path]})")
    assert not bad, f"{len(bad)} dotted path(s) in docs do not resolve:\n" + "\n".join(bad)
