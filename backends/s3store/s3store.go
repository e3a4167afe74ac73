package s3store

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/internal/s3config"
)

// Defaults and bounds of Config.
const (
	DefaultRegion         = "us-east-1"
	DefaultPartSize       = 16 << 20
	MinPartSize           = 5 << 20 // S3's smallest part but the last
	DefaultRequestTimeout = 30 * time.Second
	// DefaultCommitHeadTimeout is Config.CommitHeadTimeout's default:
	// shorter than SQLite's default busy timeout (5s), the longest
	// another process's write of the tenant waits for its write lock.
	DefaultCommitHeadTimeout = 3 * time.Second
	DefaultMemoryBudget      = 16 << 20
	// inlineMax is the largest content staged in memory (within the
	// memory budget); larger content is spooled to a file.
	inlineMax = 1 << 20
	// maxParts is S3's limit of parts per upload.
	maxParts = 10000
	// maxAttempts is the SDK's attempts per request: the first and two
	// retries.
	maxAttempts = 3
)

// Config configures a Store. Credentials are never part of it as values in
// a file: pass a provider (the CLI builds one from environment variables
// named in docex.yaml), or nil for the SDK's default chain.
type Config struct {
	// Bucket is the bucket's name (required). It must exist: the store
	// never creates buckets.
	Bucket string
	// Prefix is prepended to every key (default none), without leading or
	// trailing slashes: "docex/prod" gives docex/prod/tenants/...
	Prefix string
	// Region is the bucket's region (default "us-east-1").
	Region string
	// Endpoint is the server's URL for S3-compatible servers, such as
	// "http://127.0.0.1:7070" (default: AWS's endpoint for the region).
	Endpoint string
	// PathStyle addresses the bucket in the path (endpoint/bucket/key)
	// instead of the host name (bucket.endpoint/key); most S3-compatible
	// servers need it.
	PathStyle bool
	// Credentials signs requests (default nil: the SDK's default chain:
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, shared files, then the
	// instance's role).
	Credentials aws.CredentialsProvider
	// RequestTimeout bounds connecting and each request (default 30s); an
	// upload, and the completion of a multipart upload, get in addition one
	// second per MiB; a download must start within it, each read of its
	// body must get bytes within it, and each RequestTimeout spent
	// reading the body must bring at least 16 KiB or the rest of it (a
	// minimum rate; not the whole download).
	RequestTimeout time.Duration
	// CommitHeadTimeout bounds the HEAD that Put makes, inside the
	// caller's transaction and under the content lock, to confirm that
	// content Sync uploaded is still there (default 3s,
	// DefaultCommitHeadTimeout; at most RequestTimeout). The transaction
	// holds the tenant's write lock meanwhile (on SQLite, the database's:
	// another process's write waits for it at most its busy timeout, 5s
	// by default): a server that does not answer that HEAD in time fails
	// the add with docex.ErrStorageUnavailable, nothing added, instead of
	// holding the lock for the request timeout.
	CommitHeadTimeout time.Duration
	// PartSize is the size of multipart upload parts (default 16 MiB, at
	// least 5 MiB); content larger than one part is uploaded in parts.
	PartSize int64
	// SpoolDir holds content larger than 1 MiB while it is staged
	// (default: the system's temporary directory).
	SpoolDir string
	// MemoryBudget bounds the bytes of content staged in memory at once
	// across the store, by all its tenants' adds together (default 16 MiB,
	// engine.DefaultMaxStagedMemory; the CLI sets it from
	// storage.documents.max_staged_memory); content beyond it, and content
	// over 1 MiB, is spooled. A staging reserves the size its reader tells
	// (contentkey.SizeHint: a file), or 1 MiB when it tells none, and
	// then counts the buffer it holds, about its content's size.
	MemoryBudget int64
	// HTTPClient sends the requests (default: the SDK's client with the
	// request timeout applied to connecting).
	HTTPClient *http.Client
}

