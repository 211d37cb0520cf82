package front

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/framewire/framewire/engine/cluster/registry"
)

type ctxKey struct{}

// route is what the proxy needs of one forwarded request.
type route struct {
	target *url.URL // the node
	path   string   // the path on the node
	sid    string
	base   string // public base URL for presigned upload URLs
	upload bool   // POST …/uploads: rewrite presigned_url
}

// handleTransport forwards the transport routes and the upload slot route
// of a bound session to its node, unchanged (the node keys sessions by the
// front's id and checks the token again).
func (f *Front) handleTransport(w http.ResponseWriter, r *http.Request) {
	hdr := "Reactor-WebRTC-Version"
	upload := strings.HasSuffix(r.URL.Path, "/uploads")
	if upload {
		hdr = "Reactor-API-Version"
	}
	if !checkVersion(w, r, hdr) {
		return
	}
	x, ok := f.owned(w, r, r.PathValue("sid"))
	if !ok {
		return
	}
	f.forward(w, r, x, r.URL.Path, upload)
}

func (f *Front) forward(w http.ResponseWriter, r *http.Request, x registry.Session, path string, upload bool) {
	if !registry.Bound(x.State) {
		state := x.State
		if state == registry.StatePending {
			state = "not placed yet"
		}
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("session %q has no engine: %s", x.ID, state))
		return
	}
	target, err := url.Parse(x.NodeAddr)
	if err != nil {
		writeDetail(w, http.StatusInternalServerError, "bad node address")
		return
	}
	rt := &route{target: target, path: path, sid: x.ID, base: f.publicBase(r), upload: upload}
	f.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, rt)))
}

func (f *Front) publicBase(r *http.Request) string {
	if f.cfg.PublicURL != "" {
		return strings.TrimSuffix(f.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host + f.cfg.Prefix
}

func (f *Front) rewrite(pr *httputil.ProxyRequest) {
	rt := pr.In.Context().Value(ctxKey{}).(*route)
	pr.SetURL(rt.target)
	pr.Out.URL.Path, pr.Out.URL.RawPath = rt.path, ""
	pr.Out.Header.Del("Origin") // CORS is the front's; the node need not see it
}

// modifyResponse drops the node's CORS headers (the front set its own;
// two Access-Control-Allow-Origin values break the browser) and turns an
// upload slot's presigned_url into a URL of this front carrying its own
// signature and expiry.
func (f *Front) modifyResponse(resp *http.Response) error {
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") || k == "Vary" {
			resp.Header.Del(k)
		}
	}
	rt := resp.Request.Context().Value(ctxKey{}).(*route)
	if !rt.upload || resp.StatusCode/100 != 2 {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return err
	}
	var slot map[string]any
	if err := json.Unmarshal(b, &slot); err != nil {
		return fmt.Errorf("front: node's upload slot: %w", err)
	}
	id, _ := slot["presigned_id"].(string)
	q := f.cfg.Issuer.SignUpload(rt.sid, id, time.Now().Add(f.cfg.UploadTTL))
	slot["presigned_url"] = rt.base + "/uploads/" + rt.sid + "/" + url.PathEscape(id) + "?" + q.Encode()
	b, _ = json.Marshal(slot)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return nil
}

// proxyError answers a node that cannot be reached: for the client the
// session's engine is gone (404, as the contract says for a lost engine).
func (f *Front) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	rt, _ := r.Context().Value(ctxKey{}).(*route)
	sid := ""
	if rt != nil {
		sid = rt.sid
	}
	f.log.Warn("engine node unreachable", "session", sid, "err", err)
	writeDetail(w, http.StatusNotFound, "the session's engine node is unreachable")
}

// handlePut is the presigned upload target: no Authorization; the URL's
// signature and expiry authorise it. The bytes go to the session's node.
func (f *Front) handlePut(w http.ResponseWriter, r *http.Request) {
	sid, id := r.PathValue("sid"), r.PathValue("id")
	if err := f.cfg.Issuer.CheckUpload(r.URL.Query(), sid, id); err != nil {
		writeDetail(w, http.StatusForbidden, err.Error())
		return
	}
	x, err := f.cfg.Store.Session(r.Context(), sid)
	if err != nil {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("unknown session %q", sid))
		return
	}
	f.forward(w, r, x, "/sessions/"+sid+"/uploads/"+id, false)
}
