"""The README and docs/ stay true to the code and to each other.

These tests only read files: they pass or fail whether or not the project imports.
"""
import os
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [README, *PAGES]
README_MAX_LINES = 250

# A Python block the docs quote from a project file carries the file's name on the line before.
QUOTED = re.compile(r"^<!-- quoted from (?P<file>\S+) -->\n```python\n(?P<code>.*?)^```",
                    re.S | re.M)
PYTHON_BLOCK = re.compile(r"^(?P<before>.*)\n```python\n", re.M)
FENCED = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$", re.M)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)

# The repository stands alone: it cites no document its readers do not have, neither a
# specification by its short name nor an issue by its number. ([S] keeps this file from matching.)
CITATIONS = (re.compile(r"\b[S]PEC\b"), re.compile(r"\bissue\s+#?\d+", re.I))
SKIPPED_FOLDERS = {".git", ".venv", "test-artifacts", "instance", "__pycache__", ".pytest_cache",
                   "node_modules"}


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def quoted_blocks() -> list[tuple[Path, str, str]]:
    """Return (document, quoted file, code) for every Python block that names its file."""
    return [(document, match["file"], match["code"])
            for document in DOCUMENTS for match in QUOTED.finditer(document.read_text())]


def without_code(text: str) -> str:
    """Return text without its fenced blocks and inline code, whose brackets are not links."""
    return INLINE_CODE.sub("", FENCED.sub("", text))


def anchors(document: Path) -> set[str]:
    """Return the anchors GitHub makes for document's headings."""
    found: set[str] = set()
    repeats: dict[str, int] = {}
    for match in HEADING.finditer(FENCED.sub("", document.read_text())):
        slug = re.sub(r"[^\w\- ]", "", match["title"].lower()).replace(" ", "-")
        count = repeats[slug] = repeats.get(slug, -1) + 1
        found.add(f"{slug}-{count}" if count else slug)
    return found


def relative_links(document: Path) -> list[str]:
    """Return the targets of document's links that point inside the repository."""
    targets = (match["target"] for match in LINK.finditer(without_code(document.read_text())))
    return [target for target in targets if not SCHEME.match(target)]


def project_texts() -> list[Path]:
    """Return the README, docs/ and every Python and Markdown file of the repository."""
    found = set(DOCUMENTS)
    for folder, subfolders, files in os.walk(ROOT):
        # Pruned in place, so that a virtualenv in the clone is never walked.
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS]
        found.update(Path(folder) / name for name in files if name.endswith((".py", ".md")))
    return sorted(found)


QUOTES = quoted_blocks()
QUOTE_IDS = [f"{relative(document)}-quotes-{file}" for document, file, _ in QUOTES]


@pytest.mark.parametrize(("document", "file", "code"), QUOTES, ids=QUOTE_IDS)
def test_quoted_code_is_verbatim_in_the_file_it_names(document, file, code):
    source = ROOT / file
    assert source.is_file(), f"{relative(document)} quotes {file}, which does not exist"
    block = textwrap.dedent("\n".join(line.rstrip() for line in code.splitlines())).strip("\n")
    lines = [line.rstrip() for line in source.read_text().splitlines()]
    size = len(block.splitlines())
    windows = (textwrap.dedent("\n".join(lines[start:start + size]))
               for start in range(len(lines) - size + 1))
    assert block in windows, f"{relative(document)} quotes code that is not in {file}:\n{block}"


def test_every_python_block_of_the_readme_names_the_file_it_quotes():
    text = README.read_text()
    unnamed = [text.count("\n", 0, match.start()) + 2 for match in PYTHON_BLOCK.finditer(text)
               if not match["before"].startswith("<!-- quoted from ")]
    assert not unnamed, f"README.md lines {unnamed}: ```python without <!-- quoted from FILE -->"
    assert any(document == README for document, _, _ in QUOTES)


def test_readme_is_at_most_250_lines():
    assert len(README.read_text().splitlines()) <= README_MAX_LINES


@pytest.mark.parametrize("path", project_texts(), ids=relative)
def test_nothing_cites_an_outside_document_or_an_issue_number(path):
    citations = [f"{relative(path)}:{number}: {line.strip()}"
                 for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
                 if any(pattern.search(line) for pattern in CITATIONS)]
    assert not citations, "\n".join(citations)


@pytest.mark.parametrize("document", DOCUMENTS, ids=relative)
def test_every_relative_link_points_at_an_existing_file(document):
    broken = []
    for target in relative_links(document):
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor in {relative(linked)}")
    assert not broken, f"{relative(document)}: " + "; ".join(broken)


def test_readme_links_every_docs_page():
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in relative_links(README)}
    assert PAGES, "docs/ has no pages"
    assert not [relative(page) for page in PAGES if page.resolve() not in linked]