// Store is an S3 content store. It is safe for concurrent use.
type Store struct {
	cfg    Config
	client *s3.Client
	prefix string // "" or "PREFIX/"
	mem    atomic.Int64
}

// New returns a store for cfg. It does no network I/O (Check does). It
// returns docex.ErrInvalidConfig for a bad bucket name, prefix, endpoint
// or size.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := s3config.CheckBucket(cfg.Bucket); err != nil {
		return nil, docex.Errorf(docex.ErrInvalidConfig, "s3 bucket %q: %v", cfg.Bucket, err)
	}
	if err := s3config.CheckPrefix(cfg.Prefix); err != nil {
		return nil, docex.Errorf(docex.ErrInvalidConfig, "s3 prefix %q: %v", cfg.Prefix, err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if err := s3config.CheckEndpoint(cfg.Endpoint); err != nil {
		return nil, docex.Errorf(docex.ErrInvalidConfig, "s3 endpoint %q: %v", s3config.ShowEndpoint(cfg.Endpoint), err)
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.CommitHeadTimeout == 0 {
		cfg.CommitHeadTimeout = DefaultCommitHeadTimeout
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.MemoryBudget == 0 {
		cfg.MemoryBudget = DefaultMemoryBudget
	}
	if cfg.RequestTimeout < 0 || cfg.CommitHeadTimeout < 0 || cfg.PartSize < MinPartSize || cfg.MemoryBudget < 0 {
		return nil, docex.Errorf(docex.ErrInvalidConfig, "s3: request timeout %v, commit HEAD timeout %v, part size %d (at least %d), memory budget %d", cfg.RequestTimeout, cfg.CommitHeadTimeout, cfg.PartSize, MinPartSize, cfg.MemoryBudget)
	}
	cfg.CommitHeadTimeout = min(cfg.CommitHeadTimeout, cfg.RequestTimeout)
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = os.TempDir()
	}
	rt := cfg.RequestTimeout
	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = rt }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.TLSHandshakeTimeout = rt
			tr.MaxIdleConnsPerHost = 32
		})
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(cfg.Region),
		awsconfig.WithHTTPClient(httpClient),
		// Up to three attempts per request, always: the standard
		// retryer's client-side rate limit (a quota of retries that
		// failures spend) would leave a long-running process (docex
		// mcp, a worker) with one attempt per request after some
		// failures ("failed to get rate limit token, retry quota
		// exceeded").
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.RateLimiter = ratelimit.None
			})
		}),
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		// The SDK's own logger writes to stderr ("SDK ... WARN falling
		// back to IMDSv1", "failed to discard remaining HTTP response
		// body") ahead of a command's --json error: docex reports what
		// matters in its errors instead.
		awsconfig.WithLogger(logging.Nop{}),
	}
	if cfg.Credentials != nil {
		opts = append(opts, awsconfig.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, docex.Errorf(docex.ErrInvalidConfig, "s3: %v", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.PathStyle
		if cfg.HTTPClient != nil {
			o.HTTPClient = cfg.HTTPClient
		}
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	s := &Store{cfg: cfg, client: client}
	if cfg.Prefix != "" {
		s.prefix = cfg.Prefix + "/"
	}
	return s, nil
}

// Bucket returns the bucket's name.
func (s *Store) Bucket() string { return s.cfg.Bucket }

// location names a key prefix for reports.
func (s *Store) location(keyPrefix string) string { return "s3://" + s.cfg.Bucket + "/" + keyPrefix }

// Check verifies that the bucket is reachable and writable: it writes a
// small object under PREFIX/.docex-check/ and deletes it again. It returns
// docex.ErrInvalidConfig (and ErrNoSuchBucket) when the bucket does not exist,
// docex.ErrStorageDenied when the server refuses the credentials or the
// requests, docex.ErrStorageUnavailable when the endpoint cannot be
// reached; on an error it leaves nothing behind that it could remove.
func (s *Store) Check(ctx context.Context) error {
	if err := s.Probe(ctx); err != nil {
		return err
	}
	key := s.checkPrefix() + newCheckName()
	body := []byte("docex connectivity check\n")
	if err := s.putBytes(ctx, key, body, contentkey.Sum(body)); err != nil {
		return err
	}
	return s.deleteKey(ctx, key)
}

// checkPrefix is where Check writes its object: PREFIX/.docex-check/.
func (s *Store) checkPrefix() string { return s.prefix + ".docex-check/" }

// CleanStore implements driver.StoreCleaner: it deletes the objects under
// PREFIX/.docex-check/ last modified before cutoff, which a Check (docex
// init) killed between its PUT and its DELETE left, and returns their
// locations (s3://BUCKET/KEY); with dryRun it deletes nothing and returns
// those it would delete.
func (s *Store) CleanStore(ctx context.Context, cutoff time.Time, dryRun bool) ([]string, error) {
	var names []string
	err := s.listObjects(ctx, s.checkPrefix(), func(key string, modified time.Time) error {
		if !modified.Before(cutoff) {
			return nil
		}
		if !dryRun {
			if err := s.deleteKey(ctx, key); err != nil {
				return err
			}
		}
		names = append(names, s.location(key))
		return nil
	})
	return names, err
}

// Probe implements driver.ContentProber with one HEAD of the bucket (and a
// listing when the answer is 404, to tell a missing bucket from refused
// credentials, or 301 or 400, to tell a wrong region from another bad
// request). It returns the errors Check does for the bucket, and
// docex.ErrInvalidConfig naming storage.documents.s3.region when the
// bucket is in another region.
func (s *Store) Probe(ctx context.Context) error {
	var status int
	err := s.call(ctx, "head bucket", "", func(ctx context.Context) error {
		_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.cfg.Bucket})
		var re *awshttp.ResponseError
		if errors.As(err, &re) {
			status = re.HTTPStatusCode()
		}
		return err
	})
	if status == http.StatusBadRequest || status == http.StatusMovedPermanently {
		// A HEAD answer has no body; a listing's names the error (a
		// region other than the bucket's: AuthorizationHeaderMalformed,
		// PermanentRedirect).
		if lerr := s.call(ctx, "list objects", "", func(ctx context.Context) error {
			_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.cfg.Bucket, MaxKeys: aws.Int32(1)})
			return err
		}); errors.Is(lerr, docex.ErrInvalidConfig) {
			return lerr
		}
	}
	if errors.Is(err, docex.ErrNotFound) {
		// A HEAD answer has no body to say why; a listing's has (some
		// servers answer an unknown access key with 404).
		err = s.call(ctx, "list objects", "", func(ctx context.Context) error {
			_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.cfg.Bucket, MaxKeys: aws.Int32(1)})
			return err
		})
		if err == nil || errors.Is(err, docex.ErrNotFound) {
			return s.noSuchBucket("head bucket")
		}
	}
	return err
}

