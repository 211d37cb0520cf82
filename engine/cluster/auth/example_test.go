package auth_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/framewire/framewire/engine/cluster/auth"
)

// An app backend trades its API key for a token at /tokens; fronts and
// nodes verify the token and read the account from it.
func Example() {
	keys, _ := auth.ParseKeys("acme:acme-api-key-0123456789") // in production: LoadKeys(file, "FRAMEWIRE_API_KEYS")
	issuer, _ := auth.NewIssuer([]byte("a-shared-secret-of-32-bytes-or-more"))

	req := httptest.NewRequest("POST", "/tokens", strings.NewReader(`{"expires_after": 3600}`))
	req.Header.Set("Reactor-API-Key", "acme-api-key-0123456789")
	rec := httptest.NewRecorder()
	issuer.Handler(keys).ServeHTTP(rec, req)
	fmt.Println("POST /tokens:", rec.Code)

	tok, _, _ := issuer.Mint("acme", time.Hour)
	claims, err := issuer.Verify(tok)
	fmt.Println(claims.Account, err)
	_, err = issuer.Verify("forged")
	fmt.Println(err != nil)
	// Output:
	// POST /tokens: 200
	// acme <nil>
	// true
}
