package emulator

import (
	"embed"
	"io/fs"
	"net/http"
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

// registerUI adds the page and the API it needs beyond the control plane's
// (the event stream, an execution's input and log lines) to mux.
func (s *Server) registerUI(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/events", s.handleEvents)
	mux.HandleFunc("GET /v1/executions/{id}/logs", s.handleExecutionLogs)
	mux.HandleFunc("GET /v1/executions/{id}/input", s.handleExecutionInput)
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic("the embedded page is missing: " + err.Error())
	}
	files := http.StripPrefix(UIPath, http.FileServerFS(sub))
	mux.Handle("GET "+UIPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", uiCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, UIPath, http.StatusFound)
	})
}
