package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// dsnEnv names the environment variable with the DSN of a PostgreSQL
// server on which the tests may create and drop databases.
const dsnEnv = "DOCEX_TEST_POSTGRES_DSN"

// testDSN returns the server DSN. Without it the test is skipped, or fails
// when CI is set: CI must never pass by skipping.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must run the PostgreSQL tests (e.g. %s='postgres://postgres@127.0.0.1:5432/test?sslmode=disable')", dsnEnv, dsnEnv)
		}
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable')", dsnEnv)
	}
	return dsn
}

// dsnWithDatabase returns dsn pointing at database name.
func dsnWithDatabase(t testing.TB, dsn, name string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse %s: %v", dsnEnv, err)
		}
		u.Path = "/" + name
		return u.String()
	}
	return dsn + " dbname=" + name
}

// newDatabase creates a throw-away database, dropped (WITH (FORCE)) when
// the test ends, and returns its DSN.
func newDatabase(t testing.TB) string {
	t.Helper()
	admin := testDSN(t)
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	name := "docex_test_" + hex.EncodeToString(rnd[:])
	adminExec(t, admin, "CREATE DATABASE "+quote(name))
	t.Cleanup(func() { adminExec(t, admin, "DROP DATABASE IF EXISTS "+quote(name)+" WITH (FORCE)") })
	return dsnWithDatabase(t, admin, name)
}

func adminExec(t testing.TB, dsn, sql string) {
	t.Helper()
	// A bound, not a latency check: dropping a database that holds 1,000
	// tenant schemas (the scale tests) took over a minute on a loaded
	// 2-core machine, and a cleanup that times out fails a passing test.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// openBackend opens a backend on a new database (cfg.DSN is replaced) and
// closes it when the test ends.
func openBackend(t testing.TB, cfg Config) *Backend {
	t.Helper()
	cfg.DSN = newDatabase(t)
	b, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// testInfo is the bootstrap info the tests use.
func testInfo(multi bool) driver.BootstrapInfo {
	return driver.BootstrapInfo{BootstrapTenantID: "system", MultiTenancy: multi, Now: time.Now()}
}

// bootstrapped returns a bootstrapped backend on a new database.
func bootstrapped(t testing.TB, cfg Config, multi bool) *Backend {
	t.Helper()
	b := openBackend(t, cfg)
	if _, err := b.Bootstrap(context.Background(), testInfo(multi)); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	return b
}

// exec runs sql on the backend's database outside any tenant transaction
// (test set-up and sabotage).
func exec(t testing.TB, b *Backend, sql string, args ...any) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// queryInt runs a query returning one integer.
func queryInt(t testing.TB, b *Backend, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := b.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// testAudit is a system audit entry for backend calls made by the tests.
func testAudit(op string) docex.AuditEntry {
	return docex.AuditEntry{ID: uuid.NewString(), Time: time.Now(), UserID: "test", Roles: []string{"operator"}, Operation: op, Outcome: docex.OutcomeOK}
}
