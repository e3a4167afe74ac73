package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/jackc/pgx/v5"
)

// pluginDDL creates the plugin tables; %[1]s is the quoted schema (the
// system schema for system-wide plugins, each tenant schema for the
// tenant's). Module bytes are content-addressed by their sha256.
const pluginDDL = `
CREATE TABLE IF NOT EXISTS %[1]s.plugins (
	name          text COLLATE "C" PRIMARY KEY,
	version       text NOT NULL,
	manifest      bytea NOT NULL,
	module_sha256 text COLLATE "C" NOT NULL,
	installed_at  timestamptz NOT NULL,
	installed_by  text NOT NULL
);
CREATE TABLE IF NOT EXISTS %[1]s.plugin_modules (
	sha256 text COLLATE "C" PRIMARY KEY,
	data   bytea NOT NULL
);
`

// pluginSQL are the statements of a plugin store; {p} is "" for a tenant
// (unqualified, run under inTenant) or the quoted system schema plus ".".
type pluginSQL struct {
	list, get, getModule, putModule, lockModule, oldModule, upsert, dropModule, delete string
}

func newPluginSQL(prefix string) pluginSQL {
	r := strings.NewReplacer("{p}", prefix)
	const cols = `name, version, manifest, module_sha256, installed_at, installed_by`
	return pluginSQL{
		list: r.Replace(`SELECT ` + cols + ` FROM {p}plugins ORDER BY name`),
		get:  r.Replace(`SELECT ` + cols + ` FROM {p}plugins WHERE name = $1`),
		// One statement, one snapshot: a replacement committed between
		// two reads could have dropped the module the first one named.
		getModule: r.Replace(`SELECT p.name, p.version, p.manifest, p.module_sha256, p.installed_at, p.installed_by, m.sha256 IS NOT NULL, m.data
			FROM {p}plugins p LEFT JOIN {p}plugin_modules m ON m.sha256 = p.module_sha256 WHERE p.name = $1`),
		// The module's row is inserted or, when it is there, locked (a
		// do-nothing conflict would not lock it): a removal that would drop
		// it waits for this install, then sees the plugin that uses it.
		putModule:  r.Replace(`INSERT INTO {p}plugin_modules (sha256, data) VALUES ($1, $2) ON CONFLICT (sha256) DO UPDATE SET sha256 = excluded.sha256`),
		lockModule: r.Replace(`SELECT 1 FROM {p}plugin_modules WHERE sha256 = $1 FOR UPDATE`),
		oldModule:  r.Replace(`SELECT module_sha256 FROM {p}plugins WHERE name = $1 FOR UPDATE`),
		upsert: r.Replace(`INSERT INTO {p}plugins (` + cols + `) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (name) DO UPDATE SET version = excluded.version, manifest = excluded.manifest,
			module_sha256 = excluded.module_sha256, installed_at = excluded.installed_at, installed_by = excluded.installed_by`),
		dropModule: r.Replace(`DELETE FROM {p}plugin_modules WHERE sha256 = $1 AND NOT EXISTS (SELECT 1 FROM {p}plugins WHERE module_sha256 = $1)`),
		delete:     r.Replace(`DELETE FROM {p}plugins WHERE name = $1 RETURNING module_sha256`),
	}
}

// pluginStore is a driver.PluginStore. run is the only way it reaches the
// database: inTenant for a tenant's plugins, a plain transaction with
// schema-qualified SQL for the system's.
type pluginStore struct {
	b   *Backend
	sql *pluginSQL
	run func(ctx context.Context, mode pgx.TxAccessMode, fn func(q pgx.Tx) error) error
}

var _ driver.PluginStore = pluginStore{}

// Plugins returns the tenant's plugin store.
func (s *store) Plugins() driver.PluginStore {
	return pluginStore{b: s.b, sql: &s.b.tenantPluginSQL, run: func(ctx context.Context, mode pgx.TxAccessMode, fn func(q pgx.Tx) error) error {
		if s.closed.Load() {
			return docex.Errorf(docex.ErrClosed, "postgres: store of %s is closed", s.schema)
		}
		return s.b.inTenant(ctx, s, mode, fn)
	}}
}

// SystemPlugins returns the store of system-wide plugins, kept in the
// system schema.
func (b *Backend) SystemPlugins() driver.PluginStore {
	return pluginStore{b: b, sql: &b.systemPluginSQL, run: func(ctx context.Context, mode pgx.TxAccessMode, fn func(q pgx.Tx) error) error {
		err := pgx.BeginTxFunc(ctx, b.pool, txOptions(mode), fn)
		if code, _ := pgError(err); code == codeUndefinedTable || code == codeInvalidSchemaName {
			return b.sysErr(err, "system plugins")
		}
		return err
	}}
}

func scanPlugin(row pgx.Row) (driver.PluginRecord, error) {
	var r driver.PluginRecord
	err := row.Scan(&r.Name, &r.Version, &r.Manifest, &r.ModuleSHA256, &r.InstalledAt, &r.InstalledBy)
	r.InstalledAt = r.InstalledAt.UTC()
	return r, err
}

