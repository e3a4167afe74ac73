package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/sandbox"
	"github.com/docex-dev/docex/tenancy"
)

// PluginInfo describes an installed plugin.
type PluginInfo struct {
	Name         string    `json:"name"`
	Version      string    `json:"version"`
	Description  string    `json:"description"`
	System       bool      `json:"system"`
	ModuleSHA256 string    `json:"module_sha256"`
	Capabilities []string  `json:"capabilities"`
	InstalledAt  time.Time `json:"installed_at"`
	InstalledBy  string    `json:"installed_by"`
}

// mapPluginErr gives sandbox errors docex kinds: a bad plugin is invalid
// input, a capability violation is a denial, anything else the guest did is
// a plugin failure.
func mapPluginErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sandbox.ErrInvalidManifest), errors.Is(err, sandbox.ErrHashMismatch), errors.Is(err, sandbox.ErrInvalidModule),
		errors.Is(err, sandbox.ErrInvalidParams), errors.Is(err, sandbox.ErrContentTypeNotAccepted), errors.Is(err, sandbox.ErrTooManyModules):
		return fmt.Errorf("%w: %w", docex.ErrPluginInvalid, err)
	case errors.Is(err, sandbox.ErrCapabilityDenied):
		return fmt.Errorf("%w: %w", docex.ErrPluginDenied, err)
	case errors.Is(err, sandbox.ErrHostFailure), errors.Is(err, sandbox.ErrClosed):
		return err
	}
	var de *docex.Error
	if errors.As(err, &de) {
		return err
	}
	return fmt.Errorf("%w: %w", docex.ErrPluginFailed, err)
}

// checkPlugin parses and validates a plugin before it is stored: the
// manifest is strict, the module matches its hash and compiles with only
// the imports the sandbox provides.
func (e *Engine) checkPlugin(ctx context.Context, manifest, module []byte) (*sandbox.Manifest, error) {
	if e.cfg.Sandbox == nil {
		return nil, docex.ErrNoSandbox
	}
	m, err := sandbox.ParseManifest(manifest)
	if err != nil {
		return nil, mapPluginErr(err)
	}
	if err := m.VerifyModule(module); err != nil {
		return nil, mapPluginErr(err)
	}
	p, err := e.loadPlugin(ctx, manifest, m, module)
	if err != nil {
		return nil, err
	}
	_ = p
	return m, nil
}

// loadPlugin returns the sandbox plugin for a manifest and module, compiled
// once and cached by the hash of both.
func (e *Engine) loadPlugin(ctx context.Context, manifest []byte, m *sandbox.Manifest, module []byte) (*sandbox.Plugin, error) {
	h := sha256.New()
	h.Write(manifest)
	h.Write([]byte{0})
	h.Write([]byte(m.SHA256))
	key := hex.EncodeToString(h.Sum(nil))
	e.mu.Lock()
	p, ok := e.plugins[key]
	e.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := e.cfg.Sandbox.Load(ctx, m, module)
	if err != nil {
		return nil, mapPluginErr(err)
	}
	e.mu.Lock()
	if old, ok := e.plugins[key]; ok {
		e.mu.Unlock()
		p.Close(ctx)
		return old, nil
	}
	e.plugins[key] = p
	e.mu.Unlock()
	return p, nil
}

func pluginInfo(rec driver.PluginRecord, system bool) PluginInfo {
	info := PluginInfo{Name: rec.Name, Version: rec.Version, System: system, ModuleSHA256: rec.ModuleSHA256,
		InstalledAt: rec.InstalledAt, InstalledBy: rec.InstalledBy, Capabilities: []string{}}
	if m, err := sandbox.ParseManifest(rec.Manifest); err == nil {
		info.Description = m.Description
		info.Capabilities = append(info.Capabilities, m.Capabilities...)
	}
	return info
}

