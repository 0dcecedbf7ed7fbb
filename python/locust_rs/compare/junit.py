"""JUnit XML, as Jenkins' ``junit`` step and GitLab's ``artifacts:reports:junit`` read it: one test suite of test
cases, each passed, failed (with a message and details) or skipped. Used by ``locust-rs compare`` (a case per
request name) and by ``--threshold-junit`` (a case per threshold and target)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass


@dataclass
class Case:
    name: str
    classname: str
    #: (message, type, details) of a failed case
    failure: tuple[str, str, str] | None = None
    #: why a case was not run
    skipped: str | None = None
    #: the figures behind the case, shown beside it
    output: str = ""


def document(suite: str, cases: list[Case], properties: dict[str, str] | None = None) -> str:
    """The XML of one test suite named ``suite``."""
    root = ET.Element("testsuites", name=suite)
    element = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(cases)),
        failures=str(sum(1 for c in cases if c.failure)),
        skipped=str(sum(1 for c in cases if c.skipped is not None)),
        errors="0",
    )
    if properties:
        props = ET.SubElement(element, "properties")
        for name, value in properties.items():
            ET.SubElement(props, "property", name=name, value=value)
    for c in cases:
        case = ET.SubElement(element, "testcase", classname=c.classname, name=c.name)
        if c.skipped is not None:
            ET.SubElement(case, "skipped", message=c.skipped)
        elif c.failure is not None:
            message, kind, details = c.failure
            ET.SubElement(case, "failure", message=message, type=kind).text = details
        if c.output:
            ET.SubElement(case, "system-out").text = c.output
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
