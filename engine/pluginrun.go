package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/docex-dev/docex/tenancy"
)

// RunResult is the outcome of a plugin run that completed.
type RunResult struct {
	Plugin   string           `json:"plugin"`
	Document docex.Document   `json:"document"` // the input, with the metadata the plugin set
	Derived  []docex.Document `json:"derived"`
	Status   string           `json:"status"`
	Message  string           `json:"message"`
	Logs     []LogLine        `json:"logs"`
	Report   RunReport        `json:"report"`
	// MetadataSet is the metadata the plugin set on the input (empty:
	// none), which Document holds with the rest of its metadata. It is
	// not in the JSON result (docs/json.md, RunResult): docex run's text
	// prints it.
	MetadataSet map[string]docex.Value `json:"-"`
}

// LogLine is one line a plugin logged.
type LogLine struct {
	Level string `json:"level"`
	Text  string `json:"text"`
}

// RunReport is what one plugin run consumed. It is also the "report" of
// the run's audit entry detail.
type RunReport struct {
	DurationMS      float64 `json:"duration_ms"`       // wall time of the call, in milliseconds
	Instructions    int64   `json:"instructions"`      // instruction units used (an upper bound on wasm instructions executed)
	PeakMemoryBytes int64   `json:"peak_memory_bytes"` // the guest's linear memory at the end of the call
	PeakHostBytes   int64   `json:"peak_host_bytes"`   // most host memory held at once for the guest
	HostCalls       int64   `json:"host_calls"`
	BytesIn         int64   `json:"bytes_in"`  // copied into the guest: content, metadata, params
	BytesOut        int64   `json:"bytes_out"` // output charged against the output limit
	LogBytes        int64   `json:"log_bytes"`
	LogsTruncated   bool    `json:"logs_truncated"`
	// CapabilityDenials lists the capabilities the plugin used without
	// being granted them (never nil).
	CapabilityDenials  []string `json:"capability_denials"`
	ForeignRefsDropped int      `json:"foreign_refs_dropped"` // lookup results of another tenant, dropped
	ColdStart          bool     `json:"cold_start"`           // a new instance was created for the call
	// InitDurationMS and InitInstructions: the wall time and instruction
	// units of the module's start function and _initialize, when they ran
	// for this call (0 otherwise; not in DurationMS or Instructions).
	InitDurationMS   float64 `json:"init_duration_ms"`
	InitInstructions int64   `json:"init_instructions"`
	// InstantiateDurationMS: the wall time of making the call's new
	// instance besides its start function and _initialize (0 on a warm
	// instance; not in DurationMS).
	InstantiateDurationMS float64 `json:"instantiate_duration_ms"`
	InstanceRetired       bool    `json:"instance_retired"` // the instance was discarded after the call
}

func runReport(r pluginapi.ResourceReport) RunReport {
	return RunReport{
		DurationMS: docex.Milliseconds(r.Duration), Instructions: r.Instructions,
		PeakMemoryBytes: r.PeakMemoryBytes, PeakHostBytes: r.PeakHostBytes, HostCalls: r.HostCalls,
		BytesIn: r.BytesIn, BytesOut: r.BytesOut, LogBytes: r.LogBytes, LogsTruncated: r.LogsTruncated,
		CapabilityDenials: append([]string{}, r.CapabilityDenials...), ForeignRefsDropped: r.ForeignRefsDropped,
		ColdStart: r.ColdStart, InstanceRetired: r.InstanceRetired,
		InitDurationMS: docex.Milliseconds(r.InitDuration), InitInstructions: r.InitInstructions,
		InstantiateDurationMS: docex.Milliseconds(r.InstantiateDuration),
	}
}

func logLines(ls []pluginapi.LogLine) []LogLine {
	out := make([]LogLine, len(ls))
	for i, l := range ls {
		out[i] = LogLine{Level: l.Level, Text: l.Text}
	}
	return out
}

// loadedPlugin is a compiled plugin and its parsed manifest, cached by the
// record it was loaded from (module checksum and manifest bytes), so that
// a run reads neither the module nor parses the manifest again.
type loadedPlugin struct {
	p    pluginapi.Runner
	m    *pluginapi.Manifest
	used uint64 // Engine.clock at the last use: the least recent is evicted
}

// maxLoadedPlugins bounds the compiled plugins an engine keeps (below the
// sandbox's default MaxCompiled, 256): replaced versions age out.
const maxLoadedPlugins = 128

