#!/usr/bin/env node
// nanofaas example, STDIO_PROTOCOL=lines: one process serves every invocation.
//
// A request line per invocation on stdin; one result line per request on the
// file descriptor $NANOFAAS_RESULT_FD ({"output": ...} or {"error": "..."});
// console.log goes to the log. The function uppercases the string field
// "input" (ASCII letters) and echoes the other fields. See docs/warm-scripts.md.
'use strict';
const fs = require('fs');
const readline = require('readline');
const results = Number(process.env.NANOFAAS_RESULT_FD);

function handle(payload) {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload) || typeof payload.input !== 'string') {
    throw new Error('payload must be a JSON object whose field "input" is a string');
  }
  return { ...payload, input: payload.input.replace(/[a-z]+/g, (m) => m.toUpperCase()) };
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const request = JSON.parse(line);
  let answer;
  try {
    answer = { output: handle(request.payload) };
  } catch (err) {
    answer = { error: err.message };
  }
  fs.writeSync(results, JSON.stringify(answer) + '\n');
});
