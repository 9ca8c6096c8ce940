package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func newTestServer(t *testing.T) (*server, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	return newServer(slog.New(slog.NewJSONHandler(&logs, nil))), &logs
}

// get runs one request through the full handler chain (router + logging).
func get(t *testing.T, s *server, target string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.routes().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body := map[string]any{}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("GET %s: body is not JSON: %q", target, rec.Body.String())
		}
	}
	if ct := rec.Header().Get("Content-Type"); rec.Body.Len() > 0 && !strings.HasPrefix(ct, "application/json") && rec.Code < 400 {
		t.Errorf("GET %s: Content-Type %q", target, ct)
	}
	return rec.Code, body
}

func TestRoot(t *testing.T) {
	s, _ := newTestServer(t)
	old := version
	version = "1.2.3-test"
	defer func() { version = old }()
	code, body := get(t, s, "/")
	if code != http.StatusOK || body["version"] != "1.2.3-test" || !strings.Contains(body["message"].(string), "hello") {
		t.Fatalf("GET / = %d %v", code, body)
	}
}

func TestUnknownPathIs404(t *testing.T) {
	s, _ := newTestServer(t)
	rec := httptest.NewRecorder()
	s.routes().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/nope", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("GET /nope = %d, want 404", rec.Code)
	}
}

func TestHealthz(t *testing.T) {
	s, _ := newTestServer(t)
	code, body := get(t, s, "/healthz")
	if code != http.StatusOK || body["status"] != "ok" {
		t.Fatalf("GET /healthz = %d %v", code, body)
	}
}

func TestTime(t *testing.T) {
	s, _ := newTestServer(t)
	code, body := get(t, s, "/time")
	if code != http.StatusOK || body["tz"] != "UTC" || body["offset"] != "+00:00" {
		t.Fatalf("GET /time = %d %v", code, body)
	}
	if _, err := time.Parse(time.RFC3339, body["time"].(string)); err != nil {
		t.Fatalf("time %q is not RFC 3339: %v", body["time"], err)
	}
	// The Go toolchain ships zoneinfo.zip, so named zones work wherever tests run.
	code, body = get(t, s, "/time?tz=Europe/Paris")
	if code != http.StatusOK || body["tz"] != "Europe/Paris" {
		t.Fatalf("GET /time?tz=Europe/Paris = %d %v", code, body)
	}
	if off := body["offset"]; off != "+01:00" && off != "+02:00" {
		t.Fatalf("Paris offset %v", off)
	}
	code, body = get(t, s, "/time?tz=Mars/Olympus_Mons")
	if code != http.StatusBadRequest || !strings.Contains(body["error"].(string), "unknown time zone") {
		t.Fatalf("GET /time?tz=Mars/Olympus_Mons = %d %v", code, body)
	}
}

func TestTimeWithoutZoneData(t *testing.T) {
	// A loader that finds no database at all: what a bare scratch image sees.
	s, _ := newTestServer(t)
	s.loadLocation = func(name string) (*time.Location, error) {
		if name == "UTC" {
			return time.UTC, nil
		}
		return nil, errors.New("unknown time zone " + name)
	}
	code, body := get(t, s, "/time?tz=Europe/Paris")
	if code != http.StatusInternalServerError || !strings.Contains(body["hint"].(string), "ZONEINFO") ||
		!strings.Contains(body["error"].(string), "unknown time zone Europe/Paris") {
		t.Fatalf("GET /time without zone data = %d %v", code, body)
	}
	if code, _ := get(t, s, "/time"); code != http.StatusOK {
		t.Fatalf("UTC needs no zone data, got %d", code)
	}
}

func TestFetchRejectsNonHTTPS(t *testing.T) {
	s, _ := newTestServer(t)
	for _, target := range []string{"/fetch", "/fetch?url=http://example.com/", "/fetch?url=file:///etc/passwd", "/fetch?url=https://"} {
		code, body := get(t, s, target)
		if code != http.StatusBadRequest || !strings.Contains(body["error"].(string), "https") {
			t.Errorf("GET %s = %d %v, want 400", target, code, body)
		}
	}
}

func TestFetch(t *testing.T) {
	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello over TLS")
	}))
	upstream.Config.ErrorLog = log.New(io.Discard, "", 0) // the expected handshake failure
	defer upstream.Close()
	s, _ := newTestServer(t)

	// The default client trusts only the system CA bundle, not the test server's CA:
	// the same failure a scratch image without ca-certificates.crt shows for any site.
	code, body := get(t, s, "/fetch?url="+upstream.URL+"/")
	if code != http.StatusBadGateway || !strings.Contains(body["error"].(string), "x509") {
		t.Fatalf("fetch with untrusted CA = %d %v, want 502 mentioning x509", code, body)
	}

	pool := x509.NewCertPool()
	pool.AddCert(upstream.Certificate())
	s.client = newFetchClient(&tls.Config{RootCAs: pool})
	code, body = get(t, s, "/fetch?url="+upstream.URL+"/")
	if code != http.StatusOK || body["status"] != float64(200) || body["bytes"] != float64(len("hello over TLS")) {
		t.Fatalf("fetch with trusted CA = %d %v", code, body)
	}
}

