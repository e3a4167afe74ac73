package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docex-dev/docex"
	"github.com/spf13/pflag"
)

func auditCommands() []*command {
	var page docex.Page
	var system bool
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
	}
}
