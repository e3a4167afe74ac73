package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/fdlimit"
	"github.com/spf13/pflag"
)

const metaValueHelp = `Metadata values: true/false are bools, decimal numbers are numbers, anything
else is a string (prefix s: to force a string, e.g. code=s:007).`

func documentCommands() []*command {
	var (
		meta        []string
		contentType string
		cascade     bool
		keepDerived bool
		page        docex.Page
		order       string
		quiet       bool
	)
	quietFlag := func(fs *pflag.FlagSet) {
		fs.BoolVarP(&quiet, "quiet", "q", false, "print only the documents' ids, one per line (for scripts: ID=$(docex ... -q))")
	}
	listFlags := func(fs *pflag.FlagSet) {
		pageFlags(fs, &page)
		fs.StringVar(&order, "order", "created", "created, -created (newest first) or name")
		quietFlag(fs)
	}
	return []*command{
		{path: "doc add", args: "BASKET FILE...", access: "writer", minArgs: 2, maxArgs: -1,
			summary: "add files to a basket (deduplicated by content)",
			help: metaValueHelp + `

A file whose content is already in the basket is not added again: the
existing document is reported (with --json: "duplicate": true).

The files are added in one transaction: all of them, or none. Their
content is staged before it: at most 16 MiB of it in memory
(storage.documents.max_staged_memory; small files are packed, with
database storage all are rows); past that, what is staged is written
out (a pack file, which docex gc removes should the add fail; with
database storage a spool file without a name in $TMPDIR, or in
storage.documents.spool_dir) and the memory released: the content of
an add holds no more memory than that, however many files it has; each
file still costs a few KiB of bookkeeping. With database storage each
file is one row, written whole: its largest file is held too, about
three times its size (the database driver copies the value as it sends
or writes it); use filesystem storage for files of hundreds of MB. With
S3 storage the bound is the store's, for all adds of the process
together: files of up to 1 MiB are staged in memory, each in a buffer
of its size, while the content in memory stays within
max_staged_memory; larger files, and those past it, go to spool files
in storage.documents.s3.spool_dir.

Example:
  docex doc add invoices invoice.pdf --meta customer=initech --meta amount=120`,
			flags: func(fs *pflag.FlagSet) {
				fs.StringArrayVar(&meta, "meta", nil, "metadata key=value to set on every added document (repeatable)")
				fs.StringVar(&contentType, "content-type", "", "content type (default: detected from the name and content)")
				quietFlag(fs)
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				return cmdDocAdd(ctx, c, args[0], args[1:], meta, contentType, quiet)
			}},
		{path: "doc get", args: "ID", access: "reader", minArgs: 1, maxArgs: 1,
			summary: "show a document and its metadata",
			help: `Example:
  docex doc get DOC_ID --json`,
			run: func(ctx context.Context, c *cli, args []string) error {
				s, err := c.session(ctx)
				if err != nil {
					return err
				}
				d, err := s.Document(ctx, args[0])
				if err != nil {
					return err
				}
				return c.emit(d, func(w io.Writer) { printDocs(w, []docex.Document{d}) })
			}},
		{path: "doc cat", args: "ID", access: "reader", minArgs: 1, maxArgs: 1,
			summary: "write a document's content to stdout",
			help: `Example:
  docex doc cat DOC_ID > invoice-copy.pdf`,
			run: func(ctx context.Context, c *cli, args []string) error {
				s, err := c.session(ctx)
				if err != nil {
					return err
				}
				rc, d, err := s.OpenContent(ctx, args[0])
				if err != nil {
					return err
				}
				defer rc.Close()
				if d.Size > catVerifiedFirst {
					// Streamed: damage is an error at the end (exit 1).
					_, err = io.Copy(c.stdout, rc)
					return err
				}
				// Read whole, hence verified, before a byte is written:
				// damaged content writes nothing.
				data, err := io.ReadAll(rc)
				if err != nil {
					return err
				}
				_, err = c.stdout.Write(data)
				return err
			}},
		{path: "doc list", args: "BASKET", access: "reader", minArgs: 1, maxArgs: 1,
			summary: "list a basket's documents",
			help: `Example:
  docex doc list invoices --order -created --limit 20`,
			flags: listFlags,
			run: func(ctx context.Context, c *cli, args []string) error {
				var err error
				if page.Order, err = parseOrder(order); err != nil {
					return err
				}
				s, err := c.session(ctx)
				if err != nil {
					return err
				}
				b, err := resolveBasket(ctx, s, args[0])
				if err != nil {
					return err
				}
				docs, err := s.Documents(ctx, b.ID, page)
				if err != nil {
					return err
				}
				if err := c.emit(docs, func(w io.Writer) { printDocList(w, docs, quiet) }); err != nil {
					return err
				}
				if !quiet {
					c.morePages(page, len(docs), int(b.DocumentCount), "documents")
				}
				return nil
			}},
		{path: "doc find", args: "BASKET --meta key=value...", access: "reader", minArgs: 1, maxArgs: 1,
			summary: "find documents whose metadata match every key=value",
			help: metaValueHelp + `

Example:
  docex doc find invoices --meta customer=initech --meta paid=false`,
			flags: func(fs *pflag.FlagSet) {
				fs.StringArrayVar(&meta, "meta", nil, "key=value condition (repeatable; all must match)")
				listFlags(fs)
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				return cmdDocFind(ctx, c, args[0], meta, page, order, quiet)
			}},
		{path: "doc update", args: "ID FILE", access: "writer", minArgs: 2, maxArgs: 2,
			summary: "replace a document's content (keeps id and metadata)",
			help: `In a basket bound to a pipeline, new content of an original document
(not one a step derived) is processed like an added document: its job is
queued in the same transaction as the update.

The content type is --content-type's, else the one FILE's extension gives
(FILE new.txt: text/plain; charset=utf-8, whatever the document's name),
else what the document's name and the new content give, as for an add (a
FILE with no extension, or one not known).

Example:
  docex doc update DOC_ID invoice-v2.pdf`,
			flags: func(fs *pflag.FlagSet) {
				fs.StringVar(&contentType, "content-type", "", "content type (default: detected from FILE's name, else the document's name and the content)")
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				s, err := c.session(ctx) // the configuration first, as doc add
				if err != nil {
					return err
				}
				f, base, err := openFileArg(args[1])
				if err != nil { // audited, as the engine audits its refusals
					return s.RefuseUpdate(ctx, args[0], args[1], err)
				}
				defer f.Close()
				if ct, ok := engine.ContentTypeByName(base); ok && contentType == "" {
					contentType = ct
				}
				d, err := s.UpdateContent(ctx, args[0], f, contentType)
				if err != nil {
					return err
				}
				return c.emit(d, func(w io.Writer) { printDocs(w, []docex.Document{d}) })
			}},
		{path: "doc delete", args: "ID", access: "writer", minArgs: 1, maxArgs: 1,
			summary: "delete a document (with derived documents: --cascade or --keep-derived)",
			help: `A document that pipeline steps derived documents from is deleted only with
--cascade (its descendants go too, at any depth, see doc lineage) or
--keep-derived (they stay, and their lineage says the source is gone). A document a step's
output only deduplicated onto (it was in the basket already, an
original say: "deduplicated" in doc lineage) is no descendant: it stays. Without either, on a
terminal, it asks which (c, k, or nothing: not deleted); otherwise it
deletes nothing and exits 5. A cascade of 500 descendants or more
deletes 500 documents per transaction, each after the documents derived
from it, the document itself last: if it is interrupted, running it
again finishes it. With --json the ids deleted are kept in a temporary
file until they are printed, not in memory.
When removing content no document refers to any more fails after the
deletion (an S3 DELETE refused, say), the deletion still succeeds (exit
0) with a warning line on stderr saying so (with --json
"content_error" naming the failure); docex gc removes the content left.

Example:
  docex doc delete DOC_ID --cascade`,
			flags: func(fs *pflag.FlagSet) {
				fs.BoolVar(&cascade, "cascade", false, "also delete every document derived from it")
				fs.BoolVar(&keepDerived, "keep-derived", false, "keep derived documents; their lineage says the source is gone")
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				sys, err := c.system(ctx)
				if err != nil {
					return err
				}
				// The deletion stands when removing its content fails
				// afterwards (docex gc removes the rest): the first
				// failure is a warning, or content_error with --json.
				var contentErr error
				s, err := sys.eng.AsWith(c.userContext(), engine.SessionOptions{ContentRemovalFailed: func(err error) {
					if contentErr == nil {
						contentErr = err
					}
				}})
				if err != nil {
					return err
				}
				// The ids deleted are counted, and with --json spooled
				// to a temporary file (a cascade's may be millions), not
				// held.
				var spool *idSpool
				if c.g.json {
					if spool, err = newIDSpool(); err != nil {
						return err
					}
					defer spool.Close()
				}
				n := 0
				err = deleteDocument(ctx, c, s, args[0], cascade, keepDerived, func(ids []string) error {
					n += len(ids)
					if spool != nil {
						return spool.add(ids)
					}
					return nil
				})
				if err != nil {
					return err
				}
				out := deletedDocs{ID: args[0], Deleted: true}
				if contentErr != nil {
					out.ContentError = contentErr.Error()
					if !c.g.json {
						writef(c.stderr, "docex: warning: document %s is deleted, but removing its content failed (%v); docex gc will remove the rest\n", args[0], contentErr)
					}
				}
				if spool != nil {
					return spool.emitDeleted(c.stdout, args[0], out.ContentError)
				}
				return c.emit(out, func(w io.Writer) {
					writef(w, "deleted document %s", args[0])
					if n > 1 {
						fmt.Fprintf(w, " and %d derived document(s)", n-1)
					}
					fmt.Fprintln(w)
				})
			}},
		{path: "doc meta set", args: "ID key=value...", access: "writer", minArgs: 2, maxArgs: -1,
			summary: "set metadata on a document",
			help: metaValueHelp + `

At most 256 keys a call, keys of 1 to 256 bytes, values of at most 64 KiB;
a document holds at most 1,024 keys and 16 MiB + 64 KiB of keys and values
in all (a number or a bool counts its text): a set that would go past
either is refused (exit code 2) and sets nothing.

Example:
  docex doc meta set DOC_ID paid=true amount=120 code=s:007`,
			run: func(ctx context.Context, c *cli, args []string) error {
				kv, err := parseMeta(args[1:])
				if err != nil {
					return err
				}
				s, err := c.session(ctx)
				if err != nil {
					return err
				}
				d, err := s.SetMetadata(ctx, args[0], kv)
				if err != nil {
					return err
				}
				return c.emit(d, func(w io.Writer) { printDocs(w, []docex.Document{d}) })
			}},
		{path: "doc meta get", args: "ID [KEY]", access: "reader", minArgs: 1, maxArgs: 2,
			summary: "print a document's metadata, or one key's value",
			help: `Examples:
  docex doc meta get DOC_ID
  docex doc meta get DOC_ID customer`,
			run: cmdMetaGet},
		{path: "doc meta delete", args: "ID KEY", access: "writer", minArgs: 2, maxArgs: 2,
			summary: "delete a metadata key",
			help: `Example:
  docex doc meta delete DOC_ID paid`,
			run: func(ctx context.Context, c *cli, args []string) error {
				s, err := c.session(ctx)
				if err != nil {
					return err
				}
				if err := s.DeleteMetadata(ctx, args[0], args[1]); err != nil {
					return err
				}
				return c.emit(metaDeleted{DocumentID: args[0], Key: args[1], Deleted: true}, func(w io.Writer) {
					writef(w, "deleted %s from %s\n", args[1], args[0])
				})
			}},
	}
}

