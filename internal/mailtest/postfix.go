package mailtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/testenv"
)

// PostfixOptions configure a throwaway Postfix.
type PostfixOptions struct {
	// Milter is the host:port of a milter on loopback that Postfix passes
	// every message to, from SMTP (smtpd_milters) and from the sendmail
	// command (non_smtpd_milters), with milter_default_action = tempfail.
	Milter string
	// Relay is the host:port on loopback every message is relayed to.
	Relay string
	// Settings are further main.cf settings, name to value.
	Settings map[string]string
}

// Postfix is a Postfix instance of Debian's postfix package, with a configuration
// and queue of its own in a temporary folder, accepting SMTP on a loopback port.
type Postfix struct {
	dir  string // config in dir/etc, queue in dir/spool
	addr string
	log  *testenv.Buffer
	done chan error
}

// StartPostfix starts Postfix in the foreground and stops it when the test ends.
// It needs root (Postfix's master insists) and the postfix package; without them
// the test is skipped, or fails under CI=true. The recipe is
// ../shared/notes/postfix-on-loopback.md.
func StartPostfix(t testing.TB, o PostfixOptions) *Postfix {
	t.Helper()
	postfix := testenv.LookBinary(t, "postfix", "postfix")
	postconf := testenv.LookBinary(t, "postconf", "postfix")
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "Postfix tests need root (its master process runs as root)")
	}
	for _, a := range []string{o.Milter, o.Relay} {
		if err := checkLoopbackAddr(a); err != nil {
			t.Fatalf("StartPostfix: %v", err)
		}
	}
	// Not t.TempDir: Postfix's daemons run as the postfix user and must reach
	// the queue, so every folder on the way must be searchable by it.
	dir, err := os.MkdirTemp("", "domaind-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(dir, "etc")
	for _, d := range []string{etc, filepath.Join(dir, "spool"), filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port := testenv.FreePort(t, "127.0.0.1")
	p := &Postfix{dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), log: &testenv.Buffer{}, done: make(chan error, 1)}

	master, err := os.ReadFile("/etc/postfix/master.cf")
	if err != nil {
		testenv.SkipOrFail(t, fmt.Sprintf("Postfix's master.cf is missing (%v): apt-get install postfix", err))
	}
	var mc strings.Builder
	for _, line := range strings.Split(string(master), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "smtp" && f[1] == "inet" {
			line = fmt.Sprintf("%s inet n - n - - smtpd", p.addr)
		}
		mc.WriteString(line + "\n")
	}
	if err := os.WriteFile(filepath.Join(etc, "master.cf"), []byte(mc.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{
		"compatibility_level":          "3.6",
		"myhostname":                   "mta.postfix.test",
		"inet_interfaces":              "127.0.0.1",
		"inet_protocols":               "ipv4",
		"mydestination":                "",
		"mynetworks":                   "127.0.0.0/8",
		"smtpd_relay_restrictions":     "permit_mynetworks, reject",
		"relayhost":                    "[" + strings.Replace(o.Relay, ":", "]:", 1),
		"queue_directory":              filepath.Join(dir, "spool"),
		"data_directory":               filepath.Join(dir, "data"),
		"maillog_file":                 "/dev/stdout",
		"alias_maps":                   "",
		"alias_database":               "",
		"smtp_tls_security_level":      "none",
		"smtpd_tls_security_level":     "none",
		"smtp_dns_support_level":       "disabled",
		"smtputf8_enable":              "no",
		"biff":                         "no",
		"smtpd_milters":                "inet:" + o.Milter,
		"non_smtpd_milters":            "inet:" + o.Milter,
		"milter_default_action":        "tempfail",
		"milter_connect_timeout":       "5s",
		"milter_command_timeout":       "10s",
		"milter_content_timeout":       "30s",
		"smtp_connect_timeout":         "5s",
		"queue_run_delay":              "1s",
		"minimal_backoff_time":         "1s",
		"maximal_backoff_time":         "2s",
		"smtpd_client_restrictions":    "",
		"smtpd_helo_required":          "no",
		"smtpd_peername_lookup":        "no",
		"import_environment":           "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C",
		"local_header_rewrite_clients": "permit_mynetworks",
	}
	for k, v := range o.Settings {
		settings[k] = v
	}
	var main strings.Builder
	for k, v := range settings {
		fmt.Fprintf(&main, "%s = %s\n", k, v)
	}
	if err := os.WriteFile(filepath.Join(etc, "main.cf"), []byte(main.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run(postconf, "-c", etc, "-F", "*/*/chroot = n")
	run("chown", "postfix:postfix", filepath.Join(dir, "data"))
	run(postfix, "-c", etc, "post-install", "create-missing")

	cmd := exec.Command(postfix, "-c", etc, "start-fg")
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("postfix start-fg: %v", err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, postfix, "-c", etc, "stop").CombinedOutput()
		select {
		case <-p.done:
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-p.done
			t.Errorf("postfix did not stop (%v %s)", err, out)
		}
		if t.Failed() {
			t.Logf("postfix log:\n%s", p.Log())
		}
	})
	// Ready once its smtpd answers, polled within a deadline.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("postfix exited before it served SMTP (%v):\n%s", err, p.Log())
		case <-ctx.Done():
			t.Fatalf("postfix did not serve SMTP on %s within the deadline:\n%s", p.addr, p.Log())
		case <-tick.C:
		}
	}
}

// Addr returns the host:port of Postfix's SMTP server.
func (p *Postfix) Addr() string { return p.addr }

// Log returns what Postfix logged so far.
func (p *Postfix) Log() string { return p.log.String() }

// Send submits msg over SMTP (the smtpd_milters path).
func (p *Postfix) Send(from string, to []string, msg []byte) error {
	return smtp.SendMail(p.addr, nil, from, to, msg)
}

// Sendmail submits msg with Postfix's sendmail command (the non_smtpd_milters
// path: pickup hands it to cleanup, which calls the milter).
func (p *Postfix) Sendmail(ctx context.Context, from string, to []string, msg []byte) error {
	args := append([]string{"-C", filepath.Join(p.dir, "etc"), "-f", from, "-i", "--"}, to...)
	cmd := exec.CommandContext(ctx, "/usr/sbin/sendmail", args...)
	cmd.Stdin = bytes.NewReader(msg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sendmail: %v: %s", err, out)
	}
	return nil
}

func checkLoopbackAddr(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address", hostport)
	}
	return nil
}
