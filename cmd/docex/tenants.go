package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docex-dev/docex"
	"github.com/spf13/pflag"
)

// tenantIDRule is the tenant id rule (tenancy.ValidateTenantID), for help.
const tenantIDRule = `Tenant ids: 1 to 40 bytes of a-z, 0-9, '-' and '_'; starting with a letter
and ending with a letter or digit; no two separators ('-', '_') in a row.
Reserved ids are refused: system, public, default, admin, root, bootstrap,
template0, template1, information_schema, postgres, sqlite, main, temp, all,
none, null; so are the prefixes pg_, pg-, docex and sqlite.`

func tenantCommands() []*command {
	var displayName string
	var yes bool
	return []*command{
		{path: "tenant create", args: "ID", access: "operator", minArgs: 1, maxArgs: 1,
			summary: "provision a tenant (all or nothing)",
			help:    tenantIDRule + "\n\nExample:\n  docex tenant create acme --display-name \"Acme Corp\"",
			flags: func(fs *pflag.FlagSet) {
				fs.StringVar(&displayName, "display-name", "", "human-readable name (default: the id)")
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				p, err := c.provisioner(ctx)
				if err != nil {
					return err
				}
				t, err := p.Create(ctx, args[0], displayName)
				if err != nil {
					return err
				}
				return c.emit(t, func(w io.Writer) {
					writef(w, "created tenant %s\n", t.ID)
					writef(w, "next: docex basket create NAME --tenant %s --user ID --roles admin\n", t.ID)
				})
			}},
		{path: "tenant list", access: "operator", maxArgs: 0,
			summary: "list tenants, the bootstrap tenant included",
			help: `Example:
  docex tenant list --json`,
			run: func(ctx context.Context, c *cli, args []string) error {
				p, err := c.provisioner(ctx)
				if err != nil {
					return err
				}
				ts, err := p.List(ctx)
				if err != nil {
					return err
				}
				return c.emit(ts, func(w io.Writer) { printTenants(w, ts) })
			}},
		{path: "tenant show", args: "ID", access: "operator", minArgs: 1, maxArgs: 1,
			summary: "show a tenant",
			help: `Example:
  docex tenant show acme`,
			run: func(ctx context.Context, c *cli, args []string) error {
				p, err := c.provisioner(ctx)
				if err != nil {
					return err
				}
				t, err := p.Get(ctx, args[0])
				if err != nil {
					return err
				}
				return c.emit(t, func(w io.Writer) { printTenants(w, []docex.Tenant{t}) })
			}},
		{path: "tenant suspend", args: "ID", access: "operator", minArgs: 1, maxArgs: 1,
			summary: "suspend a tenant: deny its operations until resumed",
			help: `Every operation of the tenant's users that starts afterwards is refused
(exit 4, tenant_suspended, recorded in the system audit log), and no write
of the tenant commits any more; its data is kept. Workers leave its jobs
queued, spending no attempt, until "docex tenant resume ID". The operator's
docex verify and docex gc still read it. Suspending a suspended tenant (or
resuming an active one) changes nothing and exits 0 (a suspension waits
for the writes in flight all the same, below).

It waits for the tenant's writes in flight to end. On PostgreSQL it
waits at most database.postgres.lock_timeout_ms (30 s by default), then
exits 1 (storage_unavailable), changing nothing and naming the
transactions it waited for (server pid, client, state and age).
PostgreSQL ends a transaction left idle by a frozen client after
database.postgres.idle_in_transaction_timeout_ms (5 min by default).
On SQLite it suspends the tenant first, then waits at most
database.sqlite.lock_timeout_ms (30 s by default) for a write of the
tenant in flight, whose process holds the tenant database's write lock
(a stopped or stalled worker or doc add), then exits 1
(storage_unavailable): the tenant is suspended, but that write may still
commit; the error names the processes holding the lock (pid and command
line; on Linux only). Running it again waits again. Ctrl-C stops waiting
too (exit 130, the tenant suspended).

Example:
  docex tenant suspend acme
  docex tenant resume acme`,
			run: tenantStatus(true)},
		{path: "tenant resume", args: "ID", access: "operator", minArgs: 1, maxArgs: 1,
			summary: "resume a suspended tenant",
			help: `Example:
  docex tenant resume acme`,
			run: tenantStatus(false)},
		{path: "tenant delete", args: "ID --yes", access: "operator", minArgs: 1, maxArgs: 1,
			summary: "delete a tenant with all its data",
			help: `Irreversible: removes the tenant from the registry, then its database
(SQLite file or PostgreSQL schema) and its content (files or S3 objects;
what a failure there leaves, docex gc removes: the deletion still
succeeds, exit 0, with a warning line on stderr saying so, and with
--json "content_error" naming the failure). Its users are refused from
then on (exit 4, tenant_unknown); its queued jobs never run and its
running ones commit nothing more.
A tenant created again with the same id starts empty: it never sees its
predecessor's data.
On PostgreSQL it waits for the tenant's transactions in flight at most
database.postgres.lock_timeout_ms (30 s by default), then exits 1
(storage_unavailable), deleting nothing and naming them (as tenant
suspend does). On SQLite, once the tenant is out of the registry, it
waits for the tenant's write in flight at most
database.sqlite.lock_timeout_ms (30 s by default), then removes the
tenant's database and content all the same, exit 0, with a warning line
on stderr (with --json too) saying so and naming the processes holding
the tenant database's write lock (on Linux only).
Killed (kill -9, a crash) after the registry removal committed, it leaves
the tenant's database and content unregistered: running it again exits 3
(tenant_not_found), and docex gc removes what is left.

Example:
  docex tenant delete acme --yes`,
			flags: func(fs *pflag.FlagSet) { fs.BoolVar(&yes, "yes", false, "confirm the deletion") },
			run: func(ctx context.Context, c *cli, args []string) error {
				if !yes {
					return docex.Errorf(errUsage, "tenant delete removes the tenant's database and content: confirm with --yes")
				}
				p, err := c.provisioner(ctx)
				if err != nil {
					return err
				}
				d, err := p.DeleteReport(ctx, args[0])
				if err != nil {
					return err
				}
				if d.WaitError != nil {
					// Deleted all the same (SQLite: a write's process held
					// the lock for longer than lock_timeout_ms). Said on
					// stderr with --json too: the JSON keys stay.
					writef(c.stderr, "docex: warning: %v\n", d.WaitError)
				}
				out := tenantDeleted{deleted: deleted{ID: args[0], Deleted: true}}
				if d.ContentError != nil {
					// The tenant is gone all the same; gc removes the rest.
					out.ContentError = d.ContentError.Error()
					if !c.g.json {
						writef(c.stderr, "docex: warning: tenant %s is deleted, but removing its content failed (%v); docex gc will remove the rest\n", args[0], d.ContentError)
					}
				}
				return c.emit(out, func(w io.Writer) { writef(w, "deleted tenant %s\n", args[0]) })
			}},
	}
}