func cmdDocAdd(ctx context.Context, c *cli, basket string, paths, meta []string, contentType string, quiet bool) error {
	kv, err := parseMeta(meta)
	if err != nil {
		return err
	}
	// The configuration first: without it nothing can be done, whatever
	// the files.
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	// A file that cannot be read, or a basket not found, refuses the add
	// before the engine sees it: audited all the same (its target the
	// basket as given), as the engine audits the failures it meets.
	docs := make([]engine.NewDocument, 0, len(paths))
	for _, path := range paths {
		f, err := checkFileArg(path)
		if err != nil {
			return s.RefuseAdd(ctx, basket, path, err)
		}
		defer f.close()
		docs = append(docs, engine.NewDocument{Name: filepath.Base(path), Content: f, ContentType: contentType, Metadata: kv})
	}
	b, err := resolveBasket(ctx, s, basket)
	if errors.Is(err, docex.ErrNotFound) {
		return s.RefuseAdd(ctx, basket, "", err)
	}
	if err != nil {
		return err // the session's own denial, audited already
	}
	added, err := s.AddDocuments(ctx, b.ID, docs)
	if err != nil {
		return err
	}
	err = c.emit(added, func(w io.Writer) {
		out := make([]docex.Document, len(added))
		for i, a := range added {
			out[i] = a.Document
		}
		printDocList(w, out, quiet)
	})
	queued := 0
	for i, a := range added {
		if a.Duplicate && err == nil {
			c.progress("note: %s has the content of existing document %s (%s); nothing added", paths[i], a.Document.ID, a.Document.Name)
		}
		if !a.Duplicate {
			queued++
		}
	}
	if b.Pipeline != "" && queued > 0 && err == nil {
		c.progress("note: basket %s is bound to pipeline %s: %d job(s) queued with the documents; a worker runs them (docex worker; docex job list --state queued)", b.Name, b.Pipeline, queued)
	}
	return err
}

