package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"github.com/docex-dev/docex/engine","Test":"TestA"}`,
		`{"Action":"output","Package":"github.com/docex-dev/docex/engine","Test":"TestA","Output":"    a_test.go:9: boom\n"}`,
		`{"Action":"fail","Package":"github.com/docex-dev/docex/engine","Test":"TestA","Elapsed":1.5}`,
		`{"Action":"output","Package":"github.com/docex-dev/docex/engine","Output":"FAIL\n"}`,
		`{"Action":"fail","Package":"github.com/docex-dev/docex/engine","Elapsed":2}`,
		`{"Action":"run","Package":"github.com/docex-dev/docex/sandbox","Test":"TestHang"}`,
		`{"Action":"output","Package":"github.com/docex-dev/docex/sandbox","Test":"TestHang","Output":"panic: test timed out after 20m0s\n"}`,
		`{"Action":"output","Package":"github.com/docex-dev/docex/sandbox","Test":"TestHang","Output":"\trunning tests:\n\t\tTestHang/sub (20m0s)\n"}`,
		`{"Action":"output","Package":"github.com/docex-dev/docex/sandbox","Output":"FAIL\tgithub.com/docex-dev/docex/sandbox\t1200.1s\n"}`,
		`{"Action":"fail","Package":"github.com/docex-dev/docex/sandbox","Elapsed":1200.1}`,
		`{"Action":"output","Package":"github.com/docex-dev/docex/backends/postgres","Test":"TestPG","Output":"    pg_test.go:3: set DOCEX_TEST_POSTGRES_DSN\n"}`,
		`{"Action":"output","Package":"github.com/docex-dev/docex/backends/postgres","Test":"TestPG","Output":"--- SKIP: TestPG (0.00s)\n"}`,
		`{"Action":"skip","Package":"github.com/docex-dev/docex/backends/postgres","Test":"TestPG","Elapsed":0}`,
		`{"Action":"output","Package":"github.com/docex-dev/docex/backends/postgres","Test":"TestPG2","Output":"    pg_test.go:7: set DOCEX_TEST_POSTGRES_DSN\n"}`,
		`{"Action":"output","Package":"github.com/docex-dev/docex/backends/postgres","Test":"TestPG2","Output":"--- SKIP: TestPG2 (0.00s)\n"}`,
		`{"Action":"skip","Package":"github.com/docex-dev/docex/backends/postgres","Test":"TestPG2","Elapsed":0}`,
		`{"Action":"pass","Package":"github.com/docex-dev/docex/backends/postgres","Test":"TestSlow","Elapsed":42}`,
		`{"Action":"pass","Package":"github.com/docex-dev/docex/backends/postgres","Elapsed":43}`,
		`{"Action":"build-output","ImportPath":"github.com/docex-dev/docex/config [config.test]","Output":"config/x.go:1: syntax error\n"}`,
		`not json at all`,
	}, "\n")
	var out strings.Builder
	code := run(strings.NewReader(in), &out)
	got := out.String()
	for _, want := range []string{
		"--- FAIL engine TestA (1.5s)\n    a_test.go:9: boom",
		"FAIL engine",
		"ok   backends/postgres",
		"42.0s  backends/postgres TestSlow",
		"2 skipped tests:\n  backends/postgres TestPG, TestPG2: set DOCEX_TEST_POSTGRES_DSN\n",
		"config/x.go:1: syntax error",
		"not json at all",
		"FAILED: engine, sandbox",
		"--- UNFINISHED sandbox TestHang\npanic: test timed out after 20m0s\n\trunning tests:\n\t\tTestHang/sub (20m0s)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	out.Reset()
	if code := run(strings.NewReader(`{"Action":"pass","Package":"github.com/docex-dev/docex","Elapsed":1}`), &out); code != 0 || !strings.Contains(out.String(), "1 packages passed") {
		t.Fatalf("exit %d: %s", code, out.String())
	}
}
