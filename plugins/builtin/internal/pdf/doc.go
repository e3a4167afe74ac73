// Package pdf extracts the text of PDF documents, in pure Go and with
// bounded memory and work: every decoded stream is size-limited (a
// compression bomb is refused, not inflated), objects, pages and form
// nesting are bounded, as are the content-stream objects run and glyphs
// shown per page and per file (Options), and a malformed cross-reference
// table falls back to scanning the file for objects.
package pdf
