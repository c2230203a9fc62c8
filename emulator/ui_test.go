package emulator_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// requireChromium returns the path of a Chromium to drive, or skips the test
// loudly. With CI=true or NANOFAAS_REQUIRE_CHROMIUM=1 (scripts/test.sh sets
// it once scripts/chromium-up.sh has installed the browser) a missing browser
// is a failure instead.
func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium on this machine (chromium, chromium-browser or google-chrome in PATH): the page's browser tests did not run; scripts/chromium-up.sh installs it."
	if os.Getenv("CI") == "true" || os.Getenv("NANOFAAS_REQUIRE_CHROMIUM") == "1" {
		t.Fatal(msg + " In CI (or with NANOFAAS_REQUIRE_CHROMIUM=1) the browser must be there: this is a failure.")
	}
	fmt.Fprintln(os.Stderr, "SKIP "+t.Name()+": "+msg)
	t.Skip(msg)
	return ""
}

// serveForPage starts `emulator serve` on a free port with the given
// manifests, and returns the page's address, as it prints it at start. The
// emulator is stopped with SIGINT, and waited for, when the test ends.
func serveForPage(t *testing.T, manifests ...string) string {
	page, _ := serveStoppable(t, manifests...)
	return page
}

// serveStoppable is serveForPage that also returns the function that stops
// the emulator (SIGINT) and waits for it to exit; it runs at the end of the
// test too, if it has not run before.
func serveStoppable(t *testing.T, manifests ...string) (string, func()) {
	t.Helper()
	args := []string{"serve", "--listen", "127.0.0.1:0"}
	for _, m := range manifests {
		args = append(args, "--function", m)
	}
	cmd := exec.Command("emulator", args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start emulator serve: %v", err)
	}
	var (
		mu  sync.Mutex
		log strings.Builder
	)
	page := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			log.WriteString(line + "\n")
			mu.Unlock()
			if u, ok := strings.CutPrefix(line, "emulator: the page: "); ok {
				page <- u
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	var once sync.Once
	stop := func() { once.Do(func() { stopServe(t, cmd, done, &mu, &log) }) }
	t.Cleanup(stop)
	select {
	case u := <-page:
		return u, stop
	case <-done:
		t.Fatalf("emulator serve exited before printing the page's address")
	case <-time.After(30 * time.Second):
		t.Fatalf("emulator serve printed no page address within 30s")
	}
	return "", stop
}

// stopServe sends SIGINT to the emulator and waits for it to exit 0.
func stopServe(t *testing.T, cmd *exec.Cmd, done <-chan struct{}, mu *sync.Mutex, log *strings.Builder) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGINT)
	exited := make(chan error, 1)
	go func() { <-done; exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("emulator serve did not exit 0 after SIGINT: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Errorf("emulator serve did not stop within 30s of SIGINT")
	}
	if t.Failed() {
		mu.Lock()
		t.Logf("emulator serve stderr:\n%s", log.String())
		mu.Unlock()
	}
}

// writeManifest writes dir/name/function.json and returns the directory.
func writeManifest(t *testing.T, dir, name, manifest string) string {
	t.Helper()
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "function.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// pageFunctions writes the manifests the page tests serve: echo (its output
// holds the payload, its log a line of markup), fail (always a function error
// whose message holds markup) and, when python3 is here, warm (a WARM runtime).
func pageFunctions(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	echo := `{"name": "echo", "mode": "STDIO", "command": "sh -c 'p=$(cat); echo \"echo: read ${#p} bytes <script>window.__pwned=3</script>\" >&2; printf \"{\\\"echo\\\":%s}\" \"$p\"'"}`
	fail := `{"name": "fail", "mode": "STDIO", "command": "sh -c 'cat >/dev/null; echo \"fail: <b>always</b> fails\" >&2; exit 3'"}`
	dirs := []string{writeManifest(t, dir, "echo", echo), writeManifest(t, dir, "fail", fail)}
	if _, err := exec.LookPath("python3"); err == nil {
		rt, err := filepath.Abs("../fixtures/runtimes/http_runtime.py")
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, writeManifest(t, dir, "warm", fmt.Sprintf(`{"name": "warm", "mode": "WARM", "command": %q}`, rt+" ok")))
	} else {
		t.Log("no python3: the warm function is left out")
	}
	return dirs
}

// browser starts a headless Chromium whose profile and temporary files live
// in the test's temporary directory, and returns its context.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin := requireChromium(t)
	tmp := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(filepath.Join(tmp, "profile")),
		chromedp.Env("TMPDIR="+tmp),
		chromedp.NoSandbox, // as root, Chromium refuses to start sandboxed
		chromedp.WindowSize(1360, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		// Waits for the browser to exit.
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("cannot start %s: %v", bin, err)
	}
	return ctx
}

