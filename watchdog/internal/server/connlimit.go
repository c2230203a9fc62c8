package server

import (
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// How a connection past the cap is turned away. Variables only so that the
// fault tests can shorten them.
var (
	// refuseTimeout bounds writing the refusal and reading what the client
	// sent, so that a refused client cannot hold a goroutine.
	refuseTimeout = time.Second
	// maxRefusing bounds the refusals being written at once; past it a
	// connection is closed without an answer.
	maxRefusing = 64
	// refusalLogEvery is the least time between two log lines about
	// refused connections, so that a flood does not flood the log.
	refusalLogEvery = 10 * time.Second
)

// limitListener caps the connections open at once. Each accepted
// connection holds a slot until it is closed. A connection accepted with
// every slot taken is answered at once with 503 TOO_MANY_CONNECTIONS and
// closed: Accept never blocks on the cap, so the kernel's backlog does not
// fill with connections nobody answers.
type limitListener struct {
	net.Listener
	slots    chan struct{}
	refusing chan struct{}
	refusal  []byte
	log      *slog.Logger
	// refused is called once per refused connection (the metrics).
	refused func()

	refusedN atomic.Int64
	lastLog  atomic.Int64
}

// newLimitListener caps ln at max connections open at once (max > 0).
func newLimitListener(ln net.Listener, max int, log *slog.Logger, refused func()) *limitListener {
	return &limitListener{
		Listener: ln,
		slots:    make(chan struct{}, max),
		refusing: make(chan struct{}, maxRefusing),
		refusal:  refusalResponse(max),
		log:      log,
		refused:  refused,
	}
}

// refusalResponse is the whole HTTP answer to a connection past the cap.
func refusalResponse(max int) []byte {
	body := []byte(`{"error":`)
	body = appendError(body, CodeTooManyConnections, "the watchdog already has WARM_MAX_CONNECTIONS="+
		strconv.Itoa(max)+" connections open; retry after a second, and reuse keep-alive connections")
	body = append(body, '}')
	head := "HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: application/json\r\n" +
		"Retry-After: 1\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	return append([]byte(head), body...)
}

// Accept returns the next connection that fits under the cap, turning
// away the ones that do not.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: c, release: l.release}, nil
		default:
		}
		l.noteRefusal()
		select {
		case l.refusing <- struct{}{}:
			go l.refuse(c)
		default:
			_ = c.Close()
		}
	}
}

func (l *limitListener) release() { <-l.slots }

// refuse answers c with the refusal and closes it. It reads what the client
// sent before closing, because closing a socket with unread data resets the
// connection, and the client could lose the answer.
func (l *limitListener) refuse(c net.Conn) {
	defer func() { <-l.refusing }()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(refuseTimeout))
	if _, err := c.Write(l.refusal); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}

// noteRefusal counts a refused connection and logs, at most once per
// refusalLogEvery, that connections are being refused.
func (l *limitListener) noteRefusal() {
	n := l.refusedN.Add(1)
	if l.refused != nil {
		l.refused()
	}
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if last != 0 && now-last < int64(refusalLogEvery) {
		return
	}
	if l.lastLog.CompareAndSwap(last, now) {
		l.log.Warn("refusing connections: WARM_MAX_CONNECTIONS are open; new ones get 503 TOO_MANY_CONNECTIONS",
			"max_connections", cap(l.slots), "refused_total", n)
	}
}

// limitedConn gives its slot back when it is closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close closes the connection and frees its slot (once).
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite half-closes the connection, as net/http does before closing
// a connection whose request it refused.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
