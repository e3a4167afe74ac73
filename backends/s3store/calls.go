package s3store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/internal/fdlimit"
	"github.com/google/uuid"
)

// metaSHA256 is the user metadata key holding an object's full SHA-256
// (hex): a multipart object's own checksum is a checksum of its parts.
const metaSHA256 = "docex-sha256"

// call runs one metadata request (HEAD, DELETE, LIST, multipart control)
// under the request timeout and classifies its error; key names the
// object of an object operation in the error ("" for the others).
func (s *Store) call(ctx context.Context, op, key string, fn func(context.Context) error) error {
	return s.callFor(ctx, op, key, s.cfg.RequestTimeout, fn)
}

// callData runs one request that sends n bytes: the request timeout plus
// one second per MiB.
func (s *Store) callData(ctx context.Context, op, key string, n int64, fn func(context.Context) error) error {
	return s.callFor(ctx, op, key, s.cfg.RequestTimeout+time.Duration(n>>20)*time.Second, fn)
}

func (s *Store) callFor(ctx context.Context, op, key string, timeout time.Duration, fn func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := fn(cctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err() // the caller's cancellation, not the store's
	}
	return s.classify(op, key, err)
}

// deniedCodes are S3 error codes meaning the credentials or the request
// were refused.
var deniedCodes = map[string]bool{
	"AccessDenied": true, "Forbidden": true, "InvalidAccessKeyId": true, "SignatureDoesNotMatch": true,
	"InvalidToken": true, "ExpiredToken": true, "TokenRefreshRequired": true, "AllAccessDisabled": true,
	"AccountProblem": true, "InvalidSecurity": true, "RequestTimeTooSkewed": true, "InvalidAccessKey": true,
	"XAdminUserNotFound": true, // versitygw's answer to an unknown access key
}

// regionCodes are S3 error codes meaning the request was signed for, or
// sent to, another region than the bucket's (AuthorizationHeaderMalformed
// only when its message names the region).
var regionCodes = map[string]bool{
	"AuthorizationHeaderMalformed": true, "PermanentRedirect": true, "IllegalLocationConstraintException": true,
	"AuthorizationQueryParametersError": true, "InvalidRegion": true,
}

// checksumCodes are S3 error codes meaning the server refused the bytes
// it received: their checksum or payload hash differed from the one sent
// with them (damaged on the way).
var checksumCodes = map[string]bool{
	"XAmzContentSHA256Mismatch": true, "BadDigest": true, "InvalidDigest": true,
}

// ErrDamagedInTransit marks the error of a request the server refused
// because the bytes it received did not match the checksum sent with
// them, or a response whose bytes did not match the checksum the server
// sent (the SDK's "checksum did not match"): damaged on the way. It is
// also docex.ErrStorageUnavailable: nothing was stored, and the same
// request again normally succeeds.
var ErrDamagedInTransit = errors.New("s3: bytes damaged in transit")