func pluginKey(rec driver.PluginRecord) string {
	return rec.ModuleSHA256 + "\x00" + string(rec.Manifest)
}

// loadPlugin compiles rec (m parsed from rec.Manifest, module its bytes)
// once and caches it. Errors are mapped by mapPluginErr.
func (e *Engine) loadPlugin(ctx context.Context, rec driver.PluginRecord, m *pluginapi.Manifest, module []byte) (*loadedPlugin, error) {
	key := pluginKey(rec)
	if lp := e.cachedPlugin(key); lp != nil {
		return lp, nil
	}
	p, err := e.cfg.Sandbox.LoadRunner(ctx, m, module)
	// A sandbox holding too many compiled modules (their number or their
	// machine code: sandbox.Config.MaxCompiled, MaxCompiledCode) makes
	// room by closing the least recently used plugin this engine keeps.
	for errors.Is(err, pluginapi.ErrTooManyModules) && e.evictOldestPlugin(ctx) {
		p, err = e.cfg.Sandbox.LoadRunner(ctx, m, module)
	}
	if err != nil {
		return nil, mapPluginErr(err)
	}
	e.mu.Lock()
	if old, ok := e.plugins[key]; ok {
		e.mu.Unlock()
		p.Close(ctx)
		return old, nil
	}
	e.clock++
	lp := &loadedPlugin{p: p, m: m, used: e.clock}
	e.plugins[key] = lp
	over := len(e.plugins) > maxLoadedPlugins
	e.mu.Unlock()
	if over {
		e.evictOldestPlugin(ctx) // not lp: it is the most recently used
	}
	return lp, nil
}

// evictOldestPlugin closes the least recently used plugin the engine
// keeps (its running invocations finish); it returns false when it keeps
// none.
func (e *Engine) evictOldestPlugin(ctx context.Context) bool {
	e.mu.Lock()
	oldest := ""
	for k, v := range e.plugins {
		if oldest == "" || v.used < e.plugins[oldest].used {
			oldest = k
		}
	}
	evict := e.plugins[oldest]
	delete(e.plugins, oldest)
	e.mu.Unlock()
	if evict == nil {
		return false
	}
	evict.p.Close(ctx)
	return true
}

func (e *Engine) cachedPlugin(key string) *loadedPlugin {
	e.mu.Lock()
	defer e.mu.Unlock()
	lp := e.plugins[key]
	if lp != nil {
		e.clock++
		lp.used = e.clock
	}
	return lp
}

// runnablePlugin returns the loaded plugin of rec, reading its module from
// the store it came from only when it is not cached.
func (s *Session) runnablePlugin(ctx context.Context, st driver.TenantStore, rec driver.PluginRecord, system bool) (*loadedPlugin, error) {
	if lp := s.e.cachedPlugin(pluginKey(rec)); lp != nil {
		return lp, nil
	}
	store := st.Plugins()
	if system {
		store = s.e.be.SystemPlugins()
	}
	stored, module, err := store.Plugin(ctx, rec.Name)
	if err != nil {
		return nil, err
	}
	if stored.ModuleSHA256 != rec.ModuleSHA256 || !bytes.Equal(stored.Manifest, rec.Manifest) {
		return nil, docex.Errorf(docex.ErrConflict, "plugin %q was replaced during the run; run it again", rec.Name)
	}
	m, err := pluginapi.ParseStoredManifest(rec.Manifest)
	if err != nil {
		return nil, mapPluginErr(err)
	}
	return s.e.loadPlugin(ctx, rec, m, module)
}

// releaseTenantPlugins discards the idle plugin instances kept for a
// tenant incarnation (it was deleted or suspended): no state of it
// survives in memory.
func (e *Engine) releaseTenantPlugins(ctx context.Context, t docex.Tenant) {
	e.mu.Lock()
	loaded := make([]*loadedPlugin, 0, len(e.plugins))
	for _, lp := range e.plugins {
		loaded = append(loaded, lp)
	}
	e.mu.Unlock()
	key := e.poolKey(t)
	for _, lp := range loaded {
		_ = lp.p.ReleaseTenant(ctx, key)
	}
}

// poolKey names a tenant incarnation to the sandbox: its instances are
// pooled per key, so a tenant re-created with the same id never meets the
// old one's instances.
func (e *Engine) poolKey(t docex.Tenant) string {
	if !e.cfg.MultiTenancy {
		return "(local)"
	}
	return t.ID + "/" + t.Incarnation
}

