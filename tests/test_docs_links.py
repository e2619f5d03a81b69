"""Every relative link in the READMEs and docs/ resolves to a file inside the repository.

A link is `[text](path)` (images and `[text](<path>)` too), a reference definition
`[label]: path`, or `<path>`. URLs with a scheme (https:, mailto:) and pure `#anchors` are
not checked; an anchor after a path is dropped. Paths resolve against the folder of the
file that holds them. Code (fenced blocks and `inline spans`) and HTML comments hold no
links, so `/proc/<pid>/fd` in backticks is not one.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]


def documents(root: Path = ROOT) -> list[Path]:
    return [
        root / "README.md",
        root / "client-sdk" / "README.md",
        *sorted(root.glob("docs/**/*.md")),
    ]


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[`~]*[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# [text](target "title") — the text may hold one level of brackets (an image's alt text).
_INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^<>\n]*>|[^\s()]+)[^)]*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^<>\n]*>|\S+)", re.MULTILINE)
_ANGLE = re.compile(r"<([^<>\s]+)>")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_HTML_TAG = re.compile(r"^/?[A-Za-z][A-Za-z0-9-]*/?$")
_EMAIL = re.compile(r"^[^/@]+@[^/@]+$")


def _blank(match: re.Match[str]) -> str:
    """The match replaced by spaces, newlines kept: offsets still give line numbers."""
    return re.sub(r"[^\n]", " ", match.group(0))


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link in markdown `text`, code left out."""
    for pattern in (_FENCE, _COMMENT, _CODE_SPAN):
        text = pattern.sub(_blank, text)
    found: list[tuple[int, str]] = []
    for match in _INLINE.finditer(text):
        found.append((match.start(1), match.group(1).removeprefix("<").removesuffix(">")))
    for match in _REFERENCE.finditer(text):
        found.append((match.start(1), match.group(1).removeprefix("<").removesuffix(">")))
    inline_spans = [m.span() for m in _INLINE.finditer(text)]
    for match in _ANGLE.finditer(text):
        target = match.group(1)
        inside_inline = any(start <= match.start() < end for start, end in inline_spans)
        if inside_inline or _HTML_TAG.match(target) or _EMAIL.match(target):
            continue
        found.append((match.start(1), target))
    return [(text.count("\n", 0, offset) + 1, target) for offset, target in sorted(found)]


def is_local(target: str) -> bool:
    return bool(target) and not target.startswith("#") and not _SCHEME.match(target)


def broken_links(doc: Path, root: Path = ROOT) -> list[str]:
    """`file:line: target` for each relative link of `doc` that does not resolve to a file
    or folder inside `root`."""
    out = []
    for line, target in links(doc.read_text(encoding="utf-8")):
        if not is_local(target):
            continue
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        resolved = (doc.parent / path).resolve()
        if not (resolved.is_relative_to(root) and resolved.exists()):
            out.append(f"{doc.relative_to(root)}:{line}: {target}")
    return out


def test_every_relative_link_resolves_inside_the_repository() -> None:
    docs = documents()
    assert all(doc.is_file() for doc in docs), docs
    broken = [entry for doc in docs for entry in broken_links(doc)]
    assert not broken, "broken relative links:\n" + "\n".join(broken)


def test_the_documents_do_link_to_each_other() -> None:
    # Guards the check itself: if the parser stopped seeing links, the test above would
    # pass on anything.
    readme = [t for _, t in links((ROOT / "README.md").read_text(encoding="utf-8"))]
    assert "docs/protocol.md" in readme and "client-sdk/README.md" in readme
    sdk = [t for _, t in links((ROOT / "client-sdk" / "README.md").read_text(encoding="utf-8"))]
    assert "../docs/protocol.md" in sdk


def test_the_check_catches_broken_and_outside_links(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# There\n")
    (tmp_path / "outside.md").write_text("")
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "there.md").write_text("# There\n")
    doc = repo / "docs" / "guide.md"
    doc.write_text(
        "Good: [there](there.md#top), ![pic](<there.md>), [up](../docs/there.md),\n"
        "<https://example.com/x>, [mail](mailto:a@example.com), [anchor](#section),\n"
        "<a@example.com>, <br>, `[code](nope.md)` and `/proc/<pid>/fd`.\n"
        "```\n[fenced](nope.md) <nope/too.md>\n```\n"
        "Bad: [missing](missing.md), [outside](../../outside.md), <gone/file.md>,\n"
        '[absolute](/etc/hostname), [titled](nope.md "Title")\n'
        "\n[ref]: ../no-such-dir/\n"
    )
    assert broken_links(doc, repo) == [
        "docs/guide.md:7: missing.md",
        "docs/guide.md:7: ../../outside.md",
        "docs/guide.md:7: gone/file.md",
        "docs/guide.md:8: /etc/hostname",
        "docs/guide.md:8: nope.md",
        "docs/guide.md:10: ../no-such-dir/",
    ]
