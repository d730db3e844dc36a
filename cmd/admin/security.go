package admin

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// openPaths answer without the credential, and ignore one: probes and
// Prometheus scrapes. Their content identifies no client. (GET /, the
// status page, is redacted without the credential, as /status is.)
var openPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

type ctxKey struct{}

// authorized reports whether the request carried the right credential.
func authorized(r *http.Request) bool {
	ok, _ := r.Context().Value(ctxKey{}).(bool)
	return ok
}

// guard is the admin endpoint's front door: the Host check against DNS
// rebinding, and the bearer token.
type guard struct {
	token []byte          // nil: no credential configured, nothing is authorized
	hosts map[string]bool // allowed Host values: "name:port", or "name" for any port
	next  http.Handler
}

func newGuard(token string, allowedHosts []string, next http.Handler) *guard {
	g := &guard{hosts: map[string]bool{}, next: next}
	if token != "" {
		g.token = []byte(token)
	}
	for _, h := range allowedHosts {
		g.hosts[strings.ToLower(h)] = true
	}
	return g
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.hostAllowed(r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusMisdirectedRequest)
		fmt.Fprintf(w, "421 misdirected request: the Host header %q does not name this endpoint (%s).\n"+
			"If it is a name of this endpoint (a reverse proxy, a scrape target), add it to admin { allowed_hosts }.\n",
			r.Host, localAddr(r))
		return
	}
	ok := false
	if h := r.Header.Get("Authorization"); h != "" && g.token != nil && !openPaths[r.URL.Path] {
		if ok = g.tokenMatches(h); !ok {
			unauthorized(w, "the admin token does not match (Authorization: Bearer <token>, the content of admin { token_file })")
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !ok {
		if g.token == nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintln(w, "403 forbidden: no admin token is configured (no status_file and no admin { token_file }), so nothing can be changed here")
			return
		}
		unauthorized(w, "this request changes the daemon: send Authorization: Bearer <token>, the content of admin { token_file } (tidstorage accept-partial -c FILE does)")
		return
	}
	g.next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, ok)))
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="tidstorage"`)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	fmt.Fprintf(w, "401 unauthorized: %s\n", msg)
}

// tokenMatches compares "Bearer <token>" in constant time.
func (g *guard) tokenMatches(header string) bool {
	scheme, tok, found := strings.Cut(strings.TrimSpace(header), " ")
	if g.token == nil || !found || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), g.token) == 1
}

// hostAllowed checks the Host header: the address the request came in on
// (its IP and port, or localhost:port when it is a loopback address), or a
// configured name. A page whose name was made to resolve to this address
// (DNS rebinding) sends its own name, and is refused.
func (g *guard) hostAllowed(r *http.Request) bool {
	host := strings.ToLower(r.Host)
	if host == "" {
		return false
	}
	name, port, err := net.SplitHostPort(host)
	if err != nil { // no port: the scheme's default
		name, port = strings.Trim(host, "[]"), "80"
	}
	if g.hosts[name+":"+port] || g.hosts[net.JoinHostPort(name, port)] || g.hosts[name] {
		return true
	}
	la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lhost, lport, err := net.SplitHostPort(la.String())
	if err != nil || port != lport {
		return false
	}
	lip := net.ParseIP(lhost)
	if ip := net.ParseIP(name); ip != nil {
		return lip != nil && ip.Equal(lip)
	}
	return name == "localhost" && lip != nil && lip.IsLoopback()
}

func localAddr(r *http.Request) string {
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return la.String()
	}
	return "unknown address"
}
