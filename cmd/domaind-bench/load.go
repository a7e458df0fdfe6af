package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// newClient returns an HTTP client that keeps a connection open per concurrent
// client, so the benchmark measures requests rather than TCP handshakes (the
// default transport keeps only two idle connections per host).
func newClient(clients int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        clients,
			MaxIdleConnsPerHost: clients,
			DisableCompression:  true,
		},
		Timeout: 2 * time.Minute,
	}
}

// request builds the next request of one client; seq counts that client's requests.
type request func(client, seq int) (*http.Request, error)

// loadResult is what a load run measured.
type loadResult struct {
	Requests int
	Errors   int
	FirstErr string
	Elapsed  time.Duration   // from the first request to the last answer
	Latency  []time.Duration // of every answered request, sorted
	CPUBusy  float64         // share of the machine's CPU time in use, or -1
	CPUSelf  float64         // share of it this process used
}

func (r loadResult) rps() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of the
// latencies.
func (r loadResult) percentile(p float64) time.Duration {
	if len(r.Latency) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(r.Latency)))) - 1
	return r.Latency[min(max(i, 0), len(r.Latency)-1)]
}

// load runs clients goroutines that each send requests one after another, until
// duration has passed (limit 0) or limit requests have been sent in all. A request
// whose status is not want counts as an error. Requests still running when time is
// up are waited for and counted: the elapsed time runs to the last answer.
func load(ctx context.Context, hc *http.Client, clients int, duration time.Duration, limit int, want int, next request) loadResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		res   loadResult
		lats  = make([][]time.Duration, clients)
		sent  int
		wg    sync.WaitGroup
		start = time.Now()
		cpu   = startCPU()
	)
	deadline := start.Add(duration)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if limit > 0 {
			if sent >= limit {
				return false
			}
		} else if time.Now().After(deadline) {
			return false
		}
		sent++
		return true
	}
	fail := func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		res.Errors++
		if res.FirstErr == "" {
			res.FirstErr = msg
		}
	}
	for c := range clients {
		wg.Go(func() {
			for seq := 0; ctx.Err() == nil && take(); seq++ {
				req, err := next(c, seq)
				if err != nil {
					fail(err.Error())
					continue
				}
				t0 := time.Now()
				resp, err := hc.Do(req.WithContext(ctx))
				if err != nil {
					fail(err.Error())
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				lats[c] = append(lats[c], time.Since(t0))
				if err != nil {
					fail(err.Error())
				} else if resp.StatusCode != want {
					fail(fmt.Sprintf("%s %s: status %d: %.200s", req.Method, req.URL.Path, resp.StatusCode, body))
				}
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.CPUBusy, res.CPUSelf = cpu.busyShare(), cpu.selfShare()
	for _, l := range lats {
		res.Latency = append(res.Latency, l...)
	}
	slices.Sort(res.Latency)
	res.Requests = len(res.Latency)
	return res
}

// wrkResult is what one run of wrk measured.
type wrkResult struct {
	Requests int
	Errors   int // connection errors, timeouts and answers other than 2xx and 3xx
	Elapsed  time.Duration
	P50, P99 time.Duration
	// CPU used during the run, as a share of one core: the server's process
	// (this one), wrk's and, when measured, PostgreSQL's.
	ServerCPU, WrkCPU, PGCPU float64
}

func (r wrkResult) rps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// wrkScript picks, for every request, a random path of the file wrk is given
// (one per line), and prints the totals in a form runWrk reads; latencies are
// in microseconds.
const wrkScript = `local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
local n = 0
function setup(thread)
	n = n + 1
	thread:set("seed", n)
end
function init(args)
	math.randomseed(os.time() * 1000 + seed)
end
function request()
	return wrk.format("GET", paths[math.random(#paths)])
end
function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
		latency:percentile(50), latency:percentile(99),
		e.connect + e.read + e.write + e.timeout + e.status))
end
`

// wrkRun is one run of wrk against base: conns connections on threads threads
// for d, each request for a random one of paths, with header.
type wrkRun struct {
	base    string
	paths   []string
	header  string
	conns   int
	threads int
	d       time.Duration
	pg      *pgCPU // nil: PostgreSQL's CPU is not measured
}

// runWrk runs wrk, Debian's, as a process of its own, and reads what it
// measured and the CPU each process used meanwhile.
func runWrk(ctx context.Context, dir string, w wrkRun) (wrkResult, error) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk is not installed (apt-get install wrk): %w", err)
	}
	script := filepath.Join(dir, "wrk-random.lua")
	list := filepath.Join(dir, "wrk-paths.txt")
	if err := os.WriteFile(script, []byte(wrkScript), 0o644); err != nil {
		return wrkResult{}, err
	}
	if err := os.WriteFile(list, []byte(strings.Join(w.paths, "\n")+"\n"), 0o644); err != nil {
		return wrkResult{}, err
	}
	args := []string{"-t", strconv.Itoa(w.threads), "-c", strconv.Itoa(w.conns), "-d", fmt.Sprintf("%ds", max(1, int(math.Round(w.d.Seconds())))),
		"--latency", "--timeout", "10s", "-s", script}
	if w.header != "" {
		args = append(args, "-H", w.header)
	}
	cmd := exec.CommandContext(ctx, bin, append(args, w.base)...)
	cmd.Env = append(os.Environ(), "WRK_PATHS="+list)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	self := selfCPU()
	var pg0 time.Duration
	if w.pg != nil {
		pg0 = w.pg.used()
	}
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	res := wrkResult{ServerCPU: float64(selfCPU()-self) / float64(wall)}
	if w.pg != nil {
		res.PGCPU = float64(w.pg.used()-pg0) / float64(wall)
	}
	if err != nil {
		return res, fmt.Errorf("wrk: %w: %.300s", err, out.String())
	}
	if st := cmd.ProcessState; st != nil {
		res.WrkCPU = float64(st.UserTime()+st.SystemTime()) / float64(wall)
	}
	for line := range strings.Lines(out.String()) {
		f := strings.Fields(line)
		if len(f) != 6 || f[0] != "RESULT" {
			continue
		}
		var v [5]int64
		for i := range v {
			if v[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
				return res, fmt.Errorf("wrk: %q: %w", line, err)
			}
		}
		res.Requests, res.Elapsed = int(v[0]), time.Duration(v[1])*time.Microsecond
		res.P50, res.P99 = time.Duration(v[2])*time.Microsecond, time.Duration(v[3])*time.Microsecond
		res.Errors = int(v[4])
		return res, nil
	}
	return res, fmt.Errorf("wrk printed no result: %.300s", out.String())
}

// pgCPU measures the CPU time a PostgreSQL server's processes use: the
// postmaster and its children, and the children that ended (counted in the
// postmaster's cutime and cstime).
type pgCPU struct {
	postmaster int
}

// clockTicks is the unit of /proc's CPU times, USER_HZ, which is 100 on Linux.
const clockTicks = 100

// used returns the CPU time the server's processes have used so far.
func (p *pgCPU) used() time.Duration {
	var total int64
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		st, err := procStat(pid)
		if err != nil {
			continue
		}
		switch {
		case pid == p.postmaster:
			total += st.utime + st.stime + st.cutime + st.cstime
		case st.ppid == p.postmaster:
			total += st.utime + st.stime
		}
	}
	return time.Duration(total) * time.Second / clockTicks
}

// stat is what the bench reads of /proc/PID/stat.
type stat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

// procStat reads /proc/PID/stat. Its second field, the command in
// parentheses, may hold spaces, so fields are counted from the last ")".
func procStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime to cstime 14 to 17.
	if len(f) < 15 {
		return stat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var s stat
	var n [5]int64
	for j, k := range []int{1, 11, 12, 13, 14} {
		if n[j], err = strconv.ParseInt(f[k], 10, 64); err != nil {
			return stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	s.ppid = int(n[0])
	s.utime, s.stime, s.cutime, s.cstime = n[1], n[2], n[3], n[4]
	return s, nil
}
