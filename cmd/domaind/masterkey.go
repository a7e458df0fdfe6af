package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

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

// load returns the master key the flags give. With create false (commands that
// only open keys), --dev never makes a new key: a new key could open nothing.
func (m *masterKeyFlags) load(log *slog.Logger, create bool) ([]byte, error) {
	if m.file != "" {
		if m.b64 != "" {
			return nil, errors.New("--master-key and --master-key-file both given; pass one")
		}
		data, err := os.ReadFile(m.file)
		if err != nil {
			return nil, fmt.Errorf("--master-key-file: %w", err)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("--master-key-file %s must hold the base64 of exactly 32 bytes (try: head -c 32 /dev/urandom | base64)", m.file)
		}
		return key, nil
	}
	if m.b64 == "" && m.dev && !create {
		path := filepath.Join(m.dataDir, "domaind-master.key")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("--dev: no master key at %s; pass the --data-dir that serve --dev uses", path)
		}
	}
	return loadMasterKey(m.b64, m.dev, m.dataDir, log)
}

// loadExisting loads the master key that opens the DKIM keys of an existing
// database, for the commands other than serve: it never makes one (see load)
// and logs to stderr.
func (m *masterKeyFlags) loadExisting(stderr io.Writer) ([]byte, error) {
	return m.load(slog.New(slog.NewTextHandler(stderr, nil)), false)
}
