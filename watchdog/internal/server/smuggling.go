package server

import "net/http"

// closeAfterTransferEncoding makes the server close the connection after
// answering a request that came with a Transfer-Encoding. net/http reads
// such a body as chunked even when a Content-Length came too (and drops
// the Content-Length before the handler sees it); a proxy in front that
// went by the Content-Length would take the bytes after the chunked body
// for its next request's, while net/http would run them as another
// request on the same connection (request smuggling). RFC 9112, 6.3:
// a server that gets both must close the connection after the answer.
// Clients that stream with chunked encoding only lose the keep-alive.
func closeAfterTransferEncoding(w http.ResponseWriter, r *http.Request) {
	if len(r.TransferEncoding) > 0 {
		w.Header()["Connection"] = hdrClose
	}
}
