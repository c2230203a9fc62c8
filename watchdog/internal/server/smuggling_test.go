package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A request with both Content-Length and Transfer-Encoding is read as
// chunked (RFC 9112: Transfer-Encoding wins), and then the connection is
// closed: what follows the chunked body never runs as a second request
// (request smuggling behind a proxy that trusts Content-Length).
func TestFaultContentLengthAndTransferEncodingCloseTheConnection(t *testing.T) {
	ts := startPerCall(t)
	first := `{"execution_id":"front","payload":1}`
	smuggled := "POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 39\r\n\r\n" +
		`{"execution_id":"smuggled","payload":2}`
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(first), first)
	for _, te := range []string{"chunked", "Chunked", "gzip, chunked"} {
		c := ts.dial(t)
		req := "POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
			fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: %s\r\n\r\n", len(chunked), te) + chunked + smuggled
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		_, answer := waitClosed(t, c, 5*time.Second)
		if n := strings.Count(answer, "HTTP/1.1 "); n != 1 {
			t.Errorf("Transfer-Encoding %q: %d answers on one connection, want 1 and the connection closed:\n%s", te, n, answer)
		}
		if strings.Contains(answer, "smuggled") {
			t.Errorf("Transfer-Encoding %q: the smuggled request ran:\n%s", te, answer)
		}
	}
}
