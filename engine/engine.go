package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine/internal/blobstore"
	"github.com/docex-dev/docex/internal/quote"
	"github.com/docex-dev/docex/tenancy"
	"github.com/google/uuid"
)

// Engine serves runtime operations and tenant provisioning over one
// backend. It is safe for concurrent use.
type Engine struct {
	be     driver.Backend
	cfg    Config
	closed atomic.Bool
	// claimed is set once the content store's claim marker was found
	// naming this system (checkClaimOnce).
	claimed atomic.Bool

	content driver.ContentStore

	mu      sync.Mutex
	blobs   map[string]driver.TenantContent // by tenant id + incarnation
	plugins map[string]*loadedPlugin        // compiled plugins by record (pluginKey)
	clock   uint64                          // plugin uses, for eviction

	ends jobEnds // wakes WaitJobs when this process's workers settle jobs
}

func (cfg Config) bootstrapInfo() driver.BootstrapInfo {
	return driver.BootstrapInfo{BootstrapTenantID: cfg.BootstrapTenantID, MultiTenancy: cfg.MultiTenancy, Now: cfg.Now().UTC()}
}

// contentStore returns the content store cfg configures.
func (cfg Config) contentStore() driver.ContentStore {
	switch cfg.ContentStorage {
	case ContentFilesystem:
		packMax := cfg.ContentPackMax
		if packMax == 0 {
			packMax = blobstore.DefaultPackMax
		}
		return blobstore.NewFSPacked(cfg.ContentDir, cfg.NoContentSync, max(packMax, 0))
	case ContentDatabase:
		return blobstore.DB{SpoolDir: cfg.SpoolDir}
	default:
		return cfg.ContentStore
	}
}

// Bootstrap initialises the system on be (docex init): system metadata
// with a random system id, the bootstrap tenant, the schema version, and
// the claim marker in a content store outside the database
// (driver.Claimer) naming the system id. Filesystem content's directory
// is created here, with its marker, and recorded in the system database
// (when be is a driver.ContentRecorder). It is idempotent and never
// destroys data: on an initialised system it returns created=false and
// changes nothing, except that a system initialised before system ids gets
// one, a content store without a marker is claimed, and the content
// directory is recorded. It returns docex.ErrInvalidConfig for a bad cfg,
// a system bootstrapped with other settings, or a content store another
// system claimed (checked before the backend creates anything),
// docex.ErrSchemaVersion for a system of another version, and
// docex.ErrStorageUnavailable, creating nothing, for an initialised
// system whose content directory is missing while it has documents or the
// directory is the one recorded: it was deleted, or its volume is not
// mounted, and an empty one in its place would hide that (its documents
// would read as corrupt). Only a system that never had that directory
// gets it created: a new one, or one without documents whose content
// directory changed.
func Bootstrap(ctx context.Context, be driver.Backend, cfg Config) (created bool, err error) {
	created, _, err = bootstrap(ctx, be, cfg, false)
	return created, err
}

// BeginInit is Bootstrap for an initialisation that does more once the
// system exists (docex init: the built-in steps) and ends with
// TenantProvisioner.RecordInit. A system it creates is marked, in the
// transaction that creates it, as not finished initialising until
// RecordInit; on a system an earlier BeginInit created whose RecordInit
// never came (that initialisation failed or was interrupted after
// Bootstrap), it returns created=false and unfinished=true, and the caller
// completes what is missing. On a backend that is not a
// driver.InitTracker, unfinished is always false. It returns Bootstrap's
// errors, and be's error reading the mark.
func BeginInit(ctx context.Context, be driver.Backend, cfg Config) (created, unfinished bool, err error) {
	r, err := BeginInitReport(ctx, be, cfg)
	return r.Created, r.Unfinished, err
}

// InitReport is what BeginInitReport did.
type InitReport struct {
	Created, Unfinished bool
	// Claimed: the content store outside the database (driver.Claimer)
	// had no claim marker when the init began, and now has this
	// system's: on a system that existed already, its content location
	// had lost its marker (or the system was initialised by a docex
	// that wrote none).
	Claimed bool
}

// BeginInitReport is BeginInit, reporting whether it claimed the
// content store too.
func BeginInitReport(ctx context.Context, be driver.Backend, cfg Config) (InitReport, error) {
	created, claimed, err := bootstrap(ctx, be, cfg, true)
	r := InitReport{Created: created, Claimed: claimed && err == nil}
	if err != nil || created {
		return r, err
	}
	if tr, ok := be.(driver.InitTracker); ok {
		r.Unfinished, err = tr.InitPending(ctx)
	}
	return r, err
}

