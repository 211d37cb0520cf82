// Package auth is production mode's authentication: API keys that app
// backends trade for JWTs at a front's /tokens route (Keys, Issuer.Handler),
// and the verification of those JWTs by fronts and engine nodes
// (Issuer.Verify, Issuer.VerifySigned).
//
// A token is an HS256 JWT whose subject is the account that owns the API
// key; every front and node of a deployment shares the signing secret. The
// lifetime is capped at MaxTTL (6 h). Keys and the secret come from files or
// the environment (LoadKeys, LoadSecret), never from code.
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTTL caps the lifetime of a token, as the hosted service does.
const MaxTTL = 6 * time.Hour

// DefaultTTL is the lifetime of a token minted without expires_after.
const DefaultTTL = time.Hour

var (
	// ErrBadKey is returned for an API key no account owns.
	ErrBadKey = errors.New("auth: unknown API key")
	// ErrBadToken wraps every reason a token is refused (missing,
	// malformed, badly signed, expired).
	ErrBadToken = errors.New("auth: invalid token")
)

// Keys maps API keys to the accounts that own them. The zero value has no
// keys. It is safe for concurrent use once built.
type Keys struct {
	keys []apiKey
}

type apiKey struct {
	sum     [32]byte // SHA-256 of the key: compared in constant time
	account string
}

// ParseKeys reads "account:key" entries separated by newlines or commas;
// blank lines and lines starting with '#' are skipped.
func ParseKeys(text string) (*Keys, error) {
	k := &Keys{}
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == ',' }) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		acct, key, ok := strings.Cut(line, ":")
		acct, key = strings.TrimSpace(acct), strings.TrimSpace(key)
		if !ok || acct == "" || len(key) < 16 {
			return nil, fmt.Errorf("auth: key entry %q: want account:key with a key of at least 16 characters", redact(line))
		}
		k.keys = append(k.keys, apiKey{sum: sha256.Sum256([]byte(key)), account: acct})
	}
	if len(k.keys) == 0 {
		return nil, errors.New("auth: no API keys given; want account:key entries")
	}
	return k, nil
}

func redact(line string) string {
	if acct, _, ok := strings.Cut(line, ":"); ok {
		return acct + ":…"
	}
	return "…"
}

// LoadKeys reads the keys from the file path when it is set, else from the
// environment variable env.
func LoadKeys(path, env string) (*Keys, error) {
	text, err := load(path, env)
	if err != nil {
		return nil, err
	}
	return ParseKeys(text)
}

// LoadSecret reads the JWT signing secret from the file path when it is
// set, else from the environment variable env; it must have at least 32
// bytes.
func LoadSecret(path, env string) ([]byte, error) {
	text, err := load(path, env)
	if err != nil {
		return nil, err
	}
	s := []byte(strings.TrimSpace(text))
	if len(s) < 32 {
		return nil, fmt.Errorf("auth: the signing secret has %d bytes; want at least 32", len(s))
	}
	return s, nil
}

func load(path, env string) (string, error) {
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("auth: %w", err)
		}
		return string(b), nil
	}
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("auth: neither a file nor $%s is set", env)
}

// Account returns the account owning key. Every key is compared, in
// constant time.
func (k *Keys) Account(key string) (string, error) {
	if k == nil || key == "" {
		return "", ErrBadKey
	}
	sum := sha256.Sum256([]byte(key))
	found := ""
	for _, e := range k.keys {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 {
			found = e.account
		}
	}
	if found == "" {
		return "", ErrBadKey
	}
	return found, nil
}

// Claims is what a verified token says.
type Claims struct {
	Account string    // the subject: the account the API key belongs to
	Expires time.Time // when the token stops being accepted for new sessions
}

// Issuer mints and verifies tokens with one shared secret. It is safe for
// concurrent use; the zero value is unusable (use NewIssuer).
type Issuer struct {
	secret []byte
	now    func() time.Time
}

// NewIssuer returns an issuer signing with secret (at least 32 bytes).
func NewIssuer(secret []byte) (*Issuer, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("auth: secret of %d bytes; want at least 32", len(secret))
	}
	return &Issuer{secret: append([]byte(nil), secret...), now: time.Now}, nil
}

type tokenClaims struct {
	jwt.RegisteredClaims
}

const issuer = "framewire"