// RunPlugin runs a plugin on one document as the session's user
// (plugin.run action). The plugin sees the document, its metadata and the
// params; it may look up other documents of the same basket of the same
// tenant if granted documents.lookup. Only when it succeeds are its
// metadata written to the document and its derived documents added to the
// document's basket (with metadata derived_from = the input's id), in one
// transaction together with the run's audit entry (which carries the
// resource report); a failed run writes nothing but its audit entry.
//
// Errors: docex.ErrNotFound (no such plugin or document), docex.ErrInvalid
// (the plugin does not accept the document's content type; the message
// names the types it accepts), docex.ErrPluginInvalid (params refused by
// the manifest or, before the run, by the plugin's docex_validate),
// docex.ErrPluginDenied (capability violation), docex.ErrHostCapacity (no
// room for the plugin's compiled code or memory), docex.ErrPluginFailed
// wrapping the sandbox's typed error (pluginapi.ErrPluginTimeout, ...) or
// saying why the engine refused the plugin's output; docex.ErrConflict
// (the document was given new content during the run) or
// docex.ErrNotFound (it was deleted during the run), writing nothing but
// the audit entry. An error of a run that failed once the plugin ran is a
// *RunFailure with the run's report.
func (s *Session) RunPlugin(ctx context.Context, name, docID string, params map[string]string) (RunResult, error) {
	if s.e.cfg.Sandbox == nil {
		return RunResult{}, docex.ErrNoSandbox
	}
	st, err := s.open(ctx, tenancy.ActionRunPlugin, "plugin.run", name)
	if err != nil {
		return RunResult{}, err
	}
	defer st.Close()
	if err := checkID("document", docID); err != nil {
		return RunResult{}, s.failed(ctx, st, "plugin.run", name, err)
	}
	out, err := s.runStep(ctx, st, name, docID, params)
	if err != nil {
		return RunResult{}, ranFailure(withAuditErr(err, s.auditOutcome(ctx, st, "plugin.run", name, err, runDetail(docID, out))), out)
	}
	ss, err := s.stageStep(ctx, st, out, false)
	if err != nil {
		return RunResult{}, ranFailure(withAuditErr(err, s.auditOutcome(ctx, st, "plugin.run", name, err, runDetail(docID, out))), out)
	}
	defer ss.discard()
	var res RunResult
	err = driver.WriteContent(ctx, st, func(tx driver.Tx) error {
		// The input, locked against deletion and new content until the
		// commit, must hold the content the plugin ran on: what it made
		// is not written onto other content, nor derived from a document
		// that is gone.
		sums, err := tx.LockDocuments(ctx, []string{docID}, false)
		if err != nil {
			return err
		}
		if sum, ok := sums[docID]; !ok {
			return docex.Errorf(docex.ErrNotFound, "document %s was deleted while the plugin ran; nothing was written", docID)
		} else if sum != out.Input.Checksum {
			return docex.Errorf(docex.ErrConflict, "document %s's content changed while the plugin ran; nothing was written: run it again", docID)
		}
		var added []Added
		if res, added, err = ss.persist(ctx, tx, false, nil); err != nil {
			return err
		}
		// A run's derived documents have their lineage edge like a
		// pipeline step's (no job, pipeline or step); an output that is
		// the input itself (the same content) is no derivation.
		params, _ := json.Marshal(nonNilParams(params)) // maps marshal with sorted keys
		now := s.e.now()
		linked := make(map[string]bool, len(added))
		for _, a := range added {
			if a.Document.ID == docID || linked[a.Document.ID] {
				continue
			}
			linked[a.Document.ID] = true
			if err := tx.InsertLineage(ctx, driver.LineageEdge{SourceID: docID, DerivedID: a.Document.ID, Plugin: out.Plugin,
				ModuleSHA256: out.moduleSHA256, Params: string(params), CreatedAt: edgeAt(a, now)}); err != nil {
				return err
			}
		}
		e := s.entry("plugin.run", name, docex.OutcomeOK, nil)
		e.Detail = runDetail(docID, out)
		return tx.AppendAudit(ctx, e)
	})
	if err != nil {
		return RunResult{}, ranFailure(withAuditErr(err, s.auditOutcome(ctx, st, "plugin.run", name, err, runDetail(docID, out))), out)
	}
	return res, nil
}

// RunFailure is the error of a run (Session.RunPlugin) that failed once
// the plugin ran: its docex_validate (refusing the parameters or failing),
// its start function or _initialize, its entry, or the engine refusing or
// failing to write what it made. It says and matches what the error it
// wraps does (errors.Is, docex.Code); errors.As gives what the run used,
// the report of its audit entry (docs/json.md, RunReport). A run refused
// before the plugin ran (no such plugin or document, a content type it
// does not accept, parameters its manifest refused) has none.
type RunFailure struct {
	Err    error
	Report RunReport
}

