package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// pluginStore implements driver.PluginStore over one database file.
type pluginStore struct {
	db func(ctx context.Context) (*db, error)
}

// Plugins implements driver.TenantStore.
// Each call of the plugin store makes the check of the store's reads
// first (store.checkRead).
func (s *store) Plugins() driver.PluginStore {
	d := s.db
	return pluginStore{db: func(ctx context.Context) (*db, error) {
		if err := s.checkRead(ctx); err != nil {
			return nil, err
		}
		return d, nil
	}}
}

// SystemPlugins implements driver.Backend.
func (b *Backend) SystemPlugins() driver.PluginStore {
	return pluginStore{db: func(ctx context.Context) (*db, error) { return b.system(ctx, false) }}
}

func (p pluginStore) Plugins(ctx context.Context) ([]driver.PluginRecord, error) {
	d, err := p.db(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := d.r.QueryContext(ctx, `SELECT name, version, manifest, module_sha256, installed_at, installed_by FROM plugins ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []driver.PluginRecord{}
	for rows.Next() {
		r, err := scanPlugin(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanPlugin(row interface{ Scan(...any) error }) (driver.PluginRecord, error) {
	var r driver.PluginRecord
	var at int64
	err := row.Scan(&r.Name, &r.Version, &r.Manifest, &r.ModuleSHA256, &at, &r.InstalledBy)
	r.InstalledAt = fromMicros(at)
	return r, err
}

func (p pluginStore) PluginRecord(ctx context.Context, name string) (driver.PluginRecord, error) {
	d, err := p.db(ctx)
	if err != nil {
		return driver.PluginRecord{}, err
	}
	rec, err := scanPlugin(d.r.QueryRowContext(ctx, `SELECT name, version, manifest, module_sha256, installed_at, installed_by FROM plugins WHERE name = ?`, name))
	if err != nil {
		return driver.PluginRecord{}, notFound(err, "plugin %q not found", name)
	}
	return rec, nil
}

func (p pluginStore) Plugin(ctx context.Context, name string) (driver.PluginRecord, []byte, error) {
	d, err := p.db(ctx)
	if err != nil {
		return driver.PluginRecord{}, nil, err
	}
	var rec driver.PluginRecord
	var module []byte
	err = withReadTx(ctx, d.r, func(tx *sql.Tx) error {
		var err error
		rec, err = scanPlugin(tx.QueryRowContext(ctx, `SELECT name, version, manifest, module_sha256, installed_at, installed_by FROM plugins WHERE name = ?`, name))
		if err != nil {
			return notFound(err, "plugin %q not found", name)
		}
		if err := tx.QueryRowContext(ctx, `SELECT data FROM plugin_modules WHERE sha256 = ?`, rec.ModuleSHA256).Scan(&module); err != nil {
			return fmt.Errorf("plugin %q: module %s: %w", name, rec.ModuleSHA256, notFound(err, "module missing"))
		}
		return nil
	})
	if err != nil {
		return driver.PluginRecord{}, nil, err
	}
	sum := sha256.Sum256(module)
	if hex.EncodeToString(sum[:]) != rec.ModuleSHA256 {
		return driver.PluginRecord{}, nil, docex.Errorf(docex.ErrCorrupt, "plugin %q: stored module does not match its checksum", name)
	}
	return rec, module, nil
}

func (p pluginStore) PutPlugin(ctx context.Context, rec driver.PluginRecord, module []byte) error {
	d, err := p.db(ctx)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(module)
	if hex.EncodeToString(sum[:]) != rec.ModuleSHA256 {
		return docex.Errorf(docex.ErrInvalid, "plugin %q: module does not match its checksum", rec.Name)
	}
	return withTx(ctx, d.w, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO plugin_modules(sha256, data) VALUES (?, ?) ON CONFLICT (sha256) DO NOTHING`, rec.ModuleSHA256, module); err != nil {
			return err
		}
		var old sql.NullString
		_ = tx.QueryRowContext(ctx, `SELECT module_sha256 FROM plugins WHERE name = ?`, rec.Name).Scan(&old)
		if _, err := tx.ExecContext(ctx, `INSERT INTO plugins(name, version, manifest, module_sha256, installed_at, installed_by) VALUES (?,?,?,?,?,?)
			ON CONFLICT (name) DO UPDATE SET version = excluded.version, manifest = excluded.manifest, module_sha256 = excluded.module_sha256,
			installed_at = excluded.installed_at, installed_by = excluded.installed_by`,
			rec.Name, rec.Version, rec.Manifest, rec.ModuleSHA256, micros(rec.InstalledAt), rec.InstalledBy); err != nil {
			return err
		}
		if old.Valid && old.String != rec.ModuleSHA256 {
			return dropModule(ctx, tx, old.String)
		}
		return nil
	})
}

func dropModule(ctx context.Context, tx *sql.Tx, sum string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM plugin_modules WHERE sha256 = ? AND NOT EXISTS (SELECT 1 FROM plugins WHERE module_sha256 = ?)`, sum, sum)
	return err
}

func (p pluginStore) DeletePlugin(ctx context.Context, name string) error {
	d, err := p.db(ctx)
	if err != nil {
		return err
	}
	return withTx(ctx, d.w, func(tx *sql.Tx) error {
		var sum string
		if err := tx.QueryRowContext(ctx, `DELETE FROM plugins WHERE name = ? RETURNING module_sha256`, name).Scan(&sum); err != nil {
			return notFound(err, "plugin %q not found", name)
		}
		return dropModule(ctx, tx, sum)
	})
}
