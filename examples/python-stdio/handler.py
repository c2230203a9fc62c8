#!/usr/bin/env python3
"""nanofaas example, STDIO mode: one JSON document on stdin, one on stdout.

The payload must be a JSON object whose field "input" is a string. The result
is the same object with "input" uppercased (ASCII letters only, as jq's
ascii_upcase, so every example runtime answers alike); other fields are echoed
unchanged. Anything else is a function error: a message on stderr, exit code 1.
"""
import json
import sys

_ASCII_UPPER = str.maketrans(
    "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


class InvalidPayload(ValueError):
    """The payload does not fit the demo contract."""


def _json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _reject_constant(name):
    # Python accepts NaN/Infinity by default; they are not JSON.
    raise ValueError(f"{name} is not valid JSON")


def handle(payload):
    """The demo function: uppercase payload["input"], echo everything else."""
    if not isinstance(payload, dict):
        raise InvalidPayload(
            f"payload must be a JSON object, got {_json_type(payload)}"
        )
    if "input" not in payload:
        raise InvalidPayload('field "input" must be a string, got nothing')
    value = payload["input"]
    if not isinstance(value, str):
        raise InvalidPayload(
            f'field "input" must be a string, got {_json_type(value)}'
        )
    result = dict(payload)
    result["input"] = value.translate(_ASCII_UPPER)
    return result


def _dumps(obj):
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (e.g. "\ud800" in the input) cannot be UTF-8:
        # fall back to \u escapes, which is the same JSON value.
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


def main():
    raw = sys.stdin.buffer.read()
    if not raw.strip():
        print("error: stdin is empty, expected one JSON object", file=sys.stderr)
        return 1
    try:
        payload = json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:  # includes JSONDecodeError, UnicodeDecodeError
        print(f"error: stdin is not valid JSON: {exc}", file=sys.stderr)
        return 1
    try:
        result = handle(payload)
    except InvalidPayload as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = sys.stdout.buffer
    out.write(_dumps(result) + b"\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
