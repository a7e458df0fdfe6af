package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/domaind/domaind/internal/records"
)

// devKeyFile is the file in --data-dir that keeps the --dev master key.
const devKeyFile = "domaind-master.key"

// masterKeyFlags are the flags that give the master key, shared by every command
// that seals or opens private DKIM keys, so that they all take it the same way.
type masterKeyFlags struct {
	b64     string
	file    string
	dev     bool
	dataDir string
}

func (m *masterKeyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.b64, "master-key", "", "base64 of 32 bytes that encrypt private DKIM keys at rest")
	fs.StringVar(&m.file, "master-key-file", "", "file holding the base64 master key; unlike --master-key, it stays out of the process list and the environment")
	fs.BoolVar(&m.dev, "dev", false, "development mode: generate and keep a master key in --data-dir")
	fs.StringVar(&m.dataDir, "data-dir", ".", "folder for files domaind keeps (the --dev master key)")
}

// load returns the master key the flags give: --master-key, the file of
// --master-key-file, or in --dev mode the key file in --data-dir, which load
// makes on first use when create is set (serve). Commands that only open keys
// pass create false: a new key could open nothing.
func (m *masterKeyFlags) load(log *slog.Logger, create bool) ([]byte, error) {
	switch {
	case m.file != "" && m.b64 != "":
		return nil, errors.New("--master-key and --master-key-file both given; pass one")
	case m.file != "":
		data, err := os.ReadFile(m.file)
		if err != nil {
			return nil, fmt.Errorf("--master-key-file: %w", err)
		}
		key, err := records.ParseMasterKey(string(data))
		if err != nil {
			return nil, fmt.Errorf("--master-key-file %s: %w", m.file, err)
		}
		return key, nil
	case m.b64 != "":
		key, err := records.ParseMasterKey(m.b64)
		if err != nil {
			return nil, fmt.Errorf("--master-key: %w", err)
		}
		return key, nil
	case !m.dev:
		return nil, errors.New("no --master-key (or DOMAIND_MASTER_KEY) given; generate one with 'head -c 32 /dev/urandom | base64', or pass --dev for local use")
	}
	path := filepath.Join(m.dataDir, devKeyFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !create:
		return nil, fmt.Errorf("--dev: no master key at %s; pass the --data-dir that serve --dev uses", path)
	case errors.Is(err, fs.ErrNotExist):
		return makeDevKey(path, log)
	case err != nil:
		return nil, fmt.Errorf("read dev master key: %w", err)
	}
	key, err := records.ParseMasterKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	log.Warn("dev mode: using the master key file; do not use --dev in production", "file", path)
	return key, nil
}

// makeDevKey makes a new master key and keeps it at path, readable by its
// owner alone, for --dev.
func makeDevKey(path string, log *slog.Logger) ([]byte, error) {
	key := make([]byte, records.MasterKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write dev master key: %w", err)
	}
	log.Warn("dev mode: generated a master key; do not use --dev in production", "file", path)
	return key, nil
}

// loadExisting loads the master key that opens the DKIM keys of an existing
// database, for the commands other than serve: it never makes one (see load)
// and logs to stderr.
func (m *masterKeyFlags) loadExisting(stderr io.Writer) ([]byte, error) {
	return m.load(slog.New(slog.NewTextHandler(stderr, nil)), false)
}