// until waits for a JavaScript expression to be true in the page.
func until(expr string) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(60*time.Second))
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := poll(ctx, t); err != nil {
			return fmt.Errorf("waiting for %s: %w", expr, err)
		}
		return nil
	})
}

// eval evaluates a JavaScript expression and stores its value in v.
func eval[T any](expr string, v *T) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		r, err := chromedp.Evaluate[T](expr)(ctx, t)
		if err != nil {
			return fmt.Errorf("evaluating %s: %w", expr, err)
		}
		if v != nil {
			*v = r
		}
		return nil
	})
}

// setValue sets a form field's value, as the user would, with its change event.
func setValue(sel, value string) chromedp.Action[chromedp.Void] {
	return eval[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%s); e.value = %s; e.dispatchEvent(new Event("change")); return true; })()`,
		jsString(sel), jsString(value)), nil)
}

// click clicks the element that matches a CSS selector.
func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS(sel))
}

// text is a JavaScript expression: the text of the element matching sel.
func text(sel string) string {
	return fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? "")`, sel)
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: %v\nthe page's main:\n%s", what, err, html)
	}
}

// TestPage drives the page served by emulator serve in a real (headless)
// browser: the functions appear, an invocation through the form appears and
// opens with its payload, output and log lines, an execution started through
// the API appears without a reload, a failing function shows its error, the
// filters filter, and nothing the functions print becomes markup.
func TestPage(t *testing.T) {
	ctx := browser(t)
	dirs := pageFunctions(t)
	page := serveForPage(t, dirs...)
	api := strings.TrimSuffix(page, "/ui/")
	warm := len(dirs) == 3

	run(t, ctx, "load the page",
		chromedp.Navigate(page),
		until(`document.getElementById("conn").dataset.state === "live"`),
		until(`document.querySelectorAll("#functions tbody tr[data-function]").length === `+fmt.Sprint(len(dirs))),
		eval[string](`window.__loadedOnce = "yes"`, nil),
	)
	if warm {
		// The warm watchdog's start comes as a "function" event.
		run(t, ctx, "see the warm function ready",
			until(text(`#functions tr[data-function="warm"] .warm-state`)+`.startsWith("ready")`))
	}

	// Invoke through the form; the payload carries markup.
	const payload = `{"input": "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>"}`
	run(t, ctx, "invoke echo through the form",
		setValue("#invoke-function", "echo"),
		setValue("#invoke-payload", payload),
		click("#invoke-submit"),
		until(`document.querySelector('#executions tbody tr[data-status="success"]') !== null`),
		until(text("#invoke-result")+`.includes("success")`),
	)
	var echoID string
	run(t, ctx, "read the execution's id",
		eval(`document.querySelector('#executions tbody tr[data-status="success"]').dataset.id`, &echoID))

	// A failing function, through the form too: its error shows.
	run(t, ctx, "invoke fail through the form",
		setValue("#invoke-function", "fail"),
		setValue("#invoke-payload", `{"input": "x"}`),
		click("#invoke-submit"),
		until(`document.querySelector('#executions tbody tr[data-status="error"]') !== null`),
		until(`document.getElementById("detail-status").textContent === "error"`),
		until(text("#detail-output")+`.includes("FUNCTION_ERROR")`),
		until(text("#detail-output")+`.includes("fail: <b>always</b> fails")`),
		until(text("#detail-logs")+`.includes("fail: <b>always</b> fails")`),
		until(text(`#detail-facts [data-fact="Exit code"] dd`)+` === "3"`),
	)

	// Open the echo execution: its payload, output and log lines.
	run(t, ctx, "open the echo execution",
		click(fmt.Sprintf(`#executions tbody tr[data-id=%q]`, echoID)),
		until(`document.getElementById("detail-id").textContent === `+jsString(echoID)),
		until(text("#detail-input")+`.includes('<img src=x onerror=')`),
		until(text("#detail-input")+`.includes('<script>window.__pwned=2</script>')`),
		until(text("#detail-output")+`.includes('"echo"')`),
		until(text("#detail-output")+`.includes('<script>window.__pwned=2</script>')`),
		until(text("#detail-logs")+`.includes("echo: read ")`),
		until(text("#detail-logs")+`.includes("invocation finished")`),
	)

	// An execution enqueued through the API, not the page, appears live.
	body := strings.NewReader(`{"input": {"from": "the API"}}`)
	resp, err := http.Post(api+"/v1/functions/echo:enqueue", "application/json", body)
	if err != nil {
		t.Fatalf("POST echo:enqueue: %v", err)
	}
	var queued struct {
		ExecutionID string `json:"executionId"`
	}
	err = json.NewDecoder(resp.Body).Decode(&queued)
	resp.Body.Close()
	if err != nil || queued.ExecutionID == "" {
		t.Fatalf("POST echo:enqueue: no executionId (%v)", err)
	}
	run(t, ctx, "see the enqueued execution appear and finish without a reload",
		until(fmt.Sprintf(`document.querySelector('#executions tbody tr[data-id=%q][data-status="success"]') !== null`, queued.ExecutionID)),
		until(`window.__loadedOnce === "yes"`),
	)

	// The filters.
	var rows []string
	run(t, ctx, "filter by status",
		setValue("#filter-status", "error"),
		until(`document.querySelectorAll("#executions tbody tr").length === 1`),
		eval(`[...document.querySelectorAll("#executions tbody tr")].map(r => r.dataset.status)`, &rows),
	)
	if len(rows) != 1 || rows[0] != "error" {
		t.Errorf("status filter error: rows %v, want [error]", rows)
	}
	run(t, ctx, "filter by function",
		setValue("#filter-status", ""),
		setValue("#filter-function", "echo"),
		until(`document.querySelectorAll("#executions tbody tr").length === 2`),
		eval(`[...document.querySelectorAll("#executions tbody tr")].map(r => r.children[2].textContent)`, &rows),
	)
	if len(rows) != 2 || rows[0] != "echo" || rows[1] != "echo" {
		t.Errorf("function filter echo: rows %v, want [echo echo]", rows)
	}

	// Nothing the functions printed became markup or ran.
	var injected struct {
		Elements int    `json:"elements"`
		Pwned    string `json:"pwned"`
	}
	run(t, ctx, "look for injected elements",
		eval(`({
			elements: document.querySelectorAll("main img, main script, main b, [onerror]").length + document.scripts.length - 1,
			pwned: String(window.__pwned),
		})`, &injected))
	if injected.Elements != 0 || injected.Pwned != "undefined" {
		t.Errorf("the functions' output injected markup into the page: %d elements, window.__pwned=%s", injected.Elements, injected.Pwned)
	}

	if dir := os.Getenv("NANOFAAS_UI_SCREENSHOTS"); dir != "" {
		screenshots(t, ctx, dir)
	}
}

