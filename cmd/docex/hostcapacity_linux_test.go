package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const envHostCapacityChild = "DOCEX_TEST_HOST_CAPACITY_ARGS"

// TestHostCapacityChild is the child process of TestRunHostCapacity:
// docex with the arguments in DOCEX_TEST_HOST_CAPACITY_ARGS, its address
// space (RLIMIT_AS) limited to what it maps already plus 1 GiB, so that
// a plugin's 4 GiB memory limit cannot be reserved. It does nothing in a
// normal run.
func TestHostCapacityChild(t *testing.T) {
	args := os.Getenv(envHostCapacityChild)
	if args == "" {
		t.Skip("run by TestRunHostCapacity")
	}
	vm := vmSize(t)
	lim := &syscall.Rlimit{Cur: vm + 1<<30, Max: vm + 1<<30}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, lim); err != nil {
		t.Fatal(err)
	}
	err := runEnv(context.Background(), strings.Split(args, "\x1f"), os.Stdout, os.Stderr, os.Getenv)
	os.Exit(exitCode(err))
}

// vmSize returns the process's mapped address space in bytes (VmSize).
func vmSize(t *testing.T) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmSize in /proc/self/status")
	return 0
}

// TestRunHostCapacity: docex run of a valid plugin whose memory limit the
// host cannot reserve (here a 4 GiB limit under an address-space limit)
// fails with host_capacity, exit 1 (kind internal), its message saying
// which room was missing, and, as a run refused before the plugin ran,
// "ran": false and a zero report (docs/json.md); without --json, the
// error and its hint and no report line.
func TestRunHostCapacity(t *testing.T) {
	t.Parallel()
	shapes := parseJSONShapes(t)
	h := newHarness(t)
	h.ok("init")
	cfg := filepath.Join(h.dir, "docex.yaml")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\nsandbox:\n  max_memory_pages: 65536\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("basket", "create", "b")...)
	id := strings.TrimSpace(h.ok(with("doc", "add", "b", h.file("a.txt", "alpha"), "-q")...).stdout)
	// upper, its memory limit 4 GiB.
	dir := filepath.Join(h.dir, "big")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile("../../testplugins/upper/plugin.toml")
	if err != nil {
		t.Fatal(err)
	}
	module, err := os.ReadFile("../../testplugins/upper/upper.wasm")
	if err != nil {
		t.Fatal(err)
	}
	m := strings.Replace(string(manifest), `name = "upper"`, `name = "big"`, 1) + "\n[limits]\nmemory_pages = 65536\n"
	if err := os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "upper.wasm"), module, 0o644); err != nil {
		t.Fatal(err)
	}
	h.ok(with("plugin", "install", dir)...)

	child := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestHostCapacityChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), noBuiltinEnv+"=1", envHostCapacityChild+"="+strings.Join(append([]string{"--config", cfg}, args...), "\x1f"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), stderr.String()
	}
	const want = `the host has no room for the plugin: the host could not reserve memory: plugin "big": cannot reserve its memory limit of 65536 pages: `
	code, stderr := child(with("run", "big", id, "--json")...)
	var e struct {
		Error  map[string]any `json:"error"`
		Ran    *bool          `json:"ran"`
		Report map[string]any `json:"report"`
	}
	dec := json.NewDecoder(strings.NewReader(stderr))
	if err := dec.Decode(&e); err != nil || dec.More() || e.Ran == nil || e.Report == nil {
		t.Fatalf("docex run --json: exit %d, stderr %q, want one error object with ran and report", code, stderr)
	}
	msg, _ := e.Error["message"].(string)
	if code != exitInternal || e.Error["code"] != "host_capacity" || e.Error["kind"] != "internal" || !strings.HasPrefix(msg, want) {
		t.Fatalf("docex run --json: exit %d, error %v; want exit 1, code host_capacity, kind internal, message starting %q", code, e.Error, want)
	}
	for _, p := range shapes.shapeMismatches("run error report", "RunReport", e.Report) {
		t.Error(p)
	}
	if *e.Ran {
		t.Errorf("ran = true, want false: the plugin never ran")
	}
	for k, v := range e.Report {
		if v != 0.0 && v != false && !(k == "capability_denials" && len(v.([]any)) == 0) {
			t.Errorf("report %s = %v, want zero (the plugin never ran)", k, v)
		}
	}
	code, stderr = child(with("run", "big", id)...)
	if code != exitInternal || !strings.Contains(stderr, "docex: "+want) || !strings.Contains(stderr, "hint: the plugin is valid: this host has no room for it") || strings.Contains(stderr, "report:") {
		t.Errorf("docex run: exit %d, stderr %q; want exit 1, the error, its hint and no report line", code, stderr)
	}
}
