package mcpserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/docex-dev/docex"
)

// ProtectedPath is a file or directory of docex's own that add_document
// never reads, whatever AllowPath covers: the configuration file, the data
// directory, the databases, the content store, caches.
type ProtectedPath struct {
	// Path is the file or directory, absolute or relative to the working
	// directory. It need not exist yet (a cache created later).
	Path string
	// What names it in messages, e.g. "data directory (data_dir)" or
	// "configuration file".
	What string
}

// errPathPrivate marks a path refused because it is docex's own file (a
// privateError: it matches errPathRefused too, a denial audited like one).
var errPathPrivate = errors.New("docex's own file")

// privateError is a path refusal (pathRefused) that also matches
// errPathPrivate, with the same message.
type privateError struct{ error }

func (e privateError) Unwrap() error        { return e.error }
func (e privateError) Is(target error) bool { return target == errPathPrivate }

func privateRefused(format string, args ...any) error {
	return privateError{pathRefused(format, args...)}
}

// protectedEntry is a ProtectedPath made absolute, with its file info when
// it exists.
type protectedEntry struct {
	ProtectedPath
	real string      // Path with the symlinks of its existing part resolved
	st   os.FileInfo // nil when it does not exist (or cannot be stat'ed)
}

// protected returns the server's protected paths as they are now: resolved
// at each check, so that a directory created (or replaced by a link) after
// the server started is seen where it is.
func (s *Server) protected() []protectedEntry {
	out := make([]protectedEntry, 0, len(s.cfg.Protected))
	for _, p := range s.cfg.Protected {
		if p.Path == "" {
			continue
		}
		abs, err := filepath.Abs(p.Path)
		if err != nil {
			continue
		}
		e := protectedEntry{ProtectedPath: ProtectedPath{Path: abs, What: p.What}, real: resolveExisting(abs)}
		if st, err := os.Stat(abs); err == nil {
			e.st = st
		}
		out = append(out, e)
	}
	return out
}

// resolveExisting returns the absolute path p with the symlinks of its
// longest existing prefix resolved and the rest joined as it is.
func resolveExisting(p string) string {
	p = filepath.Clean(p)
	rest := ""
	for {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(p, rest)
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// within reports whether the clean absolute path p is dir or inside it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}

// protectedBy returns the protected entry the clean absolute path p is, or
// lies inside (by name, both as given and resolved), and whether there is
// one.
func protectedBy(p string, prot []protectedEntry) (protectedEntry, bool) {
	for _, e := range prot {
		if within(p, e.Path) || within(p, e.real) {
			return e, true
		}
	}
	return protectedEntry{}, false
}

// sameDirAbove returns the protected directory that is dir or one of its
// ancestors under another name (a bind mount, say): compared by device and
// inode, not by name.
func sameDirAbove(dir string, prot []protectedEntry) (protectedEntry, bool) {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil {
			for _, e := range prot {
				if e.st != nil && e.st.IsDir() && os.SameFile(st, e.st) {
					return e, true
				}
			}
		}
		if filepath.Dir(d) == d {
			return protectedEntry{}, false
		}
	}
}

// checkAllowedDir refuses (docex.ErrInvalid) an allowed directory inside a
// protected one: every file in it would be refused.
func (s *Server) checkAllowedDir(given string, dirs []string) error {
	prot := s.protected()
	// By name first (the message names the directory as configured),
	// then by device and inode.
	for _, find := range []func(string, []protectedEntry) (protectedEntry, bool){protectedBy, sameDirAbove} {
		for _, d := range dirs {
			if e, ok := find(d, prot); ok {
				return docex.Errorf(docex.ErrInvalid, "allowed path %s is inside docex's own %s %s: an agent may never add docex's configuration or storage; allow a directory of its own, outside it", given, e.What, e.Path)
			}
		}
	}
	return nil
}

// checkPrivate refuses the file f, opened at the resolved path resolved
// (the path asked for is path), when it is on a kernel filesystem that
// describes the running system (pseudoFS: /proc/self/environ holds
// docex's environment), or when it is docex's own: by name, the path
// the kernel gives for the open file (where it can, Linux's /proc), by
// device and inode of its directories (a bind mount of a protected
// directory) and of itself (a hard link to a protected file: the
// configuration file, the system database; a file with more than one link
// is looked for in the protected directories, linkedInside). It returns
// an error matching errPathPrivate for a refused file, another for a file
// it cannot stat.
func (s *Server) checkPrivate(path, resolved string, f *os.File) error {
	if f != nil {
		if fsName, ok := pseudoFS(f); ok {
			return privateRefused("path %q is in the kernel's %s, which describes the running system (docex's own environment among it), not a document", path, fsName)
		}
	}
	prot := s.protected()
	if len(prot) == 0 {
		return nil
	}
	names := []string{resolved}
	if opened, ok := openedPath(f); ok {
		names = append(names, opened)
	}
	for _, n := range names {
		if e, ok := protectedBy(n, prot); ok {
			if n == e.Path || n == e.real {
				return privateRefused("path %q is docex's own %s", path, e.What)
			}
			return privateRefused("path %q lies inside docex's own %s", path, e.What)
		}
		if e, ok := sameDirAbove(filepath.Dir(n), prot); ok {
			return privateRefused("path %q lies inside docex's own %s, under another name", path, e.What)
		}
	}
	if f != nil {
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("stat %q: %w", path, err)
		}
		for _, e := range prot {
			if e.st != nil && e.st.Mode().IsRegular() && os.SameFile(st, e.st) {
				return privateRefused("path %q is docex's own %s, under another name", path, e.What)
			}
		}
		if n, ok := linkCount(st); ok && n > 1 {
			if e, found := linkedInside(st, prot); found {
				return privateRefused("path %q is a hard link to a file inside docex's own %s", path, e.What)
			}
		}
	}
	return nil
}

// maxLinkSearch bounds the entries linkedInside looks at in all.
const maxLinkSearch = 1_000_000

// linkedInside returns the protected directory that holds the file st
// describes under another name (a hard link to a tenant database or a
// content pack made inside the allowed directory), and true. A search
// that cannot finish (more than maxLinkSearch entries, a directory it
// cannot read) returns the directory it was searching and true: such a
// file is refused rather than possibly docex's own.
func linkedInside(st os.FileInfo, prot []protectedEntry) (protectedEntry, bool) {
	seen := 0
	for _, e := range prot {
		if e.st == nil || !e.st.IsDir() {
			continue
		}
		found, incomplete := false, false
		root := e.real // WalkDir does not follow a root that is a symlink
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p != root || !errors.Is(err, fs.ErrNotExist) {
					incomplete = true
				}
				return filepath.SkipAll
			}
			if seen++; seen > maxLinkSearch {
				incomplete = true
				return filepath.SkipAll
			}
			if !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) { // removed meanwhile
					incomplete = true
					return filepath.SkipAll
				}
				return nil
			}
			if os.SameFile(fi, st) {
				found = true
				return filepath.SkipAll
			}
			return nil
		})
		if found || incomplete {
			return e, true
		}
	}
	return protectedEntry{}, false
}

// openedPath returns the path the kernel has for the open file f, where it
// says (Linux: /proc/self/fd), cleaned; false elsewhere.
func openedPath(f *os.File) (string, bool) {
	if f == nil {
		return "", false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return "", false
	}
	var p string
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		p, lerr = os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	}); err != nil || lerr != nil || !filepath.IsAbs(p) {
		return "", false
	}
	return filepath.Clean(strings.TrimSuffix(p, " (deleted)")), true
}
