package mcpserver

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestSDKLogHandler: the SDK's records of a client's protocol mistakes
// come at Info (not at all above it), every other record as it is.
func TestSDKLogHandler(t *testing.T) {
	cases := []struct {
		name      string
		threshold slog.Level
		level     slog.Level
		msg       string
		want      string // "" when nothing is logged
	}{
		{"call before initialize, warn threshold", slog.LevelWarn, slog.LevelError, "method invalid during initialization", ""},
		{"call before initialize, info threshold", slog.LevelInfo, slog.LevelError, "method invalid during initialization", "level=INFO"},
		{"duplicate initialize", slog.LevelWarn, slog.LevelError, "duplicate initialize request", ""},
		{"initialized first", slog.LevelWarn, slog.LevelError, "initialized before initialize", ""},
		{"a server error", slog.LevelWarn, slog.LevelError, "server session ended with error", "level=ERROR"},
		{"a warning", slog.LevelWarn, slog.LevelWarn, "calling x: y", "level=WARN"},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		log := slog.New(sdkLogHandler{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: c.threshold})}).With("k", "v")
		log.Log(context.Background(), c.level, c.msg, "method", "tools/list")
		out := buf.String()
		if c.want == "" && out != "" || c.want != "" && (!strings.Contains(out, c.want) || !strings.Contains(out, "k=v") || !strings.Contains(out, "method=tools/list")) {
			t.Errorf("%s: logged %q, want %q", c.name, out, c.want)
		}
	}
}

// recordLog keeps the level and message of every record it handles.
type recordLog struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *recordLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *recordLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}
func (l *recordLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *recordLog) WithGroup(string) slog.Handler      { return l }

// TestSDKLogHandlerPinsSDKText drives the SDK's server into each client
// mistake clientMistake knows and checks that the SDK logs it with that
// text, so that it comes at Info and nothing at Warn or above. The SDK's
// records of these mistakes carry no error value or attribute to match
// on, only the message text: this test fails when an SDK upgrade changes
// that text (or stops logging the mistake), instead of the ERROR lines
// coming back in docex mcp.
func TestSDKLogHandlerPinsSDKText(t *testing.T) {
	const (
		initialize  = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
		initialized = `{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}`
		ping        = `{"jsonrpc":"2.0","id":9,"method":"ping"}`
		newPing     = `{"jsonrpc":"2.0","id":9,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
	)
	cases := []struct {
		want string   // the record clientMistake must know
		send []string // the last is a call: its answer ends the exchange
	}{
		{"method invalid during initialization", []string{`{"jsonrpc":"2.0","id":9,"method":"tools/list"}`}},
		{"initialized before initialize", []string{initialized, ping}},
		{"duplicate initialize request", []string{initialize, strings.Replace(initialize, `"id":1`, `"id":9`, 1)}},
		{"duplicate initialized notification", []string{initialize, initialized, initialized, ping}},
		{"method removed in the new protocol", []string{newPing}},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			if !clientMistake(c.want) {
				t.Fatalf("clientMistake(%q) is false", c.want)
			}
			ctx := context.Background()
			rec := &recordLog{}
			srv := mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, &mcp.ServerOptions{Logger: slog.New(sdkLogHandler{rec})})
			st, ct := mcp.NewInMemoryTransports()
			ss, err := srv.Connect(ctx, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ss.Close()
			conn, err := ct.Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for _, raw := range c.send {
				msg, err := jsonrpc.DecodeMessage([]byte(raw))
				if err != nil {
					t.Fatal(err)
				}
				if err := conn.Write(ctx, msg); err != nil {
					t.Fatal(err)
				}
			}
			for {
				msg, err := conn.Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if r, ok := msg.(*jsonrpc.Response); ok && r.ID.Raw() == int64(9) {
					break
				}
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			logged := false
			for _, r := range rec.recs {
				if r.Level >= slog.LevelWarn {
					t.Errorf("the SDK logged %q at %v", r.Message, r.Level)
				}
				logged = logged || r.Message == c.want && r.Level == slog.LevelInfo
			}
			if !logged {
				var msgs []string
				for _, r := range rec.recs {
					msgs = append(msgs, r.Level.String()+" "+r.Message)
				}
				t.Errorf("no %q at INFO; the SDK logged %q", c.want, msgs)
			}
		})
	}
}
