#!/usr/bin/env python3
"""Summaries of the interop suite's JUnit XML results.

    summary.py --kind KIND DIR                 one run: counts and the failed cases
    summary.py --table KIND=DIR [KIND=DIR...]  a case-by-server table of every run

Exit status 1 when any case failed, or when a run has no results at all.
"""
import argparse
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def cases(results_dir):
    """Yields (case id, outcome, message) from every *.xml in results_dir; outcome is pass/FAIL/skip."""
    for path in sorted(Path(results_dir).glob("*.xml")):
        part = path.stem
        try:
            # node's JUnit reporter copies raw control bytes from assertion messages; XML forbids them.
            text = path.read_bytes().decode("utf-8", "replace")
            root = ET.fromstring(re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "?", text))
        except (ET.ParseError, OSError) as e:
            yield (f"{part}: results file", "FAIL", f"unreadable {path.name}: {e}")
            continue
        yield from _walk(root, [part])


def _walk(node, trail):
    for child in node:
        if child.tag == "testsuite":
            name = child.get("name", "")
            # pytest wraps everything in one suite named "pytest"; it carries no information.
            sub = trail if name in ("", "pytest") else trail + [name]
            yield from _walk(child, sub)
        elif child.tag == "testsuites":
            yield from _walk(child, trail)
        elif child.tag == "testcase":
            name = child.get("name", "?")
            cls = child.get("classname", "")
            ident = trail + ([cls] if cls and cls != "test" else []) + [name]
            outcome, message = "pass", ""
            for sub in child:
                if sub.tag in ("failure", "error"):
                    outcome = "FAIL"
                    message = (sub.get("message") or sub.text or "").strip()
                    break
                if sub.tag == "skipped":
                    outcome = "skip"
                    message = (sub.get("message") or "").strip()
            yield (" / ".join(ident), outcome, message)


def one(kind, results_dir):
    rows = list(cases(results_dir))
    passed = sum(1 for _, o, _ in rows if o == "pass")
    failed = [(c, m) for c, o, m in rows if o == "FAIL"]
    skipped = sum(1 for _, o, _ in rows if o == "skip")
    print(f"\n== {kind}: {passed} passed, {len(failed)} failed, {skipped} skipped")
    for case, message in failed:
        first = message.splitlines()[0] if message else ""
        print(f"  FAIL {case}\n       {first[:300]}")
    if not rows:
        print("  no results were written")
        return 1
    return 1 if failed else 0


def table(pairs):
    runs = []
    for pair in pairs:
        kind, _, results_dir = pair.partition("=")
        runs.append((kind, {c: o for c, o, _ in cases(results_dir)}))
    order = []
    for _, res in runs:
        for c in res:
            if c not in order:
                order.append(c)
    width = min(max([len(c) for c in order] + [4]), 110)
    cols = [k for k, _ in runs]
    print()
    print(f"{'case':<{width}}  " + "  ".join(f"{k:>11}" for k in cols))
    print("-" * width + "  " + "  ".join("-" * 11 for _ in cols))
    bad = 0
    for c in order:
        outs = [res.get(c, "missing") for _, res in runs]
        bad += any(o in ("FAIL", "missing") for o in outs)
        label = c if len(c) <= width else c[: width - 3] + "..."
        print(f"{label:<{width}}  " + "  ".join(f"{o:>11}" for o in outs))
    print()
    for kind, res in runs:
        p = sum(1 for o in res.values() if o == "pass")
        f = sum(1 for o in res.values() if o == "FAIL")
        print(f"{kind}: {p} passed, {f} failed, {len(order) - len(res)} missing")
    if not order:
        print("no results were written")
        return 1
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    if a.table:
        return table(a.dirs)
    return one(a.kind or "run", a.dirs[0])


if __name__ == "__main__":
    sys.exit(main())
