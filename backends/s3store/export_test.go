package s3store

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/logging"
)

// Logger is the logger the store's SDK client writes to.
func (s *Store) Logger() logging.Logger { return s.client.Options().Logger }

// ClaimUnchecked is Claim after its first look found the prefix unclaimed:
// what a system racing another's claim does next.
func (s *Store) ClaimUnchecked(ctx context.Context, systemID string) error {
	return s.claim(ctx, systemID)
}

// Classify is the store's mapping of an SDK error to docex errors.
func (s *Store) Classify(op string, err error) error { return s.classify(op, "", err) }

// MemHeld is the bytes of staged content the store counts against its
// memory budget.
func (s *Store) MemHeld() int64 { return s.mem.Load() }

// PutMultipartParts is putMultipart of size bytes with n part checksums
// (no body: it is refused before any request or is not sent).
func (s *Store) PutMultipartParts(ctx context.Context, size int64, n int) error {
	return s.putMultipart(ctx, "k", nil, size, "", make([][]byte, n))
}

// Retryer is the retryer of the store's SDK client.
func (s *Store) Retryer() aws.Retryer { return s.client.Options().Retryer }