// classify maps an SDK error to the docex error kinds. Messages name the
// operation, the object (s3://BUCKET/KEY) when key is not "", and the
// endpoint, never credentials. Running out of file descriptors is
// docex.ErrTooManyOpenFiles (fdlimit.Wrap), not
// docex.ErrStorageUnavailable.
func (s *Store) classify(op, key string, err error) error {
	where := s.endpointName()
	what := "s3 " + op
	if key != "" {
		what += " " + s.location(key)
	}
	if fdlimit.IsExhaustion(err) {
		// A socket not made ("dial tcp: socket: too many open files"):
		// nothing says the server is unreachable.
		return fdlimit.Wrap(fmt.Errorf("%s at %s: %w", what, where, err))
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		switch {
		case code == "NoSuchBucket":
			return s.noSuchBucket(op)
		case code == "NoSuchKey" || code == "NotFound" || code == "NoSuchUpload":
			return docex.Errorf(docex.ErrNotFound, "%s: not found", what)
		case regionCodes[code] && (code != "AuthorizationHeaderMalformed" || strings.Contains(ae.ErrorMessage(), "region")):
			return fmt.Errorf("%w: %s at %s: %s: %s (check storage.documents.s3.region, now %q: the bucket is in another region)", docex.ErrInvalidConfig, what, where, code, ae.ErrorMessage(), s.cfg.Region)
		case deniedCodes[code]:
			return fmt.Errorf("%w: %s at %s: %s (check the credentials the config names and the bucket's permissions)", docex.ErrStorageDenied, what, where, code)
		case checksumCodes[code]:
			return &damagedErr{msg: fmt.Sprintf("%s at %s: the server refused the bytes it received as damaged on the way (%s: their checksum differed from the one sent with them); nothing was stored: %s",
				what, where, code, ae.ErrorMessage())}
		}
	}
	if strings.Contains(err.Error(), "checksum did not match") {
		return &damagedErr{msg: fmt.Sprintf("%s at %s: the bytes received were damaged on the way (their checksum differed from the one the server sent): %v", what, where, err)}
	}
	var qe *retry.MaxAttemptsError
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch st := re.HTTPStatusCode(); {
		case st == 403 || st == 401:
			return fmt.Errorf("%w: %s at %s: HTTP %d (check the credentials the config names and the bucket's permissions)", docex.ErrStorageDenied, what, where, st)
		case st == 404:
			return docex.Errorf(docex.ErrNotFound, "%s: not found", what)
		case st >= 500 || st == 429 || (st != 0 && errors.As(err, &qe)):
			// The server answered, and the SDK's attempts ran out (a
			// 5xx, 429 Too Many Requests, SlowDown): say what it
			// answered, not that it did not.
			return fmt.Errorf("%w: %s at %s: the server answered HTTP %d (the last of up to %d attempts): %v", docex.ErrStorageUnavailable, what, where, st, maxAttempts, err)
		}
	}
	msg := err.Error()
	if strings.Contains(msg, "retrieve credentials") || strings.Contains(msg, "refresh cached credentials") || strings.Contains(msg, "no EC2 IMDS") {
		return fmt.Errorf("%w: %s: no usable credentials (name them in storage.documents.s3 or set the SDK's environment): %v", docex.ErrStorageDenied, what, err)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) || errors.As(err, &oe) || errors.As(err, &qe) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || strings.Contains(msg, "connection reset") {
		if errors.As(err, &oe) && oe.Op == "dial" {
			// The cause alone ("dial tcp ...: connection refused"), not
			// the SDK's retry chain around it.
			return fmt.Errorf("%w: %s: %s unreachable: %v", docex.ErrStorageUnavailable, what, where, oe)
		}
		return fmt.Errorf("%w: %s: %s unreachable or not answering within %v: %v", docex.ErrStorageUnavailable, what, where, s.cfg.RequestTimeout, err)
	}
	return fmt.Errorf("%s at %s: %w", what, where, err)
}

// damagedErr is ErrDamagedInTransit (classify).
type damagedErr struct{ msg string }

func (e *damagedErr) Error() string { return e.msg }
func (e *damagedErr) Unwrap() []error {
	return []error{docex.ErrStorageUnavailable, ErrDamagedInTransit}
}

// ErrNoSuchBucket marks the error of a bucket that does not exist (it is
// also docex.ErrInvalidConfig): docex never creates buckets.
var ErrNoSuchBucket = errors.New("s3 bucket does not exist")

// noSuchBucketError is docex.ErrInvalidConfig and ErrNoSuchBucket.
type noSuchBucketError struct{ msg string }

func (e *noSuchBucketError) Error() string   { return e.msg }
func (e *noSuchBucketError) Unwrap() []error { return []error{docex.ErrInvalidConfig, ErrNoSuchBucket} }

func (s *Store) noSuchBucket(op string) error {
	return &noSuchBucketError{msg: fmt.Sprintf("s3 %s: bucket %q does not exist at %s", op, s.cfg.Bucket, s.endpointName())}
}

// withPayloadHash makes the SDK sign the request with a payload hash
// computed while the content was staged, instead of reading the body a
// second time to compute it.
func withPayloadHash(hexSum string) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("DocexPayloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, hexSum), in)
				}), middleware.Before)
		})
	}
}