// Plugins lists the installed plugins ordered by name.
func (p pluginStore) Plugins(ctx context.Context) (out []driver.PluginRecord, err error) {
	err = p.run(ctx, pgx.ReadOnly, func(q pgx.Tx) error {
		rows, err := q.Query(ctx, p.sql.list)
		if err != nil {
			return p.b.wrap(err, "list plugins")
		}
		defer rows.Close()
		out = []driver.PluginRecord{}
		for rows.Next() {
			r, err := scanPlugin(rows)
			if err != nil {
				return p.b.wrap(err, "list plugins")
			}
			out = append(out, r)
		}
		return p.b.wrap(rows.Err(), "list plugins")
	})
	return out, err
}

// PluginRecord returns the plugin without its module, docex.ErrNotFound
// when absent.
func (p pluginStore) PluginRecord(ctx context.Context, name string) (rec driver.PluginRecord, err error) {
	err = p.run(ctx, pgx.ReadOnly, func(q pgx.Tx) error {
		var err error
		rec, err = scanPlugin(q.QueryRow(ctx, p.sql.get, name))
		if errors.Is(err, pgx.ErrNoRows) {
			return docex.Errorf(docex.ErrNotFound, "plugin %q not found", name)
		}
		return p.b.wrap(err, "read plugin %q", name)
	})
	return rec, err
}

// Plugin returns the plugin and its module bytes, docex.ErrNotFound when
// absent, docex.ErrCorrupt when the stored module does not match its
// checksum.
func (p pluginStore) Plugin(ctx context.Context, name string) (rec driver.PluginRecord, module []byte, err error) {
	err = p.run(ctx, pgx.ReadOnly, func(q pgx.Tx) error {
		var found bool
		err := q.QueryRow(ctx, p.sql.getModule, name).Scan(&rec.Name, &rec.Version, &rec.Manifest, &rec.ModuleSHA256,
			&rec.InstalledAt, &rec.InstalledBy, &found, &module)
		rec.InstalledAt = rec.InstalledAt.UTC()
		if errors.Is(err, pgx.ErrNoRows) {
			return docex.Errorf(docex.ErrNotFound, "plugin %q not found", name)
		}
		if err != nil {
			return p.b.wrap(err, "read plugin %q", name)
		}
		if !found {
			return docex.Errorf(docex.ErrNotFound, "plugin %q: module %s missing", name, rec.ModuleSHA256)
		}
		return nil
	})
	if err != nil {
		return driver.PluginRecord{}, nil, err
	}
	if sum := sha256.Sum256(module); hex.EncodeToString(sum[:]) != rec.ModuleSHA256 {
		return driver.PluginRecord{}, nil, docex.Errorf(docex.ErrCorrupt, "plugin %q: stored module does not match its checksum", name)
	}
	return rec, module, nil
}

// PutPlugin installs or replaces the plugin atomically, dropping the
// replaced module when nothing else uses it. It returns docex.ErrInvalid
// when module does not match rec.ModuleSHA256.
func (p pluginStore) PutPlugin(ctx context.Context, rec driver.PluginRecord, module []byte) error {
	if sum := sha256.Sum256(module); hex.EncodeToString(sum[:]) != rec.ModuleSHA256 {
		return docex.Errorf(docex.ErrInvalid, "plugin %q: module does not match its checksum", rec.Name)
	}
	if rec.Manifest == nil {
		rec.Manifest = []byte{}
	}
	if module == nil {
		module = []byte{}
	}
	return p.run(ctx, pgx.ReadWrite, func(q pgx.Tx) error {
		if _, err := q.Exec(ctx, p.sql.putModule, rec.ModuleSHA256, module); err != nil {
			return p.b.wrap(err, "store module of plugin %q", rec.Name)
		}
		var old string
		err := q.QueryRow(ctx, p.sql.oldModule, rec.Name).Scan(&old)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return p.b.wrap(err, "read plugin %q", rec.Name)
		}
		if _, err := q.Exec(ctx, p.sql.upsert, rec.Name, rec.Version, rec.Manifest, rec.ModuleSHA256, utcMicro(rec.InstalledAt), rec.InstalledBy); err != nil {
			return p.b.wrap(err, "store plugin %q", rec.Name)
		}
		if old != "" && old != rec.ModuleSHA256 {
			return p.dropModule(ctx, q, old)
		}
		return nil
	})
}

// dropModule removes module sum when no plugin uses it. It locks the
// module's row first, so that the removal's own statement runs after an
// install that uses the module has committed, and sees it (a removal's
// subquery would otherwise read the snapshot it started with).
func (p pluginStore) dropModule(ctx context.Context, q pgx.Tx, sum string) error {
	if _, err := q.Exec(ctx, p.sql.lockModule, sum); err != nil {
		return p.b.wrap(err, "lock module %s", sum)
	}
	_, err := q.Exec(ctx, p.sql.dropModule, sum)
	return p.b.wrap(err, "drop module %s", sum)
}

// DeletePlugin removes the plugin and its module when no other plugin
// uses it; docex.ErrNotFound when absent.
func (p pluginStore) DeletePlugin(ctx context.Context, name string) error {
	return p.run(ctx, pgx.ReadWrite, func(q pgx.Tx) error {
		var sum string
		err := q.QueryRow(ctx, p.sql.delete, name).Scan(&sum)
		if errors.Is(err, pgx.ErrNoRows) {
			return docex.Errorf(docex.ErrNotFound, "plugin %q not found", name)
		}
		if err != nil {
			return p.b.wrap(err, "delete plugin %q", name)
		}
		return p.dropModule(ctx, q, sum)
	})
}
