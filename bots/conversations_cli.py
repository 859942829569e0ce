"""``seamline test`` on the command line: run the scripts (bots/conversations.py), print each
conversation's report, and write JUnit XML for CI systems (GitLab, Jenkins and GitHub's test
reporters read it: a testcase per conversation, the report as a failure's text)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seamline.bots.conversations import Result, discover, load, run


def junit(results: Sequence[Result]) -> str:
    """The results as JUnit XML (one testcase per conversation, the diff as the failure's text)."""
    suite = ET.Element(
        "testsuite",
        name="seamline conversations",
        tests=str(len(results)),
        failures=str(sum(bool(r.failures) and r.error is None for r in results)),
        errors=str(sum(r.error is not None for r in results)),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=Path(result.conversation.file).stem,
            name=result.conversation.name,
            file=result.conversation.file,
            time=f"{result.seconds:.3f}",
        )
        if result.error is not None:
            ET.SubElement(case, "error", message=result.error).text = result.report()
        elif result.failures:
            ET.SubElement(case, "failure", message=result.failures[0]).text = result.report()
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def main(project: Path, paths: Sequence[Path] = (), *, junit_xml: Path | None = None, out: Any = None) -> int:
    """``seamline test``: 0 when every conversation passes, 1 otherwise."""
    from seamline.testing import Bot

    out = out or sys.stdout
    conversations = [c for file in discover(project, paths) for c in load(file)]
    with Bot(project) as bot:
        results = []
        for conversation in conversations:
            result = run(bot, conversation)
            print(result.report(), file=out, flush=True)
            results.append(result)
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed", file=out)
    if junit_xml is not None:
        junit_xml.write_text(junit(results), encoding="utf-8")
    return 1 if failed else 0
