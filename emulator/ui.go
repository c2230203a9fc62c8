package emulator

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// uiFiles is the page: HTML, CSS and JavaScript, embedded in the binary.
//
//go:embed ui/index.html ui/app.js ui/style.css
var uiFiles embed.FS

// UIPath is where emulator serve serves its page.
const UIPath = "/ui/"

// uiCSP keeps the page to its own files: no inline script, nothing loaded
// from elsewhere, no framing.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// uiFileServer serves the page's files with headers that keep it to
// itself.
func uiFileServer() http.HandlerFunc {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic("the embedded page is missing: " + err.Error())
	}
	files := http.StripPrefix(UIPath, http.FileServerFS(sub))
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", uiCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}
}

// uiRoute finds the handlers of the page and of the API it needs beyond the
// control plane's (the event stream, an execution's input and log lines);
// nil when path is none of them.
func (s *Server) uiRoute(path string) methods {
	switch {
	case path == "/":
		return methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, UIPath, http.StatusFound)
		}}
	case path == "/v1/events":
		return methods{http.MethodGet: s.handleEvents}
	case strings.HasPrefix(path, UIPath):
		return methods{http.MethodGet: uiFileServer()}
	}
	rest, ok := strings.CutPrefix(path, "/v1/executions/")
	if !ok {
		return nil
	}
	id, what, ok := strings.Cut(rest, "/")
	if !ok || id == "" {
		return nil
	}
	switch what {
	case "logs":
		return methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) { s.handleExecutionLogs(w, r, id) }}
	case "input":
		return methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) { s.handleExecutionInput(w, r, id) }}
	}
	return nil
}
