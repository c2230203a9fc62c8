package process

import (
	"bytes"
	"io"
	"testing"

	"nanofaas.dev/watchdog/procio"
)

// chunkReader returns data in reads whose sizes come from the fuzzer, so
// that limits and line ends fall anywhere relative to a read.
type chunkReader struct {
	data  []byte
	sizes []byte
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.sizes) > 0 {
		n = int(r.sizes[r.i%len(r.sizes)])*97 + 1
		r.i++
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// FuzzCapture checks the output size cap: whatever a function prints and
// however the reads fall, the capture keeps exactly the output when it is
// within the limit, and nothing (overflow, reported once) when it is over:
// memory never holds more than the limit.
func FuzzCapture(f *testing.F) {
	f.Add([]byte(`{"a":1}`), []byte{0}, uint16(7))
	f.Add([]byte(`{"a":1}`), []byte{0}, uint16(6))
	f.Add(bytes.Repeat([]byte("x"), 70000), []byte{255, 3}, uint16(65535))
	f.Add([]byte{}, []byte{}, uint16(1))
	f.Fuzz(func(t *testing.T, data, sizes []byte, limit uint16) {
		if limit == 0 {
			return
		}
		c := &Capture{limit: int64(limit)}
		overflows := 0
		c.pump(&chunkReader{data: data, sizes: sizes}, func() { overflows++ })
		if len(data) <= int(limit) {
			if c.overflow || overflows != 0 || !bytes.Equal(c.buf, data) && !(len(c.buf) == 0 && len(data) == 0) {
				t.Fatalf("%d bytes within limit %d: overflow=%v (%d) kept %d bytes", len(data), limit, c.overflow, overflows, len(c.buf))
			}
			return
		}
		if !c.overflow || overflows != 1 || c.buf != nil {
			t.Fatalf("%d bytes over limit %d: overflow=%v reported %d times, kept %d bytes", len(data), limit, c.overflow, overflows, len(c.buf))
		}
	})
}

// FuzzPumpLines checks the pass-through of a function's stderr (and stdout
// where it is not the result): every byte arrives, in order, one line per
// write, no write longer than a line piece plus its newline, and the tail
// holds the last bytes. Long lines come from a run: runLen copies of one
// byte inserted at runAt, so that inputs stay small (the fuzzer handles
// and minimizes small inputs far faster) while lines still cross maxLine.
func FuzzPumpLines(f *testing.F) {
	f.Add([]byte("short\nlines\n"), []byte{0}, uint32(0), uint16(0))
	f.Add([]byte("no newline at end"), []byte{1, 2}, uint32(0), uint16(0))
	f.Add([]byte("a\nb"), []byte{255}, uint32(maxLine+10), uint16(1))
	f.Add([]byte("x\n"), []byte{3}, uint32(2*maxLine), uint16(0))
	f.Add([]byte("\n\n\r\n\x00\xff\n"), []byte{}, uint32(5), uint16(3))
	f.Fuzz(func(t *testing.T, small, sizes []byte, runLen uint32, runAt uint16) {
		data := small
		if len(small) > 0 {
			at := int(runAt) % len(small)
			run := bytes.Repeat(small[at:at+1], int(runLen%(3*maxLine)))
			data = append(append(append([]byte(nil), small[:at]...), run...), small[at:]...)
		}
		var out recorder
		var tail procio.Tail
		pumpLines(&chunkReader{data: data, sizes: sizes}, &out, &tail)
		var joined []byte
		for i, w := range out.writes {
			if len(w) == 0 || w[len(w)-1] != '\n' || len(w) > maxLine+1 {
				t.Fatalf("write %d is %d bytes, not one line piece ending in a newline", i, len(w))
			}
			if bytes.IndexByte([]byte(w[:len(w)-1]), '\n') >= 0 {
				t.Fatalf("write %d holds more than one line", i)
			}
			joined = append(joined, w...)
		}
		// Taking out the newlines the pump added gives the input back.
		if stripped := bytes.ReplaceAll(joined, []byte("\n"), nil); !bytes.Equal(stripped, bytes.ReplaceAll(data, []byte("\n"), nil)) {
			t.Fatalf("bytes lost or changed in pass-through")
		}
		if n := bytes.Count(data, []byte("\n")); bytes.Count(joined, []byte("\n")) < n {
			t.Fatalf("line ends lost")
		}
		want := data
		if len(want) > procio.DefaultTailSize {
			want = want[len(want)-procio.DefaultTailSize:]
		}
		if got := tail.String(); got != string(want) {
			t.Fatalf("tail is %d bytes, want the last %d", len(got), len(want))
		}
	})
}
