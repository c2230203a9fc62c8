#!/usr/bin/env bash
# Checks every example's host command against the demo contract, WITHOUT the
# watchdog: the function code itself, as the manifest runs it.
#
#   examples/selftest.sh [EXAMPLE ...]      (default: every examples/*/function.json)
#
# Run scripts/examples-host.sh first. For each manifest, in its code dir:
#   STDIO       the example payload on stdin gives exactly one JSON document
#               equal to the example output; bad payloads exit 1 with a
#               message on stderr and nothing on stdout
#   FILE        the same through INPUT_FILE/OUTPUT_FILE (no OUTPUT_FILE on error)
#   STDIO with "stdio_protocol": "lines"
#               one process gets a request line per payload on stdin and
#               answers each with one result line on fd 3: the example
#               payload {"output": <example output>}, bad payloads
#               {"error": "..."}; nothing on stdout; exit 0 at end of input
#   HTTP, WARM  started with PORT from the manifest's RUNTIME_URL: GET /health
#               is 200, POST /invoke answers the example, bad payloads get 400
#               with {"error":{"message"}}, and SIGTERM stops it within 3 s
# Commands are split on blanks (the manifests use no quotes). Needs jq, curl.
# Ends with "N passed, N failed"; exit status 1 when anything failed.
set -uo pipefail

EX="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BAD_PAYLOADS=('[1]' '"text"' '{"input":3}' '{"n":1}' 'not json')
passed=0 failed=0
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

ok() { passed=$((passed + 1)); printf '  ok    %s\n' "$*"; }
ko() { failed=$((failed + 1)); printf '  FAIL  %s\n' "$*"; }
same_json() { [ "$(jq -cS . <<<"$1" 2>/dev/null)" = "$(jq -cS . <<<"$2" 2>/dev/null)" ] && [ -n "$1" ]; }
one_doc() { [ "$(jq -s 'length' <<<"$1" 2>/dev/null)" = 1 ]; }
now_ms() { date +%s%3N; }

test_stdio() {
  local out err rc p
  out="$("${cmd[@]}" <<<"$payload" 2>"$TMP/err")"
  rc=$?
  if [ $rc = 0 ] && one_doc "$out" && same_json "$out" "$expected"; then
    ok "example payload -> $out"
  else
    ko "example payload -> rc=$rc stdout=$out stderr=$(head -c 300 "$TMP/err")"
  fi
  for p in "${BAD_PAYLOADS[@]}"; do
    out="$("${cmd[@]}" <<<"$p" 2>"$TMP/err")"
    rc=$?
    err="$(head -n1 "$TMP/err")"
    if [ $rc = 1 ] && [ -z "$out" ] && [ -n "$err" ]; then ok "$p -> exit 1: $err"; else ko "$p -> rc=$rc stdout=$out stderr=$err"; fi
  done
}

test_lines() {
  local p i=0 n out rc line
  {
    for p in "$payload" "${BAD_PAYLOADS[@]:0:4}"; do
      i=$((i + 1))
      jq -cn --argjson p "$p" --arg id "self-$i" '{v:1,execution_id:$id,trace_id:"",deadline_ms:0,timeout_ms:1000,payload:$p}'
    done
  } >"$TMP/requests"
  NANOFAAS_RESULT_FD=3 "${cmd[@]}" <"$TMP/requests" >"$TMP/out" 2>"$TMP/err" 3>"$TMP/results"
  rc=$?
  n="$(wc -l <"$TMP/results")"
  if [ $rc = 0 ] && [ "$n" = 5 ] && [ ! -s "$TMP/out" ]; then
    ok "5 requests -> 5 result lines on fd 3, nothing on stdout, exit 0"
  else
    ko "5 requests -> rc=$rc, $n result lines, stdout=$(head -c 300 "$TMP/out") stderr=$(head -c 300 "$TMP/err")"
  fi
  line="$(sed -n 1p "$TMP/results")"
  out="$(jq -c .output <<<"$line" 2>/dev/null)"
  if same_json "$out" "$expected"; then ok "example payload -> $line"; else ko "example payload -> $line"; fi
  for i in 2 3 4 5; do
    line="$(sed -n "${i}p" "$TMP/results")"
    if [ -n "$(jq -r '.error // empty' <<<"$line" 2>/dev/null)" ]; then ok "bad payload -> $line"; else ko "bad payload -> $line"; fi
  done
  rm -f "$TMP/requests" "$TMP/results"
}

