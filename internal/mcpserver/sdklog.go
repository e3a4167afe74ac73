package mcpserver

import (
	"context"
	"log/slog"
)

// clientMistake reports whether msg is one the MCP SDK logs at ERROR for a
// client's protocol mistake: a call before initialize, initialize or
// initialized twice, a method the client's protocol version removed. The
// SDK answers the client with the error; it is not the server's. The SDK's
// records of these carry no error value or attribute, only the text, so
// the text is matched; TestSDKLogHandlerPinsSDKText fails when an SDK
// upgrade changes it.
func clientMistake(msg string) bool {
	switch msg {
	case "method invalid during initialization",
		"initialized before initialize",
		"duplicate initialized notification",
		"duplicate initialize request",
		"method removed in the new protocol":
		return true
	}
	return false
}

// sdkLogHandler is the handler of the logger given to the MCP SDK: it
// logs the SDK's records for a client's protocol mistakes at Info instead
// of ERROR (below docex mcp's Warn threshold, so not at all there), and
// every other record as it is.
type sdkLogHandler struct{ slog.Handler }

func (h sdkLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && clientMistake(r.Message) {
		r.Level = slog.LevelInfo
		if !h.Handler.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h sdkLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return sdkLogHandler{h.Handler.WithAttrs(attrs)}
}

func (h sdkLogHandler) WithGroup(name string) slog.Handler {
	return sdkLogHandler{h.Handler.WithGroup(name)}
}
