// Command devdns is a small authoritative DNS server for trying domaind locally: it
// serves one zone file on a loopback address and reloads it whenever the file
// changes, so a newcomer can "publish" records by editing a file. It is built on
// the same package the tests use and is not meant for production.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnstest"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5353", "loopback address and port to serve on")
	origin := flag.String("origin", "", "the zone's origin, e.g. example.com")
	file := flag.String("zone", "", "zone file to serve; re-read when it changes")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *origin, *file, log); err != nil {
		fmt.Fprintln(os.Stderr, "devdns:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, origin, file string, log *slog.Logger) error {
	if origin == "" || file == "" {
		return fmt.Errorf("both -origin and -zone are required")
	}
	origin = dns.Fqdn(origin)
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("-listen: bad port %q", portStr)
	}
	srv, err := dnstest.NewServer(ctx, host, port)
	if err != nil {
		return err
	}
	defer srv.Close()

	var loaded time.Time
	reload := func() {
		st, err := os.Stat(file)
		if err != nil {
			log.Error("cannot read zone file", "err", err)
			return
		}
		if !st.ModTime().After(loaded) {
			return
		}
		z, n, err := load(origin, file)
		if err != nil {
			log.Error("zone file not loaded; still serving the previous version", "err", err)
			loaded = st.ModTime()
			return
		}
		srv.AddZone(z) // replaces the zone of the same origin in one step
		loaded = st.ModTime()
		log.Info("zone loaded", "origin", origin, "records", n, "addr", srv.Addr())
	}
	reload()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			srv.ResetQueries() // the query log is for tests; keep it from growing here
			reload()
		}
	}
}

// load parses a zone file with miekg/dns's parser, which understands $ORIGIN,
// $TTL, parentheses and quoted strings.
func load(origin, file string) (*dnstest.Zone, int, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	z := dnstest.NewZone(origin)
	zp := dns.NewZoneParser(f, origin, file)
	n := 0
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if err := z.AddRR(rr); err != nil {
			return nil, 0, err
		}
		n++
	}
	if err := zp.Err(); err != nil {
		return nil, 0, err
	}
	return z, n, nil
}
