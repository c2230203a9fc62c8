package process

import (
	"bufio"
	"errors"
	"io"
	"os"
	"sync"

	"nanofaas.dev/watchdog/procio"
)

// maxLine is the longest line passed through in one piece; longer lines are
// split into pieces of this size, never a reason to stop reading.
const maxLine = 64 * 1024

// The buffers of the pumps are reused from one process to the next: a
// process per invocation would otherwise allocate 96 KiB of them each time
// (a line reader for stderr, a chunk for the captured stdout), most of what
// a STDIO invocation allocates. Writers never keep what they are given
// (io.Writer's contract), and a capture copies what it keeps.
var (
	lineReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, maxLine) }}
	chunks      = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}
)

// pumpLines copies r to w one line per Write, splitting lines longer than
// maxLine, and copies everything to tail as well when tail is not nil.
func pumpLines(r io.Reader, w io.Writer, tail *procio.Tail) {
	br := lineReaders.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() {
		br.Reset(nil)
		lineReaders.Put(br)
	}()
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if tail != nil {
				_, _ = tail.Write(line)
			}
			if line[len(line)-1] != '\n' {
				// A piece of a long line, or the last line without newline.
				line = append(append(make([]byte, 0, len(line)+1), line...), '\n')
			}
			_, _ = w.Write(line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// Capture collects a stream up to a limit and discards the rest, so memory
// stays bounded whatever the process prints.
type Capture struct {
	limit    int64
	buf      []byte
	overflow bool
}

// pump reads r to its end; onOverflow runs once when the limit is passed.
func (c *Capture) pump(r io.Reader, onOverflow func()) {
	bp := chunks.Get().(*[]byte)
	defer chunks.Put(bp)
	chunk := *bp
	for {
		n, err := r.Read(chunk)
		if n > 0 && !c.overflow {
			if int64(len(c.buf)+n) > c.limit {
				c.overflow = true
				c.buf = nil
				if onOverflow != nil {
					onOverflow()
				}
			} else {
				c.buf = append(c.buf, chunk[:n]...)
			}
		}
		if err != nil {
			return
		}
	}
}

// pipe returns an os.Pipe, or nil files when not wanted.
func pipe(want bool) (r, w *os.File, err error) {
	if !want {
		return nil, nil, nil
	}
	return os.Pipe()
}
