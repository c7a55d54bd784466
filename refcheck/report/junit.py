"""junit.xml: one testsuite per layer, one testcase per case with its time; the reason is the
failure message, and the body holds every failing tensor's reason, the traceback and captured output.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .stream import as_source

__all__ = ["junit_chunks", "junit_error", "junit_xml"]

_ORDER = {"error": 0, "failed": 1, "passed": 2, "skipped": 3}


def _seconds(records: Sequence[Mapping[str, Any]]) -> float:
    times = []
    for record in records:
        try:
            value = float(record.get("duration_s"))
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            times.append(value)
    return max(times, default=0.0)  # every record of a case carries the case's time


def _body(records: Sequence[Mapping[str, Any]]) -> str:
    parts = [f"{r['tensor']}: {r['status']}: {r['reason']}" for r in records if r.get("reason")]
    for r in records:
        if r.get("diagnosis") and isinstance(r["diagnosis"], str):
            parts.append(f"{r['tensor']}: diagnosis: {r['diagnosis']}")
    seen: set[str] = set()
    for field in ("traceback", "stdout", "stderr"):
        for record in records:
            text = record.get(field)
            if isinstance(text, str) and text.strip() and (field, text) not in seen:
                seen.add((field, text))  # type: ignore[arg-type]
                parts.append(f"--- {field} ---\n{text.rstrip()}")
    return "\n".join(parts)


def junit_xml(records: Sequence[Mapping[str, Any]]) -> str:
    """The JUnit XML document of a run (its records grouped by layer and case)."""
    return "".join(junit_chunks(as_source(records).layer_cases()))


def junit_chunks(layers: Iterable[tuple[str, Iterable[Sequence[Mapping[str, Any]]]]],
                 interrupted: str = "") -> Iterator[str]:
    """The JUnit XML document in pieces, one testsuite per layer, given layer by layer as each case's
    records in case order (as :meth:`~refcheck.report.stream.RecordStream.layer_cases` gives them).
    ``interrupted``: the totals of a run that was stopped, written as an errored testcase so that a
    CI reading the file never takes the finished part for the whole."""
    yield _DECLARATION
    empty = True
    for layer, records in layers:
        if empty:
            yield '<testsuites name="refcheck">'
            empty = False
        yield ET.tostring(_suite(layer, records), encoding="unicode")
    if interrupted:
        if empty:
            yield '<testsuites name="refcheck">'
            empty = False
        yield ET.tostring(_run_error(f"the run was interrupted: {interrupted}", "refcheck was stopped before every "
                                     "case ran; this file holds the cases that finished"), encoding="unicode")
    yield '<testsuites name="refcheck" />' if empty else "</testsuites>"


def _run_error(message: str, detail: str) -> ET.Element:
    """A testsuite of one errored testcase standing for the run itself (interrupted, or not run)."""
    suite = ET.Element("testsuite", name="refcheck", tests="1", failures="0", errors="1", skipped="0")
    case = ET.SubElement(suite, "testcase", classname="refcheck", name="run")
    ET.SubElement(case, "error", message=message).text = detail
    return suite


def junit_error(message: str) -> str:
    """The JUnit XML document of a run that checked nothing (exit 2): one error, the message."""
    first = message.splitlines()[0] if message else "refcheck could not run"
    return (_DECLARATION + '<testsuites name="refcheck">' + ET.tostring(_run_error(first, message), encoding="unicode")
            + "</testsuites>")


_DECLARATION = "<?xml version='1.0' encoding='utf-8'?>\n"


def _suite(layer: str, cases: Iterable[Sequence[Mapping[str, Any]]]) -> ET.Element:
    suite = ET.Element("testsuite", name=layer)
    counts = {"failed": 0, "error": 0, "skipped": 0}
    total_time = 0.0
    tests = 0
    for rows in cases:
        tests += 1
        case_id = str(rows[0]["case"])
        worst = min(rows, key=lambda r: _ORDER.get(str(r.get("status")), 4))
        status = str(worst.get("status"))
        seconds = _seconds(rows)
        total_time += seconds
        element = ET.SubElement(suite, "testcase", classname=f"refcheck.{layer}", name=case_id,
                                time=f"{seconds:.6f}")
        message = str(worst.get("reason") or status)[:1000]
        if status in ("failed", "error"):
            counts[status] += 1
            tag = "failure" if status == "failed" else "error"
            bad = [r for r in rows if r.get("status") in ("failed", "error")]
            ET.SubElement(element, tag, message=message).text = _body(bad)
        elif status == "skipped":
            counts["skipped"] += 1
            ET.SubElement(element, "skipped", message=message)
        output = "\n".join(dict.fromkeys(str(r["stdout"]) for r in rows if r.get("stdout")))
        if output and status not in ("failed", "error"):
            ET.SubElement(element, "system-out").text = output
    suite.set("tests", str(tests))
    suite.set("failures", str(counts["failed"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    suite.set("time", f"{total_time:.6f}")
    return suite