func cmdDocFind(ctx context.Context, c *cli, basket string, meta []string, page docex.Page, order string, quiet bool) error {
	if len(meta) == 0 {
		return docex.Errorf(errUsage, "doc find needs at least one --meta key=value")
	}
	kv, err := parseMeta(meta)
	if err != nil {
		return err
	}
	if page.Order, err = parseOrder(order); err != nil {
		return err
	}
	filters := make([]docex.MetaFilter, 0, len(kv))
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		filters = append(filters, docex.MetaFilter{Key: k, Value: kv[k]})
	}
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	b, err := resolveBasket(ctx, s, basket)
	if err != nil {
		return err
	}
	docs, total, err := s.FindDocuments(ctx, b.ID, filters, page)
	if err != nil {
		return err
	}
	if err := c.emit(docs, func(w io.Writer) { printDocList(w, docs, quiet) }); err != nil {
		return err
	}
	if !quiet {
		if next := page.Offset + len(docs); len(docs) > 0 && int64(next) < total {
			c.progress("%d of %d matching documents (%d to %d); the next page: --offset %d", len(docs), total, page.Offset+1, next, next)
		} else {
			c.progress("%d of %d matching documents", len(docs), total)
		}
	}
	return nil
}

// metaValue is the JSON result of doc meta get ID KEY.
type metaValue struct {
	DocumentID string      `json:"document_id"`
	Key        string      `json:"key"`
	Value      docex.Value `json:"value"`
}