test_file() {
  local d out rc p err
  d="$(mktemp -d)"
  printf '%s' "$payload" >"$d/in.json"
  INPUT_FILE="$d/in.json" OUTPUT_FILE="$d/out.json" "${cmd[@]}" </dev/null >"$d/stdout" 2>"$d/stderr"
  rc=$?
  out="$(cat "$d/out.json" 2>/dev/null)"
  if [ $rc = 0 ] && one_doc "$out" && same_json "$out" "$expected"; then
    ok "example payload -> OUTPUT_FILE $out"
  else
    ko "example payload -> rc=$rc OUTPUT_FILE=$out stderr=$(head -c 300 "$d/stderr")"
  fi
  for p in "${BAD_PAYLOADS[@]}"; do
    rm -f "$d/out.json"
    printf '%s' "$p" >"$d/in.json"
    INPUT_FILE="$d/in.json" OUTPUT_FILE="$d/out.json" "${cmd[@]}" </dev/null >"$d/stdout" 2>"$d/stderr"
    rc=$?
    err="$(head -n1 "$d/stderr")"
    if [ $rc = 1 ] && [ ! -e "$d/out.json" ] && [ -n "$err" ]; then ok "$p -> exit 1: $err"; else ko "$p -> rc=$rc stderr=$err"; fi
  done
  rm -rf "$d"
}

test_http() {
  local url port base pid t0 ready out code p
  url="$(jq -r '.env.RUNTIME_URL // "http://127.0.0.1:8080/invoke"' "$manifest")"
  port="$(sed -E 's#^[a-z]+://[^:/]+:([0-9]+).*#\1#' <<<"$url")"
  base="http://127.0.0.1:$port"
  if curl -fsS -o /dev/null --max-time 1 "$base/health" 2>/dev/null; then
    ko "port $port is already in use"
    return
  fi
  t0="$(now_ms)"
  PORT="$port" SERVER_PORT="$port" setsid "${cmd[@]}" </dev/null >"$TMP/out" 2>&1 &
  pid=$!
  ready=0
  for _ in $(seq 1 1500); do # 30 s
    if curl -fsS -o /dev/null --max-time 1 "$base/health" 2>/dev/null; then ready=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  if [ $ready = 1 ]; then
    ok "GET /health 200 after $(($(now_ms) - t0)) ms"
  else
    ko "not ready: $(tail -n 5 "$TMP/out")"
    kill -KILL -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return
  fi
  out="$(curl -sS -X POST -H 'Content-Type: application/json' --data-binary "$payload" -w '\n%{http_code}' "$base/invoke")"
  code="${out##*$'\n'}" out="${out%$'\n'*}"
  if [ "$code" = 200 ] && same_json "$out" "$expected"; then ok "POST /invoke -> $out"; else ko "POST /invoke -> [$code] $out"; fi
  for p in "${BAD_PAYLOADS[@]}"; do
    out="$(curl -sS -X POST -H 'Content-Type: application/json' --data-binary "$p" -w '\n%{http_code}' "$base/invoke")"
    code="${out##*$'\n'}" out="${out%$'\n'*}"
    if [ "$code" = 400 ] && [ -n "$(jq -r '.error.message // empty' <<<"$out" 2>/dev/null)" ]; then
      ok "$p -> 400 $(jq -r .error.message <<<"$out")"
    else
      ko "$p -> [$code] $out"
    fi
  done
  t0="$(now_ms)"
  kill -TERM -- "-$pid" 2>/dev/null # the whole group, as the watchdog does
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
  if kill -0 "$pid" 2>/dev/null; then
    ko "still running 3 s after SIGTERM"
    kill -KILL -- "-$pid" 2>/dev/null
  else
    ok "exited $(($(now_ms) - t0)) ms after SIGTERM"
  fi
  wait "$pid" 2>/dev/null
}

manifests=()
if [ "$#" -eq 0 ]; then
  manifests=("$EX"/*/function.json)
else
  for a in "$@"; do manifests+=("$EX/${a%/}/function.json"); done
fi

for manifest in "${manifests[@]}"; do
  name="$(jq -r .name "$manifest")" || { ko "$manifest: unreadable"; continue; }
  mode="$(jq -r .mode "$manifest")"
  dir="$(cd "$(dirname "$manifest")" && cd "$(jq -r '.dir // "."' "$manifest")" && pwd)"
  read -ra cmd <<<"$(jq -r .command "$manifest")"
  payload="$(jq -c .example.payload "$manifest")"
  expected="$(jq -c .example.output "$manifest")"
  echo "$name ($mode): ${cmd[*]}"
  (
    cd "$dir" || exit 1
    case "$mode" in
      STDIO)
        if [ "$(jq -r '.stdio_protocol // ""' "$manifest")" = lines ]; then test_lines; else test_stdio; fi ;;
      FILE) test_file ;;
      HTTP | WARM)
        # the manifest's env (e.g. READY_TIMEOUT_MS) is for the watchdog; PORT is what the runtime reads
        test_http ;;
      *) ko "unknown mode $mode" ;;
    esac
    echo "$passed $failed" >"$TMP/counts"
  )
  read -r passed failed <"$TMP/counts"
done
rm -f "$TMP/counts" "$TMP/err" "$TMP/out"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
