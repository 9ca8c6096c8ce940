// Command server is the Go app of the multi-stage builds lab: a small HTTP server
// that uses only the standard library, so it builds without the Go module proxy.
//
// Each endpoint exists to make one image lesson visible:
//
//	/          hello + the version injected with -ldflags "-X main.version=..."
//	/healthz   liveness, also used by the -healthcheck flag (no curl needed)
//	/time      needs time zone data: breaks on a bare scratch image
//	/fetch     outbound HTTPS: needs CA certificates in the image
//	/whoami    uid/gid/user name: the non-root lesson
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// version is replaced at build time: go build -ldflags "-X main.version=1.2.3".
var version = "dev"

// shutdownGrace bounds the graceful shutdown so the process exits well within the
// 10 s `docker stop` grace period (the lab asserts it stops within 2 s).
const shutdownGrace = 1500 * time.Millisecond

type options struct {
	addr        string
	tlsCert     string
	tlsKey      string
	showVersion bool
	healthcheck bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", envOr("ADDR", ":8080"), "listen address (env ADDR)")
	fs.StringVar(&o.tlsCert, "tls-cert", os.Getenv("TLS_CERT"), "PEM certificate: serve HTTPS (env TLS_CERT)")
	fs.StringVar(&o.tlsKey, "tls-key", os.Getenv("TLS_KEY"), "PEM private key for -tls-cert (env TLS_KEY)")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	fs.BoolVar(&o.healthcheck, "healthcheck", false, "GET this server's /healthz and exit 0 (healthy) or 1")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return o, errors.New("-tls-cert and -tls-key must be given together")
	}
	return o, nil
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(2)
	}
	switch {
	case opts.showVersion:
		fmt.Println(version)
	case opts.healthcheck:
		os.Exit(runHealthcheck(opts, 2*time.Second))
	default:
		logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
		if err := serve(opts, logger); err != nil {
			logger.Error("server stopped", "error", err.Error())
			os.Exit(1)
		}
	}
}

// serve runs until SIGTERM or SIGINT, then shuts down gracefully. Go installs its own
// signal handlers, so this works as PID 1 in a container (no init process needed).
func serve(opts options, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	srv := &http.Server{
		Addr:              opts.addr,
		Handler:           newServer(logger).routes(),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		if opts.tlsCert != "" {
			errc <- srv.ServeTLS(ln, opts.tlsCert, opts.tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	logger.Info("listening", "addr", ln.Addr().String(), "version", version,
		"tls", opts.tlsCert != "", "pid", os.Getpid())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down", "grace", shutdownGrace.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("forced shutdown", "error", err.Error())
		_ = srv.Close()
	}
	logger.Info("stopped")
	return nil
}