// bootstrap is Bootstrap; pending marks a system it creates as not
// finished initialising (BeginInit). claimed reports that the content
// store had no marker when it looked, so that it claimed it.
func bootstrap(ctx context.Context, be driver.Backend, cfg Config, pending bool) (created, claimed bool, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return false, false, err
	}
	id, err := be.SystemID(ctx)
	if err != nil && !errors.Is(err, docex.ErrNotInitialized) {
		return false, false, err
	}
	if id == "" {
		id = uuid.NewString()
	}
	store := cfg.contentStore()
	fsStore, _ := store.(*blobstore.FS)
	claimer, _ := store.(driver.Claimer)
	if claimer != nil {
		// A store claimed by another system is refused before anything
		// is created; an unclaimed one is claimed after the backend
		// stored the id. A content directory that is missing is looked
		// at once the system is known to exist or not.
		err := claimer.CheckClaim(ctx, id)
		if err != nil && !errors.Is(err, docex.ErrNotInitialized) && (fsStore == nil || !fsStore.RootMissing()) {
			return false, false, err
		}
		claimed = errors.Is(err, docex.ErrNotInitialized)
	}
	info := cfg.bootstrapInfo()
	info.SystemID = id
	info.InitPending = pending
	created, err = be.Bootstrap(ctx, info)
	if err != nil || claimer == nil {
		return created, false, err
	}
	if fsStore != nil && !created && fsStore.RootMissing() {
		if err := contentDirGone(ctx, be, cfg, fsStore); err != nil {
			return false, false, err
		}
	}
	// A concurrent Bootstrap may have stored its id first.
	if id, err = be.SystemID(ctx); err != nil {
		return created, false, err
	}
	if err := claimer.Claim(ctx, id); err != nil {
		return created, false, err
	}
	if rec, ok := be.(driver.ContentRecorder); ok && fsStore != nil {
		dir, err := rec.ContentDir(ctx)
		if err == nil && dir != fsStore.Root() {
			err = rec.RecordContentDir(ctx, fsStore.Root())
		}
		if err != nil {
			return created, false, err
		}
	}
	return created, claimed, nil
}

// CheckContentDir returns docex.ErrStorageUnavailable, naming the
// directory, when cfg's filesystem content directory is missing on a
// system be holds that had it: the system database records that directory
// (driver.ContentRecorder), or the system has documents. Nil otherwise: no
// system yet, content elsewhere, the directory there, or a system that
// never had it. It writes nothing. Bootstrap checks the same before it
// creates a content directory; docex init calls it first, to refuse
// before it looks whether the directory could be created. It returns
// be's errors, and those of a system bootstrapped with other settings
// (docex.ErrInvalidConfig, docex.ErrSchemaVersion).
func CheckContentDir(ctx context.Context, be driver.Backend, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	st, ok := cfg.contentStore().(*blobstore.FS)
	if !ok || !st.RootMissing() {
		return nil
	}
	if _, err := be.SystemID(ctx); errors.Is(err, docex.ErrNotInitialized) {
		return nil
	} else if err != nil {
		return err
	}
	return contentDirGone(ctx, be, cfg, st)
}

// contentDirGone returns nil when an initialised system whose content
// directory (st's) is missing never had it: the system records no content
// directory or another one, and has no documents. Otherwise it returns
// st's docex.ErrStorageUnavailable naming the directory, the error of
// every other command that would use it.
func contentDirGone(ctx context.Context, be driver.Backend, cfg Config, st *blobstore.FS) error {
	missing := st.Probe(ctx)
	if missing == nil {
		return nil // back meanwhile
	}
	if rec, ok := be.(driver.ContentRecorder); ok {
		dir, err := rec.ContentDir(ctx)
		if err != nil {
			return err
		}
		if dir == st.Root() {
			return missing
		}
	}
	// Tenants are looked up as the system was initialised: with other
	// settings, that is the error.
	if err := be.Check(ctx, cfg.bootstrapInfo()); errors.Is(err, docex.ErrInvalidConfig) || errors.Is(err, docex.ErrSchemaVersion) {
		return err
	}
	has, err := hasDocuments(ctx, be, cfg.MultiTenancy)
	if err != nil {
		return err
	}
	if has {
		return missing
	}
	return nil
}