// InstallPlugin installs (or replaces) a plugin for the session's tenant
// (plugin.manage action). The module bytes are stored by the engine, so the
// plugin cannot change afterwards. It returns docex.ErrPluginInvalid for a
// bad manifest, a hash mismatch or a module that does not compile.
func (s *Session) InstallPlugin(ctx context.Context, manifest, module []byte) (PluginInfo, error) {
	st, err := s.open(ctx, tenancy.ActionManagePlugins, "plugin.install", "")
	if err != nil {
		return PluginInfo{}, err
	}
	defer st.Close()
	m, err := s.e.checkPlugin(ctx, manifest, module)
	if err == nil {
		rec := driver.PluginRecord{Name: m.Name, Version: m.Version, Manifest: manifest, ModuleSHA256: m.SHA256, InstalledAt: s.e.now(), InstalledBy: s.uc.UserID}
		if err = st.Plugins().PutPlugin(ctx, rec, module); err == nil {
			if err := s.auditOutcome(ctx, st, "plugin.install", m.Name, nil, m.Version+" "+m.SHA256); err != nil {
				return PluginInfo{}, withAuditErr(nil, err)
			}
			return pluginInfo(rec, false), nil
		}
	}
	return PluginInfo{}, withAuditErr(err, s.auditOutcome(ctx, st, "plugin.install", "", err, ""))
}

// Plugins lists the plugins the session's tenant can run: its own and the
// system-wide ones (read action).
func (s *Session) Plugins(ctx context.Context) ([]PluginInfo, error) {
	st, err := s.open(ctx, tenancy.ActionRead, "plugin.list", "")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	out, err := s.plugins(ctx, st)
	err = s.readDone(ctx, st, "plugin.list", "", err)
	return out, err
}

