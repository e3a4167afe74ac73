package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/spell"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/docex-dev/docex/tenancy"
)

// PluginInfo describes an installed plugin.
type PluginInfo struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Description  string `json:"description"`
	System       bool   `json:"system"`
	ModuleSHA256 string `json:"module_sha256"`
	// ManifestSHA256 is the sha256 of the plugin.toml installed (part of
	// the step cache key, with the module's).
	ManifestSHA256 string    `json:"manifest_sha256"`
	Capabilities   []string  `json:"capabilities"`
	InstalledAt    time.Time `json:"installed_at"`
	InstalledBy    string    `json:"installed_by"`
	// AcceptedContentTypes are the media-type globs the plugin accepts
	// (empty: any).
	AcceptedContentTypes []string `json:"accepted_content_types"`
	// Parameters are the manifest's [parameters], sorted by name.
	Parameters []PluginParameter `json:"parameters"`
}

// PluginParameter is one parameter a plugin declares: what a pipeline
// step's params or docex run --param may set.
type PluginParameter struct {
	Name        string `json:"name"`
	Type        string `json:"type"` // string, int, number or bool
	Required    bool   `json:"required"`
	Description string `json:"description"`
	// Min and Max are the inclusive bounds of an int or number, in
	// decimal ("1048576", "0.5"); "" when unbounded.
	Min string `json:"min"`
	Max string `json:"max"`
	// Values are the values a string may take; empty: any.
	Values []string `json:"values"`
	// LessThan names the parameter this one must be less than when both
	// are given; "" for none.
	LessThan string `json:"less_than"`
}

// mapPluginErr gives sandbox errors docex kinds: a bad plugin is invalid
// input, a capability violation is a denial, a host without room for the
// plugin (its compiled code, its memory) is docex.ErrHostCapacity, anything
// else the guest did is a plugin failure.
func mapPluginErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pluginapi.ErrContentTypeNotAccepted):
		// The document does not suit the plugin: invalid input, not an
		// invalid plugin. The sandbox's message names the accepted types.
		return &relabelled{msg: strings.TrimPrefix(err.Error(), "sandbox: "), errs: []error{docex.ErrInvalid, err}}
	case errors.Is(err, pluginapi.ErrInvalidParams):
		// The plugin is fine, its parameters are not: the message says so
		// ("invalid parameters: ..."), the code stays plugin_invalid.
		return &relabelled{msg: strings.TrimPrefix(err.Error(), "sandbox: "), errs: []error{docex.ErrPluginInvalid, err}}
	case errors.Is(err, pluginapi.ErrTooManyModules), errors.Is(err, pluginapi.ErrHostMemory):
		// A valid module the host has no room for (the engine closed
		// every plugin it could first), or whose memory limit it could
		// not reserve (the sandbox closed its idle instances first): the
		// host's condition, not the plugin's fault. "the host has no room
		// for the plugin: too many compiled modules: the loaded modules'
		// estimated machine code would be ...", "the host has no room for
		// the plugin: the host could not reserve memory: plugin "p": cannot
		// reserve its memory limit of N pages: ...". Before the plugin
		// failures below: ErrHostMemory matches ErrPluginMemory too.
		return &relabelled{msg: docex.ErrHostCapacity.Error() + ": " + strings.TrimPrefix(err.Error(), "sandbox: "), errs: []error{docex.ErrHostCapacity, err}}
	case errors.Is(err, pluginapi.ErrInvalidManifest), errors.Is(err, pluginapi.ErrHashMismatch), errors.Is(err, pluginapi.ErrInvalidModule):
		return fmt.Errorf("%w: %w", docex.ErrPluginInvalid, err)
	case errors.Is(err, pluginapi.ErrCapabilityDenied):
		return fmt.Errorf("%w: %w", docex.ErrPluginDenied, err)
	case errors.Is(err, pluginapi.ErrHostFailure), errors.Is(err, pluginapi.ErrClosed):
		return err
	}
	var de *docex.Error
	if errors.As(err, &de) {
		return err
	}
	// "plugin failed: trap: ...", "plugin failed: <the plugin's own
	// message>": without the sandbox's prefixes.
	msg := strings.TrimPrefix(err.Error(), "sandbox: ")
	if guest, ok := strings.CutPrefix(err.Error(), pluginapi.ErrPluginStatusError.Error()+": "); ok {
		msg = guest
	}
	return &relabelled{msg: docex.ErrPluginFailed.Error() + ": " + msg, errs: []error{docex.ErrPluginFailed, err}}
}