func b64(raw []byte) *string { return aws.String(base64.StdEncoding.EncodeToString(raw)) }

func rawSum(hexSum string) []byte {
	b, _ := hex.DecodeString(hexSum)
	return b
}

// putBytes uploads data in one PUT with its SHA-256.
func (s *Store) putBytes(ctx context.Context, key string, data []byte, sum string) error {
	return s.putReader(ctx, key, bytes.NewReader(data), int64(len(data)), sum, rawSum(sum))
}

// putReader uploads size bytes from body (rewindable, for retries) in one
// PUT: the full SHA-256 goes as x-amz-checksum-sha256 (the server rejects
// other bytes), as the signed payload hash and in the metadata.
func (s *Store) putReader(ctx context.Context, key string, body io.ReadSeeker, size int64, sum string, raw []byte) error {
	_, err := s.putObject(ctx, key, body, size, sum, raw, false)
	return err
}

// putIfAbsent uploads data to key only when no object is there: a
// conditional PUT (If-None-Match: *), which S3, MinIO and versitygw
// refuse with HTTP 412 when one is, and AWS with 409 when another
// conditional write to the key is under way. It returns present true in
// either case, and a server's 501 (the condition not implemented) as
// errNoCondition; other errors as putBytes.
func (s *Store) putIfAbsent(ctx context.Context, key string, data []byte, sum string) (present bool, err error) {
	status, err := s.putObject(ctx, key, bytes.NewReader(data), int64(len(data)), sum, rawSum(sum), true)
	switch {
	case err == nil:
		return false, nil
	case status == 412 || status == 409:
		return true, nil
	case status == 501:
		return false, errNoCondition
	}
	return false, err
}

// errNoCondition: the server does not implement conditional writes.
var errNoCondition = errors.New("s3: the server does not implement conditional writes (If-None-Match)")

// putObject is one PUT of size bytes from body (see putReader), only if no
// object is at key when ifAbsent. It returns the HTTP status of a refused
// request (0 when there was none) with the classified error.
func (s *Store) putObject(ctx context.Context, key string, body io.ReadSeeker, size int64, sum string, raw []byte, ifAbsent bool) (status int, err error) {
	err = s.callData(ctx, "put object", key, size, func(ctx context.Context) error {
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return err
		}
		in := &s3.PutObjectInput{
			Bucket: &s.cfg.Bucket, Key: &key, Body: body, ContentLength: aws.Int64(size),
			ChecksumSHA256: b64(raw), Metadata: map[string]string{metaSHA256: sum},
			ContentType: aws.String("application/octet-stream"),
		}
		if ifAbsent {
			in.IfNoneMatch = aws.String("*")
		}
		_, err := s.client.PutObject(ctx, in, withPayloadHash(hex.EncodeToString(raw)))
		var re *awshttp.ResponseError
		if errors.As(err, &re) {
			status = re.HTTPStatusCode()
		}
		return err
	})
	if err != nil && status == 409 && !ifAbsent {
		err = &putConflictErr{err: err}
	}
	return status, err
}

// putConflictErr is a plain PUT refused with HTTP 409: a request on the
// same key under way at the server (versitygw's file system backend
// answers a PUT that races a DELETE of the key with
// ExistingObjectIsDirectory). Sync leaves such content for Put, which
// uploads it under the content lock, where no delete of it runs.
type putConflictErr struct{ err error }

func (e *putConflictErr) Error() string { return e.err.Error() }
func (e *putConflictErr) Unwrap() error { return e.err }

