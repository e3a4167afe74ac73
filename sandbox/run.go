package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docex-dev/docex/internal/spell"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// guestOutput receives the guest's WASI stdout/stderr: it goes to the
// current invocation's capped log, and the tail of stderr is kept to explain
// traps (a Go guest prints "panic: ..." there before trapping).
type guestOutput struct {
	st   *callState
	in   *instance // whose deadline stops a long fd_write
	tail []byte
	// writes counts Write calls: one per iovec of an fd_write.
	writes uint64
}

// stderrTail is the stderr kept to explain traps (up to twice as much
// is held, so that trimming it is not a copy per write).
const stderrTail = 2048

// writeCheckEvery is how many Write calls (iovecs) pass between two
// checks of the call's deadline: an fd_write with millions of iovecs is
// one host call, and the guest's own stop checks do not run inside it.
const writeCheckEvery = 4096

type outWriter struct {
	o     *guestOutput
	level string
}

func (o *guestOutput) stdout() io.Writer { return outWriter{o, "stdout"} }
func (o *guestOutput) stderr() io.Writer { return outWriter{o, "stderr"} }

// Write is called by wazero's fd_write once per iovec. Past the call's
// deadline (or once the call is stopped: caller's ctx, Sandbox.Close) it
// unwinds the guest, which then fails as a stopped guest does
// (ErrPluginTimeout, ctx.Err(), ErrClosed).
func (w outWriter) Write(p []byte) (int, error) {
	o := w.o
	if o.writes++; o.writes%writeCheckEvery == 0 && o.in != nil && o.in.expired() {
		panic(abortSignal{})
	}
	if w.level == "stderr" && len(p) > 0 {
		o.tail = append(o.tail, p[max(len(p)-stderrTail, 0):]...)
		if len(o.tail) > 2*stderrTail {
			o.tail = append(o.tail[:0], o.tail[len(o.tail)-stderrTail:]...)
		}
	}
	if o.st != nil {
		o.st.addWrite(w.level, p)
	}
	return len(p), nil
}

// panicText extracts the guest's panic or fatal error line from stderr.
func (o *guestOutput) panicText() string {
	t := string(o.tail)
	for _, marker := range []string{"panic: ", "fatal error: "} {
		if i := strings.LastIndex(t, marker); i >= 0 {
			line, _, _ := strings.Cut(t[i:], "\n")
			return "; guest: " + escapeText(line)
		}
	}
	return ""
}

// Run executes the plugin's entry export (docex_run unless the manifest
// names another) on call.Input for call.TenantID, under the plugin's
// limits, on an instance from the (tenant, plugin) pool, in the state right
// after initialisation. It makes *Plugin a pluginapi.Runner.
//
// On success it returns a Result with Status ok or skipped and a nil error.
// On failure it returns an error and, once the guest ran, a Result carrying
// only Status "error", Message, Logs and Report (never Metadata or
// Derived): the caller must persist nothing. The guest ran also when a new
// instance's start function or _initialize failed: that Report has
// ColdStart, InstanceRetired, InitDuration, InitInstructions,
// InstantiateDuration and PeakMemoryBytes (the memory initialisation
// left), the rest zero. Errors wrap pluginapi's
// ErrInvalidParams, ErrContentTypeNotAccepted, ErrPluginTimeout (and
// context.DeadlineExceeded), ErrInstructionLimit, ErrPluginMemory,
// ErrPluginTrap, ErrPluginOutputTooLarge, ErrHostCallLimit,
// ErrCapabilityDenied, ErrPluginStatusError, ErrHostFailure, ErrClosed, or
// the caller's ctx.Err(). The instance is discarded after any error.
func (p *Plugin) Run(ctx context.Context, call pluginapi.Call) (*pluginapi.Result, error) {
	return p.run(ctx, call, callOpts{})
}

// Validates reports whether the plugin's module exports the validate
// function of its entry (pluginapi.ValidateExport): docex_validate for
// docex_run, docex_validate_NAME for docex_run_NAME.
func (p *Plugin) Validates() bool { return p != nil && p.validate != "" }

