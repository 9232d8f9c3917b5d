"""Compare two JUnit XML reports (Atelier run, MLflow run) of MLflow's server tests.

Usage: compare.py atelier.xml mlflow.xml [out.tsv]
Prints counts and writes one line per test: outcome, test id, first line of the
Atelier failure message. Outcomes: pass, fail-atelier (fails only against
Atelier), fail-both (fails against MLflow's own server too), skip, and
pass-atelier-only (fails against MLflow, passes against Atelier).
"""

import sys
import xml.etree.ElementTree as ET


def load(path):
    out = {}
    if path == "-":  # no run against MLflow's own server
        return out
    for case in ET.parse(path).getroot().iter("testcase"):
        tid = f"{case.get('classname', '')}::{case.get('name', '')}"
        state, msg = "pass", ""
        for child in case:
            if child.tag in ("failure", "error"):
                state = "fail"
                msg = (child.get("message") or child.text or "").strip().splitlines()
                msg = msg[0][:200] if msg else ""
                break
            if child.tag == "skipped":
                state, msg = "skip", (child.get("message") or "")[:200]
        out[tid] = (state, msg)
    return out


def main():
    atelier, mlflow = load(sys.argv[1]), load(sys.argv[2])
    rows, counts = [], {}
    for tid in sorted(set(atelier) | set(mlflow)):
        a, amsg = atelier.get(tid, ("missing", ""))
        m, _ = mlflow.get(tid, ("missing", ""))
        if a == "skip" or (a == "missing" and m == "skip"):
            outcome = "skip"
        elif a == "pass":
            outcome = "pass" if m != "fail" else "pass-atelier-only"
        elif m == "fail":
            outcome = "fail-both"
        else:
            outcome = "fail-atelier"
        counts[outcome] = counts.get(outcome, 0) + 1
        rows.append(f"{outcome}\t{tid}\t{amsg}")
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:
            f.write("\n".join(rows) + "\n")
    total = len(rows)
    considered = total - counts.get("skip", 0) - counts.get("fail-both", 0)
    passed = counts.get("pass", 0) + counts.get("pass-atelier-only", 0)
    for k in ("pass", "pass-atelier-only", "fail-atelier", "fail-both", "skip"):
        print(f"{k:18} {counts.get(k, 0)}")
    print(f"passed against Atelier: {passed} of {considered} "
          f"(all collected tests {total}, less skips and tests that fail against MLflow too; "
          f"tests of MLflow internals are classified by hand in docs/mlflow-server-tests.md)")


if __name__ == "__main__":
    main()
