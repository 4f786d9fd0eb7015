"""A clone is the whole project: no tracked file reaches outside the repository, every cited document exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A path that climbs out of the repository into a folder beside it, or a machine's absolute path.
OUTSIDE = re.compile(r"""\.\./shared|parents\[[2-9]\]\s*/\s*["']shared|/work/(?:main|shared)\b""")
CITED_DOCUMENT = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[A-Za-z][\w-]*\.md)\b")
MARKDOWN_LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s#]+)")
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = []
    for name in names.splitlines():
        path = ROOT / name
        if name == THIS_FILE or name.startswith("tests/fixtures/") or not path.is_file():
            continue
        try:
            files.append((path, path.read_text()))
        except UnicodeDecodeError:
            continue  # binary: sample data, images
    return files


def test_no_tracked_file_refers_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path, text in tracked_text_files()
        for number, line in enumerate(text.splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_markdown_links_stay_inside_the_repository_and_resolve() -> None:
    offenders = []
    for path, text in tracked_text_files():
        if path.suffix != ".md":
            continue
        for target in MARKDOWN_LINK.findall(text):
            resolved = (path.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                offenders.append(f"{path.relative_to(ROOT)}: {target}")
    assert offenders == []


def test_every_cited_document_exists() -> None:
    documents = {p.relative_to(ROOT).as_posix() for p, _ in tracked_text_files() if p.suffix == ".md"}
    names = {Path(d).name for d in documents}
    missing = []
    for path, text in tracked_text_files():
        for cited in set(CITED_DOCUMENT.findall(text)):
            here = (path.parent / cited).resolve()
            found = cited in documents or here.is_file() or ("/" not in cited and cited in names)
            if not found:
                missing.append(f"{path.relative_to(ROOT)}: {cited}")
    assert missing == []
