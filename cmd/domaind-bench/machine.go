package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// machine describes where the numbers came from.
type machine struct {
	CPU     string
	Cores   int
	Memory  string
	Kernel  string
	Go      string
	Commit  string
	Started time.Time
}

func describeMachine(ctx context.Context) machine {
	m := machine{
		CPU: "unknown CPU", Cores: runtime.NumCPU(), Memory: "unknown memory", Kernel: runtime.GOOS,
		Go: runtime.Version(), Commit: "unknown", Started: time.Now().UTC(),
	}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPU = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		if kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64); err == nil {
			m.Memory = fmt.Sprintf("%.1f GiB memory", float64(kb)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(b))
		// Numbers measured on edited files belong to no commit; say so.
		if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			m.Commit += " (with uncommitted changes)"
		}
	}
	return m
}

// procField returns the value of the first "name: value" line of a /proc file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// cpuTimes reads the machine's busy and total CPU time from /proc/stat, so a
// phase can report how busy the whole machine was (the benchmark, the database
// server and the DNS server share it).
func cpuTimes() (busy, total uint64, ok bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, false
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, false
	}
	for i, s := range fields[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		// user nice system idle iowait irq softirq steal...: idle and iowait are
		// the time nobody ran.
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy, total, true
}

// cpuMeter measures how busy the machine's CPUs were between its start and a
// reading, and what share of that this process used.
type cpuMeter struct {
	busy, total uint64
	ok          bool
	self        time.Duration
	wall        time.Time
}

func startCPU() cpuMeter {
	b, t, ok := cpuTimes()
	return cpuMeter{busy: b, total: t, ok: ok, self: selfCPU(), wall: time.Now()}
}

// busyShare returns the share of all CPUs' time spent running anything since
// start, or -1 when /proc/stat cannot be read.
func (m cpuMeter) busyShare() float64 {
	b, t, ok := cpuTimes()
	if !ok || !m.ok || t <= m.total {
		return -1
	}
	return float64(b-m.busy) / float64(t-m.total)
}

// selfShare returns the share of all CPUs' time this process used since start.
func (m cpuMeter) selfShare() float64 {
	wall := time.Since(m.wall)
	if wall <= 0 {
		return -1
	}
	return float64(selfCPU()-m.self) / float64(wall) / float64(runtime.NumCPU())
}

// selfCPU returns the user and system CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