func (e *RunFailure) Error() string { return e.Err.Error() }
func (e *RunFailure) Unwrap() error { return e.Err }

// ranFailure is err with out's report (a *RunFailure) when the plugin
// ran, else err.
func ranFailure(err error, out *StepOutput) error {
	if err == nil || out == nil || !out.ran {
		return err
	}
	return &RunFailure{Err: err, Report: out.Report}
}

// runDetail is a run's audit detail: the document, whether the guest ran,
// and its resource report (zero when it did not run).
func runDetail(docID string, out *StepOutput) map[string]any {
	d := map[string]any{"document_id": docID, "ran": false, "report": runReport(pluginapi.ResourceReport{})}
	if out != nil && out.ran {
		d["ran"], d["report"] = true, out.Report
	}
	return d
}

// StepOutput is what one plugin run produced, validated but not persisted:
// pipelines persist it with their own rows in one transaction
// (Session.stageStep, then stagedStep.persist inside the transaction).
type StepOutput struct {
	Plugin   string
	Input    docex.Document
	Metadata map[string]docex.Value // to set on Input (validated)
	Derived  []NewDocument          // to add to Input's basket (validated)
	Status   string
	Message  string
	Logs     []LogLine
	Report   RunReport

	ran          bool              // the guest ran: Report is meaningful
	moduleSHA256 string            // the plugin module that ran
	raw          [][]byte          // Derived's content, in order
	res          *pluginapi.Result // the guest's result (pipeline runs share it: see shareRun)
}