func TestFetchRefusesRedirectToHTTP(t *testing.T) {
	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:1/", http.StatusFound)
	}))
	defer upstream.Close()
	s, _ := newTestServer(t)
	s.client = newFetchClient(&tls.Config{RootCAs: certPool(upstream)})
	code, body := get(t, s, "/fetch?url="+upstream.URL+"/")
	if code != http.StatusBadGateway || !strings.Contains(body["error"].(string), "non-https") {
		t.Fatalf("redirect to http = %d %v", code, body)
	}
}

func certPool(ts *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return pool
}

func TestWhoami(t *testing.T) {
	s, _ := newTestServer(t)
	code, body := get(t, s, "/whoami")
	if code != http.StatusOK {
		t.Fatalf("GET /whoami = %d %v", code, body)
	}
	if body["uid"] != float64(os.Getuid()) || body["gid"] != float64(os.Getgid()) {
		t.Fatalf("whoami ids %v, process has %d:%d", body, os.Getuid(), os.Getgid())
	}
	if body["root"] != (os.Getuid() == 0) {
		t.Fatalf("whoami root flag %v", body["root"])
	}
	if body["user"] == "" && body["user_error"] == nil {
		t.Fatalf("empty user name without user_error: %v", body)
	}
}

func TestRequestLogIsJSON(t *testing.T) {
	s, logs := newTestServer(t)
	get(t, s, "/healthz?probe=1")
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(logs.Bytes()), &line); err != nil {
		t.Fatalf("log line is not one JSON object: %q", logs.String())
	}
	if line["msg"] != "request" || line["path"] != "/healthz" || line["status"] != float64(200) ||
		line["method"] != "GET" || line["query"] != "probe=1" {
		t.Fatalf("log line %v", line)
	}
}

func TestFlags(t *testing.T) {
	t.Setenv("ADDR", "")
	o, err := parseFlags(nil)
	if err != nil || o.addr != ":8080" || o.healthcheck || o.showVersion {
		t.Fatalf("defaults %+v %v", o, err)
	}
	o, err = parseFlags([]string{"-addr", "127.0.0.1:9999", "-healthcheck"})
	if err != nil || o.addr != "127.0.0.1:9999" || !o.healthcheck {
		t.Fatalf("parsed %+v %v", o, err)
	}
	if _, err := parseFlags([]string{"-tls-cert", "c.pem"}); err == nil {
		t.Fatal("-tls-cert without -tls-key accepted")
	}
	t.Setenv("ADDR", ":7070")
	if o, _ := parseFlags(nil); o.addr != ":7070" {
		t.Fatalf("ADDR env ignored: %+v", o)
	}
}

func TestHealthcheckURL(t *testing.T) {
	cases := map[string]string{
		":8080":          "http://127.0.0.1:8080/healthz",
		"0.0.0.0:80":     "http://127.0.0.1:80/healthz",
		"127.0.0.1:9000": "http://127.0.0.1:9000/healthz",
		"[::]:8080":      "http://127.0.0.1:8080/healthz",
	}
	for addr, want := range cases {
		if got, err := healthcheckURL(addr, false); err != nil || got != want {
			t.Errorf("healthcheckURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if got, _ := healthcheckURL(":8443", true); got != "https://127.0.0.1:8443/healthz" {
		t.Errorf("TLS healthcheck URL %q", got)
	}
	if _, err := healthcheckURL("8080", false); err == nil {
		t.Error("bad -addr accepted")
	}
}

// TestServeHealthcheckAndShutdown runs the real server on a free port, checks it with
// the -healthcheck code path, then sends SIGTERM-equivalent cancellation via a signal.
func TestServeHealthcheckAndShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	opts := options{addr: addr}

	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- serve(opts, slog.New(slog.NewJSONHandler(&logs, nil))) }()

	deadline := time.Now().Add(5 * time.Second)
	for runHealthcheck(opts, 500*time.Millisecond) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("server did not become healthy within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := runHealthcheck(options{addr: "127.0.0.1:1"}, 500*time.Millisecond); code != 1 {
		t.Fatalf("healthcheck against a closed port exited %d, want 1", code)
	}

	start := time.Now()
	p, _ := os.FindProcess(os.Getpid())
	if err := p.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("server did not stop within 3 s of SIGINT")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("shutdown took %s", took)
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no stop log line: %s", logs.String())
	}
}
