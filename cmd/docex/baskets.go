package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/spf13/pflag"
)

func basketCommands() []*command {
	var page docex.Page
	var force, quiet bool
	var pipeline string
	return []*command{
		{path: "basket create", args: "NAME", access: "writer", minArgs: 1, maxArgs: 1,
			summary: "create a basket (a named collection of documents)",
			help: `With --pipeline (admin), the basket is bound to a pipeline in the same
transaction: every document added is processed by it (docs/jobs.md).

Examples:
  docex basket create invoices
  docex basket create scans --pipeline ocr`,
			flags: func(fs *pflag.FlagSet) {
				fs.Var(filterFlag{s: &pipeline, instead: "create a basket bound to no pipeline"}, "pipeline", "bind the new basket to this pipeline (admin)")
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				s, err := c.session(ctx)
				if err != nil {
					return err
				}
				var b docex.Basket
				if pipeline != "" {
					b, err = s.CreateBasketWithPipeline(ctx, args[0], pipeline)
					err = unknownPipelineHint(ctx, s, err, pipeline)
				} else {
					b, err = s.CreateBasket(ctx, args[0])
				}
				if err != nil {
					return err
				}
				return c.emit(b, func(w io.Writer) { writef(w, "created basket %s (%s)\n", b.Name, b.ID) })
			}},
		{path: "basket list", access: "reader", maxArgs: 0,
			summary: "list baskets",
			help: `Example:
  docex basket list --json`,
			flags: func(fs *pflag.FlagSet) {
				pageFlags(fs, &page)
				fs.BoolVarP(&quiet, "quiet", "q", false, "print only the baskets' ids, one per line (for scripts)")
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				s, err := c.session(ctx)
				if err != nil {
					return err
				}
				bs, err := s.Baskets(ctx, page)
				if err != nil {
					return err
				}
				if err := c.emit(bs, func(w io.Writer) {
					if quiet {
						for _, b := range bs {
							writef(w, "%s\n", b.ID)
						}
						return
					}
					printBaskets(w, bs)
				}); err != nil {
					return err
				}
				if !quiet {
					c.morePages(page, len(bs), -1, "baskets")
				}
				return nil
			}},
		{path: "basket show", args: "NAME", access: "reader", minArgs: 1, maxArgs: 1,
			summary: "show a basket and its stats",
			help: `Example:
  docex basket show invoices`,
			run: func(ctx context.Context, c *cli, args []string) error {
				s, err := c.session(ctx)
				if err != nil {
					return err
				}
				b, err := resolveBasket(ctx, s, args[0])
				if err != nil {
					return err
				}
				return c.emit(b, func(w io.Writer) { printBaskets(w, []docex.Basket{b}) })
			}},
		{path: "basket delete", args: "NAME", access: "admin", minArgs: 1, maxArgs: 1,
			summary: "delete a basket (--force: with its documents)",
			help: `Example:
  docex basket delete invoices --force`,
			flags: func(fs *pflag.FlagSet) { fs.BoolVar(&force, "force", false, "also delete its documents") },
			run: func(ctx context.Context, c *cli, args []string) error {
				s, err := c.session(ctx)
				if err != nil {
					return err
				}
				b, err := s.ResolveBasketFor(ctx, "basket.delete", args[0], "")
				if err != nil {
					return err
				}
				if err := s.DeleteBasket(ctx, b.ID, force); err != nil {
					return err
				}
				return c.emit(deleted{ID: b.ID, Deleted: true}, func(w io.Writer) { writef(w, "deleted basket %s\n", b.Name) })
			}},
	}
}

// pageFlags binds --limit and --offset to page.
func pageFlags(fs *pflag.FlagSet, page *docex.Page) {
	page.Limit = docex.DefaultPageLimit
	fs.Var(pageLimit(&page.Limit), "limit", fmt.Sprintf("maximum number of results, 1 or more (at most %d are returned)", docex.MaxPageLimit))
	fs.Var(pageOffset(&page.Offset), "offset", "number of results to skip")
}

// morePages says on stderr (not with --json) that a listing stopped at
// its page and how to get the next: shown results from page.Offset, of
// total (-1: unknown; then a full page may have more after it).
func (c *cli) morePages(page docex.Page, shown, total int, noun string) {
	limit := page.Limit
	if limit <= 0 {
		limit = docex.DefaultPageLimit
	}
	limit = min(limit, docex.MaxPageLimit)
	next := page.Offset + shown
	switch {
	case shown == 0:
	case total >= 0 && next < total:
		c.progress("showing %s %d to %d of %d; the next page: --offset %d", noun, page.Offset+1, next, total, next)
	case total < 0 && shown >= limit:
		c.progress("showing %s %d to %d; there may be more: --offset %d", noun, page.Offset+1, next, next)
	}
}

// pageFlag is the value of --limit (at least 1: the library reads a zero
// limit as the default, which --limit 0 must not silently mean) or
// --offset (0 or more).
type pageFlag struct {
	n     *int
	min   int
	below string // the error of a value under min
}

func pageLimit(n *int) pageFlag {
	return pageFlag{n, 1, fmt.Sprintf("must be at least 1 (at most %d results are returned)", docex.MaxPageLimit)}
}

func pageOffset(n *int) pageFlag { return pageFlag{n, 0, "must be 0 or more"} }

func (p pageFlag) String() string {
	if p.n == nil {
		return ""
	}
	return strconv.Itoa(*p.n)
}

func (p pageFlag) Type() string { return "int" }

func (p pageFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("must be an integer")
	}
	if n < p.min {
		return errors.New(p.below)
	}
	*p.n = n
	return nil
}

func printBaskets(w io.Writer, bs []docex.Basket) {
	fmt.Fprintln(w, "NAME\tID\tDOCUMENTS\tBYTES\tCREATED\tPIPELINE")
	for _, b := range bs {
		p := b.Pipeline
		if p == "" {
			p = "-"
		}
		writef(w, "%s\t%s\t%d\t%d\t%s\t%s\n", b.Name, b.ID, b.DocumentCount, b.Bytes, b.CreatedAt.Format(time.RFC3339), p)
	}
}

// resolveBasket finds a basket by id when ref has the form of an id, else
// by name (engine.Session.ResolveBasket: names never have that form).
func resolveBasket(ctx context.Context, s *engine.Session, ref string) (docex.Basket, error) {
	return s.ResolveBasket(ctx, ref)
}
