// The emulator's page. It reads the emulator's API only: the lists once
// (and again after a reconnection), then the GET /v1/events stream. Every
// value from the API is put in the page as text (textContent), never as markup.
//
// Field names follow the nanofaas control-plane API (FunctionResponse,
// ExecutionStatus, ErrorInfo); the emulator's extra fields are used when
// present, and every optional field may be missing.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  // A later state never goes back to an earlier one: an event and a list
  // fetched around the same time may arrive in either order.
  const RANK = { queued: 0, running: 1, success: 2, error: 2, timeout: 2 };

  const state = {
    functions: new Map(), // name -> FunctionResponse
    execs: new Map(), // executionId -> ExecutionStatus (+ seq)
    seq: 0,
    selected: null,
    logs: [], // the selected execution's lines, by index
    logsLoaded: false,
    input: undefined,
  };

  const first = (...vals) => vals.find((v) => v !== undefined && v !== null);

  // el builds an element; children are nodes or text (never parsed as HTML).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // ---- formatting ----
  function ms(v) {
    if (typeof v !== 'number') return '–';
    return v < 1000 ? `${v} ms` : `${(v / 1000).toFixed(2)} s`;
  }
  function kb(v) {
    if (typeof v !== 'number') return '–';
    return v < 1024 ? `${v} KiB` : `${(v / 1024).toFixed(1)} MiB`;
  }
  function clock(iso) {
    const d = iso ? new Date(iso) : null;
    if (!d || isNaN(d)) return '–';
    const p = (n, w = 2) => String(n).padStart(w, '0');
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }
  function json(v) {
    if (v === undefined) return '';
    try {
      return JSON.stringify(v, null, 2);
    } catch (e) {
      return String(v);
    }
  }
  // errorInfo reads an ErrorInfo ({code, message}), or a bare string.
  function errorInfo(e) {
    if (e === undefined || e === null) return null;
    if (typeof e !== 'object') return { code: String(e), message: '' };
    return { code: first(e.code, 'ERROR'), message: first(e.message, '') };
  }
  // bodyError reads an error answer of the API: flat ({error, message}),
  // nested ({error: {code, message}}) or anything else.
  function bodyError(body, status) {
    if (body && typeof body === 'object') {
      if (body.error && typeof body.error === 'object') {
        const e = errorInfo(body.error);
        return e.message ? `${e.code}: ${e.message}` : e.code;
      }
      if (typeof body.error === 'string') return body.message ? `${body.error}: ${body.message}` : body.error;
      if (typeof body.message === 'string') return body.message;
    }
    return `HTTP ${status}`;
  }

  // ---- model ----
  const execId = (x) => first(x.executionId, x.id);
  const execFn = (x) => first(x.function, x.functionName, '');

  function fnInfo(f) {
    // The emulator's mode (WARM included) when it says it, else upstream's.
    const mode = first(f.mode, f.runtimeMode, '');
    const warm = first(f.warm, mode === 'WARM');
    const cmd = Array.isArray(f.command) ? f.command.join(' ') : first(f.command, f.runtimeCommand, '');
    let where = cmd ? (f.dir ? `${cmd} (in ${f.dir})` : cmd) : '';
    if (f.image) where = where ? `${where}; image ${f.image}` : `image ${f.image}`;
    const wd = f.watchdog || null;
    let warmState = 'one-shot';
    if (warm) {
      const health = wd && wd.health ? first(wd.health.status, '') : '';
      warmState = health || (wd && wd.pid ? `pid ${wd.pid}` : 'not started');
      if (wd && wd.pid && health) warmState += ` (pid ${wd.pid})`;
    }
    return {
      name: f.name,
      mode: warm && mode !== 'WARM' ? `${mode}, warm` : mode,
      where,
      warmState,
      restarts: warm && wd ? first(wd.restarts, 0) : null,
      problem: first(f.manifestError, f.degradationReason),
    };
  }

  function upsertFunction(f) {
    if (!f || !f.name) return;
    state.functions.set(f.name, f);
    renderFunctions();
  }

  function upsertExec(x) {
    const id = x && execId(x);
    if (!id) return;
    const old = state.execs.get(id);
    if (old && (RANK[old.status] ?? 0) > (RANK[x.status] ?? 0)) return;
    state.execs.set(id, Object.assign({}, x, { seq: old ? old.seq : ++state.seq }));
    scheduleRender();
    if (state.selected === id) renderDetail();
  }

  // ---- rendering ----
  let renderPending = false;
  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    requestAnimationFrame(() => {
      renderPending = false;
      renderExecutions();
    });
  }

  function fillSelect(sel, names, keepAll) {
    const cur = sel.value;
    sel.replaceChildren();
    if (keepAll) sel.append(el('option', { value: '' }, 'all'));
    for (const n of names) sel.append(el('option', { value: n }, n));
    if ([...sel.options].some((o) => o.value === cur)) sel.value = cur;
  }

  function renderFunctions() {
    const names = [...state.functions.keys()].sort();
    const body = $('functions').tBodies[0];
    body.replaceChildren();
    for (const n of names) {
      const f = fnInfo(state.functions.get(n));
      body.append(el('tr', { 'data-function': n, class: 'fn' },
        el('td', null, el('strong', null, f.name)),
        el('td', null, f.mode),
        el('td', { class: 'warm-state' }, f.warmState),
        el('td', { class: 'num' }, f.restarts === null ? '–' : f.restarts)));
      body.append(el('tr', { class: 'where' }, el('td', { colspan: 4 }, f.where)));
      if (f.problem) body.append(el('tr', { class: 'problem' }, el('td', { colspan: 4 }, `manifest not reloaded: ${f.problem}`)));
    }
    fillSelect($('invoke-function'), names, false);
    fillSelect($('filter-function'), names, true);
  }

  function renderExecutions() {
    const fn = $('filter-function').value;
    const st = $('filter-status').value;
    const all = [...state.execs.values()].sort((a, b) => {
      const ta = Date.parse(a.createdAt);
      const tb = Date.parse(b.createdAt);
      if (!isNaN(ta) && !isNaN(tb) && ta !== tb) return tb - ta;
      return b.seq - a.seq;
    });
    const shown = all.filter((x) => (!fn || execFn(x) === fn) && (!st || x.status === st));
    const body = $('executions').tBodies[0];
    body.replaceChildren();
    for (const x of shown) {
      const id = execId(x);
      const tr = el('tr', { 'data-id': id, 'data-status': x.status, tabindex: 0, class: id === state.selected ? 'selected' : null },
        el('td', null, clock(first(x.createdAt, x.startedAt))),
        el('td', null, id),
        el('td', null, execFn(x)),
        el('td', null, el('span', { class: `status st-${x.status}` }, x.status)),
        el('td', { class: 'num' }, ms(x.durationMs)),
        el('td', { class: 'num' }, ms(x.initMs)),
        el('td', { class: 'num' }, kb(x.maxRssKb)),
        el('td', { class: 'num' }, first(x.exitCode, '–')));
      tr.addEventListener('click', () => select(id));
      tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') select(id); });
      body.append(tr);
    }
    $('executions-empty').hidden = shown.length > 0;
    $('executions-empty').textContent = all.length ? 'No execution matches the filters.' : 'No executions yet: invoke a function.';
    $('exec-count').textContent = all.length ? `${shown.length} of ${all.length}` : '';
  }

  function fact(name, value) {
    return el('div', { 'data-fact': name }, el('dt', null, name), el('dd', null, value));
  }

  function renderDetail() {
    const x = state.execs.get(state.selected);
    const sec = $('detail');
    if (!x) {
      sec.hidden = true;
      return;
    }
    sec.hidden = false;
    $('detail-id').textContent = execId(x);
    const badge = $('detail-status');
    badge.textContent = x.status;
    badge.className = `status st-${x.status}`;
    const facts = [
      fact('Function', execFn(x) || '–'),
      fact('Created', clock(x.createdAt)),
      fact('Started', clock(x.startedAt)),
      fact('Finished', clock(x.finishedAt)),
      fact('Queued', ms(x.queuedMs)),
      fact('Init', ms(x.initMs)),
      fact('Duration', ms(x.durationMs)),
      fact('Total', ms(x.totalMs)),
      fact('Peak memory', kb(x.maxRssKb)),
      fact('Exit code', first(x.exitCode, '–')),
    ];
    if (x.runtime) facts.push(fact('Runtime', x.runtime + (x.warm ? ', warm' : '')));
    if (x.async !== undefined) facts.push(fact('Invoked', x.async ? 'enqueued (async)' : 'sync'));
    $('detail-facts').replaceChildren(...facts);

    $('detail-input').textContent = state.input === undefined ? '…' : json(state.input);
    const out = $('detail-output');
    const err = errorInfo(x.error);
    if (err) {
      $('detail-result-title').textContent = 'Error';
      out.className = 'error';
      out.textContent = err.message ? `${err.code}: ${err.message}` : err.code;
    } else if (x.status === 'success') {
      $('detail-result-title').textContent = 'Output';
      out.className = '';
      out.textContent = json(x.output === undefined ? null : x.output);
    } else {
      $('detail-result-title').textContent = 'Output';
      out.className = '';
      out.textContent = `(${x.status}: no output yet)`;
    }
    renderLogs();
  }

  function renderLogs() {
    const lines = state.logs.filter((l) => l !== undefined);
    $('detail-logs').textContent = lines.length ? lines.map((l) => `${clock(l.time)}  ${l.line}`).join('\n') : (state.logsLoaded ? '(no log lines)' : '…');
    $('detail-log-count').textContent = lines.length ? `(${lines.length})` : '';
  }

  // ---- API ----
  async function getJSON(path) {
    const resp = await fetch(path, { headers: { Accept: 'application/json' } });
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      // not JSON: the status says enough
    }
    if (!resp.ok) throw new Error(`GET ${path}: ${bodyError(body, resp.status)}`);
    return body;
  }

  async function select(id) {
    state.selected = id;
    state.logs = [];
    state.logsLoaded = false;
    state.input = undefined;
    for (const tr of $('executions').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.id === id);
    renderDetail();
    const enc = encodeURIComponent(id);
    const [input, logs] = await Promise.allSettled([getJSON(`/v1/executions/${enc}/input`), getJSON(`/v1/executions/${enc}/logs`)]);
    if (state.selected !== id) return;
    state.input = input.status === 'fulfilled' ? input.value : `(${input.reason.message})`;
    if (logs.status === 'fulfilled' && Array.isArray(logs.value.lines)) {
      logs.value.lines.forEach((l, i) => { state.logs[i] = l; });
    } else if (logs.status === 'rejected') {
      state.logs = [{ time: null, line: `(${logs.reason.message})` }];
    }
    state.logsLoaded = true;
    renderDetail();
  }

  function addLog(ev) {
    if (!ev || ev.executionId !== state.selected) return;
    const i = typeof ev.index === 'number' ? ev.index : state.logs.length;
    state.logs[i] = { time: ev.time, line: ev.line };
    renderLogs();
  }

  async function loadAll() {
    try {
      const fns = await getJSON('/v1/functions');
      state.functions.clear();
      for (const f of fns || []) state.functions.set(f.name, f);
      renderFunctions();
      const list = await getJSON('/v1/executions');
      // newest first: give the oldest the lowest sequence number
      for (const x of (list || []).slice().reverse()) upsertExec(x);
      scheduleRender();
    } catch (e) {
      setConn('closed', `cannot load: ${e.message}`);
    }
  }

  function setConn(s, text) {
    const c = $('conn');
    c.dataset.state = s;
    c.textContent = text || { live: 'live', reconnecting: 'reconnecting…', closed: 'disconnected: reload the page', connecting: 'connecting…' }[s];
  }

  function connect() {
    const es = new EventSource('/v1/events');
    es.addEventListener('open', () => {
      setConn('live');
      loadAll();
    });
    es.addEventListener('error', () => setConn(es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting'));
    es.addEventListener('execution', (ev) => upsertExec(JSON.parse(ev.data)));
    es.addEventListener('function', (ev) => upsertFunction(JSON.parse(ev.data)));
    es.addEventListener('log', (ev) => addLog(JSON.parse(ev.data)));
    es.addEventListener('function-removed', (ev) => {
      state.functions.delete(JSON.parse(ev.data).name);
      renderFunctions();
    });
  }

  function showResult(kind, text) {
    const r = $('invoke-result');
    r.className = kind;
    r.textContent = text;
  }

  async function invoke(ev) {
    ev.preventDefault();
    const name = $('invoke-function').value;
    if (!name) return showResult('error', 'No function to invoke.');
    let input;
    try {
      input = JSON.parse($('invoke-payload').value);
    } catch (e) {
      return showResult('error', `The payload is not JSON: ${e.message}`);
    }
    const verb = $('invoke-async').checked ? 'enqueue' : 'invoke';
    const button = $('invoke-submit');
    button.disabled = true;
    showResult('', `${verb === 'invoke' ? 'invoking' : 'enqueuing'} ${name}…`);
    try {
      const resp = await fetch(`/v1/functions/${encodeURIComponent(name)}:${verb}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ input }),
      });
      let body = null;
      try {
        body = await resp.json();
      } catch (e) {
        // not JSON
      }
      const id = first(body && body.executionId, resp.headers.get('X-Execution-Id'));
      if (id) select(id);
      if (body && body.status && id) {
        const err = errorInfo(body.error);
        showResult(err ? 'error' : '', `${id}: ${body.status}${err ? ` (${err.code})` : ''}`);
      } else {
        showResult('error', `${name}:${verb} failed: ${bodyError(body, resp.status)}`);
      }
    } catch (e) {
      showResult('error', `The request failed: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('invoke').addEventListener('submit', invoke);
    $('filter-function').addEventListener('change', renderExecutions);
    $('filter-status').addEventListener('change', renderExecutions);
    connect();
  });
})();