// hasDocuments reports whether a tenant of be (or its local store, without
// multi-tenancy) has a document, suspended tenants included.
func hasDocuments(ctx context.Context, be driver.Backend, multiTenancy bool) (bool, error) {
	ids := []string{""}
	if multiTenancy {
		tenants, err := be.Tenants(ctx)
		if err != nil {
			return false, err
		}
		ids = ids[:0]
		for _, t := range tenants {
			if !t.IsSystem {
				ids = append(ids, t.ID)
			}
		}
	}
	for _, id := range ids {
		st, err := be.OpenTenant(ctx, id)
		if errors.Is(err, docex.ErrTenantNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return false, err
		}
		refs, err := st.ContentRefsAfter(ctx, "", "", 1)
		st.Close()
		if err != nil {
			return false, fmt.Errorf("tenant %q: %w", id, err)
		}
		if len(refs) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// checkClaim returns nil unless the content store is outside the database
// and not claimed by this system: then an error wrapping
// docex.ErrNotInitialized (no marker, or a system without an id: run
// docex init) or docex.ErrInvalidConfig (another system's marker).
func (e *Engine) checkClaim(ctx context.Context) error {
	claimer, ok := e.content.(driver.Claimer)
	if !ok {
		return nil
	}
	id, err := e.be.SystemID(ctx)
	if err != nil {
		return err
	}
	if id == "" {
		return docex.Errorf(docex.ErrNotInitialized, "this system has no system id yet (initialised by an older docex): run docex init, which adds one and claims the content store")
	}
	return claimer.CheckClaim(ctx, id)
}

// checkClaimOnce is checkClaim until it first succeeds, then nil without
// I/O for the engine's lifetime: one read of the claim marker (a GET with
// S3) per process, at its first write (a worker: when it starts), and none
// for a store without a marker (driver.Claimer). Content is then never
// written to a store that storage.documents no longer names as this
// system's (a changed S3 prefix or bucket, another directory) or that
// another system claimed; reads need no check. Its errors are
// checkClaim's, and the store's when it cannot read the marker (not
// remembered: the next call reads again).
func (e *Engine) checkClaimOnce(ctx context.Context) error {
	if e.claimed.Load() {
		return nil
	}
	if err := e.checkClaim(ctx); err != nil {
		return err
	}
	e.claimed.Store(true)
	return nil
}

// New returns an engine over an initialised backend. It returns
// docex.ErrNotInitialized when Bootstrap has not run, docex.ErrInvalidConfig
// for a bad cfg. The engine does not own be: close it after the engine.
func New(ctx context.Context, be driver.Backend, cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := be.Check(ctx, cfg.bootstrapInfo()); err != nil {
		return nil, err
	}
	return &Engine{be: be, cfg: cfg, content: cfg.contentStore(), blobs: map[string]driver.TenantContent{}, plugins: map[string]*loadedPlugin{}}, nil
}

// Close marks the engine closed and releases its loaded plugins; later
// calls return docex.ErrClosed.
func (e *Engine) Close() error {
	e.closed.Store(true)
	e.mu.Lock()
	plugins := e.plugins
	e.plugins = map[string]*loadedPlugin{}
	e.mu.Unlock()
	for _, lp := range plugins {
		lp.p.Close(context.Background())
	}
	return nil
}

// Config returns the engine's configuration with defaults applied.
func (e *Engine) Config() Config { return e.cfg }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// checkID returns docex.ErrInvalidID unless id has the form of the ids the
// engine generates (a UUID in its canonical 36-character form): a
// malformed id is invalid input, never "not found".
func checkID(what, id string) error {
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return docex.Errorf(docex.ErrInvalidID, "%s id %s is malformed (ids look like 0190c2a4-5b6e-7f80-9a1b-2c3d4e5f6a7b)", what, quote.Short(id))
	}
	return nil
}

// tenantContent returns the content namespace of the tenant incarnation.
// The store is the one place that names it (internal/contentkey): the id
// and the incarnation are validated there, so nothing else reaches a path
// or an object key.
func (e *Engine) tenantContent(t docex.Tenant) (driver.TenantContent, error) {
	key := t.ID + "/" + t.Incarnation
	e.mu.Lock()
	defer e.mu.Unlock()
	if tc, ok := e.blobs[key]; ok {
		return tc, nil
	}
	if e.cfg.MultiTenancy != (t.ID != "") {
		return nil, fmt.Errorf("content of tenant %q with multi-tenancy %v: %w", t.ID, e.cfg.MultiTenancy, docex.ErrCorrupt)
	}
	var tc driver.TenantContent
	var err error
	if fs, ok := e.content.(*blobstore.FS); ok && t.ID != "" {
		// Its directory, when missing, is made only for a tenant still
		// registered: a step of a tenant deleted meanwhile, finishing,
		// must not make it again (for docex gc to remove).
		tc, err = fs.TenantLive(t, func(ctx context.Context) error { return e.tenantLive(ctx, t) })
	} else {
		tc, err = e.content.Tenant(t)
	}
	if err != nil {
		return nil, err
	}
	e.blobs[key] = tc
	return tc, nil
}

// tenantLive returns nil when the tenant incarnation t is the registered
// one, an error matching docex.ErrTenantUnknown (in the words of a store
// of a deleted tenant) when it was deleted, and the registry's error when
// it cannot be read.
func (e *Engine) tenantLive(ctx context.Context, t docex.Tenant) error {
	cur, err := e.be.Tenant(ctx, t.ID)
	if errors.Is(err, docex.ErrTenantNotFound) || err == nil && cur.Incarnation != t.Incarnation {
		return docex.Errorf(docex.ErrTenantUnknown, "tenant %q was deleted since the store was opened", t.ID)
	}
	return err
}

// forgetTenant drops cached content stores of a tenant id.
func (e *Engine) forgetTenant(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.blobs {
		if len(k) > len(id) && k[:len(id)+1] == id+"/" {
			delete(e.blobs, k)
		}
	}
}

// As returns a session acting as uc. It does no I/O; every call on the
// session validates uc, the tenant's status and the policy again.
func (e *Engine) As(uc docex.UserContext) *Session {
	return &Session{e: e, uc: uc}
}

// SessionOptions adjust what a session records in the audit log, and what
// it reports besides its methods' results. The zero value is what As
// gives.
type SessionOptions struct {
	// Origin names the channel the session's calls arrive through, such as
	// "mcp": every audit entry the session writes is named origin + "." +
	// operation ("mcp.document.add"), denials included. Default "": plain
	// operation names. 1 to 32 bytes of a-z, 0-9 and '-', starting with a
	// letter.
	Origin string

	// AuditReads records every read call too (basket.get, basket.list,
	// document.get, document.list, document.find, document.read,
	// plugin.get, plugin.list, audit.list), one entry each with its
	// outcome. Default false: mutations, plugin runs and denials only.
	AuditReads bool

	// ContentRemovalFailed, when set, is called with the content store's
	// error each time removing content that no document refers to any
	// more fails after the write that removed its last reference
	// committed (a document or basket deleted, a document's content
	// replaced; filesystem and S3 storage): the write stands, and docex
	// gc removes the content left. It is called on the calling goroutine,
	// before the method returns.
	ContentRemovalFailed func(error)
}

// AsWith is As with options. It returns a docex.ErrInvalid error for a bad
// Origin.
func (e *Engine) AsWith(uc docex.UserContext, o SessionOptions) (*Session, error) {
	if o.Origin != "" && !validOrigin(o.Origin) {
		return nil, docex.Errorf(docex.ErrInvalid, "session origin %q: want 1 to 32 bytes of a-z, 0-9 and '-', starting with a letter", o.Origin)
	}
	return &Session{e: e, uc: uc, opts: o}, nil
}

func validOrigin(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Session is a user's view of one tenant (or of the local store when
// multi-tenancy is disabled). It is cheap; create one per request.
type Session struct {
	e    *Engine
	uc   docex.UserContext
	opts SessionOptions
}

// now returns the current time in UTC at the precision every backend
// stores (microseconds), so values round-trip exactly.
func (e *Engine) now() time.Time { return e.cfg.Now().UTC().Truncate(time.Microsecond) }

// UserContext returns the session's user context.
func (s *Session) UserContext() docex.UserContext { return s.uc }

// checkUser validates the user context before any tenant is touched. It
// returns a docex.ErrDenied or docex.ErrInvalid error.
func (s *Session) checkUser() error {
	if s.e.closed.Load() {
		return docex.ErrClosed
	}
	uc := s.uc
	if uc.UserID == "" {
		return docex.ErrUserRequired
	}
	if err := tenancy.ValidateUserID(uc.UserID); err != nil {
		return err
	}
	if !s.e.cfg.MultiTenancy {
		if uc.TenantID != "" {
			return docex.Errorf(docex.ErrMultiTenancyOff, "tenant %q given, but multi-tenancy is disabled", uc.TenantID)
		}
		return nil
	}
	if uc.TenantID == "" {
		return docex.ErrTenantRequired
	}
	if uc.TenantID == s.e.cfg.BootstrapTenantID {
		return docex.ErrBootstrapTenant
	}
	if err := tenancy.ValidateTenantID(uc.TenantID); err != nil {
		return err
	}
	return nil
}

// open validates the session for action and opens the tenant's store. A
// denial is recorded in the audit log (the tenant's when the tenant is
// known and active, the system's otherwise).
func (s *Session) open(ctx context.Context, action tenancy.Action, op, target string) (driver.TenantStore, error) {
	return s.openDetail(ctx, action, op, target, nil)
}

// openDetail is open with detail in the entry of a denial.
func (s *Session) openDetail(ctx context.Context, action tenancy.Action, op, target string, detail map[string]any) (driver.TenantStore, error) {
	if err := s.checkUser(); err != nil {
		return nil, s.systemDenialDetail(ctx, op, target, err, detail)
	}
	st, err := s.e.be.OpenTenant(ctx, s.uc.TenantID)
	if err != nil {
		if errors.Is(err, docex.ErrTenantNotFound) {
			err = docex.Errorf(docex.ErrTenantUnknown, "unknown tenant %q", s.uc.TenantID)
		}
		return nil, s.systemDenialDetail(ctx, op, target, err, detail)
	}
	t := st.Tenant()
	if s.e.cfg.MultiTenancy {
		if t.ID != s.uc.TenantID || t.IsSystem {
			st.Close()
			err := fmt.Errorf("backend opened tenant %q (system %t) for %q: %w", t.ID, t.IsSystem, s.uc.TenantID, docex.ErrWrongTenant)
			s.systemDenialDetail(ctx, op, target, err, detail)
			return nil, err
		}
		if t.Status != docex.TenantActive {
			st.Close()
			err := docex.Errorf(docex.ErrTenantSuspended, "tenant %q is %s", t.ID, t.Status)
			return nil, s.systemDenialDetail(ctx, op, target, err, detail)
		}
	}
	if err := s.e.cfg.Policy.Authorize(ctx, s.uc, action); err != nil {
		if !errors.Is(err, docex.ErrDenied) {
			err = fmt.Errorf("%w: %w", docex.ErrForbidden, err)
		}
		err = withAuditErr(err, s.auditOutcome(ctx, st, op, target, err, detail))
		st.Close()
		return nil, err
	}
	return st, nil
}

func (s *Session) entry(op, target, outcome string, err error) docex.AuditEntry {
	if s.opts.Origin != "" {
		op = s.opts.Origin + "." + op
	}
	e := docex.AuditEntry{
		ID: newID(), Time: s.e.now(), TenantID: s.uc.TenantID, UserID: s.uc.UserID,
		Roles: s.uc.Roles, Operation: op, Target: target, Outcome: outcome,
	}
	if err != nil {
		e.Error = err.Error()
	}
	if e.Roles == nil {
		e.Roles = []string{}
	}
	return auditSafe(e)
}

// Bounds on user-supplied audit fields (bytes).
const (
	maxAuditLabel = 1024     // user, tenant, target, each role
	maxAuditText  = 64 << 10 // error
)

// auditSafe returns e with every text field valid UTF-8 without NUL bytes
// and bounded, so that an audit write never fails because of what a caller
// sent (PostgreSQL refuses invalid UTF-8 and NUL in text): a denial of a
// malformed request is recorded like any other. In the label fields (user,
// tenant, target, each role, operation, outcome) a bidirectional control
// (tenancy.IsBidiControl), which a refused label may hold, is stored as
// its escape written out, the six characters \u202e, as the CLI's text
// output shows it: stored raw, it would reorder what follows it in audit
// list --json and in an embedder's output. The error text and Detail's
// values are stored as given.
func auditSafe(e docex.AuditEntry) docex.AuditEntry {
	clean := func(s string, max int) string {
		if len(s) > max {
			s = s[:max] + "..."
		}
		return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	}
	label := func(s string) string {
		s = clean(s, maxAuditLabel)
		if strings.IndexFunc(s, tenancy.IsBidiControl) < 0 {
			return s
		}
		var b strings.Builder
		for _, r := range s {
			if tenancy.IsBidiControl(r) {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	for _, f := range []*string{&e.UserID, &e.TenantID, &e.Target, &e.Operation, &e.Outcome} {
		*f = label(*f)
	}
	e.Error = clean(e.Error, maxAuditText) // Detail is JSON-encoded, which makes any string valid
	roles := make([]string, len(e.Roles))
	for i, r := range e.Roles {
		roles[i] = label(r)
	}
	e.Roles = roles
	return e
}

// withAuditErr returns err when aerr, the error of writing err's audit
// entry, is nil; otherwise both, so that no audit write fails silently.
func withAuditErr(err, aerr error) error {
	switch {
	case aerr == nil:
		return err
	case err == nil:
		return fmt.Errorf("audit log: %w", aerr)
	}
	return fmt.Errorf("%w (and this could not be audited: %w)", err, aerr)
}

// systemDenial records in the system audit log a call refused before a
// tenant store was usable, with the outcome of err (outcomeOf), and returns
// err (with the audit write's error, if any).
func (s *Session) systemDenial(ctx context.Context, op, target string, err error) error {
	return s.systemDenialDetail(ctx, op, target, err, nil)
}

// systemDenialDetail is systemDenial with detail in the entry.
func (s *Session) systemDenialDetail(ctx context.Context, op, target string, err error, detail map[string]any) error {
	if errors.Is(err, docex.ErrClosed) {
		return err
	}
	aerr := auditedErr(ctx, err)
	e := s.entry(op, target, outcomeOf(aerr), aerr)
	e.Detail = detail
	actx, cancel := auditContext(ctx)
	defer cancel()
	return withAuditErr(err, s.e.be.AppendSystemAudit(actx, e))
}

// auditGrace bounds the audit write of an operation's outcome, which is
// made even when the operation's context ended (an interrupted operation
// is audited like any failure): a database that does not answer cannot
// hold an interrupted command for longer.
const auditGrace = 15 * time.Second

// auditContext returns the context of the audit write of an operation
// that ran under ctx: ctx's values without its cancellation or deadline,
// bounded by auditGrace. Call cancel when the write is done.
func auditContext(ctx context.Context) (actx context.Context, cancel context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), auditGrace)
}

// graceAfter returns a context with ctx's values that is cancelled grace
// after ctx is (not with it; never, while ctx is not), and its cancel,
// to call when the work is done. It is for a write whose outcome must be
// known although a stop cancels ctx (the start of an attempt, the record
// of its end): the write runs on past the stop, yet a database that does
// not answer cannot hold a stopping worker for ever.
func graceAfter(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	g, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(g, func() { t.Stop() })
	})
	return g, func() {
		stop()
		cancel()
	}
}

// auditedErr returns the error an audit entry records for an operation
// that ended with err under ctx: err, unless ctx ended (the operation was
// interrupted: Ctrl-C, a cancelled MCP call, a deadline) and err is no
// denial; then an error of code interrupted (outcome error) whose text is
// "interrupted: " and err's, with ctx's error when err does not hold it.
func auditedErr(ctx context.Context, err error) error {
	cause := ctx.Err()
	if err == nil || cause == nil || errors.Is(err, docex.ErrDenied) || errors.Is(err, docex.ErrInterrupted) {
		return err
	}
	return docex.Errorf(docex.ErrInterrupted, "interrupted: %v", interruptedErr(err, cause))
}

// outcomeOf is the audit outcome of an operation's error: ok, denied for
// a docex.ErrDenied error, error otherwise (an I/O failure is no denial).
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return docex.OutcomeOK
	case errors.Is(err, docex.ErrDenied):
		return docex.OutcomeDenied
	}
	return docex.OutcomeError
}