// shot takes a PNG screenshot of the whole page.
func shot(png *[]byte) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		b, err := chromedp.FullScreenshot(100)(ctx, t)
		*png = b
		return err
	})
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// screenshots saves PNGs of the page for the README
// (NANOFAAS_UI_SCREENSHOTS=DIR): an emulator serving examples/python-stdio
// and a warm runtime, a few invocations through the form, one success open,
// then one failure open.
func screenshots(t *testing.T, ctx context.Context, dir string) {
	t.Helper()
	rt, err := filepath.Abs("../fixtures/runtimes/http_runtime.py")
	if err != nil {
		t.Fatal(err)
	}
	warm := writeManifest(t, t.TempDir(), "warm-echo", fmt.Sprintf(`{"name": "warm-echo", "mode": "WARM", "command": %q}`, rt+" ok"))
	page := serveForPage(t, "../examples/python-stdio", warm)
	invoke := func(fn, payload string, status string, n int) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			setValue("#invoke-function", fn),
			setValue("#invoke-payload", payload),
			click("#invoke-submit"),
			until(fmt.Sprintf(`document.querySelectorAll('#executions tbody tr[data-status=%q]').length === %d`, status, n)),
		)
	}
	var overview, failed []byte
	run(t, ctx, "take the screenshots",
		chromedp.Navigate(page),
		until(`document.getElementById("conn").dataset.state === "live"`),
		until(text(`#functions tr[data-function="warm-echo"] .warm-state`)+`.startsWith("ready")`),
		invoke("warm-echo", `{"input": "first"}`, "success", 1),
		invoke("warm-echo", `{"input": "second"}`, "success", 2),
		invoke("python-stdio", `{"input": 42}`, "error", 1),
		invoke("python-stdio", `{"input": "hello", "n": 1}`, "success", 3),
		until(text("#detail-logs")+`.includes("callback delivered")`),
		eval[bool](`document.activeElement.blur() ?? true`, nil),
		shot(&overview),
		click(`#executions tbody tr[data-status="error"]`),
		until(`document.getElementById("detail-status").textContent === "error"`),
		until(text("#detail-logs")+`.includes("invocation failed")`),
		shot(&failed),
	)
	for name, png := range map[string][]byte{"emulator-page.png": overview, "emulator-page-error.png": failed} {
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", filepath.Join(dir, name))
	}
}

// sseRecord is one server-sent event as read by the test.
type sseRecord struct {
	name string
	data string
}

