package main

import (
	"errors"
	"math/big"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/sandbox"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// TestSandboxDefaultsDocumented checks that the sandbox defaults are
// written down once and truly: docex.yaml.example's sandbox section (which
// spells out every default) is what the sandbox package applies to a zero
// field, and the comments of config.Sandbox ("default N") agree with it.
// The config package repeats no default in code: zero fields pass through
// openSandbox and the sandbox fills them.
func TestSandboxDefaultsDocumented(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../docex.yaml.example")
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse(data, t.TempDir())
	if err != nil {
		t.Fatalf("docex.yaml.example: %v", err)
	}
	ex, ceil := f.Sandbox, pluginapi.DefaultCeilings()
	example := map[string]int64{
		"max_memory_pages": int64(ex.MaxMemoryPages), "max_timeout_ms": int64(ex.MaxTimeoutMS),
		"max_output_bytes": ex.MaxOutputBytes, "max_host_calls": ex.MaxHostCalls,
		"max_log_bytes": ex.MaxLogBytes, "max_instructions": ex.MaxInstructions,
		"init_timeout_ms": int64(ex.InitTimeoutMS), "pool_size": int64(ex.PoolSize),
		"max_idle_bytes": ex.MaxIdleBytes, "idle_ttl_ms": int64(ex.IdleTTLMS),
		"max_compiled_code_bytes": ex.MaxCompiledCodeBytes,
	}
	want := map[string]int64{
		"max_memory_pages": int64(ceil.MemoryPages), "max_timeout_ms": ceil.Timeout.Milliseconds(),
		"max_output_bytes": ceil.MaxOutputBytes, "max_host_calls": ceil.MaxHostCalls,
		"max_log_bytes": ceil.MaxLogBytes, "max_instructions": ceil.MaxInstructions,
		"init_timeout_ms": sandbox.DefaultInitTimeout.Milliseconds(),
		"pool_size":       4, // sandbox.Config.PoolSize's documented default
		"max_idle_bytes":  sandbox.DefaultMaxIdleBytes, "idle_ttl_ms": sandbox.DefaultIdleTTL.Milliseconds(),
		"max_compiled_code_bytes": sandbox.DefaultMaxCompiledCode,
	}
	for key, w := range want {
		if example[key] != w {
			t.Errorf("docex.yaml.example sandbox.%s: %d, the sandbox's default is %d", key, example[key], w)
		}
	}

	// config.Sandbox's field comments: `yaml:"key"` ... // ... default N
	src, err := os.ReadFile("../../config/config.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(src), "type Sandbox struct {")
	body, _, _ = strings.Cut(body, "\n}")
	field := regexp.MustCompile("yaml:\"([a-z_]+)\"`.*//.*default ([0-9^]+)")
	seen := 0
	for _, line := range strings.Split(body, "\n") {
		m := field.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		seen++
		w, ok := want[m[1]]
		if !ok {
			t.Errorf("config.Sandbox %s has a default but no case here", m[1])
			continue
		}
		if got := parseDefault(t, m[2]); got != w {
			t.Errorf("config.Sandbox comment: sandbox.%s default %s, the sandbox's default is %d", m[1], m[2], w)
		}
	}
	if seen != len(want) {
		t.Errorf("config.Sandbox: %d field comments give a default, want %d", seen, len(want))
	}
}

// parseDefault reads "4096" or "10^15".
func parseDefault(t *testing.T, s string) int64 {
	t.Helper()
	if b, e, ok := strings.Cut(s, "^"); ok {
		base, _ := new(big.Int).SetString(b, 10)
		exp, _ := new(big.Int).SetString(e, 10)
		return new(big.Int).Exp(base, exp, nil).Int64()
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("default %q is not a number", s)
	}
	return n.Int64()
}

// TestMinCompiledCodeIsModuleCap: the least sandbox.max_compiled_code_bytes
// config accepts is the machine code one module may have, so that a
// budget config accepts can hold any plugin the sandbox accepts (before,
// 1 was accepted and docex init failed on the built-in steps).
func TestMinCompiledCodeIsModuleCap(t *testing.T) {
	if config.MinCompiledCodeBytes != sandbox.MaxModuleCode {
		t.Fatalf("config.MinCompiledCodeBytes %d, sandbox.MaxModuleCode %d", config.MinCompiledCodeBytes, sandbox.MaxModuleCode)
	}
	for _, v := range []string{"1", "167772159"} {
		_, err := config.Parse([]byte("config_version: 1\nsandbox:\n  max_compiled_code_bytes: "+v+"\n"), t.TempDir())
		if !errors.Is(err, docex.ErrInvalidConfig) || !strings.Contains(err.Error(), "sandbox.max_compiled_code_bytes (line 3): "+v+" is less than 167772160 (160 MiB)") {
			t.Errorf("max_compiled_code_bytes %s: %v", v, err)
		}
	}
	for _, v := range []string{"0", "167772160"} {
		if _, err := config.Parse([]byte("config_version: 1\nsandbox:\n  max_compiled_code_bytes: "+v+"\n"), t.TempDir()); err != nil {
			t.Errorf("max_compiled_code_bytes %s: %v", v, err)
		}
	}
}
