"""nanofaas example, HTTP mode: Flask served by gunicorn.

GET /health answers 200 {"status":"ok"}. POST /invoke takes the payload as the
request body: a JSON object whose field "input" is a string. The answer is the
same object with "input" uppercased (ASCII letters only, as jq's ascii_upcase,
so every example runtime answers alike) and every other field unchanged.
Anything else is answered with 400 and {"error":{"code","message"}}.

Served by gunicorn with gunicorn.conf.py (bind address from LISTEN_HOST and
PORT); `python3 app.py` runs Flask's development server, for debugging only.
"""
import json
import os

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

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


def _json_response(obj, status=200):
    return Response(_dumps(obj), status=status, mimetype="application/json")


def _error(message, status=400):
    return _json_response(
        {"error": {"code": "INVALID_PAYLOAD", "message": message}}, status
    )


app = Flask(__name__)


@app.errorhandler(HTTPException)
def _http_error(exc):
    # 404, 405, 413...: JSON like every other answer, not Werkzeug's HTML page.
    code = "NOT_FOUND" if exc.code == 404 else "INVALID_REQUEST"
    return _json_response(
        {"error": {"code": code, "message": exc.description or exc.name}}, exc.code
    )


@app.get("/health")
def health():
    return _json_response({"status": "ok"})


@app.post("/invoke")
def invoke():
    # The raw body, whatever the Content-Type.
    raw = request.get_data(cache=False)
    if not raw.strip():
        return _error("payload must be a JSON object, got an empty body")
    try:
        payload = json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:
        return _error(f"body is not valid JSON: {exc}")
    try:
        result = handle(payload)
    except InvalidPayload as exc:
        return _error(str(exc))
    return _json_response(result)


if __name__ == "__main__":
    # Development server only; production is gunicorn (see gunicorn.conf.py).
    app.run(
        host=os.environ.get("LISTEN_HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8080")),
    )