// Validate checks params against the manifest's [parameters] and, when
// the module exports the plugin's validate function (Validates), calls it
// for tenantID on an instance of the (tenant, plugin) pool, in the state
// right after initialisation, under the plugin's limits (instructions,
// timeout, memory, host calls, log bytes), as a Run. The guest may read
// its parameters (param_get) and log (without the log capability: the
// text explains a refusal); any other docex host function traps. It makes
// *Plugin a pluginapi.Validator.
//
// It returns nil when the parameters are accepted (or the module has no
// validate function), a *pluginapi.Refusal (wrapping ErrInvalidParams)
// when the guest returned non-zero, an error wrapping ErrInvalidParams
// when the manifest refused them, and otherwise the errors of Run
// (ErrPluginTrap, ErrInstructionLimit, ErrPluginTimeout...), their
// messages naming the validate export.
func (p *Plugin) Validate(ctx context.Context, tenantID string, params map[string]string) error {
	_, err := p.ValidateReport(ctx, tenantID, params)
	return err
}

// ValidateReport is Validate that also returns, once the validate
// function ran (its instance's start function or _initialize included),
// a Result with its Status, Message, Logs and Report, accepted or not;
// nil when the guest did not run (no validate function, parameters the
// manifest refused, an instance that could not be made). It makes *Plugin
// a pluginapi.ValidateReporter.
func (p *Plugin) ValidateReport(ctx context.Context, tenantID string, params map[string]string) (*pluginapi.Result, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: no plugin", pluginapi.ErrInvalidParams)
	}
	if p.validate == "" {
		if tenantID == "" {
			return nil, fmt.Errorf("%w: empty TenantID", pluginapi.ErrInvalidParams)
		}
		return nil, p.checkParams(params)
	}
	return p.run(ctx, pluginapi.Call{TenantID: tenantID, Params: params}, callOpts{validate: true})
}

// callOpts varies what run calls: the validate export, or (tests only)
// another export with arguments.
type callOpts struct {
	validate bool
	entry    string
	args     []uint64
}

