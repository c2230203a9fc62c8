package main

import (
	"bytes"
	"fmt"
	"net/http"
	"time"
)

// target is one HTTP endpoint the benchmark calls, with the answer it expects.
type target struct {
	name   string
	url    string
	header http.Header
	body   []byte
	// want is the exact body expected, or nil to check only the status;
	// wantPrefix is a prefix expected when want is nil.
	want, wantPrefix []byte
	buf              bytes.Buffer
}

// call makes one request and returns its latency: from sending it to
// having read the whole answer. The request is built before the clock
// starts; a wrong status or body is an error.
func (t *target) call(c *http.Client) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodPost, t.url, bytes.NewReader(t.body))
	if err != nil {
		return 0, err
	}
	for k, v := range t.header {
		req.Header[k] = v
	}
	req.ContentLength = int64(len(t.body))
	t.buf.Reset()
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", t.name, err)
	}
	_, err = t.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: reading the answer: %w", t.name, err)
	}
	got := t.buf.Bytes()
	switch {
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("%s: HTTP %d: %s", t.name, resp.StatusCode, excerpt(got))
	case t.want != nil && !bytes.Equal(got, t.want):
		return 0, fmt.Errorf("%s: answered %s, want %s", t.name, excerpt(got), t.want)
	case t.want == nil && !bytes.HasPrefix(got, t.wantPrefix):
		return 0, fmt.Errorf("%s: answered %s, want it to start with %s", t.name, excerpt(got), t.wantPrefix)
	}
	return took, nil
}

func excerpt(b []byte) string {
	if len(b) > 300 {
		return fmt.Sprintf("%q...", b[:300])
	}
	return fmt.Sprintf("%q", b)
}