// metaDeleted is the JSON result of doc meta delete.
type metaDeleted struct {
	DocumentID string `json:"document_id"`
	Key        string `json:"key"`
	Deleted    bool   `json:"deleted"`
}

func cmdMetaGet(ctx context.Context, c *cli, args []string) error {
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	if len(args) == 2 {
		v, err := s.Metadata(ctx, args[0], args[1])
		if err != nil {
			return err
		}
		return c.emit(metaValue{DocumentID: args[0], Key: args[1], Value: v}, func(w io.Writer) { writef(w, "%s\n", v.Canonical()) })
	}
	d, err := s.Document(ctx, args[0])
	if err != nil {
		return err
	}
	return c.emit(d.Metadata, func(w io.Writer) {
		for _, k := range slices.Sorted(maps.Keys(d.Metadata)) {
			writef(w, "%s\t%s\t%s\n", k, d.Metadata[k].Type(), d.Metadata[k].Canonical())
		}
	})
}

func parseMeta(kvs []string) (map[string]docex.Value, error) {
	out := map[string]docex.Value{}
	raw := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, docex.Errorf(errUsage, "metadata %q: want key=value", kv)
		}
		if old, dup := raw[k]; dup && old != v {
			return nil, docex.Errorf(errUsage, "metadata key %q given twice (%s=%s, %s=%s): give each key once", k, k, old, k, v)
		}
		raw[k], out[k] = v, docex.ParseValue(v)
	}
	return out, nil
}

func parseOrder(s string) (docex.Order, error) {
	switch s {
	case "", "created":
		return docex.OrderCreated, nil
	case "-created":
		return docex.OrderCreatedDesc, nil
	case "name":
		return docex.OrderName, nil
	}
	return 0, docex.Errorf(errUsage, "--order %q: want created, -created or name", s)
}

