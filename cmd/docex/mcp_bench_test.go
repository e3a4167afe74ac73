package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/mcpserver"
	"github.com/docex-dev/docex/internal/proccpu"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestMCPChild is not a test: the MCP benchmark and TestMCPSDKDebugIgnored
// run the test binary as "docex ARGS..." (from DOCEX_MCP_CHILD_ARGS) to
// serve MCP over real stdio pipes in another process, started as main
// starts docex (the test binary initializes package sdkenv as docex does).
func TestMCPChild(t *testing.T) {
	args := os.Getenv("DOCEX_MCP_CHILD_ARGS")
	if args == "" {
		t.Skip("helper process for BenchmarkMCPRoundTrip and TestMCPSDKDebugIgnored")
	}
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(exitCode(run(context.Background(), argv, os.Stdout, os.Stderr)))
}

// BenchmarkMCPRoundTrip measures one find and one read through MCP over
// stdio (docex mcp in a child process, the Go SDK's client), through MCP
// in process (in-memory transport: protocol and schema work without the
// pipes), and through the Go API making the same engine calls with the
// same session options (the baseline), with SQLite synchronous full (the
// default: every audited read is an fsynced commit) and normal.
// docs/benchmarks.md reports it.
func BenchmarkMCPRoundTrip(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		b.Run("sync="+sync, func(b *testing.B) { benchMCP(b, sync) })
	}
}

func benchMCP(b *testing.B, sync string) {
	ctx := context.Background()
	dir := b.TempDir()
	cfg := filepath.Join(dir, "docex.yaml")
	noEnv := func(string) string { return "" }
	if err := runEnv(ctx, []string{"--config", cfg, "init"}, io.Discard, io.Discard, noEnv); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(data), "synchronous: full", "synchronous: "+sync, 1)), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := runEnv(ctx, []string{"--config", cfg, "tenant", "create", "acme"}, io.Discard, io.Discard, noEnv); err != nil {
		b.Fatal(err)
	}
	uc := docex.UserContext{UserID: "agent", TenantID: "acme", Roles: []string{"writer"}}
	c := &cli{stdout: io.Discard, stderr: io.Discard, getenv: noEnv}
	c.g.config = cfg
	sys, err := c.system(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer c.close()
	s, err := sys.eng.AsWith(uc, engine.SessionOptions{Origin: mcpserver.Origin, AuditReads: true})
	if err != nil {
		b.Fatal(err)
	}
	basket, err := s.CreateBasket(ctx, "inbox")
	if err != nil {
		b.Fatal(err)
	}
	// 1,000 documents, 10 of each "customer"; one 64 KiB text to read.
	var docs []engine.NewDocument
	for i := range 1000 {
		docs = append(docs, engine.NewDocument{Name: fmt.Sprintf("d%04d.txt", i), Content: strings.NewReader(fmt.Sprintf("document %d", i)),
			Metadata: map[string]docex.Value{"customer": docex.String(fmt.Sprintf("c%03d", i%100)), "n": docex.Number(float64(i))}})
	}
	docs = append(docs, engine.NewDocument{Name: "long.txt", Content: strings.NewReader(strings.Repeat("0123456789abcdef", 4096))})
	added, err := s.AddDocuments(ctx, basket.ID, docs)
	if err != nil {
		b.Fatal(err)
	}
	longID := added[len(added)-1].Document.ID
	findArgs := map[string]any{"basket": "inbox", "metadata": map[string]any{"customer": "c042"}}
	readArgs := map[string]any{"id": longID, "offset": 4096, "max_bytes": mcpserver.DefaultReadBytes}

	// Go API: the engine calls the tools make.
	goFind := func() {
		bk, err := s.BasketByName(ctx, "inbox")
		if err != nil {
			b.Fatal(err)
		}
		got, _, err := s.FindDocuments(ctx, bk.ID, []docex.MetaFilter{{Key: "customer", Value: docex.String("c042")}}, docex.Page{Limit: 20})
		if err != nil || len(got) != 10 {
			b.Fatal(len(got), err)
		}
	}
	goRead := func() {
		rc, _, err := s.OpenContent(ctx, longID)
		if err != nil {
			b.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.CopyN(io.Discard, rc, 4096); err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, mcpserver.DefaultReadBytes)
		if _, err := io.ReadFull(rc, buf); err != nil {
			b.Fatal(err)
		}
		// The rest, to check the content (read_document does for
		// content of up to mcpserver.VerifyReadBytes).
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
	}

	// MCP in process.
	srv, err := mcpserver.New(sys.eng, uc, mcpserver.Config{})
	if err != nil {
		b.Fatal(err)
	}
	st, ct := mcp.NewInMemoryTransports()
	ss, err := srv.MCP().Connect(ctx, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ss.Close()
	client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	mem, err := client.Connect(ctx, ct, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer mem.Close()

	// MCP over stdio: this test binary as "docex mcp" in a child process.
	argv, _ := json.Marshal([]string{"--config", cfg, "mcp", "--tenant", "acme", "--user", "agent", "--roles", "writer"})
	cmd := exec.Command(os.Args[0], "-test.run=^TestMCPChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "DOCEX_MCP_CHILD_ARGS="+string(argv))
	stdio, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer stdio.Close()

	callTool := func(cs *mcp.ClientSession, name string, args map[string]any) func() {
		return func() {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
			if err != nil || res.IsError {
				b.Fatal(name, err, res)
			}
		}
	}
	for _, bc := range []struct {
		name string
		fn   func()
	}{
		{"find/go-api", goFind},
		{"find/mcp-inmemory", callTool(mem, "find_documents", findArgs)},
		{"find/mcp-stdio", callTool(stdio, "find_documents", findArgs)},
		{"read/go-api", goRead},
		{"read/mcp-inmemory", callTool(mem, "read_document", readArgs)},
		{"read/mcp-stdio", callTool(stdio, "read_document", readArgs)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cpu := proccpu.Self()
			for b.Loop() {
				bc.fn()
			}
			// CPU of this process per call: the work, apart from waiting
			// for a core (the stdio server's own CPU is the child's).
			b.ReportMetric(float64((proccpu.Self()-cpu).Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}
