package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// idSpool holds ids, one a line, in a temporary file: the ids a cascade
// deleted, which doc delete --json lists, without holding them in
// memory.
type idSpool struct {
	f *os.File
	w *bufio.Writer
	n int
}

// newIDSpool creates an empty spool in the temporary directory; it
// returns the file system's error when it cannot.
func newIDSpool() (*idSpool, error) {
	f, err := os.CreateTemp("", "docex-ids-*")
	if err != nil {
		return nil, fmt.Errorf("a temporary file for the ids deleted: %w", err)
	}
	return &idSpool{f: f, w: bufio.NewWriter(f)}, nil
}

// add appends ids (none holds a newline: document ids) and returns the
// file's write error.
func (s *idSpool) add(ids []string) error {
	for _, id := range ids {
		if strings.ContainsRune(id, '\n') {
			return fmt.Errorf("id %q holds a newline", id)
		}
		if _, err := s.w.WriteString(id + "\n"); err != nil {
			return err
		}
		s.n++
	}
	return nil
}

// Close removes the file.
func (s *idSpool) Close() error {
	err := s.f.Close()
	if rerr := os.Remove(s.f.Name()); err == nil {
		err = rerr
	}
	return err
}

// emitDeleted writes to w deletedDocs{ID: id, Deleted: true, DeletedIDs:
// the ids spooled, ContentError: contentError} exactly as cli.emit encodes it with --json (indented
// by two spaces, HTML not escaped, a newline after), reading the ids back
// from the file a line at a time. It returns the first read or write
// error.
func (s *idSpool) emitDeleted(w io.Writer, id, contentError string) error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "{\n  \"id\": %s,\n  \"deleted\": true,\n  \"deleted_ids\": [", jsonString(id))
	sc := bufio.NewScanner(s.f)
	for i := 0; sc.Scan(); i++ {
		sep := ",\n    "
		if i == 0 {
			sep = "\n    "
		}
		bw.WriteString(sep)
		bw.WriteString(jsonString(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if s.n > 0 {
		bw.WriteString("\n  ")
	}
	fmt.Fprintf(bw, "],\n  \"content_error\": %s\n}\n", jsonString(contentError))
	return bw.Flush()
}

// jsonString is s encoded as a JSON string as cli.emit encodes it (HTML
// not escaped).
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}