// Mint returns a token for account valid for ttl (DefaultTTL when ttl <= 0,
// at most MaxTTL) and its expiry.
func (i *Issuer) Mint(account string, ttl time.Duration) (string, time.Time, error) {
	if account == "" {
		return "", time.Time{}, errors.New("auth: Mint with an empty account")
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	ttl = min(ttl, MaxTTL)
	now := i.now()
	exp := now.Add(ttl).Truncate(time.Second)
	c := tokenClaims{jwt.RegisteredClaims{
		Issuer: issuer, Subject: account,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(i.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign: %w", err)
	}
	return s, exp, nil
}

// Verify accepts a token signed by this deployment, not expired, with a
// subject. Use it where a session is created.
func (i *Issuer) Verify(token string) (Claims, error) {
	return i.verify(token, true)
}

// nodeAudience marks the tokens fronts mint for engine nodes.
const nodeAudience = "framewire-node"

// MintForNode returns a short-lived token of account that only engine
// nodes accept for starting a session (VerifyForNode): fronts place
// sessions with it, so a client token cannot start sessions on a node
// directly, around the queue and the quotas.
func (i *Issuer) MintForNode(account string, ttl time.Duration) (string, error) {
	now := i.now()
	c := tokenClaims{jwt.RegisteredClaims{
		Issuer: issuer, Subject: account, Audience: jwt.ClaimStrings{nodeAudience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(min(ttl, MaxTTL))),
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(i.secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}

// VerifyForNode accepts only an unexpired token made by MintForNode.
func (i *Issuer) VerifyForNode(token string) (Claims, error) {
	c, err := i.Verify(token)
	if err != nil {
		return c, err
	}
	var tc tokenClaims
	_, _, err = jwt.NewParser().ParseUnverified(token, &tc) // signature checked by Verify
	if err != nil || len(tc.Audience) != 1 || tc.Audience[0] != nodeAudience {
		return Claims{}, fmt.Errorf("%w: not a front's placement token", ErrBadToken)
	}
	return c, nil
}

// VerifySigned is Verify without the expiry check: on the routes of a
// session that exists, the token that created it stays valid for the
// session's whole life (the contract's policy for one token per session).
// The caller must also check that the account owns the session.
func (i *Issuer) VerifySigned(token string) (Claims, error) {
	return i.verify(token, false)
}

func (i *Issuer) verify(token string, checkExp bool) (Claims, error) {
	if token == "" {
		return Claims{}, fmt.Errorf("%w: no bearer token", ErrBadToken)
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(issuer), jwt.WithTimeFunc(i.now), jwt.WithExpirationRequired()}
	if !checkExp {
		opts = append(opts, jwt.WithoutClaimsValidation())
	}
	var c tokenClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return i.secret, nil }, opts...)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if c.Subject == "" || c.Issuer != issuer || c.ExpiresAt == nil {
		return Claims{}, fmt.Errorf("%w: no subject, issuer or expiry", ErrBadToken)
	}
	return Claims{Account: c.Subject, Expires: c.ExpiresAt.Time}, nil
}

// Sign returns an HMAC-SHA256 of parts under the secret, hex encoded: the
// signature of presigned upload URLs.
func (i *Issuer) Sign(parts ...string) string {
	m := hmac.New(sha256.New, i.secret)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return fmt.Sprintf("%x", m.Sum(nil))
}

// CheckSignature reports whether sig is Sign(parts...), in constant time.
func (i *Issuer) CheckSignature(sig string, parts ...string) bool {
	return hmac.Equal([]byte(sig), []byte(i.Sign(parts...)))
}

// SignUpload returns the query of a presigned upload URL for upload id of
// session sid, valid until exp: exp (RFC 3339) and sig.
func (i *Issuer) SignUpload(sid, id string, exp time.Time) url.Values {
	e := exp.UTC().Format(time.RFC3339)
	return url.Values{"exp": {e}, "sig": {i.Sign("upload", sid, id, e)}}
}

// CheckUpload checks a presigned upload URL's query (SignUpload's) for
// upload id of session sid: an error says why it is refused (a bad
// signature, or expired).
func (i *Issuer) CheckUpload(q url.Values, sid, id string) error {
	exp := q.Get("exp")
	if !i.CheckSignature(q.Get("sig"), "upload", sid, id, exp) {
		return errors.New("upload URL signature invalid")
	}
	if t, err := time.Parse(time.RFC3339, exp); err != nil || time.Now().After(t) {
		return errors.New("upload URL expired")
	}
	return nil
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header, "" when there is none.
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(h[7:])
}
