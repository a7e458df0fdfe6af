package signing

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"unicode"

	"github.com/domaind/domaind/internal/records"
)

// Format is how Export describes the keys to a signer.
type Format string

const (
	// FormatOpenDKIM writes a KeyTable and a SigningTable (refile: form) that
	// OpenDKIM reads as they are.
	FormatOpenDKIM Format = "opendkim"
	// FormatJSON writes signing-keys.json for other signers (KumoMTA, Haraka, …).
	FormatJSON Format = "json"
)

// ParseFormat returns the Format named s.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatOpenDKIM, FormatJSON:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q: use opendkim or json", s)
}

// The files Export writes in its folder. KeysDir holds one PEM file per key.
const (
	KeysDir          = "keys"
	KeyTableFile     = "KeyTable"
	SigningTableFile = "SigningTable"
	JSONFile         = "signing-keys.json"
	// manifestFile lists the key files the last export wrote, one name a line.
	// Only files it names (and that match the key-file pattern) are ever
	// removed, so keys an operator put in the keys folder by hand stay.
	manifestFile = ".domaind-export-keys"
	// lockFile serializes exports into one folder: two overlapping runs from a
	// timer could otherwise remove a key the other's tables still name.
	lockFile = ".domaind-export.lock"
	// tmpPrefix starts every temporary file; a run removes leftovers of a run
	// that crashed (it holds the lock, so no other run is writing them).
	tmpPrefix = ".domaind-export-tmp-"
)

var (
	// exportDomain and exportSelector are the names Export accepts. Names come
	// from the database, which came from customers: a name with a slash, a space
	// or a newline would escape the keys folder or forge a table line, so it
	// stops the export rather than being written.
	exportDomain   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)
	exportSelector = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	// keyFileName is the shape of every key file Export writes:
	// <domain>.<selector>.pem.
	keyFileName = regexp.MustCompile(`^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\.pem$`)
)

// KeyFileName is the name of key's PEM file in the keys folder.
func KeyFileName(key Key) string { return key.Domain + "." + key.Selector + ".pem" }

// SignedHeaders returns the header fields domaind signs when a message has them,
// in the order it signs them. From is signed once more than it occurs.
func SignedHeaders() []string { return slices.Clone(signedHeaders) }

// Owner is the user and group that exported files and folders are given, so
// that a signer running as its own user (OpenDKIM runs as opendkim) can read
// keys written by root. UID -1 leaves ownership as the export process makes it.
type Owner struct {
	UID, GID int
}

// NoOwner leaves files owned by the user that runs the export.
var NoOwner = Owner{UID: -1, GID: -1}

// ExportResult says what an export changed.
type ExportResult struct {
	Keys      int // keys exported
	Written   int // key files written because they were new or changed
	Removed   int // key files removed because their domain no longer signs
	Dir       string
	KeysDir   string
	Format    Format
	TableFile []string // the table files written, absolute
}

// ErrExportLocked is returned by Export when another export holds the folder.
var ErrExportLocked = errors.New("another export into this folder is running")