// putMultipart uploads f (size bytes) in parts of PartSize, 4 at a time,
// each with its SHA-256; on failure the upload is aborted (or left for
// Clean when even that fails).
func (s *Store) putMultipart(ctx context.Context, key string, f io.ReaderAt, size int64, sum string, parts [][]byte) error {
	ps := s.cfg.PartSize
	if len(parts) > maxParts {
		return docex.Errorf(docex.ErrTooLarge, "s3: content of %d bytes takes %d parts of %d bytes; S3 takes at most %d parts per upload (raise storage.documents.s3.part_size_mib)", size, len(parts), ps, maxParts)
	}
	if int64(len(parts)) != (size+ps-1)/ps {
		return fmt.Errorf("s3: %d part checksums for %d bytes in parts of %d", len(parts), size, ps)
	}
	var uploadID string
	err := s.call(ctx, "create multipart upload", key, func(ctx context.Context) error {
		out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
			Bucket: &s.cfg.Bucket, Key: &key, ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
			Metadata: map[string]string{metaSHA256: sum}, ContentType: aws.String("application/octet-stream"),
		})
		if err == nil {
			uploadID = aws.ToString(out.UploadId)
		}
		return err
	})
	if err != nil {
		return err
	}
	done := make([]types.CompletedPart, len(parts))
	idx := make([]int, len(parts))
	for i := range idx {
		idx[i] = i
	}
	err = eachLimit(ctx, 4, idx, func(ctx context.Context, i int) error {
		off := int64(i) * ps
		n := min(ps, size-off)
		body := io.NewSectionReader(f, off, n)
		return s.callData(ctx, "upload part", key, n, func(ctx context.Context) error {
			if _, err := body.Seek(0, io.SeekStart); err != nil {
				return err
			}
			out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: &s.cfg.Bucket, Key: &key, UploadId: &uploadID, PartNumber: aws.Int32(int32(i + 1)),
				Body: body, ContentLength: aws.Int64(n), ChecksumSHA256: b64(parts[i]),
			}, withPayloadHash(hex.EncodeToString(parts[i])))
			if err == nil {
				done[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag, ChecksumSHA256: b64(parts[i])}
			}
			return err
		})
	})
	if err == nil {
		// Some servers assemble the object before they answer: the
		// wait grows with the size.
		err = s.callData(ctx, "complete multipart upload", key, size, func(ctx context.Context) error {
			_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
				Bucket: &s.cfg.Bucket, Key: &key, UploadId: &uploadID,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
			})
			return err
		})
	}
	if err != nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout)
		defer cancel()
		_, _ = s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: &key, UploadId: &uploadID})
	}
	return err
}

// head returns the object's size and the full SHA-256 recorded in its
// metadata, or docex.ErrNotFound.
func (s *Store) head(ctx context.Context, key string) (int64, string, error) {
	var size int64
	var sum string
	err := s.call(ctx, "head object", key, func(ctx context.Context) error {
		out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
		if err == nil {
			size, sum = aws.ToInt64(out.ContentLength), out.Metadata[metaSHA256]
		}
		return err
	})
	return size, sum, err
}

// get opens the object's body. The response must start within the
// request timeout, and each read of the body must then get bytes within
// it too (an idle timeout: a server that stalls partway fails the read);
// besides, each request timeout of reading (the time spent waiting in
// Read, not the caller's time between reads) must bring at least
// minWindowBytes or the rest of the body (a server that trickles slower
// fails the read), however long the whole download takes while bytes
// flow at that rate. A read that fails (that bound, the connection lost)
// returns an error wrapping docex.ErrStorageUnavailable naming the
// object, and the request is cancelled; the caller's cancellation returns
// its ctx.Err().
func (s *Store) get(ctx context.Context, key string) (io.ReadCloser, error) {
	return s.getRange(ctx, key, -1, 0)
}

// getRange is get of the n bytes of the object from off (a ranged GET),
// or of all of it when off is negative. A server that answers a ranged
// GET with other bytes than those asked for (no Range support: the whole
// object) fails docex.ErrStorageUnavailable.
func (s *Store) getRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &key}
	if off >= 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	}
	cctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(s.cfg.RequestTimeout, func() { cancel(errStalled) })
	out, err := s.client.GetObject(cctx, in)
	expired := !timer.Stop()
	if err != nil {
		cancel(nil)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if expired {
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		return nil, s.classify("get object", key, err)
	}
	if off >= 0 && !strings.HasPrefix(aws.ToString(out.ContentRange), fmt.Sprintf("bytes %d-", off)) {
		out.Body.Close()
		cancel(nil)
		return nil, fmt.Errorf("%w: s3 get object %s: %s answered a GET of bytes %d to %d with Content-Range %q, not those bytes (does it serve ranged GETs?)",
			docex.ErrStorageUnavailable, s.location(key), s.endpointName(), off, off+n-1, aws.ToString(out.ContentRange))
	}
	return &getBody{s: s, key: key, ctx: ctx, cctx: cctx, rc: out.Body, cancel: cancel, timer: timer}, nil
}

