#!/usr/bin/env node
// nanofaas example, STDIO mode: one JSON document on stdin, one on stdout.
//
// The payload must be a JSON object whose field "input" is a string. The
// result is the same object with "input" uppercased (ASCII letters only, as
// jq's ascii_upcase, so every example runtime answers alike); other fields
// are echoed unchanged. Anything else is a function error: a message on
// stderr, exit code 1.
'use strict';

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

function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exitCode = 1;
}

const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('error', (err) => fail(`cannot read stdin: ${err.message}`));
process.stdin.on('end', () => {
  let raw;
  try {
    raw = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch (err) {
    fail('stdin is not valid UTF-8');
    return;
  }
  if (raw.trim() === '') {
    fail('stdin is empty, expected one JSON object');
    return;
  }
  let payload;
  try {
    payload = JSON.parse(raw);
  } catch (err) {
    fail(`stdin is not valid JSON: ${err.message}`);
    return;
  }
  let result;
  try {
    result = handle(payload);
  } catch (err) {
    if (!(err instanceof InvalidPayload)) throw err;
    fail(err.message);
    return;
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
});
