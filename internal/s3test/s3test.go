// Package s3test starts a real S3-compatible server for tests: Versity's
// S3 gateway (versitygw) on the loopback address, serving a temporary
// directory, with SigV4 enforced. .ci/run builds the binary once and
// caches it; tests find it through DOCEX_TEST_VERSITYGW (a path) or PATH.
// Without it, tests fail when CI is set and skip otherwise.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Server is a running versitygw.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Dir       string // the directory it serves; buckets are its subdirectories

	cmd  *exec.Cmd
	addr string
	bin  string
	log  string
}

// Binary returns the versitygw binary's path, or "" when there is none.
func Binary() string {
	if p := os.Getenv("DOCEX_TEST_VERSITYGW"); p != "" {
		return p
	}
	p, err := exec.LookPath("versitygw")
	if err != nil {
		return ""
	}
	return p
}

// Start starts a server for the test and stops it at cleanup. It fails the
// test when CI is set and the binary is missing or does not start; it skips
// otherwise.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "versitygw not found: set DOCEX_TEST_VERSITYGW or put it on PATH (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0; .ci/run does this)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &Server{Dir: filepath.Join(t.TempDir(), "gw"), bin: bin, AccessKey: "docextest" + randHex(4), SecretKey: randHex(20)}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s.log = filepath.Join(t.TempDir(), "versitygw.log")
	if err := s.start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// start runs the binary on addr (a free loopback port when empty) and
// waits until it accepts connections.
func (s *Server) start(addr string) error {
	if addr == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addr = l.Addr().String()
		l.Close()
	}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "--port", addr, "posix", s.Dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	s.cmd, s.addr, s.Endpoint = cmd, addr, "http://"+addr
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			s.cmd = nil
			out, _ := os.ReadFile(s.log)
			return fmt.Errorf("versitygw exited at start (%v): %s", err, tail(string(out)))
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			go func() { <-exited }()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	return fmt.Errorf("versitygw did not listen on %s within 60s", addr)
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// Stop kills the server (idempotent): what it stored stays in Dir.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	killGroup(s.cmd.Process)
	s.cmd = nil
	// Wait until the port is free again, so Restart can take it.
	for i := 0; i < 100; i++ {
		c, err := net.DialTimeout("tcp", s.addr, 100*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart starts the server again on the same address and directory.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(s.addr); err != nil {
		t.Fatal(err)
	}
}

// Addr returns host:port.
func (s *Server) Addr() string { return s.addr }

// Client returns an SDK client with the server's root credentials.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s.Endpoint), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// Bucket creates a bucket with a fresh name and returns the name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	name := "docex-" + strings.ToLower(randHex(6))
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return name
}

// Credentials returns a provider of the server's root credentials.
func (s *Server) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")
}