// readEvents reads a text/event-stream into a channel, closed at its end.
func readEvents(body io.Reader) <-chan sseRecord {
	ch := make(chan sseRecord, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		var ev sseRecord
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" || ev.data != "" {
					ch <- ev
				}
				ev = sseRecord{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: not JSON: %v", url, err)
	}
	return resp.StatusCode
}

// TestEventsAPI checks the API the page is built on, over real HTTP: GET
// /v1/events streams an execution's states and log lines as they happen,
// GET /v1/executions/{id}/input and /logs give its payload and the same
// lines, a warm function's lines go to the execution they belong to, and the
// stream ends when the emulator stops.
func TestEventsAPI(t *testing.T) {
	dirs := pageFunctions(t)
	page, stop := serveStoppable(t, dirs...)
	api := strings.TrimSuffix(page, "/ui/")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", api+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/events: %v", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("GET /v1/events: %d %q, want 200 text/event-stream", resp.StatusCode, ct)
	}
	events := readEvents(resp.Body)

	// The stream is open (the first comment was flushed) before the
	// invocation: every event of the execution must come.
	code, out := post(t, api+"/v1/functions/echo:enqueue", `{"input": {"a": "<x>"}}`)
	id, _ := out["executionId"].(string)
	if code != http.StatusAccepted || id == "" {
		t.Fatalf("echo:enqueue: %d %v", code, out)
	}
	var statuses []string
	var lines []string
	for done := false; !done; {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the event stream ended; got statuses %v, lines %q", statuses, lines)
			}
			switch ev.name {
			case "execution":
				var x struct{ ExecutionID, Status string }
				if err := json.Unmarshal([]byte(ev.data), &x); err != nil {
					t.Fatalf("execution event %s: %v", ev.data, err)
				}
				if x.ExecutionID == id {
					statuses = append(statuses, x.Status)
					done = x.Status == "success" || x.Status == "error" || x.Status == "timeout"
				}
			case "log":
				var l struct {
					ExecutionID, Line string
					Index             int
				}
				if err := json.Unmarshal([]byte(ev.data), &l); err != nil {
					t.Fatalf("log event %s: %v", ev.data, err)
				}
				if l.ExecutionID == id {
					if l.Index != len(lines) {
						t.Errorf("log event index %d, want %d", l.Index, len(lines))
					}
					lines = append(lines, l.Line)
				}
			}
		case <-ctx.Done():
			t.Fatalf("no end of execution %s on the event stream; statuses %v", id, statuses)
		}
	}
	if strings.Join(statuses, ",") != "queued,running,success" {
		t.Errorf("execution events: statuses %v, want queued, running, success", statuses)
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "echo: read ") {
		t.Errorf("log events: %q, want the function's line first", lines)
	}

	var input map[string]string
	if code := getJSON(t, api+"/v1/executions/"+id+"/input", &input); code != 200 || input["a"] != "<x>" {
		t.Errorf("GET /input: %d %v, want the payload {\"a\": \"<x>\"}", code, input)
	}
	var logs struct {
		ExecutionID string `json:"executionId"`
		Function    string `json:"function"`
		Lines       []struct{ Line string }
	}
	getJSON(t, api+"/v1/executions/"+id+"/logs", &logs)
	var got []string
	for _, l := range logs.Lines {
		got = append(got, l.Line)
	}
	if logs.ExecutionID != id || logs.Function != "echo" || strings.Join(got, "\n") != strings.Join(lines, "\n") {
		t.Errorf("GET /logs: %+v, want the lines of the log events: %q", logs, lines)
	}
	var notFound map[string]any
	if code := getJSON(t, api+"/v1/executions/exec-none/logs", &notFound); code != http.StatusNotFound {
		t.Errorf("GET /logs of an unknown execution: %d %v, want 404", code, notFound)
	}

	if len(dirs) == 3 {
		code, out := post(t, api+"/v1/functions/warm:invoke", `{"input": {"n": 1}}`)
		wid, _ := out["executionId"].(string)
		if code != 200 || out["status"] != "success" {
			t.Fatalf("warm:invoke: %d %v", code, out)
		}
		getJSON(t, api+"/v1/executions/"+wid+"/logs", &logs)
		found := false
		for _, l := range logs.Lines {
			found = found || strings.Contains(l.Line, "execution_id="+wid)
		}
		if !found {
			t.Errorf("the warm watchdog's lines naming %s are not in its logs: %+v", wid, logs.Lines)
		}
	}

	// Stopping the emulator ends the stream (it does not hold the shutdown).
	stop()
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-ctx.Done():
			t.Fatalf("the event stream did not end when the emulator stopped")
		}
	}
}