// printDocList prints docs as a table, or only their ids with quiet.
func printDocList(w io.Writer, docs []docex.Document, quiet bool) {
	if !quiet {
		printDocs(w, docs)
		return
	}
	for _, d := range docs {
		fmt.Fprintln(w, d.ID)
	}
}

func printDocs(w io.Writer, docs []docex.Document) {
	fmt.Fprintln(w, "ID\tNAME\tTYPE\tSIZE\tCHECKSUM\tMETADATA")
	for _, d := range docs {
		writef(w, "%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Name, d.ContentType, d.Size, d.Checksum[:min(12, len(d.Checksum))], formatMeta(d.Metadata))
	}
}

func formatMeta(m map[string]docex.Value) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k].Canonical()
	}
	return strings.Join(parts, " ")
}

// openFileArg opens a FILE argument: a regular file, whose base name
// becomes the document's name. It is checked before it is opened (opening
// a FIFO would wait for a writer). Errors are docex.ErrInvalid naming the
// path once.
func openFileArg(path string) (*os.File, string, error) {
	a, err := checkFileArg(path)
	if err != nil {
		return nil, "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fileErr(docex.ErrInvalid, "cannot read "+path, err)
	}
	if st, err := f.Stat(); err != nil || !os.SameFile(st, a.info) {
		f.Close()
		return nil, "", docex.Errorf(docex.ErrInvalid, "%s was replaced while being read", path)
	}
	return f, filepath.Base(path), nil
}

// fileArg is a FILE argument of doc add, checked (a regular file) before
// anything is added and opened only when the engine reads it, then closed
// at its end: the engine reads the documents of a call one after the
// other, so a call holds one file open at a time, however many it adds
// (the open-file limit is 256 to 1,024 on common systems).
type fileArg struct {
	path string
	info os.FileInfo
	f    *os.File
	done bool
}

// checkFileArg returns path as a fileArg if it names a regular file (after
// symbolic links); errors are docex.ErrInvalid naming the path once.
func checkFileArg(path string) (*fileArg, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fileErr(docex.ErrInvalid, "cannot read "+path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, docex.Errorf(docex.ErrInvalid, "%s is not a regular file", path)
	}
	return &fileArg{path: path, info: st}, nil
}

// Size returns the file's size when it was checked: a hint for the
// content store's buffer.
func (a *fileArg) Size() int64 { return a.info.Size() }

// Read opens the file at the first call, and closes it at its end or at
// an error; the file it opens must be the one checked.
func (a *fileArg) Read(p []byte) (int, error) {
	if a.done {
		return 0, io.EOF
	}
	if a.f == nil {
		f, err := os.Open(a.path)
		if err != nil {
			a.done = true
			return 0, fileErr(docex.ErrInvalid, "cannot read "+a.path, err)
		}
		if st, err := f.Stat(); err != nil || !os.SameFile(st, a.info) {
			f.Close()
			a.done = true
			return 0, docex.Errorf(docex.ErrInvalid, "%s was replaced while being added", a.path)
		}
		a.f = f
	}
	n, err := a.f.Read(p)
	if err != nil {
		a.close()
	}
	return n, err
}

func (a *fileArg) close() {
	if a.f != nil {
		a.f.Close()
		a.f = nil
	}
	a.done = true
}

// unwrapPath returns the cause of a *fs.PathError (whose own message
// repeats the operation and path the caller already names).
// fileErr returns the error of a failed operation on a file the user
// named (what says which and what failed): docex.ErrTooManyOpenFiles
// (fdlimit.Wrap) when the process ran out of file descriptors, which
// says nothing of the file; else kind's error saying what and err.
func fileErr(kind *docex.Error, what string, err error) error {
	if fdlimit.IsExhaustion(err) {
		return fdlimit.Wrap(fmt.Errorf("%s: %w", what, err))
	}
	return docex.Errorf(kind, "%s: %v", what, unwrapPath(err))
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// catVerifiedFirst is the largest content doc cat reads whole, verifying it
// against its checksum, before writing any of it; larger content is
// streamed, and damage is reported at its end.
const catVerifiedFirst = 1 << 20
