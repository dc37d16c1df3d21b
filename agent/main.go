// Command faas-agent is PID 1 of every faas sandbox: it reaps orphans and
// serves the v1 agent protocol (spec/agent-protocol.md) over HTTP on :7070.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"faas/agent/internal/api"
	"faas/agent/internal/changes"
	"faas/agent/internal/harden"
	"faas/agent/internal/listener"
	"faas/agent/internal/process"
	"faas/agent/internal/reaper"
	"faas/agent/internal/splice"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		log.Printf("faas-agent: %v", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	// The engine's HTTP proxy uses this binary on the host to splice large bodies (internal/splice).
	if len(args) > 0 && args[0] == "splice" {
		return splice.Run(args[1:])
	}
	fs := flag.NewFlagSet("faas-agent", flag.ContinueOnError)
	defListen := "0.0.0.0:7070"
	if v := os.Getenv("FAAS_AGENT_LISTEN"); v != "" {
		defListen = v
	}
	listen := fs.String("listen", defListen, "listen address (env FAAS_AGENT_LISTEN)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		fmt.Println(version)
		return nil
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	// Before anything is spawned: children must never be able to read our
	// memory (the key). In a sandbox (PID 1) a failure is fatal; a dev run or
	// a test outside one only warns.
	if err := harden.Self(); err != nil {
		if os.Getpid() == 1 {
			return fmt.Errorf("hardening: %w", err)
		}
		log.Printf("faas-agent: hardening not applied (not PID 1): %v", err)
	}

	// Start reaping before anything can spawn or be orphaned onto us.
	reaper.Default()

	// Change tracking starts at a cold boot only, before anything can write; a restored agent
	// resumes with its tracker (and its watches) restored with it.
	if os.Getpid() == 1 {
		if err := changes.Default.Start("/"); err != nil {
			log.Printf("faas-agent: change tracking not available: %v", err)
		}
	}

	// Signals are registered before listening so an early SIGTERM is not lost.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)

	ln, err := listener.Exclusive(*listen)
	if err != nil {
		return err
	}
	srv := api.NewHTTPServer(api.New(version).Handler())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Printf("faas-agent %s listening on %s (pid %d)", version, ln.Addr(), os.Getpid())

	select {
	case sig := <-sigc:
		log.Printf("faas-agent: %v: stopping children", sig)
		// PID-1 duty: TERM every group we started, 2 s grace, KILL, exit 0.
		process.Shutdown(2 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		srv.Shutdown(ctx)
		cancel()
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