// write runs fn in a transaction that also records the audit entry of op;
// when fn fails, the failure is recorded in a transaction of its own.
func (s *Session) write(ctx context.Context, st driver.TenantStore, op, target string, fn func(tx driver.Tx) error) error {
	return s.writeAudit(ctx, st, op, target, true, fn)
}

// writeAudit is write; with auditOK false, fn records its own success
// entries (one per document of a batch, say).
func (s *Session) writeAudit(ctx context.Context, st driver.TenantStore, op, target string, auditOK bool, fn func(tx driver.Tx) error) error {
	return s.writeAuditDetail(ctx, st, op, target, nil, auditOK, fn)
}

// writeAuditDetail is writeAudit with detail in the entry of its success
// (auditOK) or of its failure.
func (s *Session) writeAuditDetail(ctx context.Context, st driver.TenantStore, op, target string, detail map[string]any, auditOK bool, fn func(tx driver.Tx) error) error {
	err := driver.WriteContent(ctx, st, func(tx driver.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if !auditOK {
			return nil
		}
		return tx.AppendAudit(ctx, s.entryDetail(op, target, detail))
	})
	if err != nil {
		err = withAuditErr(err, s.auditOutcome(ctx, st, op, target, err, detail))
	}
	return err
}

// interruptedErr returns err, an operation's error, with cause, the
// error of the context that interrupted it, in one line (errors.Join
// puts a newline between them, which a message must not hold); cause
// alone when err is nil, err alone when it is cause already.
func interruptedErr(err, cause error) error {
	switch {
	case err == nil:
		return cause
	case errors.Is(err, cause):
		return err
	}
	return fmt.Errorf("%w (%w)", err, cause)
}