// relabelled is an error with a message of its own that matches each of
// errs (errors.Is, errors.As, docex.Code: the first one's code).
type relabelled struct {
	msg  string
	errs []error
}

func (e *relabelled) Error() string   { return e.msg }
func (e *relabelled) Unwrap() []error { return e.errs }

// checkPlugin parses and validates a plugin before it is stored: the
// manifest is strict, the module matches its hash and compiles with only
// the imports the sandbox provides.
func (e *Engine) checkPlugin(ctx context.Context, manifest, module []byte) (*pluginapi.Manifest, error) {
	if e.cfg.Sandbox == nil {
		return nil, docex.ErrNoSandbox
	}
	m, err := pluginapi.ParseManifest(manifest)
	if err != nil {
		return nil, mapPluginErr(err)
	}
	if err := m.VerifyModule(module); err != nil {
		return nil, mapPluginErr(err)
	}
	if _, err := e.loadPlugin(ctx, driver.PluginRecord{Manifest: manifest, ModuleSHA256: m.SHA256}, m, module); err != nil {
		return nil, err
	}
	return m, nil
}

// manifestSHA256 is the hex sha256 of a plugin.toml as installed: in the
// step cache key and in PluginInfo.
func manifestSHA256(manifest []byte) string {
	sum := sha256.Sum256(manifest)
	return hex.EncodeToString(sum[:])
}

func pluginInfo(rec driver.PluginRecord, system bool) PluginInfo {
	info := PluginInfo{Name: rec.Name, Version: rec.Version, System: system, ModuleSHA256: rec.ModuleSHA256, ManifestSHA256: manifestSHA256(rec.Manifest),
		InstalledAt: rec.InstalledAt, InstalledBy: rec.InstalledBy, Capabilities: []string{},
		AcceptedContentTypes: []string{}, Parameters: []PluginParameter{}}
	if m, err := pluginapi.ParseStoredManifest(rec.Manifest); err == nil {
		info.Description = m.Description
		info.Capabilities = append(info.Capabilities, m.Capabilities...)
		info.AcceptedContentTypes = append(info.AcceptedContentTypes, m.AcceptedContentTypes...)
		for _, name := range slices.Sorted(maps.Keys(m.Parameters)) {
			p := m.Parameters[name]
			info.Parameters = append(info.Parameters, PluginParameter{Name: name, Type: p.Type, Required: p.Required,
				Description: p.Description, Min: bound(p.Min), Max: bound(p.Max), Values: append([]string{}, p.Values...), LessThan: p.LessThan})
		}
	}
	return info
}

