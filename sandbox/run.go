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

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// guestOutput receives the guest's WASI stdout/stderr: it goes to the
// current invocation's capped log, and the tail of stderr is kept to explain
// traps (a Go guest prints "panic: ..." there before trapping).
type guestOutput struct {
	st   *callState
	tail []byte
}

const stderrTail = 2048

type outWriter struct {
	o     *guestOutput
	level string
}

func (o *guestOutput) stdout() io.Writer { return outWriter{o, "stdout"} }
func (o *guestOutput) stderr() io.Writer { return outWriter{o, "stderr"} }

func (w outWriter) Write(p []byte) (int, error) {
	o := w.o
	if w.level == "stderr" {
		o.tail = append(o.tail, p...)
		if len(o.tail) > stderrTail {
			o.tail = append(o.tail[:0], o.tail[len(o.tail)-stderrTail:]...)
		}
	}
	if o.st != nil {
		o.st.addLog(w.level, string(p))
	}
	return len(p), nil
}

// panicText extracts the guest's panic or fatal error line from stderr.
func (o *guestOutput) panicText() string {
	t := string(o.tail)
	for _, marker := range []string{"panic: ", "fatal error: "} {
		if i := strings.LastIndex(t, marker); i >= 0 {
			line, _, _ := strings.Cut(t[i:], "\n")
			return "; guest: " + strings.ToValidUTF8(line, "?")
		}
	}
	return ""
}

// Run executes inv.Plugin's docex_run on inv.Input for inv.TenantID, under
// the plugin's limits, on an instance from the (tenant, plugin) pool.
//
// On success it returns a Result with Status ok or skipped and a nil error.
// On failure it returns an error and, once the guest ran, a Result carrying
// only Status "error", Message, Logs and Report (never Metadata or Derived):
// the engine must persist nothing. Errors wrap ErrInvalidParams,
// ErrContentTypeNotAccepted, ErrPluginTimeout (and context.DeadlineExceeded),
// ErrPluginMemory, ErrPluginTrap, ErrPluginOutputTooLarge, ErrHostCallLimit,
// ErrCapabilityDenied, ErrPluginFailed, ErrHostFailure, ErrClosed, or the
// caller's ctx.Err(). The instance is discarded after any error.
func (sb *Sandbox) Run(ctx context.Context, inv Invocation) (*Result, error) {
	p := inv.Plugin
	if p == nil || p.sb != sb {
		return nil, fmt.Errorf("%w: invocation has no plugin of this sandbox", ErrInvalidParams)
	}
	if inv.TenantID == "" {
		return nil, fmt.Errorf("%w: empty TenantID", ErrInvalidParams)
	}
	if err := p.checkParams(inv.Params); err != nil {
		return nil, err
	}
	if !p.manifest.Accepts(inv.Input.ContentType) {
		return nil, fmt.Errorf("%w: plugin %q does not accept %q", ErrContentTypeNotAccepted, p.manifest.Name, inv.Input.ContentType)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pl, err := p.pool(inv.TenantID)
	if err != nil {
		return nil, err
	}
	if err := pl.acquireSlot(ctx); err != nil {
		return nil, err
	}
	defer pl.releaseSlot()

	in := pl.takeIdle()
	cold := in == nil
	if cold {
		if in, err = p.instantiate(ctx); err != nil {
			return nil, err
		}
	}
	input := inv.Input
	st := &callState{
		tenant: inv.TenantID,
		plugin: p,
		limits: p.limits,
		caps:   p.caps,
		host:   inv.Host,
		params: inv.Params,
		docs:   []docSlot{{doc: &input}},
		status: StatusOK,
	}
	in.out.st = st
	if err := sb.enter(); err != nil {
		in.close(ctx)
		return nil, err
	}
	// Close waits for this Run to finish with the instance (its memory is
	// read and the instance pooled or closed below), not just the call.
	defer sb.inflight.Done()
	rc, callErr, fired, dur := in.call(ctx, st, p.limits.Timeout, inv.entry, inv.args)
	in.out.st = nil

	res := &Result{Logs: st.logs, Report: ResourceReport{
		Duration:           dur,
		PeakMemoryBytes:    in.mem.size(),
		HostCalls:          st.hostCalls,
		BytesIn:            st.bytesIn,
		BytesOut:           st.bytesOut,
		LogBytes:           st.logBytes,
		LogsTruncated:      st.logTrunc,
		CapabilityDenials:  st.denials,
		ForeignRefsDropped: st.foreign,
		ColdStart:          cold,
	}}
	err = p.classify(ctx, st, in, callErr, fired)
	if err == nil && rc != 0 && st.status == StatusOK {
		st.status, st.message = StatusError, "docex_run returned "+strconv.Itoa(int(int32(rc)))
	}
	if err == nil && len(st.denials) > 0 {
		err = fmt.Errorf("%w: %s", ErrCapabilityDenied, strings.Join(st.denials, ", "))
	}
	if err == nil && st.status == StatusError {
		err = fmt.Errorf("%w: %s", ErrPluginFailed, st.message)
	}
	retire := err != nil || callErr != nil ||
		in.mem.size()*100 > int64(p.limits.MemoryPages)*PageSize*int64(p.sb.cfg.RetireAbovePercent)
	if retire {
		res.Report.InstanceRetired = true
		in.close(context.WithoutCancel(ctx))
	} else {
		pl.put(ctx, in)
	}
	if err != nil {
		res.Status, res.Message = StatusError, err.Error()
		return res, err
	}
	res.Status, res.Message = st.status, st.message
	res.Metadata, res.Derived = st.meta, st.derived
	return res, nil
}

// call runs the guest under a deadline; st is reachable from host functions
// through the context. fired reports that the guest was preempted.
func (in *instance) call(ctx context.Context, st *callState, timeout time.Duration, entry string, args []uint64) (rc uint32, err error, fired bool, dur time.Duration) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer context.AfterFunc(in.closing, cancel)() // Sandbox.Close stops the guest
	cctx = context.WithValue(cctx, stateKey{}, st)
	fn := in.run
	stack := in.stack[:max(len(args), 1)]
	if entry != "" { // tests only
		if fn = in.mod.ExportedFunction(entry); fn == nil {
			return 0, fmt.Errorf("no export %q", entry), false, 0
		}
		stack = make([]uint64, max(len(args), len(fn.Definition().ResultTypes()), 1))
	}
	copy(stack, args)
	disarm := in.preempt(cctx)
	start := time.Now()
	err = fn.CallWithStack(cctx, stack)
	dur = time.Since(start)
	fired = disarm()
	if err != nil {
		return 0, err, fired, dur
	}
	return api.DecodeU32(stack[0]), nil, fired, dur
}