// failed records err, an operation's failure before or outside its write
// transaction, as op's outcome in the tenant's audit log (in a
// transaction of its own, so the entry can never commit with any part of
// the operation) and returns err (with the audit write's error, if any).
// An interrupted operation is recorded too (auditedErr), as by write.
func (s *Session) failed(ctx context.Context, st driver.TenantStore, op, target string, err error) error {
	return s.failedDetail(ctx, st, op, target, err, nil)
}

// failedDetail is failed with detail in the entry.
func (s *Session) failedDetail(ctx context.Context, st driver.TenantStore, op, target string, err error, detail map[string]any) error {
	return withAuditErr(err, s.auditOutcome(ctx, st, op, target, err, detail))
}

// readDone audits a read call's outcome when the session audits reads and
// returns err (with the audit write's error, if any).
func (s *Session) readDone(ctx context.Context, st driver.TenantStore, op, target string, err error) error {
	if s.opts.AuditReads {
		return withAuditErr(err, s.auditOutcome(ctx, st, op, target, err, nil))
	}
	return err
}

// probeContent returns, recorded as op's outcome in the audit log, the
// error a removal from the content store would meet now
// (driver.ContentProber: S3 unreachable, credentials refused, bucket
// gone), so that a delete is refused before it changes anything rather
// than leaving content behind; nil for a store that cannot tell or lives
// in the database.
func (s *Session) probeContent(ctx context.Context, st driver.TenantStore, op, target string) error {
	err := s.e.probeContent(ctx)
	if err != nil {
		err = withAuditErr(err, s.auditOutcome(ctx, st, op, target, err, nil))
	}
	return err
}

