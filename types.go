package docex

import (
	"time"
)

// UserContext is the sole carrier of identity for a runtime operation. The
// engine never infers any of its fields: an empty TenantID is an error when
// multi-tenancy is enabled, never a default.
type UserContext struct {
	UserID   string   `json:"user_id"`
	TenantID string   `json:"tenant_id"`
	Roles    []string `json:"roles"`
}

// TenantStatus is the lifecycle state of a tenant.
type TenantStatus string

// Tenant states.
const (
	TenantActive    TenantStatus = "active"
	TenantSuspended TenantStatus = "suspended"
)

// Tenant is a registered tenant.
type Tenant struct {
	ID          string       `json:"id"`
	DisplayName string       `json:"display_name"`
	Status      TenantStatus `json:"status"`
	IsSystem    bool         `json:"is_system"`
	CreatedAt   time.Time    `json:"created_at"`
	// Incarnation is an opaque id that changes when a tenant id is deleted
	// and provisioned again; caches and content directories are keyed by it.
	Incarnation string `json:"-"`
}

// Basket is a named collection of documents within a tenant.
type Basket struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	CreatedAt     time.Time `json:"created_at"`
	DocumentCount int64     `json:"document_count"`
	Bytes         int64     `json:"bytes"`
	// Pipeline is the pipeline the basket is bound to: every document
	// added to it is processed by it ("" when unbound).
	Pipeline string `json:"pipeline"`
}

// Document status values.
const (
	DocumentActive = "active"
)

// Document is a stored document and its metadata.
type Document struct {
	ID          string           `json:"id"`
	BasketID    string           `json:"basket_id"`
	Name        string           `json:"name"`
	ContentType string           `json:"content_type"`
	Size        int64            `json:"size"`
	Checksum    string           `json:"checksum"`
	Status      string           `json:"status"`
	CreatedAt   time.Time        `json:"created_at"`
	UpdatedAt   time.Time        `json:"updated_at"`
	Metadata    map[string]Value `json:"metadata"`
}

// MetaFilter is one key=value condition of a metadata search; a search
// matches documents that satisfy all of its filters.
type MetaFilter struct {
	Key   string
	Value Value
}

// Order is the ordering of a document listing.
type Order int

// Orders. Ids are time-ordered, so OrderCreated is the order of insertion.
const (
	OrderCreated     Order = iota // oldest first (default)
	OrderCreatedDesc              // newest first
	OrderName                     // by name, then id
)

// Page selects a window of a listing. A zero Limit means the default (100);
// limits above MaxPageLimit are clamped to it.
type Page struct {
	Limit  int
	Offset int
	Order  Order
}

// Paging limits.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 10000
)

// Normalize returns p with defaults applied; it returns ErrInvalid for a
// negative limit or offset.
func (p Page) Normalize() (Page, error) {
	if p.Limit < 0 || p.Offset < 0 {
		return p, Errorf(ErrInvalid, "negative limit or offset")
	}
	if p.Limit == 0 {
		p.Limit = DefaultPageLimit
	}
	if p.Limit > MaxPageLimit {
		p.Limit = MaxPageLimit
	}
	if p.Order < OrderCreated || p.Order > OrderName {
		return p, Errorf(ErrInvalid, "unknown order %d", p.Order)
	}
	return p, nil
}

// Audit outcomes.
const (
	OutcomeOK     = "ok"
	OutcomeDenied = "denied"
	OutcomeError  = "error"
)

// AuditEntry is one record of the audit log: every mutating operation and
// every denial.
type AuditEntry struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	TenantID  string    `json:"tenant_id"` // "" in the system log for operator actions
	UserID    string    `json:"user_id"`
	Roles     []string  `json:"roles"`
	Operation string    `json:"operation"`
	Target    string    `json:"target"`
	Outcome   string    `json:"outcome"`
	Error     string    `json:"error"` // the error's message; "" when the outcome is ok
	// Detail is structured context of the operation (a plugin run's
	// resource report, say): JSON-encodable values only. Backends store it
	// as a JSON object; it is never nil when read back.
	Detail map[string]any `json:"detail"`
}
