package scripttest

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// httpOutcome is what a background request printed, or its transport error.
type httpOutcome struct {
	out string
	err error
}

// http-start NAME [http args] starts the request the http command would
// make, in the background, so that a script can do other things (send a
// second request, a signal) while it is in flight. http-wait NAME waits
// for it and prints what http prints.
func cmdHTTPStart(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! http-start")
	}
	if len(args) < 1 {
		ts.Fatalf("usage: http-start NAME [-H 'K: V'] [-d BODY | -f FILE] METHOD URL")
	}
	st := scriptState(ts)
	if st.requests == nil {
		st.requests = map[string]<-chan httpOutcome{}
	}
	if _, dup := st.requests[args[0]]; dup {
		ts.Fatalf("http-start: a request named %q is already started", args[0])
	}
	ex := prepareHTTP(ts, "http-start", args[1:])
	done := make(chan httpOutcome, 1)
	go func() {
		out, err := ex.run()
		done <- httpOutcome{out: out, err: err}
	}()
	st.requests[args[0]] = done
}

// http-wait NAME waits for the request http-start NAME started and prints
// its status, headers and body. With !, it expects a transport error.
func cmdHTTPWait(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: http-wait NAME")
	}
	st := scriptState(ts)
	done, ok := st.requests[args[0]]
	if !ok {
		ts.Fatalf("http-wait: no request named %q; start it with http-start", args[0])
	}
	delete(st.requests, args[0])
	o := <-done
	if o.err != nil {
		if neg {
			fmt.Fprintf(ts.Stdout(), "error: %v\n", o.err)
			return
		}
		ts.Fatalf("http-wait %s: %v", args[0], o.err)
	}
	fmt.Fprint(ts.Stdout(), o.out)
	if neg {
		ts.Fatalf("http-wait %s: request succeeded; ! http-wait only expects a transport error", args[0])
	}
}

// wait-body [-status N] [-timeout D] URL REGEXP polls GET URL until it
// answers N (200) with a body that matches REGEXP, e.g. a metric's value.
func cmdWaitBody(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! wait-body")
	}
	status := 200
	timeout := 15 * time.Second
	rest := parse(ts, "wait-body", args, func(fs *flag.FlagSet) {
		fs.IntVar(&status, "status", status, "expected status")
		fs.DurationVar(&timeout, "timeout", timeout, "how long to wait")
	})
	if len(rest) != 2 {
		ts.Fatalf("usage: wait-body [-status N] [-timeout D] URL REGEXP")
	}
	re, err := regexp.Compile(rest[1])
	ts.Check(err)
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	last := "no attempt"
	for time.Now().Before(deadline) {
		resp, err := client.Get(rest[0])
		if err != nil {
			last = err.Error()
		} else {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == status && re.Match(data) {
				return
			}
			last = "status " + strconv.Itoa(resp.StatusCode) + ": " + string(data)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("wait-body %s: no %d answer matching %q within %v (last: %s)", rest[0], status, rest[1], timeout, last)
}
