// nanofaas example, HTTP mode: Express.
//
// GET /health answers 200 {"status":"ok"}. POST /invoke takes the payload as
// the request body: a JSON object whose field "input" is a string. The answer
// is the same object with "input" uppercased (ASCII letters only, as jq's
// ascii_upcase, so every example runtime answers alike) and every other field
// unchanged. Anything else is answered with 400 and {"error":{"code","message"}}.
//
// Listens on LISTEN_HOST (default 127.0.0.1: the runtime is private to the
// watchdog) and PORT (default 8080; the watchdog sets PORT from RUNTIME_URL).
'use strict';

const express = require('express');

const host = process.env.LISTEN_HOST || '127.0.0.1';
const port = Number.parseInt(process.env.PORT || '8080', 10);
const bodyLimit = process.env.MAX_BODY_SIZE || '16mb';

class InvalidPayload extends Error {}

function jsonType(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value; // object, string, number, boolean
}

function asciiUpper(s) {
  return s.replace(/[a-z]+/g, (m) => m.toUpperCase());
}

function handle(payload) {
  if (jsonType(payload) !== 'object') {
    throw new InvalidPayload(`payload must be a JSON object, got ${jsonType(payload)}`);
  }
  if (!Object.prototype.hasOwnProperty.call(payload, 'input')) {
    throw new InvalidPayload('field "input" must be a string, got nothing');
  }
  if (typeof payload.input !== 'string') {
    throw new InvalidPayload(`field "input" must be a string, got ${jsonType(payload.input)}`);
  }
  return { ...payload, input: asciiUpper(payload.input) };
}

function sendError(res, status, code, message) {
  res.status(status).type('application/json').send(JSON.stringify({ error: { code, message } }));
}

const app = express();
app.disable('x-powered-by');
app.disable('etag');

app.get('/health', (req, res) => {
  res.type('application/json').send('{"status":"ok"}');
});

// The raw body, whatever the Content-Type (express.json() would skip bodies
// sent without application/json and refuse non-object JSON itself), decoded
// as UTF-8 (RFC 8259), refusing invalid bytes instead of replacing them.
app.post('/invoke', express.raw({ type: () => true, limit: bodyLimit }), (req, res) => {
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  let raw;
  try {
    raw = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch (err) {
    sendError(res, 400, 'INVALID_PAYLOAD', 'body is not valid UTF-8');
    return;
  }
  if (raw.trim() === '') {
    sendError(res, 400, 'INVALID_PAYLOAD', 'payload must be a JSON object, got an empty body');
    return;
  }
  let payload;
  try {
    payload = JSON.parse(raw);
  } catch (err) {
    sendError(res, 400, 'INVALID_PAYLOAD', `body is not valid JSON: ${err.message}`);
    return;
  }
  let result;
  try {
    result = handle(payload);
  } catch (err) {
    if (!(err instanceof InvalidPayload)) throw err;
    sendError(res, 400, 'INVALID_PAYLOAD', err.message);
    return;
  }
  res.type('application/json').send(JSON.stringify(result));
});

// Errors raised by the body parser (too large, bad charset) and anything
// unexpected: JSON, never Express's HTML page.
// eslint-disable-next-line no-unused-vars
app.use((err, req, res, next) => {
  const status = Number.isInteger(err.status) && err.status >= 400 && err.status < 600 ? err.status : 500;
  const code = status === 500 ? 'INTERNAL_ERROR' : 'INVALID_REQUEST';
  if (status === 500) console.error(err);
  sendError(res, status, code, err.expose || status !== 500 ? err.message : 'internal error');
});

app.use((req, res) => {
  sendError(res, 404, 'NOT_FOUND', `no route for ${req.method} ${req.path}`);
});

const server = app.listen(port, host, () => {
  console.error(`node-express-http listening on http://${host}:${port}`);
});
server.on('error', (err) => {
  console.error(`cannot listen on ${host}:${port}: ${err.message}`);
  process.exit(1);
});

// The watchdog stops the runtime with SIGTERM (then SIGKILL after a grace):
// stop accepting, drop idle keep-alive connections, exit as soon as the
// request in flight (if any) is answered, and never take longer than 3 s.
let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`node-express-http: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
