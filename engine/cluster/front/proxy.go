package front

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
	// redial, when set, answers instead of the proxy when the node cannot
	// be dialled (a node that died before its heartbeat lapsed).
	redial func(http.ResponseWriter)
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
	// The SDK's reconnect() starts with GET ice_servers, then PUT
	// sdp_params: a session whose node died is re-placed on another node
	// there, when a live node has a slot, rather than lost.
	rest := r.PathValue("rest")
	entry := (rest == "ice_servers" && r.Method == http.MethodGet) || (rest == "sdp_params" && r.Method != http.MethodGet)
	if entry && f.lost(r.Context(), x) {
		if x = f.replaceOr404(w, r, x); x.ID == "" {
			return
		}
	}
	var redial func(http.ResponseWriter)
	if rest == "ice_servers" && r.Method == http.MethodGet && registry.Bound(x.State) {
		redial = func(w http.ResponseWriter) {
			if y := f.replaceOr404(w, r, x); y.ID != "" {
				f.forward(w, r, y, r.URL.Path, false, nil)
			}
		}
	}
	f.forward(w, r, x, r.URL.Path, upload, redial)
}

// replaceOr404 re-places session x, whose node was lost, and returns it;
// when that fails it answers 404 (the contract's answer for a lost
// engine) and returns the zero Session.
func (f *Front) replaceOr404(w http.ResponseWriter, r *http.Request, x registry.Session) registry.Session {
	y, err := f.replace(r.Context(), x)
	if err == nil && !registry.Bound(y.State) {
		err = fmt.Errorf("it is %s", y.State)
	}
	if err != nil {
		f.log.Warn("session's node lost; not re-placed", "session", x.ID, "node", x.Node, "err", err)
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("session %q lost its engine node and was not re-placed: %v", x.ID, err))
		return registry.Session{}
	}
	return y
}

func (f *Front) forward(w http.ResponseWriter, r *http.Request, x registry.Session, path string, upload bool, redial func(http.ResponseWriter)) {
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
	rt := &route{target: target, path: path, sid: x.ID, base: f.publicBase(r), upload: upload, redial: redial}
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
	if op := (*net.OpError)(nil); rt != nil && rt.redial != nil && errors.As(err, &op) && op.Op == "dial" {
		rt.redial(w)
		return
	}
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
	f.forward(w, r, x, "/sessions/"+sid+"/uploads/"+id, false, nil)
}
