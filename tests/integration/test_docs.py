"""Docs that cannot rot: every shell block (```sh) of README.md and docs/**/*.md runs, in
order, one document per bash session (as a reader would type them in one terminal),
against the local control plane with the province of examples/ installed and the
operator running. A block that cannot run here (a real Jitsi, a cloud, the whole test
suite) carries `<!-- not run: reason -->` on the line before its fence; that list is
printed and kept short. YAML blocks that are Meeting manifests must be valid Meetings.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from meetscale.models import MeetingSpec
from tests.integration.province import province  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.+?)\s*-->$")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
SHELL = frozenset({"sh", "bash", "shell"})
MOST_NOT_RUN = 12  # keep the list of blocks that are only examples short


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    not_run: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, with the `not run` mark before each."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        before = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
        mark = NOT_RUN.match(before.strip())
        text = "\n".join(lines[start + 1 : j])
        out.append(Block(path, start + 1, m["lang"], text, mark["reason"] if mark else None))
        i = j + 1
    return out


ALL = [b for doc in DOCS for b in blocks(doc)]
SHELL_BLOCKS = [b for b in ALL if b.lang in SHELL]
RUN_DOCS = sorted({b.path for b in SHELL_BLOCKS if b.not_run is None})


def test_examples_not_run_are_few_and_say_why():
    skipped = [b for b in SHELL_BLOCKS if b.not_run is not None]
    print("\nshell blocks not run:")
    for b in skipped:
        print(f"  {b.where}: {b.not_run}")
    assert len(skipped) <= MOST_NOT_RUN, [b.where for b in skipped]
    assert all(len(b.not_run or "") >= 10 for b in skipped)
    # A mark that is not right before a shell block is a mistake.
    marks = sum(
        1
        for doc in DOCS
        for line in doc.read_text(encoding="utf-8").splitlines()
        if NOT_RUN.match(line.strip())
    )
    assert marks == len(skipped)
    assert any(b.path.parent.name == "vi" for b in SHELL_BLOCKS if b.not_run is None)


MEETING_YAML = [b for b in ALL if b.lang == "yaml" and "kind: Meeting\n" in b.text + "\n"]


@pytest.mark.parametrize("block", MEETING_YAML, ids=[b.where for b in MEETING_YAML])
def test_meeting_manifests_in_the_docs_are_valid(block):
    doc = yaml.safe_load(block.text)
    assert doc["apiVersion"] == "meetscale.io/v1alpha1"
    MeetingSpec.model_validate(doc["spec"])
    assert doc["spec"]["start"].endswith("+07:00"), "manifests for agencies are in local time"


# ----------------------------------------------------------------------- the live run


def script(doc: Path) -> str:
    """The document's shell blocks as one bash script, each announced by its place."""
    parts = ["set -euo pipefail"]
    for b in blocks(doc):
        if b.lang in SHELL and b.not_run is None:
            parts.append(f"echo '>>> {b.where}' >&2")
            parts.append(b.text)
    return "\n".join(parts) + "\n"


@pytest.mark.parametrize("doc", RUN_DOCS, ids=[str(d.relative_to(ROOT)) for d in RUN_DOCS])
def test_shell_blocks_run(doc, province):  # noqa: F811 (the fixture imported above)
    assert shutil.which("bash")
    t0 = time.monotonic()
    r = subprocess.run(
        ["bash", "-c", script(doc)],
        cwd=province["WORK"],
        env=province,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    announced = re.findall(r"^>>> (.+)$", r.stderr, re.M)
    where = announced[-1] if announced else str(doc)
    assert r.returncode == 0, (
        f"the block at {where} failed (exit {r.returncode}):\n"
        f"--- stdout\n{r.stdout[-4000:]}\n--- stderr\n{r.stderr[-4000:]}"
    )
    print(f"{doc.relative_to(ROOT)}: {len(announced)} blocks in {time.monotonic() - t0:.1f} s")
    print(r.stdout[-6000:])