func nonNilParams(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// runStep runs plugin name (the tenant's own, else the system-wide one) on
// document docID through st, which must be the session's open tenant
// store, and returns its validated output without writing anything. On
// failure the output, when not nil, still carries the guest's Report and
// Logs. Errors as Session.RunPlugin.
func (s *Session) runStep(ctx context.Context, st driver.TenantStore, name, docID string, params map[string]string) (*StepOutput, error) {
	if s.e.cfg.Sandbox == nil {
		return nil, docex.ErrNoSandbox
	}
	rec, system, err := s.resolvePlugin(ctx, st, name)
	if err != nil {
		return nil, err
	}
	lp, err := s.runnablePlugin(ctx, st, rec, system)
	if err != nil {
		return nil, err
	}
	doc, err := st.Document(ctx, docID)
	if err != nil {
		return nil, err
	}
	// A plugin that checks its parameters (docex_validate) refuses bad
	// ones as such (invalid parameters), before its run would fail on
	// them; pipeline jobs skip this: pipeline create checked. A refusal
	// or failure of the validate export is a run (ran, with what it used).
	vres, err := s.validateParams(ctx, st, lp, params)
	if err != nil {
		out, err := stepOutput(name, doc, vres, err)
		out.moduleSHA256 = rec.ModuleSHA256
		return out, err
	}
	out, err := s.runLoaded(ctx, st, name, lp, doc, nil, params)
	if out != nil {
		out.moduleSHA256 = rec.ModuleSHA256
		if vres != nil && out.ran {
			addValidateInit(&out.Report, vres.Report)
		}
	}
	return out, err
}

// addValidateInit adds to r, a run's report, the instance creation of the
// docex_validate call made just before the run (v, its report): a new
// instance made for that call sets r.ColdStart, and its initialisation
// and instantiation figures are added to r's (docs/json.md, RunReport).
// The validate call's own work is not added.
func addValidateInit(r *RunReport, v pluginapi.ResourceReport) {
	if !v.ColdStart {
		return
	}
	r.ColdStart = true
	r.InitDurationMS += docex.Milliseconds(v.InitDuration)
	r.InitInstructions += v.InitInstructions
	r.InstantiateDurationMS += docex.Milliseconds(v.InstantiateDuration)
}

// runLoaded is runStep with the plugin resolved and loaded and the input
// document read (pipelines resolve a step's plugin once per job and read
// each input once). With data not nil, data is the input's content, held
// in memory by the caller (a pipeline's derived document, passed on to the
// next step): it is not read from storage, and counts as resident host
// memory.
func (s *Session) runLoaded(ctx context.Context, st driver.TenantStore, name string, lp *loadedPlugin, doc docex.Document, data []byte, params map[string]string) (*StepOutput, error) {
	res, called, err := s.callPlugin(ctx, st, lp, doc, data, params)
	if !called {
		return nil, err
	}
	return stepOutput(name, doc, res, err)
}

// callPlugin runs the loaded plugin on doc (data, when not nil, is doc's
// content held in memory) and returns the guest's result and error; it is
// runLoaded without the validation of the output. called is false when it
// failed before the plugin was called (no sandbox, unreadable content).
func (s *Session) callPlugin(ctx context.Context, st driver.TenantStore, lp *loadedPlugin, doc docex.Document, data []byte, params map[string]string) (res *pluginapi.Result, called bool, err error) {
	in, err := s.openInput(ctx, st, doc, data)
	if err != nil {
		return nil, false, err
	}
	defer in.release()
	res, err = s.runInput(ctx, st, lp, doc, in, params)
	return res, true, err
}

// pluginInput is the content of a run's input document, opened for the
// run: release when the run is done.
type pluginInput struct {
	content  io.ReaderAt
	resident int64 // bytes the engine holds in memory for it
	release  func()
}

// openInput opens doc's content for a run (data, when not nil, is its
// content held in memory), before the run, so that missing or damaged
// content fails the run as such; bytes the engine had to load count as
// the run's resident host memory. It returns docex.ErrNoSandbox without
// a sandbox, and the content store's errors.
func (s *Session) openInput(ctx context.Context, st driver.TenantStore, doc docex.Document, data []byte) (pluginInput, error) {
	if s.e.cfg.Sandbox == nil {
		return pluginInput{}, docex.ErrNoSandbox
	}
	if data != nil {
		return pluginInput{content: bytes.NewReader(data), resident: int64(len(data)), release: func() {}}, nil
	}
	content, resident, release, err := s.contentReaderAt(ctx, st, doc)
	if err != nil {
		return pluginInput{}, err
	}
	return pluginInput{content: content, resident: resident, release: release}, nil
}

// runInput runs the loaded plugin on doc, whose content in is, and
// returns the guest's result and error.
func (s *Session) runInput(ctx context.Context, st driver.TenantStore, lp *loadedPlugin, doc docex.Document, in pluginInput, params map[string]string) (*pluginapi.Result, error) {
	key := s.e.poolKey(st.Tenant())
	host := &pluginHost{s: s, st: st, basketID: doc.BasketID, key: key}
	defer host.close()
	return lp.p.Run(ctx, pluginapi.Call{
		TenantID: key, UserID: s.uc.UserID, Params: params, Host: host,
		Input: pluginapi.Document{Name: doc.Name, ContentType: doc.ContentType, Size: doc.Size, Metadata: metaAny(doc.Metadata),
			Content: in.content, Resident: in.resident},
	})
}

// stepOutput validates plugin name's result res of a run on doc (err is
// the run's error) into a StepOutput: the metadata to set on doc and the
// documents to derive from it. It reads res without changing it, so one
// result can make the outputs of several inputs with the same content.
func stepOutput(name string, doc docex.Document, res *pluginapi.Result, err error) (*StepOutput, error) {
	out := &StepOutput{Plugin: name, Input: doc, Logs: []LogLine{}, Report: runReport(pluginapi.ResourceReport{})}
	if res != nil {
		out.ran, out.Report, out.Status, out.Message = true, runReport(res.Report), string(res.Status), res.Message
		out.Logs = logLines(res.Logs)
	}
	if err != nil {
		return out, mapPluginErr(err)
	}
	if out.Metadata, err = pluginValues(name, res.Metadata); err != nil {
		return out, err
	}
	for _, d := range res.Derived {
		if err := validateText("derived document name", d.Name, MaxDocumentNameLen); err != nil {
			return out, docex.Errorf(docex.ErrPluginFailed, "plugin %q output refused: %v", name, err)
		}
		if d.ContentType != "" {
			if _, err := ParseContentType(d.ContentType); err != nil {
				return out, docex.Errorf(docex.ErrPluginFailed, "plugin %q output refused: derived document %q: %v", name, d.Name, err)
			}
		}
		dm, err := pluginValues(name, d.Metadata)
		if err != nil {
			return out, err
		}
		// Lineage is the engine's: a plugin cannot set these two keys.
		dm["derived_from"], dm["derived_by"] = docex.String(doc.ID), docex.String(name)
		out.Derived = append(out.Derived, NewDocument{Name: d.Name, ContentType: d.ContentType, Content: bytes.NewReader(d.Content), Metadata: dm})
		out.raw = append(out.raw, d.Content)
	}
	return out, nil
}

// pluginValues converts and validates metadata a plugin set. The engine
// refusing the output is the plugin's failure (docex.ErrPluginFailed, exit
// 6), not the caller's invalid input: only the reason's text is kept.
func pluginValues(plugin string, m map[string]any) (map[string]docex.Value, error) {
	out := make(map[string]docex.Value, len(m)+2)
	bad := "" // of several bad keys, the first by name, every time
	for k, v := range m {
		switch x := v.(type) {
		case string:
			out[k] = docex.String(x)
		case float64:
			out[k] = docex.Number(x)
		case bool:
			out[k] = docex.Bool(x)
		default:
			if bad == "" || k < bad {
				bad = k
			}
		}
	}
	if bad != "" {
		return nil, docex.Errorf(docex.ErrPluginFailed, "plugin %q set metadata %q of unsupported type %T", plugin, bad, m[bad])
	}
	if err := validateMeta(out); err != nil {
		return nil, docex.Errorf(docex.ErrPluginFailed, "plugin %q output refused: %v", plugin, err)
	}
	return out, nil
}

// stagedStep is a step's output whose derived content is staged.
type stagedStep struct {
	s    *Session
	out  *StepOutput
	docs *stagedDocs // nil without derived documents
}

// stageStep stages out's derived documents' content, outside any
// transaction (the caller then persists inside one and discards after).
// With unsynced the content is not yet durable: the caller syncs it
// (syncStaged) before persisting.
func (s *Session) stageStep(ctx context.Context, st driver.TenantStore, out *StepOutput, unsynced bool) (*stagedStep, error) {
	ss := &stagedStep{s: s, out: out}
	if len(out.Derived) > 0 {
		var err error
		if unsynced {
			ss.docs, err = s.stageDocumentsUnsynced(ctx, st, out.Derived)
		} else {
			ss.docs, err = s.stageDocuments(ctx, st, out.Derived)
		}
		if err != nil {
			return nil, err
		}
	}
	return ss, nil
}

func (ss *stagedStep) discard() {
	if ss.docs != nil {
		ss.docs.discard()
	}
}

// persist writes the step's output inside tx: the input's new metadata
// (with a metadata.set audit entry) and the derived documents (each with a
// document.add entry) in the input's basket. The caller adds its own rows
// (its audit entry, lineage, a completion key) to the same tx. The
// result's Document is the input as updated (read again) unless pipeline
// is set: a pipeline step does not use it. With td, the derived documents
// and the audit entries are left in td for the caller to flush. It also
// returns the derived documents as added (Duplicate: the basket held the
// content already, before or earlier in tx), in the order of the
// result's Derived, for the caller's lineage edges (edgeAt).
func (ss *stagedStep) persist(ctx context.Context, tx driver.Tx, pipeline bool, td *txDocs) (RunResult, []Added, error) {
	s, out := ss.s, ss.out
	res := RunResult{Plugin: out.Plugin, Document: out.Input, Derived: []docex.Document{}, Status: out.Status,
		Message: out.Message, Logs: out.Logs, Report: out.Report, MetadataSet: out.Metadata}
	if len(out.Metadata) > 0 {
		if err := td.setMeta(ctx, tx, out.Input, out.Metadata, s.e.now()); err != nil {
			return res, nil, err
		}
		if !pipeline {
			updated, err := tx.Document(ctx, out.Input.ID)
			if err != nil {
				return res, nil, err
			}
			res.Document = updated
		}
		e := s.entry("metadata.set", out.Input.ID, docex.OutcomeOK, nil)
		if td != nil {
			td.entries = append(td.entries, e) // written by td.flush
		} else if err := tx.AppendAudit(ctx, e); err != nil {
			return res, nil, err
		}
	}
	var added []Added
	if ss.docs != nil {
		var err error
		if td != nil {
			added, err = ss.docs.insertIn(ctx, tx, out.Input.BasketID, td, nil)
		} else {
			added, err = ss.docs.insert(ctx, tx, out.Input.BasketID)
		}
		if err != nil {
			return res, nil, err
		}
		for _, a := range added {
			res.Derived = append(res.Derived, a.Document)
		}
	}
	return res, added, nil
}

// edgeAt returns the CreatedAt of a lineage edge onto a, a step's output
// committed at now: the document's own CreatedAt when the edge's
// transaction created it; else (a duplicate: the output deduplicated
// onto a document that existed) now, or one microsecond after the
// document's CreatedAt when now is not after it (a clock that stands
// still, or one behind another worker's). Equal times make a creating
// edge and only a creating edge (driver.LineageEdge.Dedup).
func edgeAt(a Added, now time.Time) time.Time {
	if !a.Duplicate {
		return a.Document.CreatedAt
	}
	if now.After(a.Document.CreatedAt) {
		return now
	}
	return a.Document.CreatedAt.Add(time.Microsecond)
}

func metaAny(m map[string]docex.Value) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v.Any()
	}
	return out
}