func (s *Store) endpointName() string {
	if s.cfg.Endpoint != "" {
		return s.cfg.Endpoint
	}
	return "AWS region " + s.cfg.Region
}

// Tenant returns the namespace of a tenant incarnation. Errors as
// driver.ContentStore.Tenant.
func (s *Store) Tenant(t docex.Tenant) (driver.TenantContent, error) {
	ns, err := contentkey.Tenant(t)
	if err != nil {
		return nil, err
	}
	return &tenantContent{s: s, ns: s.prefix + ns + "/"}, nil
}

// InTransaction is false: objects are not part of the database transaction.
func (s *Store) InTransaction() bool { return false }

// Incarnations lists PREFIX/tenants/<id>/<incarnation>/ prefixes whose
// names are a valid tenant id and a UUID; other keys are never reported.
// ModTime is zero (a prefix has none).
func (s *Store) Incarnations(ctx context.Context, fn func(driver.StoredIncarnation) error) error {
	root := s.prefix + contentkey.Tenants + "/"
	return s.listPrefixes(ctx, root, func(idPrefix string) error {
		id := strings.TrimSuffix(strings.TrimPrefix(idPrefix, root), "/")
		return s.listPrefixes(ctx, idPrefix, func(incPrefix string) error {
			inc := strings.TrimSuffix(strings.TrimPrefix(incPrefix, idPrefix), "/")
			ns, err := contentkey.Tenant(docex.Tenant{ID: id, Incarnation: inc})
			if err != nil || s.prefix+ns+"/" != incPrefix {
				return nil
			}
			return fn(driver.StoredIncarnation{TenantID: id, Incarnation: inc, Location: s.location(incPrefix)})
		})
	})
}

