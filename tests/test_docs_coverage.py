"""Docs that cannot fall behind: every route, setting and CLI command is documented, every
relative link in the docs resolves, and nothing in the repository points outside it."""

from __future__ import annotations

import itertools
import re
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import typer
from fastapi.routing import iter_route_contexts
from markdown_it import MarkdownIt
from starlette.routing import Mount
from typer.core import TyperGroup

from gateway.app import create_app
from gateway.cli import app as cli_app
from services.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API, CONSOLE, CLI, OPERATIONS = "api.md", "console.md", "cli.md", "operations.md"
METHODS = "GET|POST|PUT|PATCH|DELETE"
# A method, or several joined by `|`, then the paths it applies to, as the docs write them:
# `GET|POST /v1/principals`, `GET /healthz /readyz`, `POST /v1/grants/{id}/approve|reject`.
ROUTE_MENTION = re.compile(rf"\b((?:{METHODS})(?:\|(?:{METHODS}))*)((?:[ \t]+/[^\s`]*)+)")
# `veil` and the words of a command after it; a word may offer alternatives: `check|test`.
COMMAND_MENTION = re.compile(r"\bveil((?:[ \t]+[a-z][a-z0-9-]*(?:\|[a-z][a-z0-9-]*)*)+)")
# Places outside this repository: the machine's checkout, and the design notes beside it.
OUTSIDE = re.compile(r"/work/|\.\./shared\b|\bDESIGN\.md\b")


def _doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _alternatives(token: str) -> list[str]:
    """`/v1/ledger/checkpoint|proof/inclusion` → both paths; alternatives replace the last part."""
    first, *others = token.split("|")
    base = first[: first.rfind("/") + 1]
    return [first, *(base + other for other in others)]


def _normal(path: str) -> str:
    """A path without its query, trailing punctuation or parameter names."""
    path = re.split(r"[?\[]", path)[0].rstrip(".,;:)")
    return re.sub(r"\{[^}]*\}", "{}", path)


def _routes_mentioned(text: str) -> set[tuple[str, str]]:
    mentioned = set()
    for methods, paths in ROUTE_MENTION.findall(text):
        for token in paths.split():
            for path in _alternatives(token):
                mentioned |= {(method, _normal(path)) for method in methods.split("|")}
    return mentioned


def _app_routes() -> Iterator[tuple[str, str, str]]:
    """(doc, method, path) for every route the app serves; a mount's method is `*`."""
    for context in iter_route_contexts(create_app().routes):
        console = context.path == "/" or context.path.startswith("/console")
        doc = CONSOLE if console else API
        if isinstance(context.route, Mount):
            yield doc, "*", context.path
            continue
        for method in sorted(set(context.methods) - {"HEAD"}):
            yield doc, method, context.path


def test_every_route_is_documented() -> None:
    mentioned = {doc: _routes_mentioned(_doc(doc)) for doc in (API, CONSOLE)}
    missing = [
        f"{doc}: {method} {path}"
        for doc, method, path in _app_routes()
        if not (
            (method, _normal(path)) in mentioned[doc]
            or (method == "*" and any(p.startswith(path) for _, p in mentioned[doc]))
        )
    ]
    assert missing == []


def test_the_route_reader_understands_the_docs_notation() -> None:
    text = "GET|POST /v1/a/{id}/b|c/d  GET /healthz /readyz[?x=1]  see `POST /v1/q`."
    assert _routes_mentioned(text) == {
        ("GET", "/v1/a/{}/b"), ("POST", "/v1/a/{}/b"), ("GET", "/v1/a/{}/c/d"),
        ("POST", "/v1/a/{}/c/d"), ("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/v1/q"),
    }  # fmt: skip


def test_every_setting_is_documented() -> None:
    text = _doc(OPERATIONS)
    names = [f"VEIL_{field.upper()}" for field in Settings.model_fields]
    assert [name for name in names if not re.search(rf"{name}(?![A-Z0-9_])", text)] == []


def _commands(group: TyperGroup, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        if command.hidden:
            continue
        if isinstance(command, TyperGroup):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


def _commands_mentioned(text: str) -> set[tuple[str, ...]]:
    mentioned = set()
    for words in COMMAND_MENTION.findall(text):
        mentioned |= set(itertools.product(*(word.split("|") for word in words.split())))
    return mentioned


def test_every_cli_command_is_documented() -> None:
    root = typer.main.get_command(cli_app)
    assert isinstance(root, TyperGroup)
    commands = list(_commands(root))
    assert ("ledger", "verify") in commands
    mentioned = _commands_mentioned(_doc(CLI))
    missing = [
        "veil " + " ".join(command)
        for command in commands
        if not any(said[: len(command)] == command for said in mentioned)
    ]
    assert missing == []


def _repository_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def test_nothing_points_outside_the_repository() -> None:
    offending = []
    for path in _repository_files():
        if path == Path(__file__).resolve():
            continue  # it names what it looks for
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # images and other binaries
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offending.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offending == []


class _Sources(HTMLParser):
    """The `src` and `href` of HTML tags written inside Markdown."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("src", "href") and value]


def _links(markdown: str) -> Iterator[str]:
    """Every link and image target of a Markdown text, from its parsed tokens."""
    html = _Sources()
    for token in MarkdownIt("commonmark").parse(markdown):
        if token.type == "html_block":
            html.feed(token.content)
        for child in token.children or []:
            if child.type in ("link_open", "image"):
                yield str(child.attrGet("href") or child.attrGet("src"))
            elif child.type == "html_inline":
                html.feed(child.content)
    yield from html.found


@pytest.mark.parametrize("page", ["README.md", *sorted(p.name for p in DOCS.glob("*.md"))])
def test_relative_links_resolve_inside_the_repository(page: str) -> None:
    path = ROOT / page if page == "README.md" else DOCS / page
    broken = []
    for link in _links(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", link) or link.startswith("#"):
            continue  # another site, or a heading on this page
        target = (path.parent / link.split("#")[0]).resolve()
        if not target.is_relative_to(ROOT) or not target.exists():
            broken.append(link)
    assert broken == []
