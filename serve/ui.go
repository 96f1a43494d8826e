package serve

import (
	"embed"
	"net/http"
)

// uiFiles are the web page's assets: plain HTML, CSS and JavaScript, no
// build step.
//
//go:embed ui
var uiFiles embed.FS

// uiPolicy keeps the page to its own assets and API: no inline scripts,
// nothing from elsewhere (trace links are plain navigations).
const uiPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// uiRoutes serves the page at / and its assets under /ui/. The page and
// its assets hold no data; what it shows comes from the API, with the
// token the user gives when the server needs one.
func (s *Server) uiRoutes() {
	files := http.FileServerFS(uiFiles) // /ui/app.js is ui/app.js in it
	page := func(h http.Handler) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", uiPolicy)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Referrer-Policy", "no-referrer")
			h.ServeHTTP(w, r)
		}
	}
	s.mux.Handle("GET /{$}", page(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, uiFiles, "ui/index.html")
	})))
	s.mux.Handle("GET /ui/", page(files))
	s.mux.HandleFunc("GET /ui/config.json", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"trace_url_template": s.cfg.traceURL, "token_required": s.cfg.token != ""})
	})
}
