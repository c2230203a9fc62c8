#!/usr/bin/env python3
"""nanofaas example, HTTP mode: FastAPI served by uvicorn.

GET /health answers 200 {"status":"ok"}. POST /invoke takes the payload as the
request body: a JSON object whose field "input" is a string. The answer is the
same object with "input" uppercased (ASCII letters only, as jq's ascii_upcase,
so every example runtime answers alike) and every other field unchanged.
Anything else is answered with 400 and {"error":{"code","message"}}.

Run it as a program (`python3 app.py`): it listens on LISTEN_HOST (default
127.0.0.1, the runtime is private to the watchdog) and PORT (default 8080; the
watchdog sets PORT from RUNTIME_URL).
"""
import json
import os

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

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


def _error(message, status=400):
    return JSONResponse(
        {"error": {"code": "INVALID_PAYLOAD", "message": message}},
        status_code=status,
    )


# No docs/OpenAPI routes: the runtime only serves the watchdog.
app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/invoke")
async def invoke(request: Request):
    # The raw body, whatever the Content-Type: FastAPI's own validation
    # would answer 422 where the contract wants 400.
    raw = await request.body()
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
    return Response(content=_dumps(result), media_type="application/json")


def main():
    import uvicorn

    uvicorn.run(
        app,
        host=os.environ.get("LISTEN_HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8080")),
        log_level="info",
        access_log=False,
        # SIGTERM with a request in flight: give it this long, then stop.
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