// bound formats a parameter's bound in decimal, "" for none.
func bound(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

// InstallPlugin installs (or replaces) a plugin for the session's tenant
// (plugin.manage action). The module bytes are stored by the engine, so the
// plugin cannot change afterwards. It returns docex.ErrPluginInvalid for a
// bad manifest, a hash mismatch or a module that does not compile, and
// docex.ErrHostCapacity when the sandbox has no room for its compiled code.
func (s *Session) InstallPlugin(ctx context.Context, manifest, module []byte) (PluginInfo, error) {
	return s.InstallPluginFrom(ctx, "", manifest, module)
}

// InstallPluginFrom is InstallPlugin for a plugin read from source (the
// directory a front end was given, "" for none): the audit entry of an
// install it refuses has the detail {"source": source}, as
// RefuseInstall's, where InstallPlugin's has {}. Errors as InstallPlugin.
func (s *Session) InstallPluginFrom(ctx context.Context, source string, manifest, module []byte) (PluginInfo, error) {
	st, err := s.open(ctx, tenancy.ActionManagePlugins, "plugin.install", "")
	if err != nil {
		return PluginInfo{}, err
	}
	defer st.Close()
	m, err := s.e.checkPlugin(ctx, manifest, module)
	if err == nil {
		rec := driver.PluginRecord{Name: m.Name, Version: m.Version, Manifest: manifest, ModuleSHA256: m.SHA256, InstalledAt: s.e.now(), InstalledBy: s.uc.UserID}
		if err = st.Plugins().PutPlugin(ctx, rec, module); err == nil {
			if err := s.auditOutcome(ctx, st, "plugin.install", m.Name, nil, map[string]any{"version": m.Version, "module_sha256": m.SHA256}); err != nil {
				return PluginInfo{}, withAuditErr(nil, err)
			}
			return pluginInfo(rec, false), nil
		}
	}
	return PluginInfo{}, withAuditErr(err, s.auditOutcome(ctx, st, "plugin.install", "", err, sourceDetail(source)))
}

// sourceDetail is the audit detail of a refused install from source, nil
// for "".
func sourceDetail(source string) map[string]any {
	if source == "" {
		return nil
	}
	return map[string]any{"source": source}
}

// RefuseInstall records in the tenant's audit log an install that failed
// before the plugin reached the engine (its directory could not be read: a
// path escaping it, a missing module, a malformed manifest), with source
// naming what was asked for. It returns err, or the error of opening the
// session (a denial, also audited).
func (s *Session) RefuseInstall(ctx context.Context, source string, err error) error {
	return s.refuse(ctx, tenancy.ActionManagePlugins, "plugin.install", "", sourceDetail(source), err)
}

// refuse records err as the outcome of op (an action the session must be
// allowed) on target in the tenant's audit log, with detail. It returns
// err, or the error of opening the session.
func (s *Session) refuse(ctx context.Context, action tenancy.Action, op, target string, detail map[string]any, err error) error {
	st, oerr := s.open(ctx, action, op, target)
	return s.refuseIn(ctx, st, oerr, op, target, detail, err)
}

// refuseDetail is refuse with detail in the entry of a denial too.
func (s *Session) refuseDetail(ctx context.Context, action tenancy.Action, op, target string, detail map[string]any, err error) error {
	st, oerr := s.openDetail(ctx, action, op, target, detail)
	return s.refuseIn(ctx, st, oerr, op, target, detail, err)
}

// refuseIn records err as op's outcome in st, opened for it with the
// error oerr (returned as it is: a denial, audited by the opening).
func (s *Session) refuseIn(ctx context.Context, st driver.TenantStore, oerr error, op, target string, detail map[string]any, err error) error {
	if oerr != nil {
		return oerr
	}
	defer st.Close()
	return withAuditErr(err, s.auditOutcome(ctx, st, op, target, err, detail))
}

// RefuseAdd records in the tenant's audit log an add refused before the
// content reached the engine (a front end's own check: a path outside
// the directory it may read, a file it cannot read, a basket it could
// not find, say), as the write it was: "document.add" with err's
// outcome, basket (as the caller named it; "" for none) as the target
// and path, when not "", in the detail. It returns err, or the session's
// own denial (a role that may not write) when there is one.
func (s *Session) RefuseAdd(ctx context.Context, basket, path string, err error) error {
	return s.refuse(ctx, tenancy.ActionWrite, "document.add", basket, pathDetail(path), err)
}

// RefuseUpdate is RefuseAdd for an update of document id's content
// ("document.update", the document as the target).
func (s *Session) RefuseUpdate(ctx context.Context, id, path string, err error) error {
	return s.refuse(ctx, tenancy.ActionWrite, "document.update", id, pathDetail(path), err)
}

// pathDetail is the audit detail naming path, nil for "".
func pathDetail(path string) map[string]any {
	if path == "" {
		return nil
	}
	return map[string]any{"path": path}
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

// resolvePlugin finds a plugin's record by name (its module is not read):
// the tenant's own first, then the system-wide one. It returns
// docex.ErrNotFound when neither exists.
func (s *Session) resolvePlugin(ctx context.Context, st driver.TenantStore, name string) (driver.PluginRecord, bool, error) {
	rec, err := st.Plugins().PluginRecord(ctx, name)
	system := false
	if errors.Is(err, docex.ErrNotFound) && s.e.cfg.MultiTenancy {
		rec, err = s.e.be.SystemPlugins().PluginRecord(ctx, name)
		system = true
	}
	if errors.Is(err, docex.ErrNotFound) {
		// Name the likely one (case, '-' for '_', a few letters apart).
		var names []string
		if all, lerr := s.plugins(ctx, st); lerr == nil {
			for _, pi := range all {
				names = append(names, pi.Name)
			}
		}
		err = docex.Errorf(docex.ErrNotFound, "plugin %q not found%s", name, spell.Suggest(name, names))
	}
	return rec, system, err
}

// Plugin describes one plugin the tenant can run; docex.ErrNotFound if none.
func (s *Session) Plugin(ctx context.Context, name string) (PluginInfo, error) {
	st, err := s.open(ctx, tenancy.ActionRead, "plugin.get", name)
	if err != nil {
		return PluginInfo{}, err
	}
	defer st.Close()
	rec, system, err := s.resolvePlugin(ctx, st, name)
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
	return withAuditErr(err, s.auditOutcome(ctx, st, "plugin.remove", name, err, nil))
}

// InstallSystemPlugin installs a plugin available to every tenant (it runs
// as the calling tenant). Errors as Session.InstallPlugin.
func (p *TenantProvisioner) InstallSystemPlugin(ctx context.Context, manifest, module []byte) (PluginInfo, error) {
	return p.InstallSystemPluginFrom(ctx, "", manifest, module)
}

// InstallSystemPluginFrom is InstallSystemPlugin for a plugin read from
// source (the directory a front end was given, "" for none): the target
// of the audit entry of an install the engine refuses is source, as
// RefuseInstall's, where InstallSystemPlugin's is "". Errors as
// Session.InstallPlugin.
func (p *TenantProvisioner) InstallSystemPluginFrom(ctx context.Context, source string, manifest, module []byte) (PluginInfo, error) {
	if p.e.closed.Load() {
		return PluginInfo{}, docex.ErrClosed
	}
	if err := tenancy.ValidateUserID(p.actor); err != nil {
		return PluginInfo{}, err
	}
	m, err := p.e.checkPlugin(ctx, manifest, module)
	if err != nil {
		return PluginInfo{}, p.audit(ctx, "plugin.install.system", source, err)
	}
	rec := driver.PluginRecord{Name: m.Name, Version: m.Version, Manifest: manifest, ModuleSHA256: m.SHA256, InstalledAt: p.e.now(), InstalledBy: p.actor}
	err = p.e.be.SystemPlugins().PutPlugin(ctx, rec, module)
	if err = p.audit(ctx, "plugin.install.system", m.Name, err); err != nil {
		return PluginInfo{}, err
	}
	return pluginInfo(rec, true), nil
}

// RefuseInstall records in the system audit log a system-wide install that
// failed before the plugin reached the engine (see Session.RefuseInstall).
// It returns err.
func (p *TenantProvisioner) RefuseInstall(ctx context.Context, source string, err error) error {
	p.audit(ctx, "plugin.install.system", source, err)
	return err
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