// DeleteTenant removes every object and unfinished upload under the
// incarnation's prefix.
func (s *Store) DeleteTenant(ctx context.Context, tenantID, incarnation string) error {
	ns, err := contentkey.Tenant(docex.Tenant{ID: tenantID, Incarnation: incarnation})
	if err != nil {
		return err
	}
	keyPrefix := s.prefix + ns + "/"
	if _, err := s.abortUploads(ctx, keyPrefix, time.Now().Add(time.Hour), false); err != nil {
		return err
	}
	return s.deletePrefix(ctx, keyPrefix)
}

// markerKey is the key of the claim marker, PREFIX/.docex-system.
func (s *Store) markerKey() string { return s.prefix + contentkey.Marker }

// CheckClaim reads the claim marker PREFIX/.docex-system
// (driver.Claimer), one GET. It returns an error wrapping
// docex.ErrNotInitialized and driver.ErrUnclaimed when there is none, one
// wrapping docex.ErrInvalidConfig and driver.ErrOtherSystem when it names
// another system, and the errors of Check when the bucket cannot be read.
func (s *Store) CheckClaim(ctx context.Context, systemID string) error {
	rc, err := s.get(ctx, s.markerKey())
	if errors.Is(err, docex.ErrNotFound) {
		return contentkey.Unclaimed(s.location(s.prefix), driver.ErrUnclaimed)
	}
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(rc, 4096))
	rc.Close()
	if err != nil {
		return err // classified by the body
	}
	return contentkey.CheckMarker(s.location(s.prefix), data, systemID, driver.ErrOtherSystem)
}

// Claim writes the claim marker PREFIX/.docex-system naming systemID when
// there is none (driver.Claimer); a PUT is durable when the server answers.
// The PUT is conditional (If-None-Match: *): of two systems claiming at
// once, the server keeps the first marker and refuses the second, whose
// Claim then reads the marker and returns the error of another system's
// prefix. A server without conditional writes gets a plain PUT, and the
// marker is read back: the system whose marker did not stay gets the
// error, here or from its next CheckClaim (docex gc, verify, init), so a
// race ends in a refusal, never in a shared prefix. It returns an error
// wrapping docex.ErrInvalidConfig, writing nothing, when a marker names
// another system.
func (s *Store) Claim(ctx context.Context, systemID string) error {
	if err := s.CheckClaim(ctx, systemID); !errors.Is(err, docex.ErrNotInitialized) {
		return err // claimed (nil), another system's, or unreadable
	}
	return s.claim(ctx, systemID)
}

// claim writes the marker of an unclaimed prefix (Claim): another system
// may have claimed it since Claim looked.
func (s *Store) claim(ctx context.Context, systemID string) error {
	body := contentkey.MarkerBytes(systemID)
	for tries := 1; ; tries++ {
		present, err := s.putIfAbsent(ctx, s.markerKey(), body, contentkey.Sum(body))
		if errors.Is(err, errNoCondition) {
			err = s.putBytes(ctx, s.markerKey(), body, contentkey.Sum(body))
		}
		if err != nil {
			return err
		}
		err = s.CheckClaim(ctx, systemID)
		if present && errors.Is(err, docex.ErrNotInitialized) && tries < 3 {
			// Refused for another conditional write under way (409)
			// that has not landed yet: look again.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(tries) * 100 * time.Millisecond):
			}
			continue
		}
		return err
	}
}
