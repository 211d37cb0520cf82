package host

// The demo page: GET / serves a small HTML shell that loads the esbuild
// bundle of cmd/framewire/web/app (React, the real @reactor-team/js-sdk)
// for the served model, and GET /framewire/stats reports the engine's
// per-track pipeline statistics the page shows next to the SDK's own.
//
// The bundle is not committed and not embedded: `make page` writes it to
// cmd/framewire/web/dist, and the server reads it from disk at request
// time (see PageDir), so `go build ./...` and `go vet ./...` work on a
// fresh clone and a rebuilt bundle shows up on reload without a restart.
// The Python wheel carries the bundle and points FRAMEWIRE_WEB_DIR at it.

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/framewire/framewire/engine/metrics"
	"github.com/framewire/framewire/engine/protocol"
	"github.com/framewire/framewire/engine/wiring"
	"github.com/framewire/framewire/tracks"
)

// Bundle files inside the page directory.
const (
	pageJS  = "app.js"
	pageCSS = "app.css"
)

// PageDirEnv overrides where the page bundle is read from.
const PageDirEnv = "FRAMEWIRE_WEB_DIR"

// PageDir returns the directory holding the built page bundle, or an error
// naming every place it looked. In order: $FRAMEWIRE_WEB_DIR;
// cmd/framewire/web/dist of the checkout this source file is in (go run,
// go test and a binary built in this checkout); cmd/framewire/web/dist and
// web/dist under the working directory; web/dist beside the executable.
func PageDir() (string, error) {
	var cands []string
	if d := os.Getenv(PageDirEnv); d != "" {
		cands = append(cands, d)
	} else {
		if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
			cands = append(cands, filepath.Join(filepath.Dir(file), "..", "..", "cmd", "framewire", "web", "dist"))
		}
		cands = append(cands, filepath.Join("cmd", "framewire", "web", "dist"), filepath.Join("web", "dist"))
		if exe, err := os.Executable(); err == nil {
			cands = append(cands, filepath.Join(filepath.Dir(exe), "web", "dist"))
		}
	}
	for _, d := range cands {
		if st, err := os.Stat(filepath.Join(d, pageJS)); err == nil && st.Mode().IsRegular() {
			return d, nil
		}
	}
	return "", fmt.Errorf("page bundle %s not found in %v; run `make page` (or set %s to the folder holding it)", pageJS, cands, PageDirEnv)
}

// pageShell is the HTML the bundle mounts into.
const pageShell = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Framewire: %[1]s</title>
<link rel="stylesheet" href="/framewire/app.css">
</head><body><div id="root"></div><script>window.FRAMEWIRE_MODEL = %[2]s;</script><script src="/framewire/app.js"></script></body></html>
`

// pageUnfit is served at / for a model whose tracks the demo page cannot
// show (it receives a video output named main_video).
const pageUnfit = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Framewire: %[1]s</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 44rem; margin: 3rem auto; line-height: 1.5">
<h1>%[1]s</h1>
<p>The engine serves model <code>%[1]s</code> over the Reactor protocol on this address. The demo
page shows a video output named <code>main_video</code>; this model's tracks are %[2]s, so connect
with the SDK instead: <code>new Reactor({modelName: "%[1]s", local: true, apiUrl: location.origin})</code>.</p>
</body></html>
`

// pageMissing is served at / when the bundle has not been built.
const pageMissing = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Framewire: page not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 44rem; margin: 3rem auto; line-height: 1.5">
<h1>The demo page is not built</h1>
<p>The engine is running and serves the Reactor protocol on this address, but the page's
JavaScript bundle is missing. Run <code>make page</code> (it installs Node packages and
bundles <code>cmd/framewire/web/app</code>), then reload.</p>
<pre>%s</pre>
</body></html>
`

// MountPage registers the demo page for wired's model (GET /, GET
// /framewire/app.js|app.css) and the stats route (GET /framewire/stats) on
// mux. The protocol routes stay where they are: mux's "/" pattern is less
// specific than "GET /{$}". A model without a video output named
// main_video gets a page that says how to connect instead.
func MountPage(mux *http.ServeMux, wired *wiring.Wiring, srv *protocol.Server, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var warn sync.Once
	name := wired.Engine().ModelName()
	quoted, _ := json.Marshal(name) // a JSON string is a JS string literal
	fits, kinds := pageFits(wired.Engine().Tracks())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if !fits {
			fmt.Fprintf(w, pageUnfit, html.EscapeString(name), html.EscapeString(kinds))
			return
		}
		if _, err := PageDir(); err != nil {
			warn.Do(func() { log.Warn("demo page", "err", err) })
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, pageMissing, html.EscapeString(err.Error()))
			return
		}
		fmt.Fprintf(w, pageShell, html.EscapeString(name), strings.ReplaceAll(string(quoted), "<", `\u003c`))
	})
	asset := func(name, ctype string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			dir, err := PageDir()
			if err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) && name == pageCSS {
				// A bundle whose entry imports no CSS has none.
				w.Header().Set("Content-Type", ctype)
				return
			}
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("Content-Type", ctype)
			http.ServeFile(w, r, p)
		}
	}
	mux.HandleFunc("GET /framewire/app.js", asset(pageJS, "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /framewire/app.css", asset(pageCSS, "text/css; charset=utf-8"))
	mux.Handle("GET /framewire/stats", metrics.StatsHandler(wired, srv, log))
}

// pageFits reports whether the demo page can show a model with these
// tracks (a video output named main_video), and lists them for the page
// that says it cannot.
func pageFits(specs []tracks.Spec) (bool, string) {
	fits := false
	var list []string
	for _, s := range specs {
		list = append(list, s.Name+" ("+s.Kind.String()+")")
		if s.Name == "main_video" && s.Kind == tracks.KindVideoOut {
			fits = true
		}
	}
	return fits, strings.Join(list, ", ")
}
