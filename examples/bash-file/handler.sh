#!/bin/bash
# nanofaas example, FILE mode: read the payload from $INPUT_FILE, write the
# result to $OUTPUT_FILE (defaults /tmp/input.json and /tmp/output.json).
#
# The payload must be one JSON object whose field "input" is a string. The
# result is the same object with "input" uppercased by jq's ascii_upcase;
# other fields are echoed unchanged. Anything else is a function error: a
# message on stderr, exit code 1, and no OUTPUT_FILE written.
set -euo pipefail

input_file="${INPUT_FILE:-/tmp/input.json}"
output_file="${OUTPUT_FILE:-/tmp/output.json}"

fail() {
  echo "error: $*" >&2
  exit 1
}

[[ -r "$input_file" ]] || fail "cannot read INPUT_FILE $input_file"

# --slurp collects every JSON document of the file into one array, so that
# an empty file or several documents are refused instead of half-processed.
program='
  if length != 1 then
    error("expected one JSON document, got \(length)")
  elif (.[0] | type) != "object" then
    error("payload must be a JSON object, got \(.[0] | type)")
  elif (.[0] | has("input") | not) then
    error("field \"input\" must be a string, got nothing")
  elif (.[0].input | type) != "string" then
    error("field \"input\" must be a string, got \(.[0].input | type)")
  else
    .[0] | .input |= ascii_upcase
  end'

if ! result="$(jq --compact-output --slurp "$program" "$input_file" 2>&1)"; then
  # jq prints "jq: error (at FILE): MESSAGE" or a parse error: pass it on.
  fail "${result#jq: error (at *): }"
fi

printf '%s\n' "$result" > "$output_file"
