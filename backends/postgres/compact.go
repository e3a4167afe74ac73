package postgres

import (
	"context"
	"strings"

	"github.com/docex-dev/docex/driver"
	"github.com/jackc/pgx/v5"
)

var _ driver.Compactor = (*store)(nil)

// sqlSchemaTables lists the tables of the transaction's schema (first on
// its search_path, checked by inTenant) with their total size: heap,
// TOAST and indexes.
const sqlSchemaTables = `SELECT c.relname, pg_total_relation_size(c.oid)
	FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
	ORDER BY c.relname`

// Compact implements driver.Compactor: VACUUM (FULL) of every table of
// the store's schema, in one statement (PostgreSQL rewrites them one after
// another, each in a transaction of its own, holding its ACCESS EXCLUSIVE
// lock while it does: the tenant's reads and writes of that table wait;
// other tenants' schemas are not touched). The tables are listed in a
// checked tenant transaction (inTenant); VACUUM cannot run in a
// transaction, so it names them schema-qualified and quoted. The sizes are
// the tables' total size (heap, TOAST, indexes). It returns the errors of
// inTenant (a deleted tenant: docex.ErrTenantUnknown), or the server's;
// a table rewrite interrupted keeps the table as it was.
func (s *store) Compact(ctx context.Context) (driver.Compacted, error) {
	var c driver.Compacted
	var tables []string
	var err error
	if tables, c.Before, err = s.tablesSize(ctx); err != nil {
		return c, err
	}
	if len(tables) > 0 {
		names := make([]string, len(tables))
		for i, t := range tables {
			names[i] = pgx.Identifier{s.schema, t}.Sanitize()
		}
		if _, err := s.b.pool.Exec(ctx, "VACUUM (FULL) "+strings.Join(names, ", ")); err != nil {
			return c, s.b.gone(ctx, s, s.b.wrap(err, "vacuum %s", s.schema))
		}
	}
	_, c.After, err = s.tablesSize(ctx)
	return c, err
}

// tablesSize returns the schema's tables and their total size in bytes.
func (s *store) tablesSize(ctx context.Context) (tables []string, size int64, err error) {
	err = s.read(ctx, func(q pgx.Tx) error {
		tables, size = nil, 0
		rows, err := q.Query(ctx, sqlSchemaTables)
		if err != nil {
			return s.b.wrap(err, "list tables of %s", s.schema)
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var n int64
			if err := rows.Scan(&name, &n); err != nil {
				return s.b.wrap(err, "list tables of %s", s.schema)
			}
			tables, size = append(tables, name), size+n
		}
		return s.b.wrap(rows.Err(), "list tables of %s", s.schema)
	})
	return tables, size, err
}