// classify maps a guest call error to the package's sentinels.
func (p *Plugin) classify(ctx context.Context, st *callState, in *instance, err error, fired bool) error {
	if err == nil && st.err == nil {
		return nil
	}
	if st.err != nil {
		return st.err
	}
	if fired && in.stop != nil { // preempted at a loop head
		if p.sb.closing.Err() != nil {
			return ErrClosed
		}
		if ctx.Err() != nil {
			return fmt.Errorf("sandbox: run: %w", ctx.Err())
		}
		return fmt.Errorf("%w: plugin %q ran longer than %s: %w", ErrPluginTimeout, p.manifest.Name, p.limits.Timeout, context.DeadlineExceeded)
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		if p.sb.closing.Err() != nil && exit.ExitCode() >= sys.ExitCodeDeadlineExceeded {
			return ErrClosed
		}
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			if ctx.Err() != nil { // the caller's own deadline
				return fmt.Errorf("sandbox: run: %w", ctx.Err())
			}
			return fmt.Errorf("%w: plugin %q ran longer than %s: %w", ErrPluginTimeout, p.manifest.Name, p.limits.Timeout, context.DeadlineExceeded)
		case sys.ExitCodeContextCanceled:
			return fmt.Errorf("sandbox: run: %w", context.Canceled)
		default:
			return fmt.Errorf("%w: plugin %q called proc_exit(%d)%s", ErrPluginTrap, p.manifest.Name, exit.ExitCode(), in.out.panicText())
		}
	}
	if in.mem.denied {
		return fmt.Errorf("%w: plugin %q hit its limit of %d pages: %s%s", ErrPluginMemory, p.manifest.Name, p.limits.MemoryPages, firstLine(err), in.out.panicText())
	}
	return fmt.Errorf("%w: plugin %q: %s%s", ErrPluginTrap, p.manifest.Name, firstLine(err), in.out.panicText())
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
			return fmt.Errorf("%w: plugin %q has no parameter %q", ErrInvalidParams, p.manifest.Name, k)
		}
		v := params[k]
		var err error
		switch ps.Type {
		case "int":
			_, err = strconv.ParseInt(v, 10, 64)
		case "number":
			_, err = strconv.ParseFloat(v, 64)
		case "bool":
			_, err = strconv.ParseBool(v)
		}
		if err != nil || len(v) > 64<<10 {
			return fmt.Errorf("%w: parameter %q: %q is not a valid %s", ErrInvalidParams, k, v, ps.Type)
		}
	}
	for _, k := range sortedKeys(spec) {
		if _, ok := params[k]; spec[k].Required && !ok {
			return fmt.Errorf("%w: missing required parameter %q", ErrInvalidParams, k)
		}
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
