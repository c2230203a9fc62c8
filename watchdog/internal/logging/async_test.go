package logging

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// A pipe nobody reads: writes never block, what does not fit is dropped
// whole and counted, and once the pipe is read the writer says how many
// were dropped; what was kept arrives in order.
func TestAsyncWriterNeverBlocksOnAStuckPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	a := NewAsyncWriter(w, 64<<10)
	a.Notice = func(n uint64) []byte { return fmt.Appendf(nil, "dropped %d\n", n) }
	line := strings.Repeat("x", 1000)
	const writes = 2000 // 2 MB: far past the pipe (64 KiB) and the queue
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range writes {
			fmt.Fprintf(a, "%05d %s\n", i, line)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writes blocked on a pipe nobody reads")
	}
	dropped := a.Dropped()
	if dropped == 0 || dropped >= writes {
		t.Fatalf("dropped %d of %d writes; want some, not all", dropped, writes)
	}

	// The reader comes back; the writer is closed meanwhile.
	closed := make(chan bool, 1)
	go func() {
		ok := a.Close(10 * time.Second)
		w.Close()
		closed <- ok
	}()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 4096)
	last, kept, reported := -1, 0, 0
	for sc.Scan() {
		text := sc.Text()
		if n, ok := strings.CutPrefix(text, "dropped "); ok {
			var k int
			fmt.Sscan(n, &k)
			reported += k
			continue
		}
		var i int
		if _, err := fmt.Sscanf(text, "%05d ", &i); err != nil || len(text) != 1006 {
			t.Fatalf("a write was cut or mixed: %q", text)
		}
		if i <= last {
			t.Fatalf("write %d after %d: out of order", i, last)
		}
		last = i
		kept++
	}
	if !<-closed {
		t.Error("Close did not finish with the pipe read")
	}
	if uint64(reported) != dropped || kept+reported != writes {
		t.Errorf("kept %d, reported %d dropped, counted %d dropped, of %d writes", kept, reported, dropped, writes)
	}
}

// A record larger than the queue is still written when the queue is empty.
func TestAsyncWriterTakesOneLargeRecord(t *testing.T) {
	var out syncBuf
	a := NewAsyncWriter(&out, 16)
	big := bytes.Repeat([]byte("y"), 1<<20)
	_, _ = a.Write(big)
	if !a.Close(5 * time.Second) {
		t.Fatal("Close timed out")
	}
	if out.Len() != len(big) || a.Dropped() != 0 {
		t.Errorf("wrote %d bytes, dropped %d; want the whole record", out.Len(), a.Dropped())
	}
}

// Close gives up on a destination that never takes the bytes.
func TestAsyncWriterCloseIsBounded(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	a := NewAsyncWriter(w, 1<<20)
	_, _ = a.Write(bytes.Repeat([]byte("z"), 512<<10))
	start := time.Now()
	if a.Close(100 * time.Millisecond) {
		t.Error("Close reported success with the pipe full")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v", took)
	}
	// The writer goroutine ends once the pipe is read.
	go func() { _, _ = bufio.NewReader(r).WriteTo(discard{}) }()
	<-a.done
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

type syncBuf struct {
	bytes.Buffer
}
