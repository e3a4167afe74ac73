package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
)

// TestResolveBasketNonCanonicalID: a reference that parses as a UUID but
// is not an id's canonical form (upper case, braces, urn:uuid:, no
// hyphens) is docex.ErrInvalidID, as for Basket, and never a lookup by
// name (which found nothing: not_found). The canonical id and the name
// still resolve.
func TestResolveBasketNonCanonicalID(t *testing.T) {
	ctx := context.Background()
	s := acmeSession(t, nil)
	b, err := s.CreateBasket(ctx, "inbox")
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{b.ID, "inbox"} {
		if got, err := s.ResolveBasket(ctx, ref); err != nil || got.ID != b.ID {
			t.Fatalf("ResolveBasket(%q) = %v, %v; want basket %s", ref, got.ID, err, b.ID)
		}
	}
	for _, ref := range []string{
		strings.ToUpper(b.ID),
		"{" + b.ID + "}",
		"urn:uuid:" + b.ID,
		strings.ReplaceAll(b.ID, "-", ""),
	} {
		_, err := s.ResolveBasket(ctx, ref)
		if !errors.Is(err, docex.ErrInvalidID) {
			t.Errorf("ResolveBasket(%q) = %v, want ErrInvalidID", ref, err)
		}
	}
}
