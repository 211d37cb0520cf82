package httpserve

import (
	"net"
	"net/http"
	"strings"
)

// hostCheck refuses, on a server listening on loopback only, requests
// whose Host is not a loopback name or one of allow: a page on a foreign
// name that resolves to 127.0.0.1 (DNS rebinding) cannot read any route,
// GETs without an Origin included. nil when the check does not apply (a
// listener beyond loopback, or "*" in allow).
func hostCheck(ln net.Listener, allow []string) func(host string) bool {
	a, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !a.IP.IsLoopback() {
		return nil
	}
	allowed := map[string]bool{}
	for _, h := range allow {
		if h == "*" {
			return nil
		}
		allowed[strings.ToLower(hostname(h))] = true
	}
	return func(host string) bool {
		h := strings.ToLower(hostname(host))
		return allowed[h] || IsLoopbackName(h)
	}
}

// hostname is host without its port and IPv6 brackets.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// IsLoopbackName reports whether a host name (without port) always means
// this host: localhost, a name under .localhost, or a loopback IP.
func IsLoopbackName(h string) bool {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// refuseHost answers a request for a foreign Host on a loopback server.
func refuseHost(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	WriteDetail(w, http.StatusMisdirectedRequest, "this server listens on loopback and answers only to localhost names; a proxy in front of it must be named with -allow-host")
}
