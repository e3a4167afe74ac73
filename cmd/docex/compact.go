package main

import (
	"context"
	"fmt"
	"io"

	"github.com/docex-dev/docex/engine"
)

func compactCommands() []*command {
	return []*command{{
		path: "compact", args: "[TENANT]", access: "operator", maxArgs: 1,
		summary: "give the space freed by deletions in tenant databases back to the file system",
		help: `Deleting documents, pruning jobs (docex job prune) and gc leave free space
inside a tenant's database: later writes reuse it, but the database does
not shrink. compact rewrites each tenant's database without it (every
tenant, suspended ones too, or only TENANT, given as the argument: --tenant
and DOCEX_TENANT are not read; in single-file mode the one file) and prints
the sizes before and after (writes of other processes meanwhile count in
"after"). No row changes. Content stored in files or S3 is not touched:
docex gc removes what no document refers to.

SQLite: VACUUM on the tenant's file. It needs free disk of up to twice the
compacted size while it runs (a temporary copy in SQLite's temporary
directory, SQLITE_TMPDIR or TMPDIR, and the write-ahead log). The tenant's
writes wait for it: in this process until it is done, in other processes
(workers, adds) for up to database.sqlite.busy_timeout_ms (5 s by default),
then they fail with "database is locked" and a job spends an attempt. On a
tenant whose VACUUM takes longer (hundreds of MB), stop the workers or
suspend the tenant first. PostgreSQL: VACUUM (FULL) on the tables of the
tenant's schema (River's job tables are not the tenant's); the tenant's
reads and writes of a table wait while it is rewritten. Other tenants are
not affected.

Interrupted (Ctrl-C), the database being compacted is left as it was (or,
when its VACUUM had already committed, compacted); the tenants compacted
before stay compacted, and are listed on stdout before the error.

Example:
  docex job prune --older-than 30d --tenant acme --user ops --roles admin
  docex compact acme`,
		run: func(ctx context.Context, c *cli, args []string) error {
			p, err := c.provisioner(ctx)
			if err != nil {
				return err
			}
			tenant := ""
			if len(args) == 1 {
				tenant = args[0]
			}
			rep, err := p.Compact(ctx, tenant)
			if err != nil && len(rep.Tenants) == 0 {
				return err
			}
			// Interrupted or failed after compacting some: they are
			// listed, then the error.
			if eerr := c.emit(rep, func(w io.Writer) { printCompact(w, rep) }); eerr != nil {
				return eerr
			}
			return err
		},
	}}
}

func printCompact(w io.Writer, rep engine.CompactReport) {
	local := len(rep.Tenants) == 1 && rep.Tenants[0].Tenant == ""
	if !local {
		writef(w, "TENANT\tBEFORE\tAFTER\n")
		for _, t := range rep.Tenants {
			writef(w, "%s\t%d\t%d\n", t.Tenant, t.BytesBefore, t.BytesAfter)
		}
	}
	what := "the database"
	if !local {
		what = fmt.Sprintf("%d tenant database(s)", len(rep.Tenants))
	}
	writef(w, "compacted %s: %d bytes before, %d after\n", what, rep.BytesBefore, rep.BytesAfter)
}
