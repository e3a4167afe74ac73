package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/spf13/pflag"
)

func auditCommands() []*command {
	var page docex.Page
	var system bool
	var prune auditPruneOpts
	return []*command{
		{path: "audit list", access: "admin; --system: operator", maxArgs: 0,
			summary: "the tenant's audit log, newest first (--system: the system log)",
			help: `The tenant's log records every operation on its data and every denial
inside it; the system log records operator actions (init, tenants, gc,
system plugins) and denials that happened before a tenant was known.

Examples:
  docex audit list --limit 20
  docex audit list --system --json`,
			flags: func(fs *pflag.FlagSet) {
				pageFlags(fs, &page)
				fs.BoolVar(&system, "system", false, "list the system audit log (operator)")
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				sys, err := c.system(ctx)
				if err != nil {
					return err
				}
				var log []docex.AuditEntry
				if system {
					log, err = sys.eng.Provisioner(c.g.user).SystemAudit(ctx, page) // audited itself
				} else {
					log, err = sys.eng.As(c.userContext()).Audit(ctx, page)
				}
				if err != nil {
					return err
				}
				defer c.morePages(page, len(log), -1, "entries")
				return c.emit(log, func(w io.Writer) {
					fmt.Fprintln(w, "TIME\tUSER\tOPERATION\tTARGET\tOUTCOME\tERROR")
					for _, a := range log {
						writef(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Time.Format(time.RFC3339), a.UserID, a.Operation, a.Target, a.Outcome, a.Error)
					}
				})
			}},
		{path: "audit prune", access: "admin; --system: operator", maxArgs: 0,
			summary: "delete audit entries recorded more than a duration (24h at least) ago, oldest first",
			help: `Deletes the oldest entries of the tenant's audit log (--system: of the
system log), those recorded more than --older-than ago, in the order they
were appended: it stops at the first entry that is not that old, and never
deletes the newest entry. --older-than takes a Go duration (720h) or whole
days (30d) and must be 24h or more: entries younger than that are never
pruned, so that whoever prunes cannot erase the trail of what they just did
(a shorter age is refused and the refusal audited).

It deletes 1,000 entries per transaction: interrupted (Ctrl-C, exit 130),
what it deleted stays deleted, and running it again deletes the rest. The
pruned log gets one audit.prune entry, written with the first chunk, with
what the prune sets out to delete: the count, the cutoff and the sequence
number and id of the newest of those entries; a prune of a tenant's log
records a copy in the system log too, before it deletes anything.
--dry-run counts what would be deleted, deleting nothing. On SQLite the file
does not shrink: later writes reuse the space, and docex compact gives a
tenant file's space back.

Examples:
  docex audit prune --older-than 365d --dry-run
  docex audit prune --older-than 90d --system --json`,
			flags: func(fs *pflag.FlagSet) {
				fs.StringVar(&prune.olderThan, "older-than", "", "delete entries recorded more than this long ago: a Go duration (720h) or days (30d), 24h or more; required")
				fs.BoolVar(&prune.dryRun, "dry-run", false, "delete nothing: count what would be deleted")
				fs.BoolVar(&prune.system, "system", false, "prune the system audit log (operator)")
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				return cmdAuditPrune(ctx, c, prune)
			}},
	}
}

// auditPruneOpts are audit prune's flags.
type auditPruneOpts struct {
	olderThan      string
	dryRun, system bool
}

func cmdAuditPrune(ctx context.Context, c *cli, o auditPruneOpts) error {
	age, err := parseAgeOf(o.olderThan, "how long ago the audit entries to delete were recorded, 24h or more", "entries just recorded")
	if err != nil {
		return err
	}
	sys, err := c.system(ctx)
	if err != nil {
		return err
	}
	opts := engine.PruneAuditOptions{Before: time.Now().Add(-age), DryRun: o.dryRun}
	var res engine.AuditPruneResult
	if o.system {
		res, err = sys.eng.Provisioner(c.g.user).PruneSystemAudit(ctx, opts)
	} else {
		res, err = sys.eng.As(c.userContext()).PruneAudit(ctx, opts)
	}
	if err != nil {
		return err
	}
	return c.emit(res, func(w io.Writer) {
		verb, log := "deleted", "the tenant's"
		if res.DryRun {
			verb = "would delete"
		}
		if res.System {
			log = "the system"
		}
		writef(w, "%s %d entries of %s audit log recorded before %s\n", verb, res.Entries, log, res.Before.Format(time.RFC3339))
	})
}