func tenantStatus(suspend bool) func(ctx context.Context, c *cli, args []string) error {
	return func(ctx context.Context, c *cli, args []string) error {
		p, err := c.provisioner(ctx)
		if err != nil {
			return err
		}
		verb := "resumed"
		if suspend {
			verb, err = "suspended", p.Suspend(ctx, args[0])
		} else {
			err = p.Resume(ctx, args[0])
		}
		if err != nil {
			return err
		}
		t, err := p.Get(ctx, args[0])
		if err != nil {
			return err
		}
		return c.emit(t, func(w io.Writer) { writef(w, "%s tenant %s\n", verb, t.ID) })
	}
}

func printTenants(w io.Writer, ts []docex.Tenant) {
	fmt.Fprintln(w, "ID\tSTATUS\tSYSTEM\tCREATED\tDISPLAY NAME")
	for _, t := range ts {
		writef(w, "%s\t%s\t%t\t%s\t%s\n", t.ID, t.Status, t.IsSystem, t.CreatedAt.Format(time.RFC3339), t.DisplayName)
	}
}

// deleted is the JSON result of a command that deleted something.
type deleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// tenantDeleted is tenant delete's JSON: deleted, and content_error, the
// error of removing the tenant's content after the tenant was removed
// ("" when it all went).
type tenantDeleted struct {
	deleted
	ContentError string `json:"content_error"`
}