// run is Run, or Validate with o.validate.
func (p *Plugin) run(ctx context.Context, inv pluginapi.Call, o callOpts) (*pluginapi.Result, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: no plugin", pluginapi.ErrInvalidParams)
	}
	sb := p.sb
	if inv.TenantID == "" {
		return nil, fmt.Errorf("%w: empty TenantID", pluginapi.ErrInvalidParams)
	}
	if err := p.checkParams(inv.Params); err != nil {
		return nil, err
	}
	if !o.validate && !p.manifest.Accepts(inv.Input.ContentType) {
		return nil, fmt.Errorf("%w: plugin %q accepts %s; the document is %q", pluginapi.ErrContentTypeNotAccepted, p.manifest.Name,
			strings.Join(p.manifest.AcceptedContentTypes, ", "), inv.Input.ContentType)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pl, err := p.begin(inv.TenantID)
	if err != nil {
		return nil, err
	}
	defer p.end(ctx) // after the instance is pooled or closed below
	if err := pl.acquireSlot(ctx); err != nil {
		return nil, err
	}
	defer pl.releaseSlot()

	in := pl.takeIdle(ctx)
	cold := in == nil
	var made time.Duration // making the new instance, its initialisation included
	if cold {
		start := time.Now()
		in, err = p.instantiate(ctx)
		made = time.Since(start)
		if err != nil {
			var ie *initError
			if !errors.As(err, &ie) {
				return nil, err // the guest did not run
			}
			// The start function or _initialize ran and failed: the run
			// failed, with what they used.
			return &pluginapi.Result{Status: pluginapi.StatusError, Message: ie.err.Error(), Report: pluginapi.ResourceReport{
				PeakMemoryBytes: ie.mem, CapabilityDenials: []string{}, ColdStart: true,
				InitDuration: ie.dur, InitInstructions: ie.units, InstanceRetired: true,
				InstantiateDuration: max(made-ie.dur, 0),
			}}, ie.err
		}
	}
	// Close waits for this Run to finish with the instance (its memory is
	// read, restored and the instance pooled or closed below).
	if err := sb.enter(in); err != nil {
		in.close(ctx)
		return nil, err
	}
	defer sb.exit(in)
	input := inv.Input
	st := &callState{
		tenant:   inv.TenantID,
		plugin:   p,
		limits:   p.limits,
		caps:     p.caps,
		host:     inv.Host,
		params:   inv.Params,
		docs:     []docSlot{{doc: &input}},
		status:   pluginapi.StatusOK,
		deadline: time.Now().Add(p.limits.Timeout),
		in:       in,

		validating: o.validate,
	}
	st.hold(max(input.Resident, 0))              // reported, and leaves less room for lookups; never refused
	in.out.st, in.out.tail = st, in.out.tail[:0] // no stderr of an earlier call explains this one
	fn, stack := in.run, in.stack[:1]
	if o.validate {
		fn = in.mod.ExportedFunction(p.validate) // checked at Load
	}
	if o.entry != "" { // tests only
		if fn = in.mod.ExportedFunction(o.entry); fn == nil {
			in.close(ctx)
			return nil, fmt.Errorf("%w: no export %q", pluginapi.ErrInvalidParams, o.entry)
		}
		stack = make([]uint64, max(len(o.args), len(fn.Definition().ResultTypes()), 1))
		copy(stack, o.args)
	}
	oc := in.invoke(context.WithValue(ctx, stateKey{}, st), sb, fn, stack, p.limits.Timeout, p.limits.MaxInstructions)
	in.out.st = nil
	st.endWrite()

	res := &pluginapi.Result{Logs: st.logs, Report: pluginapi.ResourceReport{
		Duration:           oc.dur,
		Instructions:       oc.used,
		PeakMemoryBytes:    in.mem.size(),
		PeakHostBytes:      st.peakHost,
		HostCalls:          st.hostCalls,
		BytesIn:            st.bytesIn,
		BytesOut:           st.bytesOut,
		LogBytes:           st.logBytes,
		LogsTruncated:      st.logTrunc,
		CapabilityDenials:  st.denials,
		ForeignRefsDropped: st.foreign,
		ColdStart:          cold,
	}}
	if cold {
		res.Report.InitDuration, res.Report.InitInstructions = in.initDur, in.initUnits
		res.Report.InstantiateDuration = max(made-in.initDur, 0)
	}
	if res.Report.CapabilityDenials == nil {
		res.Report.CapabilityDenials = []string{}
	}
	err = p.classify(ctx, st, in, oc)
	rc := uint32(0)
	if oc.err == nil {
		rc = api.DecodeU32(stack[0])
	}
	if o.validate {
		err = p.validateOutcome(err, rc, st)
	}
	if err == nil && rc != 0 && st.status == pluginapi.StatusOK {
		st.status, st.message = pluginapi.StatusError, "docex_run returned "+strconv.Itoa(int(int32(rc)))
	}
	if err == nil && len(st.denials) > 0 {
		err = fmt.Errorf("%w: %s", pluginapi.ErrCapabilityDenied, strings.Join(st.denials, ", "))
	}
	if err == nil && st.status == pluginapi.StatusError {
		err = fmt.Errorf("%w: %s", pluginapi.ErrPluginStatusError, escapeText(st.message))
	}
	// The instance goes back to the pool only in its initial state: no
	// byte of this invocation survives into the next one.
	p.mu.Lock()
	snap := p.snap
	p.mu.Unlock()
	retire := err != nil || oc.err != nil || snap == nil || in.fdsChanged ||
		in.mem.size()*100 > int64(p.limits.MemoryPages)*pageSize*int64(p.sb.cfg.RetireAbovePercent)
	if !retire {
		var start time.Time
		if sb.onReset != nil {
			start = time.Now()
		}
		retire = !in.restore(sb.pm, snap)
		if sb.onReset != nil && !retire {
			sb.onReset(time.Since(start), in.dirtyPages)
		}
	}
	if retire {
		res.Report.InstanceRetired = true
		in.close(context.WithoutCancel(ctx))
	} else {
		pl.put(ctx, in)
	}
	if err != nil {
		res.Status, res.Message = pluginapi.StatusError, err.Error()
		return res, err
	}
	res.Status, res.Message = st.status, st.message
	res.Metadata, res.Derived = st.meta, st.derived
	return res, nil
}