// Export writes keys into dir for a signer to read: every key as PEM in
// dir/keys (mode 0600), then the tables of format naming them. It is meant to
// run again and again (from a timer), with a signer reading the folder at any
// moment, so every file is replaced by renaming a complete, synced temporary
// file over it, and the steps are ordered so that the tables never name a key
// file that is not there: keys first, then the tables, and only then the removal
// of keys the new tables no longer name. dir and dir/keys are created with mode
// 0700 when missing, and with owner, everything the export writes is given to
// that user and group. Keys whose names are not plain domain names and selectors
// stop the export before anything is written.
//
// A signer such as OpenDKIM reads its tables only when it starts or reloads, so
// until it reloads it may still name a key this run would remove. reload, when
// not nil, is called once the new tables are in place and before any key is
// removed; if it fails, nothing is removed (the next run removes it) and Export
// returns its error.
func Export(ctx context.Context, dir string, keys []Key, format Format, owner Owner, reload func(context.Context) error) (ExportResult, error) {
	if _, err := ParseFormat(string(format)); err != nil {
		return ExportResult{}, err
	}
	if dir == "" {
		return ExportResult{}, errors.New("no export folder given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ExportResult{}, fmt.Errorf("export folder: %w", err)
	}
	// OpenDKIM's tables separate fields with white space and start comments
	// with #, and a line ends at a newline; a path holding any of them cannot be
	// written into a table.
	if format == FormatOpenDKIM && strings.ContainsFunc(abs, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '#' }) {
		return ExportResult{}, fmt.Errorf("export folder %q holds white space, a control character or #, which OpenDKIM's tables cannot carry", abs)
	}
	keysDir := filepath.Join(abs, KeysDir)
	res := ExportResult{Dir: abs, KeysDir: keysDir, Format: format, Keys: len(keys)}

	// Everything that can fail on the keys themselves is done before the
	// first write, so a bad key leaves the folder as it was.
	files := make(map[string][]byte, len(keys))
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b Key) int { return strings.Compare(a.Domain, b.Domain) })
	for i, k := range sorted {
		if !exportDomain.MatchString(k.Domain) || len(k.Domain) > 253 {
			return ExportResult{}, fmt.Errorf("the domain name %q is not a plain domain name; refusing to export it", k.Domain)
		}
		if !exportSelector.MatchString(k.Selector) {
			return ExportResult{}, fmt.Errorf("the DKIM selector %q of %s is not a plain DNS name; refusing to export it", k.Selector, k.Domain)
		}
		if i > 0 && sorted[i-1].Domain == k.Domain {
			return ExportResult{}, fmt.Errorf("two keys for %s; export wants one key per domain", k.Domain)
		}
		if k.Private == nil {
			return ExportResult{}, fmt.Errorf("the key of %s is missing", k.Domain)
		}
		name := KeyFileName(k)
		if _, dup := files[name]; dup {
			return ExportResult{}, fmt.Errorf("two keys would both be written to %s; a dotted selector makes names ambiguous", name)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.Private)
		if err != nil {
			return ExportResult{}, fmt.Errorf("the key of %s: %w", k.Domain, err)
		}
		files[name] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	var tables map[string][]byte
	switch format {
	case FormatOpenDKIM:
		tables = openDKIMTables(sorted, keysDir)
	case FormatJSON:
		b, err := jsonTable(sorted, keysDir)
		if err != nil {
			return ExportResult{}, err
		}
		tables = map[string][]byte{JSONFile: b}
	}

	if err := os.MkdirAll(abs, 0o700); err != nil {
		return ExportResult{}, fmt.Errorf("export folder: %w", err)
	}
	if err := os.Mkdir(keysDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return ExportResult{}, fmt.Errorf("keys folder: %w", err)
	}
	if owner.UID >= 0 {
		for _, d := range []string{abs, keysDir} {
			if err := os.Lchown(d, owner.UID, owner.GID); err != nil {
				return ExportResult{}, fmt.Errorf("give the export folder to its owner: %w", err)
			}
		}
	}
	unlock, err := lock(filepath.Join(abs, lockFile), owner)
	if err != nil {
		return ExportResult{}, err
	}
	defer unlock()
	removeTemps(abs)
	removeTemps(keysDir)

	w := writer{owner: owner}
	owned, err := readManifest(filepath.Join(abs, manifestFile))
	if err != nil {
		return ExportResult{}, err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)

	// 1. The keys. A file that already holds the same key is left alone, so a
	// timer run that changes nothing writes nothing.
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		path := filepath.Join(keysDir, name)
		if w.same(path, files[name], 0o600) {
			continue
		}
		if err := w.writeAtomic(keysDir, name, files[name], 0o600); err != nil {
			return res, fmt.Errorf("write key: %w", err)
		}
		res.Written++
	}
	if err := syncDir(keysDir); err != nil {
		return res, err
	}
	// 2. Remember the old and new keys as ours before the tables change, so a
	// crash between here and the removal leaves the next run able to finish it.
	union := slices.Clone(names)
	for _, o := range owned {
		if !slices.Contains(union, o) {
			union = append(union, o)
		}
	}
	slices.Sort(union)
	if err := w.writeManifest(abs, union); err != nil {
		return res, err
	}
	// 3. The tables, which from now on name only the new keys.
	for _, t := range slices.Sorted(maps.Keys(tables)) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if err := w.writeAtomic(abs, t, tables[t], 0o644); err != nil {
			return res, fmt.Errorf("write %s: %w", t, err)
		}
		res.TableFile = append(res.TableFile, filepath.Join(abs, t))
	}
	if err := syncDir(abs); err != nil {
		return res, err
	}
	// 4. The signer reads the new tables, which name none of the keys below.
	if reload != nil {
		if err := reload(ctx); err != nil {
			return res, fmt.Errorf("reload the signer (stale keys kept until it succeeds): %w", err)
		}
	}
	// 5. Keys the tables no longer name. Only files this export wrote before
	// (named in the manifest) of the key-file shape are removed, never anything
	// an operator put there.
	for _, o := range owned {
		if _, keep := files[o]; keep || !keyFileName.MatchString(o) {
			continue
		}
		path := filepath.Join(keysDir, o)
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("stale key: %w", err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		if err := os.Remove(path); err != nil {
			return res, fmt.Errorf("remove stale key: %w", err)
		}
		res.Removed++
	}
	if err := syncDir(keysDir); err != nil {
		return res, err
	}
	if err := w.writeManifest(abs, names); err != nil {
		return res, err
	}
	return res, nil
}