// contentReaderAt opens a document's content for ranged reads: the file
// itself with filesystem storage (verified by one pass first), the bytes in
// memory otherwise (verified as they are read).
//
// resident is the number of bytes held in memory (0 for a file).
func (s *Session) contentReaderAt(ctx context.Context, st driver.TenantStore, d docex.Document) (ra io.ReaderAt, resident int64, release func(), err error) {
	rc, err := s.openContent(ctx, st, d)
	if err != nil {
		return nil, 0, nil, err
	}
	if v, ok := rc.(*contentkey.Verifier); ok {
		ra, ok, err := v.ReaderAt()
		if err != nil {
			v.Close()
			return nil, 0, nil, err
		}
		if ok {
			return ra, 0, func() { v.Close() }, nil
		}
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, 0, nil, err
	}
	return bytes.NewReader(data), int64(len(data)), func() {}, nil
}

// maxLookupFiles is the most content files a run's looked-up documents
// hold open at once (filesystem storage): docs/isolation.md counts them
// in the process's descriptor budget.
const maxLookupFiles = 8

// pluginHost implements pluginapi.Host for one run: lookups are confined to
// the input document's basket in the session's tenant store. Documents it
// opens are read in ranges straight from their files, or loaded only when
// the guest first reads them (database storage; counted as resident host
// memory against the run's budget); close releases them after the run.
type pluginHost struct {
	s        *Session
	st       driver.TenantStore
	basketID string
	key      string // the invocation's pool key

	mu sync.Mutex
	// files are the looked-up documents' content files of this run, by
	// checksum: further handles to the same content share one (a guest
	// opening 1,023 handles to one document hashes its file once).
	files map[string]*lookupFile
	// open are the files holding a descriptor, least recently read
	// first: at most maxLookupFiles.
	open []*lookupFile
}

