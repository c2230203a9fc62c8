#!/usr/bin/env python3
"""nanofaas example, STDIO_PROTOCOL=lines: one process serves every invocation.

A request line per invocation on stdin; one result line per request on the
file descriptor $NANOFAAS_RESULT_FD ({"output": ...} or {"error": "..."});
print() goes to the log. The function uppercases the string field "input"
(ASCII letters) and echoes the other fields. See docs/warm-scripts.md.
"""
import json, os, sys

UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
results = os.fdopen(int(os.environ["NANOFAAS_RESULT_FD"]), "w")

def handle(payload):
    if not isinstance(payload, dict) or not isinstance(payload.get("input"), str):
        raise ValueError('payload must be a JSON object whose field "input" is a string')
    return dict(payload, input=payload["input"].translate(UPPER))

for line in sys.stdin:
    request = json.loads(line)
    try:
        answer = {"output": handle(request["payload"])}
    except ValueError as exc:
        answer = {"error": str(exc)}
    results.write(json.dumps(answer) + "\n")
    results.flush()
