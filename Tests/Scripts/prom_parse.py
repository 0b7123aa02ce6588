#!/usr/bin/env python3
"""Parses Prometheus text format from stdin with prometheus_client's own parser (the one
Prometheus tooling in Python uses) and prints the samples as JSON:
[{"family": F, "type": T, "name": N, "labels": {...}, "value": V}, ...].
Exits 2 with the parser's message when the text is not valid exposition format."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

text = sys.stdin.read()
out = []
try:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.append({"family": family.name, "type": family.type, "help": family.documentation,
                        "name": s.name, "labels": s.labels, "value": s.value})
except Exception as e:  # the parser raises ValueError and others on malformed input
    print(f"not Prometheus text format: {e}", file=sys.stderr)
    sys.exit(2)
json.dump(out, sys.stdout)
