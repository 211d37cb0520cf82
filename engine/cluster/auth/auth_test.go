package auth_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/cluster/auth"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestMintVerify(t *testing.T) {
	i, err := auth.NewIssuer(secret)
	if err != nil {
		t.Fatal(err)
	}
	tok, exp, err := i.Mint("acme", 100*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d > auth.MaxTTL || d < auth.MaxTTL-time.Minute {
		t.Errorf("expiry in %s, want the 6 h cap", d)
	}
	c, err := i.Verify(tok)
	if err != nil || c.Account != "acme" {
		t.Fatalf("Verify: %+v %v", c, err)
	}
	other, _ := auth.NewIssuer([]byte("another-secret-of-thirty-two-bytes!!"))
	if _, err := other.Verify(tok); !errors.Is(err, auth.ErrBadToken) {
		t.Errorf("foreign secret: %v", err)
	}
	for _, bad := range []string{"", "x.y.z", tok[:len(tok)-2] + "aa", strings.Replace(tok, ".", "", 1)} {
		if _, err := i.Verify(bad); !errors.Is(err, auth.ErrBadToken) {
			t.Errorf("Verify(%q): %v", bad, err)
		}
	}
	if _, err := auth.NewIssuer([]byte("short")); err == nil {
		t.Error("short secret accepted")
	}
}

func TestKeys(t *testing.T) {
	k, err := auth.ParseKeys("# comment\nacme:key-aaaaaaaaaaaaaaaa\n\nother:key-bbbbbbbbbbbbbbbb,third:key-cccccccccccccccc")
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"key-aaaaaaaaaaaaaaaa": "acme", "key-cccccccccccccccc": "third"} {
		if a, err := k.Account(key); err != nil || a != want {
			t.Errorf("Account(%q) = %q, %v", key, a, err)
		}
	}
	if _, err := k.Account("key-zzzzzzzzzzzzzzzz"); !errors.Is(err, auth.ErrBadKey) {
		t.Errorf("unknown key: %v", err)
	}
	for _, bad := range []string{"", "nocolon-aaaaaaaaaaaaaaaa", "acme:short"} {
		if _, err := auth.ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
		}
	}
	t.Setenv("FW_TEST_KEYS", "acme:key-aaaaaaaaaaaaaaaa")
	if _, err := auth.LoadKeys("", "FW_TEST_KEYS"); err != nil {
		t.Error(err)
	}
	if _, err := auth.LoadSecret("", "FW_TEST_UNSET"); err == nil {
		t.Error("LoadSecret without file or env succeeded")
	}
}

func TestHandlerBodies(t *testing.T) {
	i, _ := auth.NewIssuer(secret)
	k, _ := auth.ParseKeys("acme:key-aaaaaaaaaaaaaaaa")
	h := i.Handler(k)
	for _, body := range []string{"", "null", "{}", `{"expires_after": 60}`} {
		r := httptest.NewRequest("POST", "/tokens", strings.NewReader(body))
		r.Header.Set("X-API-Key", "key-aaaaaaaaaaaaaaaa")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"jwt"`) {
			t.Errorf("body %q: %d %s", body, w.Code, w.Body)
		}
	}
	r := httptest.NewRequest("POST", "/tokens", strings.NewReader(`{"expires_after": -1}`))
	r.Header.Set("Reactor-API-Key", "key-aaaaaaaaaaaaaaaa")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 400 {
		t.Errorf("negative expires_after: %d", w.Code)
	}
}

func TestNodeTokens(t *testing.T) {
	i, _ := auth.NewIssuer(secret)
	user, _, _ := i.Mint("acme", time.Minute)
	if _, err := i.VerifyForNode(user); !errors.Is(err, auth.ErrBadToken) {
		t.Errorf("a client token passed VerifyForNode: %v", err)
	}
	placement, err := i.MintForNode("acme", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := i.VerifyForNode(placement); err != nil || c.Account != "acme" {
		t.Errorf("VerifyForNode: %+v %v", c, err)
	}
	other, _ := auth.NewIssuer([]byte("another-secret-of-thirty-two-bytes!!"))
	if _, err := other.VerifyForNode(placement); err == nil {
		t.Error("a placement token of another deployment was accepted")
	}
}

// A presigned upload URL is valid for its own session and upload until it
// expires, and for nothing else.
func TestUploadSignature(t *testing.T) {
	i, err := auth.NewIssuer(secret)
	if err != nil {
		t.Fatal(err)
	}
	q := i.SignUpload("s1", "u1", time.Now().Add(time.Minute))
	if err := i.CheckUpload(q, "s1", "u1"); err != nil {
		t.Errorf("valid URL refused: %v", err)
	}
	for what, err := range map[string]error{
		"other session": i.CheckUpload(q, "s2", "u1"),
		"other upload":  i.CheckUpload(q, "s1", "u2"),
		"expired":       i.CheckUpload(i.SignUpload("s1", "u1", time.Now().Add(-time.Second)), "s1", "u1"),
	} {
		if err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
	q.Set("exp", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)) // a longer life, same signature
	if err := i.CheckUpload(q, "s1", "u1"); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("extended expiry: %v; want a signature error", err)
	}
}