// validateOutcome is the error of a call to the validate export that
// returned rc (err: the call's classified error).
func (p *Plugin) validateOutcome(err error, rc uint32, st *callState) error {
	if err != nil {
		return fmt.Errorf("%w (in %s)", err, p.validate)
	}
	if rc == 0 {
		return nil
	}
	var b strings.Builder
	for _, l := range st.logs {
		t := strings.TrimSpace(escapeText(strings.TrimSpace(l.Text)))
		if t == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(t)
	}
	msg := b.String()
	if len(msg) > maxMessageLen {
		msg = strings.ToValidUTF8(msg[:maxMessageLen], "") + "..."
	}
	return &pluginapi.Refusal{Plugin: p.manifest.Name, Export: p.validate, Code: int32(rc), Message: msg}
}

// classify maps the outcome of a guest call to the package's sentinels.
func (p *Plugin) classify(ctx context.Context, st *callState, in *instance, o outcome) error {
	if o.err == nil && st.err == nil {
		return nil
	}
	if st.err != nil {
		return st.err
	}
	if o.fired {
		if p.sb.isClosed() {
			return pluginapi.ErrClosed
		}
		if ctx.Err() != nil {
			return fmt.Errorf("sandbox: run: %w", ctx.Err())
		}
		return fmt.Errorf("%w: plugin %q ran longer than %s: %w", pluginapi.ErrPluginTimeout, p.manifest.Name, p.limits.Timeout, context.DeadlineExceeded)
	}
	if o.spent {
		return fmt.Errorf("%w: plugin %q used more than %d instruction units", pluginapi.ErrInstructionLimit, p.manifest.Name, p.limits.MaxInstructions)
	}
	var exit *sys.ExitError
	if errors.As(o.err, &exit) {
		return fmt.Errorf("%w: plugin %q called proc_exit(%d)%s", pluginapi.ErrPluginTrap, p.manifest.Name, exit.ExitCode(), in.out.panicText())
	}
	if in.mem.denied {
		return fmt.Errorf("%w: plugin %q hit its limit of %d pages: %s%s", pluginapi.ErrPluginMemory, p.manifest.Name, p.limits.MemoryPages, firstLine(o.err), in.out.panicText())
	}
	return fmt.Errorf("%w: plugin %q: %s%s", pluginapi.ErrPluginTrap, p.manifest.Name, firstLine(o.err), in.out.panicText())
}

// escapeText makes guest-written text safe to show in an error message or
// a terminal: invalid UTF-8 becomes U+FFFD, control characters (C0, DEL,
// C1, U+2028, U+2029) are written as Go escapes (\n, \x1b, \u2028).
func escapeText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// checkParams validates params against the manifest's [parameters].
func (p *Plugin) checkParams(params map[string]string) error {
	spec := p.manifest.Parameters
	for _, k := range sortedKeys(params) {
		ps, ok := spec[k]
		if !ok {
			return fmt.Errorf("%w: plugin %q has no parameter %q%s", pluginapi.ErrInvalidParams, p.manifest.Name, k, spell.SuggestOrList(k, sortedKeys(spec), "parameters"))
		}
		if err := ps.Check(params[k]); err != nil {
			return fmt.Errorf("%w: parameter %q: %w", pluginapi.ErrInvalidParams, k, err)
		}
	}
	for _, k := range sortedKeys(spec) {
		if _, ok := params[k]; spec[k].Required && !ok {
			return fmt.Errorf("%w: missing required parameter %q", pluginapi.ErrInvalidParams, k)
		}
	}
	if k, err := p.manifest.CheckRelations(params); err != nil {
		return fmt.Errorf("%w: parameter %q: %w", pluginapi.ErrInvalidParams, k, err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range maps.Keys(m) {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
