package driver

import (
	"encoding/json"

	"github.com/docex-dev/docex"
)

// EncodeDetail returns the stored form of an audit entry's Detail: a JSON
// object ("{}" for nil). Backends store it as text.
func EncodeDetail(detail map[string]any) (string, error) {
	if len(detail) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return "", docex.Errorf(docex.ErrInvalid, "audit detail is not JSON-encodable: %v", err)
	}
	return string(b), nil
}

// DecodeDetail reads a stored audit detail back: never nil ("" reads as
// an empty object). It returns docex.ErrCorrupt when the text is not a
// JSON object.
func DecodeDetail(s string) (map[string]any, error) {
	out := map[string]any{}
	if s == "" {
		return out, nil
	}
	if err := json.Unmarshal([]byte(s), &out); err != nil || out == nil {
		return nil, docex.Errorf(docex.ErrCorrupt, "audit detail is not a JSON object: %q", truncate(s, 80))
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
