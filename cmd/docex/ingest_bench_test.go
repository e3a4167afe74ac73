package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// Ingest benchmarks: the CLI's one-call ingest (docex doc add of 2,000
// files of 4 KiB with 3 metadata keys, in-process through runEnv, output to
// /dev/null), with the limits of the same disk measured in the same run:
// bare SQLite (2,000 4 KiB blob rows in one transaction, synchronous=full)
// and one pack file (2,000 x 4 KiB written and fsynced once, with its
// directory). Each reports docs/s; divide to get the ratios in
// docs/benchmarks.md.
//
//	go test -run '^$' -bench Ingest -benchtime 5x ./cmd/docex/

const (
	ingestDocs = 2000
	ingestSize = 4 << 10
)

// ingestFiles writes n fresh random files into dir and returns their paths.
func ingestFiles(b *testing.B, dir string, n int) []string {
	b.Helper()
	paths := make([]string, n)
	buf := make([]byte, ingestSize)
	for i := range paths {
		rand.Read(buf)
		paths[i] = filepath.Join(dir, fmt.Sprintf("f%05d.bin", i))
		if err := os.WriteFile(paths[i], buf, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return paths
}

func BenchmarkIngestCLI(b *testing.B) {
	for _, storage := range []string{"filesystem", "database"} {
		b.Run(storage, func(b *testing.B) {
			dir := b.TempDir()
			cfg := filepath.Join(dir, "docex.yaml")
			env := map[string]string{noBuiltinEnv: "1"}
			null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer null.Close()
			cli := func(args ...string) {
				b.Helper()
				var errb bytes.Buffer
				full := append([]string{"--config", cfg}, args...)
				if err := runEnv(context.Background(), full, null, &errb, func(k string) string { return env[k] }); err != nil {
					b.Fatalf("docex %v: %v\n%s", args[:2], err, errb.String())
				}
			}
			cli("init")
			if storage == "database" {
				y, err := os.ReadFile(cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(cfg, bytes.Replace(y, []byte("type: filesystem"), []byte("type: database"), 1), 0o600); err != nil {
					b.Fatal(err)
				}
			}
			cli("tenant", "create", "acme")
			who := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
			files := filepath.Join(dir, "in")
			n := 0
			for b.Loop() {
				b.StopTimer()
				os.RemoveAll(files)
				os.Mkdir(files, 0o700)
				paths := ingestFiles(b, files, ingestDocs)
				basket := fmt.Sprintf("b%d", n)
				cli(append([]string{"basket", "create", basket}, who...)...)
				args := append([]string{"doc", "add", basket}, paths...)
				args = append(args, "--meta", "kind=invoice", "--meta", "pages=42", "--meta", "paid=true")
				b.StartTimer()
				cli(append(args, who...)...)
				n++
			}
			b.ReportMetric(float64(n*ingestDocs)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}

// BenchmarkIngestBaselineSQLite: 2,000 rows of 4 KiB blobs in one
// transaction, WAL, synchronous=full, prepared statement.
func BenchmarkIngestBaselineSQLite(b *testing.B) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "base.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, ingestSize)
	n := 0
	for b.Loop() {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		st, err := tx.Prepare("INSERT INTO t (data) VALUES (?)")
		if err != nil {
			b.Fatal(err)
		}
		for range ingestDocs {
			rand.Read(data)
			if _, err := st.Exec(data); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n*ingestDocs)/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkIngestBaselinePack: 2,000 x 4 KiB written into one new file,
// fsynced with its directory.
func BenchmarkIngestBaselinePack(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, ingestSize)
	n := 0
	for b.Loop() {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("pack-%d", n)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		for range ingestDocs {
			rand.Read(data)
			if _, err := f.Write(data); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		d, _ := os.Open(dir)
		if err := d.Sync(); err != nil {
			b.Fatal(err)
		}
		d.Close()
		n++
	}
	b.ReportMetric(float64(n*ingestDocs)/b.Elapsed().Seconds(), "docs/s")
}