// openDKIMTables returns the KeyTable and SigningTable for keys, sorted by domain.
//
// The SigningTable mirrors how domaind's own signer chooses a key (see For):
// mail from a domain is signed with its own key, and mail from a subdomain
// without a key of its own with the key of its closest parent that has one
// (d= the parent, which DMARC's relaxed alignment accepts). OpenDKIM takes the
// first matching line of a refile: table, so the exact "*@domain" lines come
// first and the "*@*.domain" lines follow, deepest domain first: for mail from
// a.b.example.com, "*@*.b.example.com" is met before "*@*.example.com".
// OpenDKIM turns * into .* and escapes dots, and anchors the pattern, so
// "*@*.example.com" does not match badexample.com.
func openDKIMTables(keys []Key, keysDir string) map[string][]byte {
	const header = "# Written by domaind dkim export; the next export replaces this file. Do not edit.\n"
	var kt, st bytes.Buffer
	kt.WriteString(header)
	st.WriteString(header)
	for _, k := range keys {
		fmt.Fprintf(&kt, "%s %s:%s:%s\n", records.DKIMName(k.Selector, k.Domain), k.Domain, k.Selector, filepath.Join(keysDir, KeyFileName(k)))
		fmt.Fprintf(&st, "*@%s %s\n", k.Domain, records.DKIMName(k.Selector, k.Domain))
	}
	deepest := slices.Clone(keys)
	slices.SortStableFunc(deepest, func(a, b Key) int {
		return strings.Count(b.Domain, ".") - strings.Count(a.Domain, ".")
	})
	for _, k := range deepest {
		fmt.Fprintf(&st, "*@*.%s %s\n", k.Domain, records.DKIMName(k.Selector, k.Domain))
	}
	return map[string][]byte{KeyTableFile: kt.Bytes(), SigningTableFile: st.Bytes()}
}

// JSONKey is one entry of signing-keys.json: what a signer other than OpenDKIM
// needs to sign as domaind does.
type JSONKey struct {
	Domain   string `json:"domain"`
	Selector string `json:"selector"`
	KeyFile  string `json:"keyFile"` // absolute path of the PEM (PKCS #8) private key
	// Algorithm is the DKIM a= tag: rsa-sha256 (RFC 8301).
	Algorithm string `json:"algorithm"`
	// Canonicalization is the c= tag, header/body.
	Canonicalization string `json:"canonicalization"`
	// Headers are the fields to sign when the message has them, each as often
	// as it occurs; OverSign are signed once more than they occur, so that one
	// added in transit breaks the signature.
	Headers  []string `json:"headers"`
	OverSign []string `json:"overSign"`
	// Subdomains says that mail from a subdomain of Domain with no entry of its
	// own is signed with this key (d=Domain), the closest parent winning, as
	// domaind's milter does.
	Subdomains bool `json:"subdomains"`
}

func jsonTable(keys []Key, keysDir string) ([]byte, error) {
	out := make([]JSONKey, 0, len(keys))
	for _, k := range keys {
		out = append(out, JSONKey{
			Domain: k.Domain, Selector: k.Selector, KeyFile: filepath.Join(keysDir, KeyFileName(k)),
			Algorithm: "rsa-sha256", Canonicalization: "relaxed/relaxed",
			Headers: SignedHeaders(), OverSign: []string{"From"}, Subdomains: true,
		})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// writer writes the export's files, giving them to owner.
type writer struct {
	owner Owner
}

// writeAtomic replaces dir/name with data: it writes a temporary file in dir,
// syncs it and renames it over name, so a reader sees the old file or the new
// one, never a part. The caller syncs dir.
func (w writer) writeAtomic(dir, name string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	// The owner is set before the file has its name, so a signer never meets
	// a key it may not read.
	if w.owner.UID >= 0 {
		if err = f.Chown(w.owner.UID, w.owner.GID); err != nil {
			return err
		}
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

// same reports whether path is a regular file with exactly data and mode perm,
// and the owner the export gives files.
func (w writer) same(path string, data []byte, perm os.FileMode) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != perm || fi.Size() != int64(len(data)) {
		return false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); w.owner.UID >= 0 && (!ok || int(st.Uid) != w.owner.UID || int(st.Gid) != w.owner.GID) {
		return false
	}
	old, err := os.ReadFile(path)
	return err == nil && bytes.Equal(old, data)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// removeTemps removes temporary files a crashed export left in dir. Errors are
// ignored: a leftover costs only space, and the next run tries again.
func removeTemps(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) && e.Type().IsRegular() {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// readManifest returns the key files the last export wrote. A missing manifest
// is a first export.
func readManifest(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the list of exported keys: %w", err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if name := strings.TrimSpace(sc.Text()); keyFileName.MatchString(name) {
			out = append(out, name)
		}
	}
	return out, sc.Err()
}

func (w writer) writeManifest(dir string, names []string) error {
	var b bytes.Buffer
	b.WriteString("# Key files written by domaind dkim export, which may remove them. Do not edit.\n")
	for _, n := range names {
		b.WriteString(n + "\n")
	}
	if err := w.writeAtomic(dir, manifestFile, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write the list of exported keys: %w", err)
	}
	return syncDir(dir)
}

// lock takes an exclusive lock on path, failing at once when another export
// holds it: a timer's next run will try again, and waiting could pile runs up.
func lock(path string, owner Owner) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock export folder: %w", err)
	}
	if owner.UID >= 0 {
		if err := f.Chown(owner.UID, owner.GID); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock export folder: %w", err)
		}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s is locked)", ErrExportLocked, path)
		}
		return nil, fmt.Errorf("lock export folder: %w", err)
	}
	return func() { f.Close() }, nil
}
