package procio

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

func TestTailKeepsTheEnd(t *testing.T) {
	var tail Tail
	for i := 0; i < 3; i++ {
		_, _ = tail.Write(bytes.Repeat([]byte{'a' + byte(i)}, DefaultTailSize/2))
	}
	got := tail.String()
	want := strings.Repeat("b", DefaultTailSize/2) + strings.Repeat("c", DefaultTailSize/2)
	if got != want {
		t.Fatalf("zero Tail kept %d bytes starting %q, want the last %d bytes (b..c)", len(got), got[:8], DefaultTailSize)
	}
	small := Tail{Max: 5}
	_, _ = small.Write([]byte("hello, "))
	_, _ = small.Write([]byte("world"))
	if got := small.String(); got != "world" {
		t.Fatalf("Tail{Max: 5} kept %q, want %q", got, "world")
	}
}

func TestSyncWriterKeepsWritesWhole(t *testing.T) {
	var buf bytes.Buffer
	w := NewSyncWriter(&buf)
	if NewSyncWriter(w) != w {
		t.Fatal("wrapping a SyncWriter again returned a new writer")
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		line := []byte(strings.Repeat(string(rune('a'+i)), 100) + "\n")
		wg.Go(func() {
			for range 100 {
				_, _ = w.Write(line)
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("got %d lines, want 800", len(lines))
	}
	for _, l := range lines {
		if len(l) != 100 || strings.Count(l, l[:1]) != 100 {
			t.Fatalf("interleaved line %q", l)
		}
	}
}
