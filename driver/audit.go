package driver

import (
	"encoding/json"
	"time"

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

// AuditPrefix is the part of an audit log that a prune with a cutoff may
// delete (Reader.PrunableAudit, Backend.SystemAuditPrefix): the entries
// whose sequence number is below Upto and whose time is before the
// cutoff. Upto is the sequence number of the oldest entry (in sequence
// order) that is not before the cutoff, or of the newest entry when every
// entry is (the newest entry is never pruned: a log never becomes empty,
// so a sequence number is never given twice); 0 for an empty log.
// Entries counts them; LastSeq and LastID are the sequence number and id
// of the newest of them (0 and "" when none).
type AuditPrefix struct {
	Upto    int64
	Entries int
	LastSeq int64
	LastID  string
}

// AuditPrune selects the entries Tx.PruneAudit and Backend.PruneSystemAudit
// delete: sequence number greater than After and less than Upto (an
// AuditPrefix's), time before Before, at most Limit, lowest sequence
// number first.
type AuditPrune struct {
	Before      time.Time
	After, Upto int64
	Limit       int
}

// AuditPruned is what a prune deleted: how many entries, and the sequence
// number and id of the newest of them (0 and "" when none).
type AuditPruned struct {
	Entries int
	LastSeq int64
	LastID  string
}