func (s *Session) plugins(ctx context.Context, st driver.TenantStore) ([]PluginInfo, error) {
	own, err := st.Plugins().Plugins(ctx)
	if err != nil {
		return nil, err
	}
	out := []PluginInfo{}
	seen := map[string]bool{}
	for _, r := range own {
		out = append(out, pluginInfo(r, false))
		seen[r.Name] = true
	}
	if s.e.cfg.MultiTenancy {
		sys, err := s.e.be.SystemPlugins().Plugins(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range sys {
			if !seen[r.Name] { // a tenant's own plugin shadows a system one
				out = append(out, pluginInfo(r, true))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// resolvePlugin finds a plugin by name: the tenant's own first, then the
// system-wide one. It returns docex.ErrNotFound when neither exists.
func (s *Session) resolvePlugin(ctx context.Context, st driver.TenantStore, name string) (driver.PluginRecord, []byte, bool, error) {
	rec, mod, err := st.Plugins().Plugin(ctx, name)
	if err == nil || !errors.Is(err, docex.ErrNotFound) || !s.e.cfg.MultiTenancy {
		return rec, mod, false, err
	}
	rec, mod, err = s.e.be.SystemPlugins().Plugin(ctx, name)
	return rec, mod, true, err
}

// Plugin describes one plugin the tenant can run; docex.ErrNotFound if none.
func (s *Session) Plugin(ctx context.Context, name string) (PluginInfo, error) {
	st, err := s.open(ctx, tenancy.ActionRead, "plugin.get", name)
	if err != nil {
		return PluginInfo{}, err
	}
	defer st.Close()
	rec, _, system, err := s.resolvePlugin(ctx, st, name)
	err = s.readDone(ctx, st, "plugin.get", name, err)
	if err != nil {
		return PluginInfo{}, err
	}
	return pluginInfo(rec, system), nil
}

// RemovePlugin removes one of the tenant's plugins (plugin.manage);
// docex.ErrNotFound when the tenant has none of that name (system-wide
// plugins are removed by the operator).
func (s *Session) RemovePlugin(ctx context.Context, name string) error {
	st, err := s.open(ctx, tenancy.ActionManagePlugins, "plugin.remove", name)
	if err != nil {
		return err
	}
	defer st.Close()
	err = st.Plugins().DeletePlugin(ctx, name)
	return withAuditErr(err, s.auditOutcome(ctx, st, "plugin.remove", name, err, ""))
}

// InstallSystemPlugin installs a plugin available to every tenant (it runs
// as the calling tenant). Errors as Session.InstallPlugin.
func (p *TenantProvisioner) InstallSystemPlugin(ctx context.Context, manifest, module []byte) (PluginInfo, error) {
	if p.e.closed.Load() {
		return PluginInfo{}, docex.ErrClosed
	}
	if err := tenancy.ValidateUserID(p.actor); err != nil {
		return PluginInfo{}, err
	}
	m, err := p.e.checkPlugin(ctx, manifest, module)
	if err != nil {
		return PluginInfo{}, p.audit(ctx, "plugin.install.system", "", err)
	}
	rec := driver.PluginRecord{Name: m.Name, Version: m.Version, Manifest: manifest, ModuleSHA256: m.SHA256, InstalledAt: p.e.now(), InstalledBy: p.actor}
	err = p.e.be.SystemPlugins().PutPlugin(ctx, rec, module)
	if err = p.audit(ctx, "plugin.install.system", m.Name, err); err != nil {
		return PluginInfo{}, err
	}
	return pluginInfo(rec, true), nil
}

// SystemPlugins lists the system-wide plugins.
func (p *TenantProvisioner) SystemPlugins(ctx context.Context) ([]PluginInfo, error) {
	recs, err := p.e.be.SystemPlugins().Plugins(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PluginInfo, len(recs))
	for i, r := range recs {
		out[i] = pluginInfo(r, true)
	}
	return out, nil
}

// RemoveSystemPlugin removes a system-wide plugin; docex.ErrNotFound if absent.
func (p *TenantProvisioner) RemoveSystemPlugin(ctx context.Context, name string) error {
	if err := tenancy.ValidateUserID(p.actor); err != nil {
		return err
	}
	err := p.e.be.SystemPlugins().DeletePlugin(ctx, name)
	return p.audit(ctx, "plugin.remove.system", name, err)
}

// RunResult is the outcome of a plugin run that completed.
type RunResult struct {
	Plugin   string                 `json:"plugin"`
	Document docex.Document         `json:"document"` // the input, with the metadata the plugin set
	Derived  []docex.Document       `json:"derived"`
	Status   string                 `json:"status"`
	Message  string                 `json:"message"`
	Logs     []sandbox.LogLine      `json:"logs"`
	Report   sandbox.ResourceReport `json:"report"`
}

// RunPlugin runs a plugin on one document as the session's user
// (plugin.run action). The plugin sees the document, its metadata and the
// params; it may look up other documents of the same basket of the same
// tenant if granted documents.lookup. Only when it succeeds are its
// metadata written to the document and its derived documents added to the
// document's basket (with metadata derived_from = the input's id), in one
// transaction; a failed run writes nothing but its audit entry. The
// resource report is always audited.
//
// Errors: docex.ErrNotFound (no such plugin or document),
// docex.ErrPluginInvalid (params or content type refused),
// docex.ErrPluginDenied (capability violation), docex.ErrPluginFailed
// wrapping the sandbox's typed error (sandbox.ErrPluginTimeout, ...).
func (s *Session) RunPlugin(ctx context.Context, name, docID string, params map[string]string) (RunResult, error) {
	if s.e.cfg.Sandbox == nil {
		return RunResult{}, docex.ErrNoSandbox
	}
	st, err := s.open(ctx, tenancy.ActionRunPlugin, "plugin.run", name)
	if err != nil {
		return RunResult{}, err
	}
	defer st.Close()
	res, report, err := s.runPlugin(ctx, st, name, docID, params)
	detail, _ := json.Marshal(map[string]any{"document": docID, "report": report})
	return res, withAuditErr(err, s.auditOutcome(ctx, st, "plugin.run", name, err, string(detail)))
}

func (s *Session) runPlugin(ctx context.Context, st driver.TenantStore, name, docID string, params map[string]string) (RunResult, sandbox.ResourceReport, error) {
	var report sandbox.ResourceReport
	rec, module, _, err := s.resolvePlugin(ctx, st, name)
	if err != nil {
		return RunResult{}, report, err
	}
	m, err := sandbox.ParseManifest(rec.Manifest)
	if err != nil {
		return RunResult{}, report, mapPluginErr(err)
	}
	plugin, err := s.e.loadPlugin(ctx, rec.Manifest, m, module)
	if err != nil {
		return RunResult{}, report, err
	}
	doc, err := st.Document(ctx, docID)
	if err != nil {
		return RunResult{}, report, err
	}
	content, closeContent, err := s.contentReaderAt(ctx, st, doc)
	if err != nil {
		return RunResult{}, report, err
	}
	defer closeContent()
	host := &pluginHost{s: s, st: st, basketID: doc.BasketID, tenant: s.uc.TenantID}
	res, err := s.e.cfg.Sandbox.Run(ctx, sandbox.Invocation{
		TenantID: tenantKey(s.uc.TenantID), UserID: s.uc.UserID, Plugin: plugin, Params: params, Host: host,
		Input: sandbox.Document{Name: doc.Name, ContentType: doc.ContentType, Size: doc.Size, Metadata: metaAny(doc.Metadata), Content: content},
	})
	if res != nil {
		report = res.Report
	}
	if err != nil {
		return RunResult{}, report, mapPluginErr(err)
	}
	out := RunResult{Plugin: name, Status: string(res.Status), Message: res.Message, Logs: res.Logs, Report: res.Report, Derived: []docex.Document{}}
	if out.Logs == nil {
		out.Logs = []sandbox.LogLine{}
	}
	meta, err := pluginValues(res.Metadata)
	if err != nil {
		return out, report, err
	}
	var derived []NewDocument
	for _, d := range res.Derived {
		if err := validateText("derived document name", d.Name, MaxDocumentNameLen); err != nil {
			return out, report, fmt.Errorf("%w: plugin output: %w", docex.ErrPluginFailed, err)
		}
		dm, err := pluginValues(d.Metadata)
		if err != nil {
			return out, report, err
		}
		// Lineage is the engine's: a plugin cannot set these two keys.
		dm["derived_from"], dm["derived_by"] = docex.String(doc.ID), docex.String(name)
		derived = append(derived, NewDocument{Name: d.Name, ContentType: d.ContentType, Content: bytes.NewReader(d.Content), Metadata: dm})
	}
	// Persist: derived documents and metadata in one transaction.
	added, updated, err := s.persistRun(ctx, st, doc, meta, derived)
	if err != nil {
		return out, report, err
	}
	out.Document = updated
	for _, a := range added {
		out.Derived = append(out.Derived, a.Document)
	}
	return out, report, nil
}

// pluginValues converts and validates metadata a plugin set. It returns
// docex.ErrPluginFailed for a value of another type or an invalid key.
func pluginValues(m map[string]any) (map[string]docex.Value, error) {
	out := make(map[string]docex.Value, len(m)+2)
	for k, v := range m {
		switch x := v.(type) {
		case string:
			out[k] = docex.String(x)
		case float64:
			out[k] = docex.Number(x)
		case bool:
			out[k] = docex.Bool(x)
		default:
			return nil, docex.Errorf(docex.ErrPluginFailed, "plugin set metadata %q of unsupported type %T", k, v)
		}
	}
	if err := validateMeta(out); err != nil {
		return nil, fmt.Errorf("%w: plugin output: %w", docex.ErrPluginFailed, err)
	}
	return out, nil
}

// tenantKey is the sandbox pool key: the tenant id, or a fixed key for the
// local store.
func tenantKey(id string) string {
	if id == "" {
		return "(local)"
	}
	return id
}

func metaAny(m map[string]docex.Value) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v.Any()
	}
	return out
}

// contentReaderAt opens a document's content for ranged reads: the file
// itself with filesystem storage, the bytes in memory otherwise.
func (s *Session) contentReaderAt(ctx context.Context, st driver.TenantStore, d docex.Document) (io.ReaderAt, func(), error) {
	rc, err := s.openContent(ctx, st, d)
	if err != nil {
		return nil, nil, err
	}
	if f, ok := rc.(*os.File); ok {
		return f, func() { f.Close() }, nil
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, nil, err
	}
	return bytes.NewReader(data), func() {}, nil
}

// persistRun writes a successful run's output in one transaction: the
// derived documents (their content staged first) and the input's new
// metadata, together or not at all.
func (s *Session) persistRun(ctx context.Context, st driver.TenantStore, doc docex.Document, meta map[string]docex.Value, derived []NewDocument) ([]Added, docex.Document, error) {
	updated := doc
	setMeta := func(tx driver.Tx) error {
		if len(meta) == 0 {
			return nil
		}
		if err := tx.SetMetadata(ctx, doc.ID, meta, s.e.now()); err != nil {
			return err
		}
		var err error
		updated, err = tx.Document(ctx, doc.ID)
		return err
	}
	if len(derived) == 0 {
		if len(meta) == 0 {
			return nil, doc, nil
		}
		err := s.write(ctx, st, "metadata.set", doc.ID, setMeta)
		return nil, updated, err
	}
	added, err := s.addDocumentsTo(ctx, st, doc.BasketID, derived, func(tx driver.Tx) error {
		if err := setMeta(tx); err != nil || len(meta) == 0 {
			return err
		}
		return tx.AppendAudit(ctx, s.entry("metadata.set", doc.ID, docex.OutcomeOK, nil))
	})
	return added, updated, err
}

// pluginHost implements sandbox.Host for one run: lookups are confined to
// the input document's basket in the session's tenant store.
type pluginHost struct {
	s        *Session
	st       driver.TenantStore
	basketID string
	tenant   string
}

func (h *pluginHost) Lookup(ctx context.Context, q sandbox.LookupQuery) ([]sandbox.DocumentRef, error) {
	limit := min(max(q.Limit, 1), 100)
	var docs []docex.Document
	var err error
	switch {
	case q.MetadataKey != "":
		docs, _, err = h.st.FindDocuments(ctx, h.basketID, []docex.MetaFilter{{Key: q.MetadataKey, Value: docex.ParseValue(q.MetadataValue)}}, docex.Page{Limit: limit})
	case q.Name != "":
		var all []docex.Document
		all, err = h.st.Documents(ctx, h.basketID, docex.Page{Limit: docex.MaxPageLimit, Order: docex.OrderName})
		for _, d := range all {
			if d.Name == q.Name && len(docs) < limit {
				docs = append(docs, d)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	refs := make([]sandbox.DocumentRef, len(docs))
	for i, d := range docs {
		refs[i] = sandbox.DocumentRef{TenantID: tenantKey(h.tenant), ID: d.ID}
	}
	return refs, nil
}

func (h *pluginHost) Open(ctx context.Context, ref sandbox.DocumentRef) (*sandbox.Document, error) {
	if ref.TenantID != tenantKey(h.tenant) {
		return nil, docex.Errorf(docex.ErrNotFound, "document not found")
	}
	d, err := h.st.Document(ctx, ref.ID) // the store is bound to this tenant
	if err != nil {
		return nil, err
	}
	if d.BasketID != h.basketID {
		return nil, docex.Errorf(docex.ErrNotFound, "document not found")
	}
	content, closeContent, err := h.s.contentReaderAt(ctx, h.st, d)
	if err != nil {
		return nil, err
	}
	if f, ok := content.(*os.File); ok {
		// The sandbox reads the content during the run; read it now so
		// nothing stays open after the run.
		data, err := io.ReadAll(io.NewSectionReader(f, 0, d.Size))
		closeContent()
		if err != nil {
			return nil, err
		}
		content = bytes.NewReader(data)
	} else {
		closeContent()
	}
	return &sandbox.Document{Name: d.Name, ContentType: d.ContentType, Size: d.Size, Metadata: metaAny(d.Metadata), Content: content}, nil
}
