package dnscheck_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
)

// benchNet is the scale-out bench's DNS: a loopback root delegating the
// domains' zone, bench.test., and the platform's SPF include, amazonses.com.,
// to one authoritative server, with every record of benchDomains domains
// published.
type benchNet struct {
	net  *dnstest.Net
	auth *dnstest.Server
	exps [][]dnscheck.Expectation
}

const benchDomains = 2000

func newBenchNet(b *testing.B) *benchNet {
	b.Helper()
	n := dnstest.StartNet(b, 1)
	bn := &benchNet{net: n, auth: n.Servers()[0]}
	for _, s := range []*dnstest.Server{n.Root(), bn.auth} {
		// Many checks at once burst past the default receive buffer.
		if err := s.SetReadBuffer(8 << 20); err != nil {
			b.Logf("warning: %v", err)
		}
	}
	ses, err := n.AddZone("amazonses.com.", bn.auth)
	if err != nil {
		b.Fatal(err)
	}
	ses.MustAdd(`amazonses.com. 300 IN TXT "v=spf1 ip4:199.255.192.0/22 -all"`)
	zone, err := n.AddZone("bench.test.", bn.auth)
	if err != nil {
		b.Fatal(err)
	}
	cn := &cacheNet{zone: zone}
	for i := range benchDomains {
		bn.exps = append(bn.exps, cn.publish(b, fmt.Sprintf("c%06d.bench.test", i)))
	}
	return bn
}

func (bn *benchNet) queries() int { return len(bn.net.Root().Queries()) + len(bn.auth.Queries()) }

func (bn *benchNet) checker(b *testing.B, mode dnscheck.Mode, cache *dnscheck.Cache) *dnscheck.Checker {
	c, err := dnscheck.New(dnscheck.Config{
		Mode: mode, RootHints: bn.net.RootIPs(), AuthoritativePort: bn.net.Port(),
		// In recursive mode the zone's server stands for the resolver, as Knot
		// does in the API bench: it answers from its zones whatever RD says.
		Resolvers: []string{bn.auth.Addr()},
		Timeout:   2 * time.Second, Retries: 1, AllowPrivate: true, ServerConcurrency: 1 << 16, Cache: cache,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkCheckWarm checks domains of one zone, 64 at once as the scale-out
// bench's workers do, with the infrastructure cache warmed by one check, and
// reports the DNS queries each check sent (root and authoritative server
// together), checks per second and queries per second; "nocache" walks from
// the root for every check, and "recursive" asks the zone's server as a
// resolver. With DNSCHECK_DNSPERF=1 it then runs dnsperf against the same
// server for 10 s with the checks' own questions, and reports its rate as the
// anchor, and the checks' rate as a share of it (make bench runs "cache" so).
func BenchmarkCheckWarm(b *testing.B) {
	for _, tc := range []struct {
		name   string
		mode   dnscheck.Mode
		cached bool
	}{
		{"nocache", dnscheck.ModeAuthoritative, false},
		{"cache", dnscheck.ModeAuthoritative, true},
		{"recursive", dnscheck.ModeRecursive, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bn := newBenchNet(b)
			var cache *dnscheck.Cache
			if tc.cached {
				cache = dnscheck.NewCache(dnscheck.CacheOptions{})
			}
			c := bn.checker(b, tc.mode, cache)
			for _, o := range c.Check(b.Context(), bn.exps[0]) {
				if o.Status != domain.CheckVerified {
					b.Fatalf("%s: %s %+v", o.Key, o.Status, o.Problems)
				}
			}
			bn.net.Root().ResetQueries()
			bn.auth.ResetQueries()
			var next, failed atomic.Int64
			b.SetParallelism(32) // 64 checks at once on 2 cores
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					for _, o := range c.Check(context.Background(), bn.exps[i%benchDomains]) {
						if o.Status != domain.CheckVerified {
							if failed.Add(1) <= 3 {
								b.Logf("%s: %s %+v", o.Key, o.Status, o.Problems)
							}
						}
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if f := failed.Load(); f > 0 {
				b.Errorf("%d records not verified", f)
			}
			q := bn.queries()
			b.ReportMetric(float64(q)/float64(b.N), "queries/check")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "checks/s")
			b.ReportMetric(float64(q)/elapsed.Seconds(), "queries/s")
			if os.Getenv("DNSCHECK_DNSPERF") == "1" {
				qps, err := dnsperf(b, bn)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(qps, "dnsperf-queries/s")
				b.ReportMetric(100*float64(q)/elapsed.Seconds()/qps, "%-of-dnsperf")
			}
		})
	}
}

// dnsperf runs Debian's dnsperf against the authoritative server with the
// questions a check asks, and returns the queries per second it reached.
func dnsperf(b *testing.B, bn *benchNet) (float64, error) {
	path, err := exec.LookPath("dnsperf")
	if err != nil {
		return 0, err
	}
	var data bytes.Buffer
	for _, exps := range bn.exps {
		for _, e := range exps {
			fmt.Fprintf(&data, "%s %s\n", e.Name, e.Type)
		}
		data.WriteString("amazonses.com TXT\n")
	}
	file := filepath.Join(b.TempDir(), "queries")
	if err := os.WriteFile(file, data.Bytes(), 0o644); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-s", bn.auth.IP(), "-p", strconv.Itoa(bn.net.Port()),
		"-d", file, "-l", "10", "-c", "4").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("dnsperf: %w: %s", err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Queries per second:"); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("dnsperf: no rate in its output: %s", out)
}
