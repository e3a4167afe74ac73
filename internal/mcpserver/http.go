package mcpserver

import (
	"bytes"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// HTTPErrorCodes wraps h, the SDK's streamable HTTP handler, so that no
// error reply it sends has code 0, which JSON-RPC does not have: the one
// the SDK sends so, refusing a call in a POST without a session id that
// does not initialize one (it makes that error before any middleware), is
// sent as an invalid request (-32600), as over stdio (withCode). Each
// event of a response stream is written whole (one Write), and flushed as
// h flushes it.
func HTTPErrorCodes(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&codedWriter{ResponseWriter: w}, r)
	})
}

// codedWriter rewrites the error replies with code 0 of the events h
// writes to a text/event-stream response.
type codedWriter struct {
	http.ResponseWriter
}

// codeZero is how the SDK encodes an error reply of code 0. Inside a JSON
// string a quote is escaped, so the text of a document or message cannot
// hold it: only an error object can.
const codeZero = `"error":{"code":0,`

func (c *codedWriter) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte(codeZero)) || c.Header().Get("Content-Type") != "text/event-stream" {
		return c.ResponseWriter.Write(p)
	}
	lines := bytes.Split(p, []byte{'\n'})
	for i, line := range lines {
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok || !bytes.Contains(data, []byte(codeZero)) {
			continue
		}
		if m, err := jsonrpc.DecodeMessage(data); err == nil {
			if r, ok := m.(*jsonrpc.Response); ok {
				if coded := withCode(r); coded != nil {
					lines[i] = append([]byte("data: "), coded...)
				}
			}
		}
	}
	if _, err := c.ResponseWriter.Write(bytes.Join(lines, []byte{'\n'})); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Unwrap gives http.ResponseController the writer underneath, to flush it.
func (c *codedWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
