package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/docex-dev/docex"
)

func verifyCommands() []*command {
	return []*command{{
		path: "verify", args: "[TENANT]", access: "operator", maxArgs: 1,
		summary: "read back every stored document content and check it against its checksum",
		help: `Scrubs stored content: every content object a document refers to is read
back in full and checked against its recorded size and SHA-256, for every
tenant (or only TENANT; suspended tenants too). It finds bit rot,
tampering, and what a power loss can leave with storage.documents.fsync
false. Damaged objects are listed with the documents that refer to them,
and the command then exits with 1; it changes nothing.
A content store without this system's marker (storage.documents changed
after docex init, or another system's) is refused with exit 2 instead,
and a content directory that is missing (deleted, or its volume not
mounted) with storage_unavailable, exit 1, as for every command that
reads, writes or removes document content.

Example:
  docex verify
  docex verify acme --json`,
		run: func(ctx context.Context, c *cli, args []string) error {
			p, err := c.provisioner(ctx)
			if err != nil {
				return err
			}
			tenant := ""
			if len(args) == 1 {
				tenant = args[0]
			}
			rep, err := p.Verify(ctx, tenant)
			if err != nil {
				return claimErr(c.sys.file, err)
			}
			// Single-file mode has no tenants: its local store is "".
			local := len(rep.Tenants) == 1 && rep.Tenants[0] == ""
			if err := c.emit(rep, func(w io.Writer) {
				of := fmt.Sprintf(" of %d tenant(s)", len(rep.Tenants))
				if local {
					of = ""
				}
				writef(w, "verified %d stored object(s) (%d bytes)%s: %d damaged\n", rep.Objects, rep.Bytes, of, len(rep.Damaged))
				if len(rep.Damaged) > 0 && !local {
					writef(w, "TENANT\t")
				}
				if len(rep.Damaged) > 0 {
					writef(w, "CHECKSUM\tSIZE\tPROBLEM\tDOCUMENTS\tERROR\n")
				}
				for _, d := range rep.Damaged {
					if !local {
						writef(w, "%s\t", d.Tenant)
					}
					writef(w, "%s\t%d\t%s\t%s\t%s\n", d.Checksum, d.Size, d.Problem, strings.Join(d.Documents, ","), d.Error)
				}
			}); err != nil {
				return err
			}
			if len(rep.Damaged) > 0 {
				where := "listed above"
				if c.g.json {
					where = "listed in the report on stdout"
				}
				del := "docex doc delete ID --tenant TENANT"
				if local {
					del = "docex doc delete ID"
				}
				return withHint(docex.Errorf(docex.ErrCorrupt, "%d stored object(s) damaged (%s); nothing was changed", len(rep.Damaged), where),
					"if all are missing, check that docex.yaml's storage.documents (type, path, bucket, prefix) still names where the content was stored; "+
						"otherwise restore each damaged object from a backup, or delete the documents that refer to it ("+del+"; adding the same file again does not repair it while a document refers to the damaged object: the add deduplicates onto it)")
			}
			return nil
		},
	}}
}
