package mcpserver

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
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