// lookupFile is a looked-up document's content file (filesystem
// storage), opened at the guest's first read, verified by one pass the
// first time only, closed when maxLookupFiles others were read since and
// reopened on demand.
type lookupFile struct {
	h *pluginHost
	// ctx is the context of the Open that made it, without its
	// cancellation (that Open has returned); deadline is the run's.
	ctx      context.Context
	deadline time.Time
	d        docex.Document
	verified bool
	ra       io.ReaderAt // nil while closed
	close    func()
}

func (f *lookupFile) ReadAt(p []byte, off int64) (int, error) {
	ra, err := f.h.reader(f)
	if err != nil {
		return 0, err
	}
	return ra.ReadAt(p, off)
}

// reader returns f's open reader, opening f (and closing the least
// recently read file past maxLookupFiles) when it is closed. It returns
// the content store's errors, and docex.ErrCorrupt for content that does
// not match its checksum.
func (h *pluginHost) reader(f *lookupFile) (io.ReaderAt, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f.ra != nil {
		if i := slices.Index(h.open, f); i >= 0 && i != len(h.open)-1 {
			h.open = append(slices.Delete(h.open, i, i+1), f)
		}
		return f.ra, nil
	}
	if len(h.open) >= maxLookupFiles {
		old := h.open[0]
		h.open = slices.Delete(h.open, 0, 1)
		old.close()
		old.ra, old.close = nil, nil
	}
	ctx, cancel := f.ctx, context.CancelFunc(func() {})
	if !f.deadline.IsZero() {
		ctx, cancel = context.WithDeadline(ctx, f.deadline)
	}
	defer cancel()
	var ra io.ReaderAt
	var closeContent func()
	if f.verified {
		rc, err := h.s.openContent(ctx, h.st, f.d)
		if err != nil {
			return nil, err
		}
		if v, ok := rc.(*contentkey.Verifier); ok {
			ra, ok = v.Reopened()
			if ok {
				closeContent = func() { v.Close() }
			}
		}
		if ra == nil {
			rc.Close()
		}
	}
	if ra == nil {
		var err error
		if ra, _, closeContent, err = h.s.contentReaderAt(ctx, h.st, f.d); err != nil {
			return nil, err
		}
		f.verified = true
	}
	f.ra, f.close = ra, closeContent
	h.open = append(h.open, f)
	return ra, nil
}

