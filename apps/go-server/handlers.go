package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"time"
)

const (
	fetchTimeout  = 5 * time.Second
	fetchMaxBytes = 1 << 20
)

type server struct {
	logger *slog.Logger
	// client makes the outbound requests of /fetch; tests swap in one that trusts
	// their own test CA.
	client *http.Client
	// loadLocation is time.LoadLocation; tests swap in a loader without zone data.
	loadLocation func(name string) (*time.Location, error)
}

func newServer(logger *slog.Logger) *server {
	return &server{logger: logger, client: newFetchClient(nil), loadLocation: time.LoadLocation}
}

// newFetchClient returns a client with a bounded timeout that refuses to follow a
// redirect away from https. roots == nil means the system CA bundle, which is exactly
// what a bare scratch image lacks.
func newFetchClient(tlsConfig *tls.Config) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	return &http.Client{
		Timeout:   fetchTimeout,
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return errors.New("redirect to a non-https URL refused")
			}
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleRoot)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /time", s.handleTime)
	mux.HandleFunc("GET /fetch", s.handleFetch)
	mux.HandleFunc("GET /whoami", s.handleWhoami)
	return s.logRequests(mux)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *server) handleRoot(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{
		"message": "hello from go-server",
		"version": version,
	})
}

func (s *server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleTime shows the current time in ?tz= (default UTC). Without a time zone
// database in the image (bare scratch) every named zone fails: that case answers 500
// and says how to fix the image; a zone name that is merely wrong answers 400.
func (s *server) handleTime(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("tz")
	if name == "" {
		name = "UTC"
	}
	loc, err := s.loadLocation(name)
	if err != nil {
		if _, probe := s.loadLocation("Etc/GMT"); probe != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{
				"tz":    name,
				"error": err.Error(),
				"hint":  "no time zone database in this image: copy Go's lib/time/zoneinfo.zip and set ZONEINFO, install tzdata, or build with -tags timetzdata",
			})
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"tz": name, "error": err.Error()})
		return
	}
	now := time.Now().In(loc)
	writeJSON(w, http.StatusOK, map[string]string{
		"tz":     loc.String(),
		"time":   now.Format(time.RFC3339),
		"offset": now.Format("-07:00"),
	})
}

// handleFetch GETs ?url= (https only) and reports the status and size of the answer.
// On failure it answers 502 with the error text, e.g. "x509: certificate signed by
// unknown authority" in an image without CA certificates.
func (s *server) handleFetch(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("url")
	target, err := url.Parse(raw)
	if raw == "" || err != nil || target.Scheme != "https" || target.Host == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{
			"error": "give an https URL: /fetch?url=https://example.com/",
		})
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target.String(), nil)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"url": raw, "error": err.Error()})
		return
	}
	req.Header.Set("User-Agent", "stagelab-go-server/"+version)
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"url": raw, "error": err.Error()})
		return
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, fetchMaxBytes))
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"url": raw, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"url":         raw,
		"status":      resp.StatusCode,
		"bytes":       n,
		"truncated":   n == fetchMaxBytes,
		"duration_ms": time.Since(start).Milliseconds(),
	})
}

// handleWhoami reports the process's uid/gid and the user name from /etc/passwd.
// On scratch there is no /etc/passwd, so the name is empty and user_error says why.
func (s *server) handleWhoami(w http.ResponseWriter, r *http.Request) {
	uid, gid := os.Getuid(), os.Getgid()
	body := map[string]any{"uid": uid, "gid": gid, "user": "", "root": uid == 0}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		body["user"] = u.Username
	} else {
		body["user_error"] = err.Error()
	}
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		body["group"] = g.Name
	}
	writeJSON(w, http.StatusOK, body)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// logRequests writes one JSON log line per request (log/slog).
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.logger.Info("request",
			"method", r.Method,
			"path", r.URL.Path,
			"query", r.URL.RawQuery,
			"status", rec.status,
			"bytes", rec.bytes,
			"duration_ms", float64(time.Since(start).Microseconds())/1000,
			"remote", r.RemoteAddr,
		)
	})
}

// runHealthcheck GETs this server's own /healthz (the -healthcheck flag), so images
// without a shell or curl can still have a HEALTHCHECK. Returns the exit code.
func runHealthcheck(opts options, timeout time.Duration) int {
	target, err := healthcheckURL(opts.addr, opts.tlsCert != "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	// With -tls-cert the server's certificate is for its public name, not 127.0.0.1;
	// checking our own process on loopback, skipping verification is acceptable.
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback self-check
	}}
	resp, err := client.Get(target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck: status", resp.StatusCode)
		return 1
	}
	return 0
}

func healthcheckURL(addr string, useTLS bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("bad -addr %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: "/healthz"}).String(), nil
}