// probeContent is Session.probeContent without the audit entry.
func (e *Engine) probeContent(ctx context.Context) error {
	p, ok := e.content.(driver.ContentProber)
	if !ok || e.content.InTransaction() {
		return nil
	}
	if err := p.Probe(ctx); err != nil {
		return fmt.Errorf("nothing was deleted: the content store cannot remove content now: %w", err)
	}
	return nil
}

// auditOutcome records one entry in the tenant's audit log, in a
// transaction of its own, with the outcome of err (outcomeOf); detail may
// be nil. An operation interrupted (ctx ended) is recorded all the same,
// as such (auditedErr), the write bounded by auditGrace. It returns the
// audit write's error.
func (s *Session) auditOutcome(ctx context.Context, st driver.TenantStore, op, target string, err error, detail map[string]any) error {
	err = auditedErr(ctx, err)
	e := s.entry(op, target, outcomeOf(err), err)
	e.Detail = detail
	ctx, cancel := auditContext(ctx)
	defer cancel()
	aerr := st.Write(ctx, func(tx driver.Tx) error { return tx.AppendAudit(ctx, e) })
	if errors.Is(aerr, docex.ErrTenantSuspended) || errors.Is(aerr, docex.ErrTenantUnknown) {
		// The tenant was suspended or deleted meanwhile: its log takes no
		// more writes, the system's records what happened.
		aerr = s.e.be.AppendSystemAudit(ctx, e)
	}
	return aerr
}