// RangeReaderAt returns a reader of the body's object at offsets, one
// ranged GET per ReadAt (bounded as the body's reads are), under the
// context of the body's GET, without checking anything against the
// content's checksum: for a page of a large document
// (contentkey.Verifier.Ranged).
func (b *getBody) RangeReaderAt() io.ReaderAt {
	return &objectAt{s: b.s, ctx: b.ctx, key: b.key}
}

// objectAt reads an object at offsets with ranged GETs.
type objectAt struct {
	s   *Store
	ctx context.Context
	key string
}

// ReadAt implements io.ReaderAt; past the object's end it returns io.EOF
// with the bytes there were.
func (o *objectAt) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	body, err := o.s.getRange(o.ctx, o.key, off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := io.ReadFull(body, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// minWindowBytes is the least a download must bring in each request
// timeout of reading it (get): 16 KiB, about 550 bytes a second at the
// default 30 s.
const minWindowBytes = 16 << 10

// errStalled is the cause of a download's cancellation when a read of its
// body got no bytes within the request timeout.
var errStalled = errors.New("s3: no bytes within the request timeout")

// getBody is a download's body (get): every Read is bounded by the
// request timeout, each window of reading by the minimum rate, and its
// errors are classified. Close releases the
// request.
type getBody struct {
	s      *Store
	key    string
	ctx    context.Context // the caller's
	cctx   context.Context // the request's
	rc     io.ReadCloser
	cancel context.CancelCauseFunc
	timer  *time.Timer
	err    error
	// The current window: the time spent in Read it has left, and the
	// bytes it brought.
	left time.Duration
	got  int64
}

func (b *getBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left <= 0 {
		b.left, b.got = b.s.cfg.RequestTimeout, 0 // a new window
	}
	start := time.Now()
	b.timer.Reset(b.s.cfg.RequestTimeout)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	b.left -= time.Since(start)
	b.got += int64(n)
	if err == nil && b.left <= 0 && b.got < minWindowBytes {
		// A window of reading ended with too few bytes: a trickle.
		b.err = b.trickled()
		b.cancel(nil)
		return n, b.err
	}
	if err == nil || err == io.EOF {
		return n, err
	}
	b.err = b.readErr(err)
	b.cancel(nil) // the connection is not reused
	return n, b.err
}

// trickled is the error of a download whose window of reading brought
// fewer than minWindowBytes.
func (b *getBody) trickled() error {
	if b.ctx.Err() != nil {
		return b.ctx.Err()
	}
	return fmt.Errorf("%w: s3 get object %s: %s sent %d bytes in %v of reading partway through the download, fewer than the %d bytes each request_timeout_ms of reading must bring (the server trickles)",
		docex.ErrStorageUnavailable, b.s.location(b.key), b.s.endpointName(), b.got, (b.s.cfg.RequestTimeout - b.left).Round(time.Millisecond), minWindowBytes)
}

// readErr classifies an error reading the body: the caller's
// cancellation as it is, else docex.ErrStorageUnavailable naming the
// object and the endpoint.
func (b *getBody) readErr(err error) error {
	s := b.s
	if b.ctx.Err() != nil {
		return b.ctx.Err()
	}
	where := s.location(b.key)
	if errors.Is(context.Cause(b.cctx), errStalled) {
		return fmt.Errorf("%w: s3 get object %s: %s sent no bytes for %v partway through the download (the server stalled; request_timeout_ms bounds each wait)",
			docex.ErrStorageUnavailable, where, s.endpointName(), s.cfg.RequestTimeout)
	}
	return fmt.Errorf("%w: s3 get object %s: the connection to %s failed partway through the download: %v",
		docex.ErrStorageUnavailable, where, s.endpointName(), err)
}

// Close closes the body and releases the request.
func (b *getBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// deleteKey deletes one object; absent is not an error.
func (s *Store) deleteKey(ctx context.Context, key string) error {
	err := s.call(ctx, "delete object", key, func(ctx context.Context) error {
		_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
		return err
	})
	if errors.Is(err, docex.ErrNotFound) {
		return nil
	}
	return err
}

// listObjects calls fn for every object under keyPrefix, page by page.
func (s *Store) listObjects(ctx context.Context, keyPrefix string, fn func(key string, modified time.Time) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.cfg.Bucket, Prefix: &keyPrefix})
	for p.HasMorePages() {
		var page *s3.ListObjectsV2Output
		if err := s.call(ctx, "list objects", "", func(ctx context.Context) error {
			var err error
			page, err = p.NextPage(ctx)
			return err
		}); err != nil {
			return err
		}
		for _, o := range page.Contents {
			if err := fn(aws.ToString(o.Key), aws.ToTime(o.LastModified)); err != nil {
				return err
			}
		}
	}
	return nil
}

// listPrefixes calls fn for every common prefix one level below keyPrefix.
func (s *Store) listPrefixes(ctx context.Context, keyPrefix string, fn func(prefix string) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.cfg.Bucket, Prefix: &keyPrefix, Delimiter: aws.String("/")})
	for p.HasMorePages() {
		var page *s3.ListObjectsV2Output
		if err := s.call(ctx, "list objects", "", func(ctx context.Context) error {
			var err error
			page, err = p.NextPage(ctx)
			return err
		}); err != nil {
			return err
		}
		for _, cp := range page.CommonPrefixes {
			if err := fn(aws.ToString(cp.Prefix)); err != nil {
				return err
			}
		}
	}
	return nil
}