func (h *pluginHost) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.open {
		f.close()
		f.ra, f.close = nil, nil
	}
	h.open = nil
}

func (h *pluginHost) Lookup(ctx context.Context, q pluginapi.LookupQuery) ([]pluginapi.DocumentRef, error) {
	limit := min(max(q.Limit, 1), 100)
	if r, ok := h.st.(driver.DocumentIDsReader); ok {
		// The ids only: the lists below read every listed document's
		// metadata (up to MaxDocumentMetaBytes each), which the guest
		// never sees.
		var ids []string
		var err error
		switch {
		case q.MetadataKey != "":
			ids, err = r.FindDocumentIDs(ctx, h.basketID, []docex.MetaFilter{{Key: q.MetadataKey, Value: docex.ParseValue(q.MetadataValue)}}, docex.Page{Limit: limit})
		case q.Name != "":
			ids, err = r.DocumentIDsByName(ctx, h.basketID, q.Name, docex.Page{Limit: limit})
		}
		if err != nil {
			return nil, err
		}
		refs := make([]pluginapi.DocumentRef, len(ids))
		for i, id := range ids {
			refs[i] = pluginapi.DocumentRef{TenantID: h.key, ID: id}
		}
		return refs, nil
	}
	var docs []docex.Document
	var err error
	switch {
	case q.MetadataKey != "":
		docs, _, err = h.st.FindDocuments(ctx, h.basketID, []docex.MetaFilter{{Key: q.MetadataKey, Value: docex.ParseValue(q.MetadataValue)}}, docex.Page{Limit: limit})
	case q.Name != "":
		docs, err = h.st.DocumentsByName(ctx, h.basketID, q.Name, docex.Page{Limit: limit})
	}
	if err != nil {
		return nil, err
	}
	refs := make([]pluginapi.DocumentRef, len(docs))
	for i, d := range docs {
		refs[i] = pluginapi.DocumentRef{TenantID: h.key, ID: d.ID}
	}
	return refs, nil
}

func (h *pluginHost) Open(ctx context.Context, ref pluginapi.DocumentRef) (*pluginapi.Document, error) {
	if ref.TenantID != h.key {
		return nil, docex.Errorf(docex.ErrNotFound, "document not found")
	}
	d, err := h.st.Document(ctx, ref.ID) // the store is bound to this tenant
	if err != nil {
		return nil, err
	}
	if d.BasketID != h.basketID {
		return nil, docex.Errorf(docex.ErrNotFound, "document not found")
	}
	return h.document(ctx, d)
}

// document gives the guest d: its content is read in ranges straight from
// its file (filesystem storage; the engine holds no copy; the file is
// opened at the first read and at most maxLookupFiles are open at once:
// lookupFile), or loaded whole,
// and verified, at the guest's first read (database and external storage:
// Resident is then d.Size, which the sandbox counts against the run's
// host-memory budget: docs/sandbox.md, "How each threat is handled").
func (h *pluginHost) document(ctx context.Context, d docex.Document) (*pluginapi.Document, error) {
	doc := &pluginapi.Document{Name: d.Name, ContentType: d.ContentType, Size: d.Size, Metadata: metaAny(d.Metadata)}
	if h.s.e.cfg.ContentStorage == ContentFilesystem {
		h.mu.Lock()
		defer h.mu.Unlock()
		f, ok := h.files[d.Checksum]
		if !ok {
			f = &lookupFile{h: h, ctx: context.WithoutCancel(ctx), d: d}
			f.deadline, _ = ctx.Deadline()
			if h.files == nil {
				h.files = map[string]*lookupFile{}
			}
			h.files[d.Checksum] = f
		}
		doc.Content = f
		return doc, nil
	}
	doc.Resident = d.Size
	doc.Content = &lazyContent{load: func() ([]byte, error) {
		rc, err := h.s.openContent(context.WithoutCancel(ctx), h.st, d)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}}
	return doc, nil
}

// lazyContent loads content at its first ReadAt.
type lazyContent struct {
	once sync.Once
	load func() ([]byte, error)
	data []byte
	err  error
}

func (l *lazyContent) ReadAt(p []byte, off int64) (int, error) {
	l.once.Do(func() { l.data, l.err = l.load() })
	if l.err != nil {
		return 0, l.err
	}
	return bytes.NewReader(l.data).ReadAt(p, off)
}