// deletePrefix deletes every object under keyPrefix, 1,000 per request.
func (s *Store) deletePrefix(ctx context.Context, keyPrefix string) error {
	var batch []types.ObjectIdentifier
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.call(ctx, "delete objects", "", func(ctx context.Context) error {
			out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &s.cfg.Bucket,
				Delete: &types.Delete{Objects: batch, Quiet: aws.Bool(true)}})
			if err == nil && len(out.Errors) > 0 {
				e := out.Errors[0]
				return &smithy.GenericAPIError{Code: aws.ToString(e.Code), Message: aws.ToString(e.Key) + ": " + aws.ToString(e.Message)}
			}
			return err
		})
		batch = batch[:0]
		return err
	}
	err := s.listObjects(ctx, keyPrefix, func(key string, _ time.Time) error {
		batch = append(batch, types.ObjectIdentifier{Key: aws.String(key)})
		if len(batch) == 1000 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// abortUploads aborts the multipart uploads under keyPrefix started
// before cutoff and returns their names (the object's location and the
// upload id); with dryRun it aborts nothing and returns the names of
// those it would abort.
func (s *Store) abortUploads(ctx context.Context, keyPrefix string, cutoff time.Time, dryRun bool) ([]string, error) {
	var aborted []string
	in := &s3.ListMultipartUploadsInput{Bucket: &s.cfg.Bucket, Prefix: &keyPrefix}
	for {
		var page *s3.ListMultipartUploadsOutput
		if err := s.call(ctx, "list multipart uploads", "", func(ctx context.Context) error {
			var err error
			page, err = s.client.ListMultipartUploads(ctx, in)
			return err
		}); err != nil {
			return aborted, err
		}
		for _, u := range page.Uploads {
			if !aws.ToTime(u.Initiated).Before(cutoff) {
				continue
			}
			name := s.location(aws.ToString(u.Key)) + " (upload " + aws.ToString(u.UploadId) + ")"
			if dryRun {
				aborted = append(aborted, name)
				continue
			}
			err := s.call(ctx, "abort multipart upload", aws.ToString(u.Key), func(ctx context.Context) error {
				_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: u.Key, UploadId: u.UploadId})
				return err
			})
			if err != nil && !errors.Is(err, docex.ErrNotFound) {
				return aborted, err
			}
			aborted = append(aborted, name)
		}
		if !aws.ToBool(page.IsTruncated) {
			return aborted, nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}

func newCheckName() string { return uuid.NewString() }
